"""Every transform of ``gradtx.transforms`` checks the params at ``init`` the same way.

The transforms are found by introspection of the public namespace (those defined in
``gradtx/transforms/``), so a new one is checked as it arrives: integer params raise
``TypeError`` at ``init`` naming the path of the integer leaf, and floating params are accepted.
"""

from __future__ import annotations

import inspect
import re
from typing import Any

import jax.numpy as jnp
import pytest

import gradtx
import gradtx.transforms

# Values for the required arguments, so that each constructor can be called at all.
REQUIRED: dict[str, Any] = {
    "clipping": 0.1,
    "eta": 0.01,
    "gamma": 0.55,
    "max_delta": 1.0,
    "threshold": 1.0,
    "max_norm": 1.0,
    "decay": 0.9,
    "step_size": 0.1,
    "learning_rate": 0.1,
    "step_size_fn": lambda count: 0.1,
    "max_backtracking_steps": 5,
    "max_linesearch_steps": 5,
}

# Public functions of gradtx.transforms that do not build a transform from hyperparameters.
NOT_TRANSFORMS = {"per_example_global_norm_clip", "per_example_layer_norm_clip", "value_and_grad_from_state"}


def _transform_names() -> list[str]:
    names = []
    for name in sorted(dir(gradtx.transforms)):
        obj = getattr(gradtx.transforms, name)
        if name.startswith("_") or inspect.isclass(obj) or not inspect.isfunction(obj) or name in NOT_TRANSFORMS:
            continue
        if not obj.__module__.startswith("gradtx.transforms."):
            continue  # a wrapper re-exported for optax's namespace (it checks through its inner transform)
        names.append(name)
    return names


NAMES = _transform_names()


def _build(name: str) -> gradtx.GradientTransformation:
    fn = getattr(gradtx.transforms, name)
    kwargs = {
        p.name: REQUIRED[p.name]
        for p in inspect.signature(fn).parameters.values()
        if p.name in REQUIRED and (p.default is inspect.Parameter.empty or p.default is None)
    }
    return fn(**kwargs)


def test_the_namespace_is_found() -> None:
    scale_by = [n for n in NAMES if n.startswith("scale_by_")]
    assert len(scale_by) >= 25 and {"scale_by_adam", "scale_by_amsgrad", "clip", "ema"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_integer_params_raise_at_init_naming_the_path(name: str) -> None:
    tx = _build(name)
    params = {"enc": {"kernel": jnp.ones((2, 3), jnp.float32)}, "ids": jnp.arange(3, dtype=jnp.int32)}
    with pytest.raises(TypeError, match=re.escape("params['ids'] is int32[3]")):
        tx.init(params)
    nested = {"enc": {"kernel": jnp.ones((2, 3), jnp.float32), "step": jnp.zeros((), jnp.int32)}}
    with pytest.raises(TypeError, match=re.escape("['enc']['step']")):
        tx.init(nested)


@pytest.mark.parametrize("name", NAMES)
def test_float_params_are_accepted_at_init(name: str) -> None:
    tx = _build(name)
    tx.init({"enc": {"kernel": jnp.ones((2, 3), jnp.float32)}, "b": jnp.zeros(3, jnp.float64)})


def test_the_example_of_the_issue() -> None:
    with pytest.raises(TypeError, match=re.escape("params['w']")):
        gradtx.scale_by_amsgrad().init({"w": jnp.arange(3)})
    with pytest.raises(TypeError, match=re.escape("params['w']")):
        gradtx.scale_by_adam().init({"w": jnp.arange(3)})
