"""Float64 references of the sign and trust-ratio optimizers: Lion, signSGD, Signum, Rprop, LAMB, LARS, NovoGrad.

Whole-tree steps ``ref_<name>`` and per-leaf rules (dataclasses): see ``tests/support/reference_runner.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tests.support.reference_adam import adam_direction
from tests.support.reference_runner import Step, Tree


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


@dataclass
class Rprop:
    """Riedmiller and Braun 1993 without weight backtracking (iRprop-, as torch.optim.Rprop)."""

    lr: float
    eta_minus: float = 0.5
    eta_plus: float = 1.2
    step_min: float = 1e-6
    step_max: float = 50.0

    def init(self, p: np.ndarray) -> Any:
        return [np.full_like(p, self.lr), np.zeros_like(p)]

    def step(self, g: np.ndarray, p: np.ndarray, st: Any, t: int) -> tuple[np.ndarray, Any]:
        size, g_prev = st
        prod = g * g_prev
        size = np.where(prod > 0, np.minimum(size * self.eta_plus, self.step_max), size)
        size = np.where(prod < 0, np.maximum(size * self.eta_minus, self.step_min), size)
        g = np.where(prod < 0, 0.0, g)
        return -size * np.sign(g), [size, g]


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
            d, m[k], v[k] = adam_direction(g[k], m[k], v[k], t, b1, b2, eps, 0.0, False)
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


@dataclass
class NovoGrad:
    """Ginsburg et al. 2019, Algorithm 1: layer-wise second moment, epsilon inside the root."""

    lr: float
    b1: float = 0.9
    b2: float = 0.25
    eps: float = 1e-8
    wd: float = 0.0

    def init(self, p: np.ndarray) -> Any:
        return [np.zeros_like(p), 0.0]

    def step(self, g: np.ndarray, p: np.ndarray, st: Any, t: int) -> tuple[np.ndarray, Any]:
        norm2 = float(np.sum(g * g))
        v = norm2 if t == 1 else self.b2 * st[1] + (1 - self.b2) * norm2
        d = g / np.sqrt(v + self.eps) + self.wd * p
        m = d if t == 1 else self.b1 * st[0] + d
        return -self.lr * m, [m, v]
