"""optax's namespaces under gradtx: every name gradtx has resolves in the namespace of the same name.

Walks ``optax.transforms``, ``optax.schedules``, ``optax.tree``, ``optax.projections`` and
``optax.contrib``; each name there must resolve under ``gradtx.<namespace>`` (as the same object
as gradtx's flat name, where there is one), or be listed in ``LACKS`` with the reason.
"""

from __future__ import annotations

import types

import optax
import pytest

import gradtx

_CONTRIB_LATER = "an optax.contrib optimizer gradtx does not have yet (the modern-optimizers work adds them)"

_CONTRIB_HAS = (
    "reduce_on_plateau",
    "ReduceLROnPlateauState",
    "muon",
    "scale_by_muon",
    "MuonDimensionNumbers",
    "MuonState",
    "schedule_free",
    "schedule_free_adamw",
    "schedule_free_eval_params",
    "schedule_free_sgd",
    "ScheduleFreeState",
    "sophia",
    "SophiaState",
    "HutchinsonState",
    "hutchinson_estimator_diag_hessian",
)

LACKS: dict[str, dict[str, str]] = {
    "transforms": {
        "unitwise_clip": "a per-leaf helper of adaptive_grad_clip, not a transform; use optax's",
        "unitwise_norm": "a per-leaf helper of adaptive_grad_clip, not a transform; use optax's",
    },
    "schedules": {
        "StatefulSchedule": "a typing Protocol; gradtx's stateful schedules duck-type it (WrappedSchedule)",
    },
    "tree": {},
    "projections": {},
    "contrib": {
        name: _CONTRIB_LATER for name in dir(optax.contrib) if not name.startswith("_") and name not in _CONTRIB_HAS
    },
}


def _public(module: types.ModuleType) -> list[str]:
    return sorted(
        n for n in dir(module) if not n.startswith("_") and not isinstance(getattr(module, n), types.ModuleType)
    )


@pytest.mark.parametrize("namespace", sorted(LACKS))
def test_optax_namespace_names_resolve_or_are_listed(namespace: str) -> None:
    ours = getattr(gradtx, namespace)
    theirs = getattr(optax, namespace)
    missing = [n for n in _public(theirs) if not hasattr(ours, n)]
    assert sorted(missing) == sorted(LACKS[namespace]), (
        f"gradtx.{namespace} lacks {sorted(set(missing) - set(LACKS[namespace]))}; "
        f"listed but present: {sorted(set(LACKS[namespace]) - set(missing))}"
    )
    for name in _public(theirs):
        if hasattr(ours, name) and name in vars(gradtx) and namespace != "tree":
            assert getattr(ours, name) is getattr(gradtx, name), f"gradtx.{namespace}.{name} is not gradtx.{name}"


def test_losses_and_friends_point_to_optax() -> None:
    for name, where in [
        ("losses", "optax.losses"),
        ("second_order", "optax.second_order"),
        ("softmax_cross_entropy", "optax.losses.softmax_cross_entropy"),
    ]:
        with pytest.raises(AttributeError, match=where.replace(".", r"\.")):
            getattr(gradtx, name)
    with pytest.raises(AttributeError, match="has no attribute 'no_such_name'"):
        gradtx.no_such_name
    assert not hasattr(gradtx, "huber_loss")


def test_optax_losses_work_with_gradtx_unchanged() -> None:
    import jax
    import jax.numpy as jnp

    params = {"w": jnp.zeros((3, 2), jnp.float64)}
    x, labels = jnp.ones((4, 3), jnp.float64), jnp.array([0, 1, 1, 0])

    def loss(p):
        logits = x @ p["w"]
        return optax.losses.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

    tx = gradtx.adam(0.1)
    state = tx.init(params)
    with jax.numpy_dtype_promotion("standard"):
        value, grads = jax.value_and_grad(loss)(params)
    updates, state = tx.update(grads, state, params)
    assert float(value) == pytest.approx(jnp.log(2.0))
    assert jax.tree.structure(gradtx.apply_updates(params, updates)) == jax.tree.structure(params)
