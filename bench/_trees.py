"""Many leaves: trace, compile and step time, HLO size and peak memory against optax.

Each small leaf is its own loop in XLA and its own piece of the compiled program, so a
model with thousands of tensors pays mostly at compile time. Every round builds a fresh
transform and a fresh ``jax.jit`` so that no cache carries over between measurements.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from bench import _cases
from bench._bigleaf import LIB_MODULES
from bench._timing import block, lib_order, median, time_calls


def small_leaves(n: int) -> dict[str, jax.Array]:
    """``n`` small leaves of a dozen different shapes (vectors and small matrices)."""
    tree = {}
    for i in range(n):
        shape = (64 + 8 * (i % 5),) if i % 4 == 0 else (16 + i % 7, 32)
        tree[f"p{i:05d}"] = jnp.full(shape, 0.5, jnp.float32)
    return tree


def transformer(layers: int, width: int) -> dict[str, Any]:
    """A nested tree shaped like a small transformer: 12 leaves a layer, plus embeddings."""
    hidden = 4 * width

    def dense(n_in: int, n_out: int) -> dict[str, jax.Array]:
        return {"kernel": jnp.full((n_in, n_out), 0.02, jnp.float32), "bias": jnp.zeros((n_out,), jnp.float32)}

    def norm() -> dict[str, jax.Array]:
        return {"scale": jnp.ones((width,), jnp.float32), "bias": jnp.zeros((width,), jnp.float32)}

    tree: dict[str, Any] = {"embed": {"embedding": jnp.full((512, width), 0.02, jnp.float32)}}
    for i in range(layers):
        tree[f"layer_{i:02d}"] = {
            "ln_1": norm(),
            "attn": {"qkv": dense(width, 3 * width), "out": dense(width, width)},
            "ln_2": norm(),
            "mlp": {"fc_in": dense(width, hidden), "fc_out": dense(hidden, width)},
        }
    tree["ln_f"] = norm()
    return tree


TREES: dict[str, Callable[[bool], Any]] = {
    "2000 small leaves": lambda quick: small_leaves(8 if quick else 2000),
    "transformer": lambda quick: transformer(1 if quick else 16, 16 if quick else 128),
}

CASES: tuple[tuple[str, str], ...] = (
    ("2000 small leaves", "adamw"),
    ("2000 small leaves", "stacked(adamw)"),
    ("transformer", "adamw"),
    ("transformer", "clip+adamw"),
    ("transformer", "stacked(clip+adamw)"),
    ("transformer", "lamb"),
    ("transformer", "stacked(lamb, per_leaf)"),
)

FACTORIES: dict[str, _cases.Factory] = {
    "adamw": _cases.adamw,
    "clip+adamw": _cases.clip_adamw,
    "flatten(adamw)": _cases.flat_adamw,
    "stacked(adamw)": _cases.stacked_adamw,
    "stacked(clip+adamw)": _cases.stacked_clip_adamw,
    "lamb": _cases.lamb,
    "stacked(lamb, per_leaf)": _cases.stacked_lamb,
}


def _hlo_counts(compiled: Any) -> tuple[int, int]:
    """Instructions in the optimized module (all computations), and fusions called from its entry."""
    text = compiled.as_text()
    instructions = sum(1 for line in text.splitlines() if " = " in line)
    entry = text[text.find("ENTRY") :]
    return instructions, entry.count(" fusion(")


def _peak_bytes(compiled: Any) -> float:
    """Live bytes at the step's peak: arguments, outputs not aliased to them, and temporaries."""
    stats = compiled.memory_analysis()
    if stats is None:
        return float("nan")  # not reported by this backend: no ratio, rather than a 1.00 from -1 / -1
    return int(
        stats.argument_size_in_bytes + stats.output_size_in_bytes - stats.alias_size_in_bytes + stats.temp_size_in_bytes
    )


def _measure_once(lib_name: str, factory: _cases.Factory, params: Any, steps: int) -> dict[str, float]:
    lib = LIB_MODULES[lib_name]
    tx = factory(lib)

    def step(params: Any, state: Any, grads: Any) -> tuple[Any, Any]:
        updates, state = tx.update(grads, state, params)
        return lib.apply_updates(params, updates), state

    return _measure_step(step, params, block(tx.init(params)), steps)


def _measure_floor(params: Any, steps: int) -> dict[str, float]:
    """The bare step ``p - lr * g`` per leaf: what any optimizer that writes these leaves costs at least."""

    def step(params: Any, state: Any, grads: Any) -> tuple[Any, Any]:
        return jax.tree.map(lambda p, g: p - jnp.float32(_cases.LR) * g, params, grads), state

    return _measure_step(step, params, (), steps)


