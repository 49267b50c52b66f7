"""``python -m bench --profile``: where the trace of a many-leaf step spends its time.

Prints ``cProfile``'s cumulative times of gradtx's own functions while tracing one adamw
step on the 2,000-leaf tree (after a first trace, so jax's own caches are warm). This is the
profile that located the trace-time costs described in ``bench/NOTES.md``.
"""

from __future__ import annotations

import cProfile
import io
import pstats
from typing import Any

import jax

import gradtx
from bench import _cases
from bench._trees import TREES


def run(quick: bool, lines: int = 25) -> str:
    """The profile as text (also printed)."""
    params = TREES["2000 small leaves"](quick)

    def traced_step() -> Any:
        tx = _cases.adamw(gradtx)
        state = tx.init(params)

        def step(p: Any, s: Any, g: Any) -> Any:
            updates, s = tx.update(g, s, p)
            return gradtx.apply_updates(p, updates), s

        return jax.jit(step).trace(params, state, params)

    traced_step()  # warms jax's caches of the jnp functions: the profile shows gradtx's part
    profiler = cProfile.Profile()
    profiler.enable()
    traced_step()
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats("gradtx/", lines)
    text = out.getvalue()
    print(text)
    return text
