"""Trajectories against torch.optim itself, with the flags that select torch's conventions.

torch is an optional dev extra (``torch==2.13.0``); the NumPy references stay the primary oracle.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx

torch = pytest.importorskip("torch", reason="torch (optional extra `gradtx[torch]`) is not installed")

STEPS = 50


def _init() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    return {"a": rng.normal(size=(6, 5)), "b": rng.normal(size=(4,)), "c": rng.normal(size=(2, 3, 2))}


def _grad_np(p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: v + 0.1 * v**3 - 0.2 for k, v in p.items()}


def _gradtx_traj(tx: Any) -> dict[str, np.ndarray]:
    params = {k: jnp.asarray(v, jnp.float64) for k, v in _init().items()}

    def body(carry: Any, _: Any) -> Any:
        p, s = carry
        g = {k: v + 0.1 * v**3 - 0.2 for k, v in p.items()}
        u, s = tx.update(g, s, p)
        p = gradtx.apply_updates(p, u)
        return (p, s), p

    out = jax.jit(lambda p: jax.lax.scan(body, (p, tx.init(p)), None, length=STEPS)[1])(params)
    return {k: np.asarray(v) for k, v in out.items()}


def _torch_traj(make_opt: Any) -> dict[str, np.ndarray]:
    tensors = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in _init().items()}
    opt = make_opt(list(tensors.values()))
    out: dict[str, list[np.ndarray]] = {k: [] for k in tensors}
    for _ in range(STEPS):
        opt.zero_grad()
        for k, t in tensors.items():
            t.grad = torch.tensor(_grad_np({k: t.detach().numpy()})[k])
        opt.step()
        for k, t in tensors.items():
            out[k].append(t.detach().numpy().copy())
    return {k: np.stack(v) for k, v in out.items()}


CASES = [
    ("sgd", lambda: gradtx.sgd(0.05), lambda ps: torch.optim.SGD(ps, lr=0.05)),
    ("momentum", lambda: gradtx.sgd(0.05, momentum=0.9), lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9)),
    (
        "nesterov",
        lambda: gradtx.sgd(0.05, momentum=0.9, nesterov=True),
        lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True),
    ),
    ("adam", lambda: gradtx.adam(0.01), lambda ps: torch.optim.Adam(ps, lr=0.01)),
    (
        "adamw",
        lambda: gradtx.adamw(0.01, weight_decay=0.1),
        lambda ps: torch.optim.AdamW(ps, lr=0.01, weight_decay=0.1),
    ),
    (
        "rmsprop",
        lambda: gradtx.rmsprop(0.01, decay=0.99, eps=1e-8, eps_in_sqrt=False),
        lambda ps: torch.optim.RMSprop(ps, lr=0.01, alpha=0.99, eps=1e-8),
    ),
    (
        "rmsprop_centered_momentum",
        lambda: gradtx.rmsprop(0.01, decay=0.9, eps=1e-3, eps_in_sqrt=False, centered=True, momentum=0.5),
        lambda ps: torch.optim.RMSprop(ps, lr=0.01, alpha=0.9, eps=1e-3, centered=True, momentum=0.5),
    ),
    # torch's RAdam adds eps to sqrt(v) before the bias correction (and optax after it): eps=0 removes the
    # only difference.
    ("radam", lambda: gradtx.radam(0.01, eps=0.0), lambda ps: torch.optim.RAdam(ps, lr=0.01, eps=0.0)),
    (
        "adagrad",
        lambda: gradtx.chain(
            gradtx.scale_by_adagrad(initial_accumulator_value=0.0, eps=1e-10, eps_in_sqrt=False),
            gradtx.scale_by_learning_rate(0.1),
        ),
        lambda ps: torch.optim.Adagrad(ps, lr=0.1, eps=1e-10),
    ),
]


@pytest.mark.parametrize(("name", "build", "make_opt"), CASES, ids=[c[0] for c in CASES])
def test_matches_torch(name: str, build: Any, make_opt: Any) -> None:
    ours = _gradtx_traj(build())
    theirs = _torch_traj(make_opt)
    for k in ours:
        err = np.max(np.abs(ours[k] - theirs[k])) / np.max(np.abs(theirs[k]))
        assert err <= 1e-10, f"{name}: leaf {k}: relative difference to torch {err:.3e}"
        assert np.max(np.abs(theirs[k][-1] - _init()[k])) > 1e-3, f"{name}: torch barely moved"
