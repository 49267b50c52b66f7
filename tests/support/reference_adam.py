"""Float64 references of the Adam family: Adam (NAdam, AdamW), RAdam, AdaMax, AMSGrad, AdaBelief, Yogi, Adan.

Whole-tree steps ``ref_<name>`` and per-leaf rules (dataclasses): see ``tests/support/reference_runner.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tests.support.reference_runner import Step, Tree, schedule_value


def adam_direction(
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
    """One leaf's Adam step direction ``m_hat / (sqrt(v_hat + eps_root) + eps)``, with the new ``m`` and ``v``."""
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
        lr = schedule_value(learning_rate, t - 1)
        s = ({k: np.zeros_like(v) for k, v in p.items()},) * 2 if s is None else s
        m, v = dict(s[0]), dict(s[1])
        new_p = {}
        for k in p:
            d, m[k], v[k] = adam_direction(g[k], m[k], v[k], t, b1, b2, eps, eps_root, nesterov)
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


@dataclass
class AMSGrad:
    """Reddi et al. 2018, Algorithm 2, with the maximum taken over bias-corrected second moments."""

    lr: float
    b1: float = 0.9
    b2: float = 0.999
    eps: float = 1e-8

    def init(self, p: np.ndarray) -> Any:
        return [np.zeros_like(p), np.zeros_like(p), np.zeros_like(p)]

    def step(self, g: np.ndarray, p: np.ndarray, st: Any, t: int) -> tuple[np.ndarray, Any]:
        m = self.b1 * st[0] + (1 - self.b1) * g
        v = self.b2 * st[1] + (1 - self.b2) * g**2
        v_max = np.maximum(st[2], v / (1 - self.b2**t))
        return -self.lr * (m / (1 - self.b1**t)) / (np.sqrt(v_max) + self.eps), [m, v, v_max]


@dataclass
class AdaBelief:
    """Zhuang et al. 2020, Algorithm 2 (``eps_root`` is the paper's epsilon inside ``s_t``)."""

    lr: float
    b1: float = 0.9
    b2: float = 0.999
    eps: float = 1e-16
    eps_root: float = 1e-16

    def init(self, p: np.ndarray) -> Any:
        return [np.zeros_like(p), np.zeros_like(p)]

    def step(self, g: np.ndarray, p: np.ndarray, st: Any, t: int) -> tuple[np.ndarray, Any]:
        m = self.b1 * st[0] + (1 - self.b1) * g
        s = self.b2 * st[1] + (1 - self.b2) * (g - m) ** 2 + self.eps_root
        m_hat, s_hat = m / (1 - self.b1**t), s / (1 - self.b2**t)
        return -self.lr * m_hat / (np.sqrt(s_hat) + self.eps), [m, s]


@dataclass
class Yogi:
    """Zaheer et al. 2018, Algorithm 2, with Adam's bias correction."""

    lr: float
    b1: float = 0.9
    b2: float = 0.999
    eps: float = 1e-3
    v0: float = 1e-6

    def init(self, p: np.ndarray) -> Any:
        return [np.full_like(p, self.v0), np.full_like(p, self.v0)]

    def step(self, g: np.ndarray, p: np.ndarray, st: Any, t: int) -> tuple[np.ndarray, Any]:
        m = self.b1 * st[0] + (1 - self.b1) * g
        v = st[1] - (1 - self.b2) * np.sign(st[1] - g**2) * g**2
        m_hat, v_hat = m / (1 - self.b1**t), v / (1 - self.b2**t)
        return -self.lr * m_hat / (np.sqrt(v_hat) + self.eps), [m, v]


@dataclass
class Adan:
    """Xie et al. 2022, Algorithm 1 (paper beta_i = 1 - b_i), bias-corrected, no weight decay.

    The gradient difference is zero at the first step; its weight in ``n`` and in the direction is
    the paper's ``1 - beta_2 = b2``.
    """

    lr: float
    b1: float = 0.98
    b2: float = 0.92
    b3: float = 0.99
    eps: float = 1e-8

    def init(self, p: np.ndarray) -> Any:
        return [np.zeros_like(p), np.zeros_like(p), np.zeros_like(p), np.zeros_like(p)]

    def step(self, g: np.ndarray, p: np.ndarray, st: Any, t: int) -> tuple[np.ndarray, Any]:
        m, v, n, g_prev = st
        diff = np.zeros_like(g) if t == 1 else g - g_prev
        m = self.b1 * m + (1 - self.b1) * g
        v = self.b2 * v + (1 - self.b2) * diff
        n = self.b3 * n + (1 - self.b3) * (g + self.b2 * diff) ** 2
        m_hat, v_hat, n_hat = m / (1 - self.b1**t), v / (1 - self.b2**t), n / (1 - self.b3**t)
        return -self.lr * (m_hat + self.b2 * v_hat) / (np.sqrt(n_hat) + self.eps), [m, v, n, g]
