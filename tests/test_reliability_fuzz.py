"""Fuzzing: random chains of 1-4 gradtx transforms over random trees and dtypes.

Each example draws a chain from ~30 transforms with valid random hyperparameters, a random
parameter tree (``tests/support/trees.py``: float32/float64/bfloat16/float16 leaves of random shapes)
and gradients of moderate magnitude, runs two steps eagerly (no compilation per example)
and checks the contract: no crash, finite updates and state for finite inputs, updates with
the params' shapes and dtypes, and state shapes/dtypes unchanged by every step.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import gradtx
from tests.support.trees import float_trees
from tests.test_contract import shapes_dtypes

# Decay rates in a realistic range: with b1 = 0 AdaBelief's belief (g - m)^2 is exactly 0, and
# g / (sqrt(eps_root) + eps) ~ 1e8 g is correct arithmetic that no half-precision update can hold.
unit = st.floats(0.5, 0.99)
small = st.floats(1e-3, 0.5)
positive_eps = st.sampled_from([1e-8, 1e-6, 1e-3])


def _mask_by_rank(params: Any) -> Any:
    return jax.tree.map(lambda p: jnp.ndim(p) >= 1, params)


# name -> strategy of a zero-argument builder (hyperparameters drawn by hypothesis).
TRANSFORMS: dict[str, st.SearchStrategy[Any]] = {
    "scale_by_adam": st.builds(
        lambda b1, b2, eps, nesterov: lambda: gradtx.scale_by_adam(b1, b2, eps, nesterov=nesterov),
        unit,
        unit,
        positive_eps,
        st.booleans(),
    ),
    "scale_by_rms": st.builds(
        lambda decay, eps, centered: lambda: gradtx.scale_by_rms(decay, eps, centered=centered),
        unit,
        positive_eps,
        st.booleans(),
    ),
    "scale_by_momentum": st.builds(
        lambda mom, nesterov: lambda: gradtx.scale_by_momentum(mom, nesterov=nesterov), unit, st.booleans()
    ),
    "clip_by_global_norm": st.builds(lambda c: lambda: gradtx.clip_by_global_norm(c), st.floats(0.0, 10.0)),
    "clip": st.builds(lambda c: lambda: gradtx.clip(c), st.floats(0.0, 10.0)),
    "add_decayed_weights": st.builds(lambda wd: lambda: gradtx.add_decayed_weights(wd), st.floats(0.0, 0.1)),
    "scale_by_trust_ratio": st.builds(
        lambda min_norm, eps: lambda: gradtx.scale_by_trust_ratio(min_norm, 1.0, eps),
        st.floats(0.0, 0.1),
        st.floats(0.0, 1e-3),
    ),
    "scale_by_lion": st.builds(lambda b1, b2: lambda: gradtx.scale_by_lion(b1, b2), unit, unit),
    "scale_by_factored_rms": st.builds(
        lambda factored, dim: lambda: gradtx.scale_by_factored_rms(factored, min_dim_size_to_factor=dim),
        st.booleans(),
        st.integers(1, 4),
    ),
    "scale_by_sign": st.just(gradtx.scale_by_sign),
    "masked_adam": st.builds(
        lambda b1: lambda: gradtx.masked(gradtx.scale_by_adam(b1), _mask_by_rank),
        unit,
    ),
    "scale_by_belief": st.builds(lambda b1, b2: lambda: gradtx.scale_by_belief(b1, b2), unit, unit),
    "scale_by_yogi": st.builds(lambda b1, b2: lambda: gradtx.scale_by_yogi(b1, b2), unit, unit),
    "centralize": st.just(gradtx.centralize),
    "scale_by_adagrad": st.builds(lambda init: lambda: gradtx.scale_by_adagrad(init), st.floats(0.0, 1.0)),
    "scale_by_adamax": st.builds(lambda b1, b2: lambda: gradtx.scale_by_adamax(b1, b2), unit, unit),
    "scale_by_radam": st.builds(lambda b1, b2: lambda: gradtx.scale_by_radam(b1, b2), unit, unit),
    "scale_by_amsgrad": st.builds(lambda b1, b2: lambda: gradtx.scale_by_amsgrad(b1, b2), unit, unit),
    "scale_by_novograd": st.builds(lambda b1, b2: lambda: gradtx.scale_by_novograd(b1, b2), unit, unit),
    "scale_by_sm3": st.builds(lambda b1: lambda: gradtx.scale_by_sm3(b1), unit),
    "scale_by_adadelta": st.builds(lambda rho: lambda: gradtx.scale_by_adadelta(rho), unit),
    "scale_by_adan": st.builds(lambda b1, b2: lambda: gradtx.scale_by_adan(b1, b2), unit, unit),
    "scale_by_rprop": st.builds(lambda lr: lambda: gradtx.scale_by_rprop(lr), small),
    "normalize_by_update_norm": st.builds(lambda s: lambda: gradtx.normalize_by_update_norm(s), small),
    "scale_by_param_block_rms": st.just(gradtx.scale_by_param_block_rms),
    "scale_by_param_block_norm": st.just(gradtx.scale_by_param_block_norm),
    "ema": st.builds(lambda decay, debias: lambda: gradtx.ema(decay, debias), unit, st.booleans()),
    "scale": st.builds(lambda s: lambda: gradtx.scale(s), st.floats(-1.0, 1.0)),
    "scale_by_optimistic_gradient": st.builds(
        lambda a, b: lambda: gradtx.scale_by_optimistic_gradient(a, b), small, small
    ),
    "adaptive_grad_clip": st.builds(lambda c: lambda: gradtx.adaptive_grad_clip(c), small),
    "add_noise": st.builds(lambda eta, seed: lambda: gradtx.add_noise(eta, 0.55, seed), small, st.integers(0, 99)),
}

chains = st.lists(st.sampled_from(sorted(TRANSFORMS)), min_size=1, max_size=4).flatmap(
    lambda names: st.tuples(st.just(names), st.tuples(*[TRANSFORMS[n] for n in names]))
)


def all_finite(tree: Any) -> bool:
    """Every float leaf finite; PRNG keys (``add_noise``'s state) and integers are skipped."""
    floats = [x for x in jax.tree.leaves(tree) if jnp.issubdtype(x.dtype, jnp.inexact)]
    # In NumPy: one host copy per leaf instead of three dispatched jax ops.
    return all(np.isfinite(np.asarray(x).astype(np.float64)).all() for x in floats)


# A fixed set of ranks 0-3 (the factored transforms need rank >= 2): eagerly, every new
# shape/dtype pair compiles each primitive again, which would dominate the runtime.
LEAF_SHAPES = st.sampled_from([(), (3,), (1, 4), (4, 3), (2, 3, 4)])


def _grads_like(params: Any, seed: int) -> Any:
    rng = np.random.default_rng(seed)
    return jax.tree.map(lambda p: jnp.asarray(rng.normal(size=jnp.shape(p)), p.dtype), params)


@settings(max_examples=200)
@given(chain=chains, params=float_trees(leaf_shapes=LEAF_SHAPES), seed=st.integers(0, 2**16))
def test_random_chains_keep_the_contract(chain: Any, params: Any, seed: int) -> None:
    names, builders = chain
    tx = gradtx.chain(*[build() for build in builders])
    state = tx.init(params)
    layout, param_layout = shapes_dtypes(state), shapes_dtypes(params)
    for i in range(2):
        grads = _grads_like(params, seed + i)
        updates, state = tx.update(grads, state, params)
        assert jax.tree.structure(updates) == jax.tree.structure(params), names
        assert shapes_dtypes(updates) == shapes_dtypes(params), names
        assert shapes_dtypes(state) == layout, f"{names}: state changed shape/dtype at step {i}"
        assert all_finite(updates) and all_finite(state), f"{names}: non-finite at step {i}"
        params = gradtx.apply_updates(params, updates)
        assert shapes_dtypes(params) == param_layout, names
