"""The modern optimizers live in ``gradtx.contrib`` only, as optax keeps them in ``optax.contrib``."""

from __future__ import annotations

import inspect

import optax
import pytest

import gradtx

NAMES = [
    "muon",
    "scale_by_muon",
    "MuonDimensionNumbers",
    "MuonState",
    "schedule_free",
    "schedule_free_adamw",
    "schedule_free_sgd",
    "schedule_free_eval_params",
    "ScheduleFreeState",
    "sophia",
    "SophiaState",
    "hutchinson_estimator_diag_hessian",
    "HutchinsonState",
]


@pytest.mark.parametrize("name", NAMES)
def test_in_contrib_only_with_optax_parameters_in_order(name: str) -> None:
    ours, theirs = getattr(gradtx.contrib, name), getattr(optax.contrib, name)
    assert not hasattr(gradtx, name), f"gradtx.{name} should not be flat (optax keeps it in contrib)"
    if isinstance(theirs, type):
        assert ours._fields == theirs._fields
    else:
        ours_p, theirs_p = inspect.signature(ours).parameters, inspect.signature(theirs).parameters
        assert list(ours_p) == list(theirs_p)
        for arg, p in theirs_p.items():
            assert ours_p[arg].kind == p.kind, arg
            # Plain defaults are optax's; sophia's `hessian_diagonal_fn` is None for Hutchinson's (an object in optax).
            if type(p.default) in (int, float, str, tuple, type(None)):
                assert ours_p[arg].default == p.default, arg
