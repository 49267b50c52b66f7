"""Independent float64 NumPy references for the catalog optimizers, written from the papers.

Each ``ref_<name>(**hyperparameters)`` returns ``step(params, grads, state, t) -> (new_params, state)``
working on dicts of float64 NumPy arrays, with ``t = 1, 2, ...`` and ``state`` starting as
``None``. They follow the papers' equations (with the conventions gradtx documents: e.g.
optax's epsilon placement) and share no code with gradtx.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

Tree = dict[str, np.ndarray]
Step = Callable[[Tree, Tree, Any, int], tuple[Tree, Any]]


def _schedule(lr: Any, count: int) -> float:
    return float(lr(count)) if callable(lr) else float(lr)


def trajectory(step: Step, params: Tree, grad_fn: Callable[[Tree], Tree], steps: int) -> list[Tree]:
    """Runs ``steps`` steps from ``params``; returns the params after each step."""
    out, state = [], None
    p = {k: np.array(v, np.float64) for k, v in params.items()}
    for t in range(1, steps + 1):
        p, state = step(p, grad_fn(p), state, t)
        out.append(p)
    return out


def ref_sgd(learning_rate: Any, momentum: float | None = None, nesterov: bool = False) -> Step:
    """Heavy ball: b_t = mu b_{t-1} + g_t; step b_t (or g_t + mu b_t for Nesterov)."""

    def step(p: Tree, g: Tree, s: Any, t: int) -> tuple[Tree, Any]:
        lr = _schedule(learning_rate, t - 1)
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


def _adam_direction(
    g: np.ndarray,
    m: np.ndarray,
    v: np.ndarray,
    t: int,
    b1: float,
    b2: float,
    eps: float,
    eps_root: float,
    nesterov: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g**2
    # Dozat's Nesterov form looks one bias correction ahead for the momentum term.
    m_hat = b1 * m / (1 - b1 ** (t + 1)) + (1 - b1) * g / (1 - b1**t) if nesterov else m / (1 - b1**t)
    v_hat = v / (1 - b2**t)
    return m_hat / (np.sqrt(v_hat + eps_root) + eps), m, v


def ref_adam(
    learning_rate: Any,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    nesterov: bool = False,
    weight_decay: float = 0.0,
) -> Step:
    """Kingma & Ba (Dozat's Nesterov form; Loshchilov & Hutter's decoupled decay, times lr)."""

    def step(p: Tree, g: Tree, s: Any, t: int) -> tuple[Tree, Any]:
        lr = _schedule(learning_rate, t - 1)
        s = ({k: np.zeros_like(v) for k, v in p.items()},) * 2 if s is None else s
        m, v = dict(s[0]), dict(s[1])
        new_p = {}
        for k in p:
            d, m[k], v[k] = _adam_direction(g[k], m[k], v[k], t, b1, b2, eps, eps_root, nesterov)
            new_p[k] = p[k] - lr * (d + weight_decay * p[k])
        return new_p, (m, v)

    return step


def ref_radam(
    learning_rate: float, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8, threshold: float = 5.0
) -> Step:
    """Liu et al.: rectified adaptive step once rho_t >= threshold, else bias-corrected momentum."""
    rho_inf = 2 / (1 - b2) - 1

    def step(p: Tree, g: Tree, s: Any, t: int) -> tuple[Tree, Any]:
        s = ({k: np.zeros_like(v) for k, v in p.items()},) * 2 if s is None else s
        m = {k: b1 * s[0][k] + (1 - b1) * g[k] for k in p}
        v = {k: b2 * s[1][k] + (1 - b2) * g[k] ** 2 for k in p}
        rho = rho_inf - 2 * t * b2**t / (1 - b2**t)
        new_p = {}
        for k in p:
            m_hat = m[k] / (1 - b1**t)
            if rho >= threshold:
                r = np.sqrt((rho - 4) * (rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho))
                d = r * m_hat / (np.sqrt(v[k] / (1 - b2**t)) + eps)
            else:
                d = m_hat
            new_p[k] = p[k] - learning_rate * d
        return new_p, (m, v)

    return step


def ref_adamax(learning_rate: float, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8) -> Step:
    """Kingma & Ba section 7.1: u_t = max(b2 u_{t-1}, |g_t| + eps), step m_hat / u_t."""

    def step(p: Tree, g: Tree, s: Any, t: int) -> tuple[Tree, Any]:
        s = ({k: np.zeros_like(v) for k, v in p.items()},) * 2 if s is None else s
        m = {k: b1 * s[0][k] + (1 - b1) * g[k] for k in p}
        u = {k: np.maximum(b2 * s[1][k], np.abs(g[k]) + eps) for k in p}
        return {k: p[k] - learning_rate * m[k] / ((1 - b1**t) * u[k]) for k in p}, (m, u)

    return step


def _trust(p: np.ndarray, d: np.ndarray, coefficient: float = 1.0, eps: float = 0.0) -> float:
    pn, dn = np.linalg.norm(p), np.linalg.norm(d)
    return 1.0 if pn == 0 or dn == 0 else float(coefficient * pn / (dn + eps))


def ref_lamb(
    learning_rate: float, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-6, weight_decay: float = 0.0
) -> Step:
    """You et al. (2019): r = adam + wd * p; step lr * ||p|| / ||r|| * r per layer."""

    def step(p: Tree, g: Tree, s: Any, t: int) -> tuple[Tree, Any]:
        s = ({k: np.zeros_like(v) for k, v in p.items()},) * 2 if s is None else s
        m, v = dict(s[0]), dict(s[1])
        new_p = {}
        for k in p:
            d, m[k], v[k] = _adam_direction(g[k], m[k], v[k], t, b1, b2, eps, 0.0, False)
            r = d + weight_decay * p[k]
            new_p[k] = p[k] - learning_rate * _trust(p[k], r) * r
        return new_p, (m, v)

    return step


def ref_lars(
    learning_rate: float,
    weight_decay: float = 0.0,
    trust_coefficient: float = 0.001,
    eps: float = 0.0,
    momentum: float = 0.9,
    nesterov: bool = False,
) -> Step:
    """You et al. (2017): local lr = eta ||w|| / (||g + wd w||); momentum on lr-scaled steps."""

    def step(p: Tree, g: Tree, s: Any, t: int) -> tuple[Tree, Any]:
        s = {k: np.zeros_like(v) for k, v in p.items()} if s is None else s
        new_p, buf = {}, {}
        for k in p:
            r = g[k] + weight_decay * p[k]
            d = learning_rate * _trust(p[k], r, trust_coefficient, eps) * r
            buf[k] = momentum * s[k] + d
            new_p[k] = p[k] - (d + momentum * buf[k] if nesterov else buf[k])
        return new_p, buf

    return step


def ref_lion(learning_rate: float, b1: float = 0.9, b2: float = 0.99, weight_decay: float = 1e-3) -> Step:
    """Chen et al.: update = sign(b1 m + (1-b1) g) + wd p; m = b2 m + (1-b2) g."""

    def step(p: Tree, g: Tree, s: Any, t: int) -> tuple[Tree, Any]:
        s = {k: np.zeros_like(v) for k, v in p.items()} if s is None else s
        new_p = {k: p[k] - learning_rate * (np.sign(b1 * s[k] + (1 - b1) * g[k]) + weight_decay * p[k]) for k in p}
        return new_p, {k: b2 * s[k] + (1 - b2) * g[k] for k in p}

    return step


def ref_sign_sgd(learning_rate: float) -> Step:
    """Bernstein et al.: x -= lr * sign(g)."""

    def step(p: Tree, g: Tree, s: Any, t: int) -> tuple[Tree, Any]:
        return {k: p[k] - learning_rate * np.sign(g[k]) for k in p}, s

    return step


def ref_signum(learning_rate: float, beta: float = 0.9) -> Step:
    """Bernstein et al.: m = beta m + (1-beta) g; x -= lr * sign(m)."""

    def step(p: Tree, g: Tree, s: Any, t: int) -> tuple[Tree, Any]:
        s = {k: np.zeros_like(v) for k, v in p.items()} if s is None else s
        m = {k: beta * s[k] + (1 - beta) * g[k] for k in p}
        return {k: p[k] - learning_rate * np.sign(m[k]) for k in p}, m

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
