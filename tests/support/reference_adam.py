"""Independent float64 NumPy references for the optax-parity optimizers, written from the papers.

Each rule works on one leaf: ``init(p) -> state`` and ``step(g, p, state, t) -> (update, state)`` with
``t = 1, 2, ...``; the update is added to the param. Betas use the code convention (``b`` is the
decay of a moving average, the papers' ``1 - beta`` for Adan).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


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


def run(rule: Any, params: list[np.ndarray], grad_fn: Any, steps: int) -> list[list[np.ndarray]]:
    """The trajectory (params after each step) of ``rule`` applied leaf by leaf."""
    params = [np.asarray(p, np.float64).copy() for p in params]
    states = [rule.init(p) for p in params]
    path = []
    for t in range(1, steps + 1):
        grads = grad_fn(params)
        for i, (g, p) in enumerate(zip(grads, params)):
            u, states[i] = rule.step(g, p, states[i], t)
            params[i] = p + u
        path.append([p.copy() for p in params])
    return path
