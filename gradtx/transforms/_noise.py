"""Annealed Gaussian gradient noise."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import _checks
from gradtx import _numerics as num
from gradtx._base import GradientTransformation, Params, Updates, safe_increment, zero_count
from gradtx._stack_view import check_typed_key

__all__ = ["AddNoiseState", "add_noise"]


class AddNoiseState(NamedTuple):
    """State of :func:`add_noise`: the step count (scalar int32) and the PRNG key."""

    count: jax.Array
    rng_key: jax.Array


def add_noise(eta: Any, gamma: Any, key: Any = None, *, seed: int | None = None) -> GradientTransformation:
    """Adds Gaussian noise with an annealed variance to the updates.

    .. math:: u_t = g_t + \\mathcal N\\!\\left(0, \\frac{\\eta}{t^\\gamma}\\right), \\qquad t = 1, 2, \\dots

    The noise is deterministic given the key: each step splits the stored key and draws one
    normal sample per leaf.

    Args:
      eta: base variance :math:`\\eta \\ge 0`.
      gamma: annealing exponent :math:`\\gamma \\ge 0`.
      key: a ``jax.random`` key or an int seed. ``None`` (with ``seed`` also ``None``) uses
        seed 0, silently (optax warns).
      seed: an int seed, kept for optax compatibility (optax deprecates it); only one of
        ``key`` and ``seed`` may be given.

    Returns:
      A :class:`~gradtx.GradientTransformation` with :class:`AddNoiseState`.

    Raises:
      ValueError: when ``eta`` or ``gamma`` is negative, or both ``key`` and ``seed`` are given.

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> grads = {"w": jnp.array([0.5, -0.5])}
      >>> tx = gradtx.add_noise(eta=0.01, gamma=0.55, key=0)
      >>> updates, state = tx.update(grads, tx.init(params), params)
      >>> updates["w"].shape, bool(jnp.all(updates["w"] != grads["w"]))
      ((2,), True)

    References:
      Neelakantan et al., "Adding Gradient Noise Improves Learning for Very Deep Networks",
      https://arxiv.org/abs/1511.06807, 2015.
    """
    where = "add_noise"
    _checks.check_non_negative("eta", eta, where=where)
    _checks.check_non_negative("gamma", gamma, where=where)
    if key is not None and seed is not None:
        raise ValueError(f"{where}: give only one of `key` and `seed`, got both.")
    if key is None:
        key = 0 if seed is None else seed
    if isinstance(key, (int, jnp.integer)) and not isinstance(key, bool):
        key = jax.random.key(int(key))
    elif isinstance(key, jax.Array) and jnp.ndim(key) == 0 and jnp.issubdtype(key.dtype, jnp.integer):
        # An integer seed held as an array (inject_hyperparams stores `key=0` so, maybe traced).
        key = jax.random.key(key)
    elif not isinstance(key, jax.Array):
        raise TypeError(f"{where}: `key` must be a jax.random key or an int, got {type(key).__name__}.")

    def init_fn(params: Params) -> AddNoiseState:
        num.check_init_params(params, where="add_noise")
        check_typed_key(params, key, where=where)
        # A copy, not the caller's key: donating the state then never frees the caller's array, and
        # under `jax.set_mesh` the copy is typed on that mesh as the updated key will be.
        return AddNoiseState(count=zero_count(), rng_key=jnp.array(key, copy=True))

    def update_fn(
        updates: Updates, state: AddNoiseState, params: Params | None = None, **extra_args: Any
    ) -> tuple[Updates, AddNoiseState]:
        del extra_args
        num.check_updates(updates, where=where, params=params)
        count = safe_increment(state.count)
        leaves, treedef = jax.tree.flatten(updates)
        rng_key, sample_key = jax.random.split(state.rng_key)
        keys = jax.random.split(sample_key, max(len(leaves), 1))

        def std_of(dtype: Any) -> jax.Array:
            rdt = num.real_dtype(dtype)
            t = count.astype(rdt)
            return jnp.sqrt(num.as_dtype(eta, rdt) / t ** num.as_dtype(gamma, rdt)).astype(dtype)

        std_for = num.per_dtype(std_of)  # once per dtype, not once per leaf, while tracing

        def leaf(g: jax.Array, k: jax.Array) -> jax.Array:
            dtype = num.compute_dtype(g.dtype)
            noise = jax.random.normal(k, g.shape, dtype)
            return (num.cast(g, dtype) + std_for(dtype) * noise).astype(g.dtype)

        noisy = [leaf(g, keys[i]) for i, g in enumerate(leaves)]
        return jax.tree.unflatten(treedef, noisy), AddNoiseState(count=count, rng_key=rng_key)

    return GradientTransformation(init_fn, update_fn)
