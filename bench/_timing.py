"""Timing helpers: medians, interleaved lib order, and the copy bandwidth of this machine."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp

LIBS = ("gradtx", "optax")


def median(values: Sequence[float]) -> float:
    """The median, or NaN for no values (a case that failed in every round)."""
    return statistics.median(values) if values else float("nan")


def lib_order(round_index: int) -> tuple[str, ...]:
    """Alternates which library goes first, so warm caches and load drift favour neither."""
    return LIBS if round_index % 2 == 0 else LIBS[::-1]


def block(tree: Any) -> Any:
    """Waits for every array in ``tree``; returns it."""
    return jax.block_until_ready(tree)


def time_calls(call: Callable[[], Any], repeats: int) -> list[float]:
    """Seconds per call of ``call`` (which must block), one figure per repeat."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return times


def copy_bandwidth(n_floats: int, repeats: int) -> float:
    """Bytes per second of a jitted, donated ``x + 1`` over ``n_floats`` float32 values.

    It reads and writes each value once, like an optimizer step streaming its buffers, so
    ``2 * 4 * n_floats / time`` is the traffic rate a memory-bound step can hope for.
    """
    bump = jax.jit(lambda x: x + jnp.float32(1), donate_argnums=0)
    box = [block(bump(jnp.zeros((n_floats,), jnp.float32)))]

    def once() -> None:
        box[0] = block(bump(box[0]))

    once()
    seconds = median(time_calls(once, repeats))
    del box[0]
    return 2 * 4 * n_floats / seconds
