"""Argument checks shared by the constructors."""

import jax
import jax.numpy as jnp
import pytest

from gradtx import _checks


def test_in_range_messages_name_argument_value_and_range():
    with pytest.raises(ValueError, match=r"adam: `b1` must be in \[0.0, 1.0\), got 1.0"):
        _checks.check_in_range("b1", 1.0, 0.0, 1.0, where="adam", high_inclusive=False)
    with pytest.raises(ValueError, match=r"`eps` must be in \[0.0, inf\)"):
        _checks.check_non_negative("eps", -1e-8, where="adam")
    with pytest.raises(ValueError, match=r"\(0.0, inf\)"):
        _checks.check_positive("decay_steps", 0, where="cosine_decay_schedule")
    with pytest.raises(ValueError, match="must not be NaN"):
        _checks.check_positive("lr", float("nan"), where="sgd")
    _checks.check_in_range("b1", jnp.float32(0.5), 0.0, 1.0, where="adam")


def test_scalar_type_errors():
    with pytest.raises(TypeError, match="`b1`"):
        _checks.check_in_range("b1", "0.9", 0.0, 1.0, where="adam")
    with pytest.raises(TypeError, match="shape"):
        _checks.check_in_range("b1", jnp.ones(2), 0.0, 1.0, where="adam")


def test_traced_values_and_schedules_pass():
    _checks.check_scalar_or_schedule("learning_rate", lambda step: -1.0, where="sgd", low=0.0)

    @jax.jit
    def f(x):
        _checks.check_positive("lr", x, where="sgd")
        return x

    f(jnp.float32(-1.0))  # traced: cannot be checked in Python, must not fail


def test_check_int_and_dtype_and_callable():
    with pytest.raises(TypeError, match="`every_k_schedule` must be an int"):
        _checks.check_int("every_k_schedule", 1.5, where="MultiSteps")
    with pytest.raises(TypeError, match="must be an int"):
        _checks.check_int("k", True, where="w")
    with pytest.raises(ValueError, match=r"in \[1, inf\], got 0"):
        _checks.check_int("k", 0, where="w", low=1)
    assert _checks.check_dtype("mu_dtype", "bfloat16", where="adam") == jnp.bfloat16
    assert _checks.check_dtype("mu_dtype", None, where="adam") is None
    with pytest.raises(TypeError, match="floating dtype"):
        _checks.check_dtype("mu_dtype", jnp.int32, where="adam")
    with pytest.raises(TypeError, match="`mu_dtype` must be a dtype"):
        _checks.check_dtype("mu_dtype", "notadtype", where="adam")
    with pytest.raises(TypeError, match="`fn` must be callable"):
        _checks.check_callable("fn", 3, where="w")


def test_evaluate_schedule_must_be_scalar():
    assert float(_checks.evaluate_scalar_or_schedule(lambda c: c * 2.0, 3, name="lr", where="w")) == 6.0
    assert _checks.evaluate_scalar_or_schedule(0.5, 3, name="lr", where="w") == 0.5
    with pytest.raises(ValueError, match="schedule for `learning_rate` must return a scalar"):
        _checks.evaluate_scalar_or_schedule(lambda c: jnp.ones(2), 0, name="learning_rate", where="sgd")
