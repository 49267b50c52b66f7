"""Float64 references of SGD (heavy ball, Nesterov) and the second-moment scalings: AdaGrad, RMSprop, Adafactor, SM3.

Whole-tree steps ``ref_<name>`` and per-leaf rules (dataclasses): see ``tests/support/reference_runner.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tests.support.reference_runner import Step, Tree, schedule_value


def ref_sgd(learning_rate: Any, momentum: float | None = None, nesterov: bool = False) -> Step:
    """Heavy ball: b_t = mu b_{t-1} + g_t; step b_t (or g_t + mu b_t for Nesterov)."""

    def step(p: Tree, g: Tree, s: Any, t: int) -> tuple[Tree, Any]:
        lr = schedule_value(learning_rate, t - 1)
        if momentum is None:
            return {k: p[k] - lr * g[k] for k in p}, s
        s = {k: np.zeros_like(v) for k, v in p.items()} if s is None else s
        b = {k: momentum * s[k] + g[k] for k in p}
        d = {k: g[k] + momentum * b[k] if nesterov else b[k] for k in p}
        return {k: p[k] - lr * d[k] for k in p}, b

    return step


def ref_adagrad(learning_rate: float, initial_accumulator_value: float = 0.1, eps: float = 1e-7) -> Step:
    """Duchi et al.: G_t = G_{t-1} + g^2, step g / sqrt(G_t + eps)."""

    def step(p: Tree, g: Tree, s: Any, t: int) -> tuple[Tree, Any]:
        s = {k: np.full_like(v, initial_accumulator_value) for k, v in p.items()} if s is None else s
        s = {k: s[k] + g[k] ** 2 for k in p}
        return {k: p[k] - learning_rate * g[k] / np.sqrt(s[k] + eps) for k in p}, s

    return step


def ref_rmsprop(
    learning_rate: float,
    decay: float = 0.9,
    eps: float = 1e-8,
    initial_scale: float = 0.0,
    eps_in_sqrt: bool = True,
    centered: bool = False,
    momentum: float | None = None,
    nesterov: bool = False,
    bias_correction: bool = False,
) -> Step:
    """Tieleman & Hinton (Graves' centered form); lr applied before the momentum buffer."""

    def step(p: Tree, g: Tree, s: Any, t: int) -> tuple[Tree, Any]:
        if s is None:
            s = (
                {k: np.full_like(v, initial_scale) for k, v in p.items()},
                {k: np.zeros_like(v) for k, v in p.items()},
                {k: np.zeros_like(v) for k, v in p.items()},
            )
        v, mbar, buf = s
        v = {k: decay * v[k] + (1 - decay) * g[k] ** 2 for k in p}
        mbar = {k: decay * mbar[k] + (1 - decay) * g[k] for k in p}
        corr = 1 - decay**t if bias_correction else 1.0
        new_p, new_buf = {}, {}
        for k in p:
            var = v[k] / corr
            if centered:
                var = var - (mbar[k] / corr) ** 2
            den = np.sqrt(var + eps) if eps_in_sqrt else np.sqrt(var) + eps
            d = learning_rate * g[k] / den
            if momentum is not None:
                new_buf[k] = momentum * buf[k] + d
                d = d + momentum * new_buf[k] if nesterov else new_buf[k]
            else:
                new_buf[k] = buf[k]
            new_p[k] = p[k] - d
        return new_p, (v, mbar, new_buf)

    return step


def ref_adafactor(
    learning_rate: float,
    min_dim_size_to_factor: int = 128,
    decay_rate: float = 0.8,
    clipping_threshold: float | None = 1.0,
    momentum: float | None = None,
    weight_decay_rate: float | None = None,
    eps: float = 1e-30,
    multiply_by_parameter_scale: bool = True,
) -> Step:
    """Shazeer & Stern, Algorithms 4/5 for matrices (rows = second-largest dim), with
    beta2_t = 1 - t^-c, update clipping by RMS, relative step (param RMS floor 1e-3)."""

    def factored(shape: tuple[int, ...]) -> tuple[int, int] | None:
        if len(shape) < 2:
            return None
        order = sorted(range(len(shape)), key=lambda i: (shape[i], i))
        r, c = order[-2], order[-1]
        return (r, c) if shape[r] >= min_dim_size_to_factor else None

    def step(p: Tree, g: Tree, s: Any, t: int) -> tuple[Tree, Any]:
        if s is None:
            s = ({}, {}, {k: np.zeros_like(v) for k, v in p.items()})
            for k, v in p.items():
                dims = factored(v.shape)
                if dims is None:
                    s[0][k] = np.zeros_like(v)
                else:
                    s[0][k] = (np.zeros(np.delete(v.shape, dims[1])), np.zeros(np.delete(v.shape, dims[0])))
        v_state, _, mom = s
        beta = 1 - float(t) ** (-decay_rate)
        new_p, new_v, new_m = {}, {}, {}
        for k in p:
            g2 = g[k] ** 2 + eps
            dims = factored(p[k].shape)
            if dims is None:
                v = beta * v_state[k] + (1 - beta) * g2
                u = g[k] / np.sqrt(v)
                new_v[k] = v
            else:
                r_ax, c_ax = dims
                R = beta * v_state[k][0] + (1 - beta) * g2.mean(axis=c_ax)
                C = beta * v_state[k][1] + (1 - beta) * g2.mean(axis=r_ax)
                new_v[k] = (R, C)
                r_red = r_ax - 1 if r_ax > c_ax else r_ax
                v_hat = (
                    np.expand_dims(R, c_ax)
                    * np.expand_dims(C, r_ax)
                    / np.expand_dims(R.mean(axis=r_red, keepdims=True), c_ax)
                )
                u = g[k] / np.sqrt(v_hat)
            if clipping_threshold is not None:
                u = u / max(1.0, np.sqrt(np.mean(u**2)) / clipping_threshold)
            u = learning_rate * u
            if multiply_by_parameter_scale:
                u = u * max(np.sqrt(np.mean(p[k] ** 2)), 1e-3)
            if momentum is not None:
                new_m[k] = momentum * mom[k] + (1 - momentum) * u
                u = new_m[k]
            else:
                new_m[k] = mom[k]
            if weight_decay_rate is not None:
                u = u + weight_decay_rate * p[k]
            new_p[k] = p[k] - u
        return new_p, (new_v, None, new_m)

    return step


@dataclass
class SM3:
    """Anil et al. 2019, SM3-II with momentum (accumulators summed: the paper's form, b2 = 1)."""

    lr: float
    momentum: float = 0.9
    eps: float = 1e-8

    def init(self, p: np.ndarray) -> Any:
        return [[np.zeros(n) for n in p.shape], np.zeros_like(p)]

    def step(self, g: np.ndarray, p: np.ndarray, st: Any, t: int) -> tuple[np.ndarray, Any]:
        acc, m = st
        if g.ndim == 1:
            nu = acc[0] + g**2
            new_acc = [nu]
        else:
            prior = np.full(g.shape, np.inf)
            for i, a in enumerate(acc):
                shape = [1] * g.ndim
                shape[i] = g.shape[i]
                prior = np.minimum(prior, a.reshape(shape))
            nu = prior + g**2
            new_acc = [nu.max(axis=tuple(j for j in range(g.ndim) if j != i)) for i in range(g.ndim)]
        scaled = np.where(nu > 0, g / np.sqrt(nu + self.eps), 0.0)
        m = self.momentum * m + (1 - self.momentum) * scaled
        return -self.lr * m, [new_acc, m]