def _measure_step(step: Callable[..., Any], params: Any, state: Any, steps: int) -> dict[str, float]:
    grads = jax.tree.map(lambda p: jnp.full_like(p, 1e-2), params)
    jitted = jax.jit(step, donate_argnums=(0, 1))
    # Wall and process CPU time: on a loaded machine the wall time mostly measures the wait
    # for a core, while the CPU time of tracing and compiling (one thread each) stays put.
    # A full garbage collection (~50 ms, growing with all the bench holds) would otherwise land
    # in a phase at random and move a 0.15 s trace by a third; each phase starts collected, and
    # a library still pays the collections its own work sets off.
    gc.collect()
    t0, c0 = time.perf_counter(), time.process_time()
    traced = jitted.trace(params, state, grads)
    t1, c1 = time.perf_counter(), time.process_time()
    gc.collect()
    u1, d1 = time.perf_counter(), time.process_time()
    lowered = traced.lower()
    t2, c2 = time.perf_counter(), time.process_time()
    gc.collect()
    u2, d2 = time.perf_counter(), time.process_time()
    compiled = lowered.compile()
    t3, c3 = time.perf_counter(), time.process_time()
    instructions, fusions = _hlo_counts(compiled)
    box = [block(jax.tree.map(jnp.copy, params)), state]
    box[0], box[1] = block(compiled(box[0], box[1], grads))

    def once() -> None:
        box[0], box[1] = block(compiled(box[0], box[1], grads))

    step_s = median(time_calls(once, steps))
    return {
        "trace_s": t1 - t0,
        "lower_s": t2 - u1,
        "compile_s": t3 - u2,
        "trace_compile_s": (t1 - t0) + (t2 - u1) + (t3 - u2),
        "trace_cpu_s": c1 - c0,
        "lower_cpu_s": c2 - d1,
        "compile_cpu_s": c3 - d2,
        "trace_compile_cpu_s": (c1 - c0) + (c2 - d1) + (c3 - d2),
        "step_s": step_s,
        "hlo_instructions": instructions,
        "fusions": fusions,
        "peak_bytes": _peak_bytes(compiled),
    }


METRICS = (
    "trace_s",
    "lower_s",
    "compile_s",
    "trace_compile_s",
    "trace_cpu_s",
    "lower_cpu_s",
    "compile_cpu_s",
    "trace_compile_cpu_s",
    "step_s",
    "hlo_instructions",
    "fusions",
    "peak_bytes",
)

# The floor's metrics over optax's: the fraction of optax's time that no optimizer can go below.
FLOOR_METRICS = ("trace_compile_cpu_s", "step_s")


def run(quick: bool, rounds: int, steps: int, cases: tuple[tuple[str, str], ...] = CASES) -> list[dict[str, Any]]:
    """Medians over ``rounds`` interleaved rounds of every metric, per case and library."""
    results = []
    for tree_name, opt_name in cases:
        params = block(TREES[tree_name](quick))
        leaves = jax.tree.leaves(params)
        samples: dict[str, list[dict[str, float]]] = {name: [] for name in (*LIB_MODULES, "floor")}
        for r in range(rounds):
            for name in lib_order(r):
                samples[name].append(_measure_once(name, FACTORIES[opt_name], params, steps))
            samples["floor"].append(_measure_floor(params, steps))
        med = {name: {k: median([s[k] for s in runs]) for k in METRICS} for name, runs in samples.items()}
        ratio = {k: med["gradtx"][k] / med["optax"][k] if med["optax"][k] else float("nan") for k in METRICS}
        floor = {k: med["floor"][k] / med["optax"][k] if med["optax"][k] else float("nan") for k in FLOOR_METRICS}
        results.append(
            {
                "tree": tree_name,
                "optimizer": opt_name,
                "n_leaves": len(leaves),
                "n_params": int(sum(x.size for x in leaves)),
                "gradtx": med["gradtx"],
                "optax": med["optax"],
                "ratio": ratio,
                "floor": med["floor"],
                "floor_ratio": floor,
            }
        )
        g, o = med["gradtx"], med["optax"]
        print(
            f"  {tree_name} ({len(leaves)} leaves) {opt_name}: CPU s "
            f"trace {g['trace_cpu_s']:.2f}/{o['trace_cpu_s']:.2f}, "
            f"trace+compile {g['trace_compile_cpu_s']:.2f}/{o['trace_compile_cpu_s']:.2f}, "
            f"step {g['step_s'] * 1e3:.2f}/{o['step_s'] * 1e3:.2f} ms (gradtx/optax); "
            f"floor {med['floor']['trace_compile_cpu_s']:.2f} s, {med['floor']['step_s'] * 1e3:.2f} ms",
            flush=True,
        )
    return results
