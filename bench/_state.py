"""Optimizer-state bytes per parameter, from the abstract state (nothing is allocated)."""

from __future__ import annotations

from typing import Any

import jax

from bench import _cases
from bench._bigleaf import LIB_MODULES
from bench._trees import transformer

# (row name, factory, note). Add new state layouts here.
STATE_CASES: tuple[tuple[str, _cases.Factory, str], ...] = (
    ("adamw", _cases.adamw, ""),
    ("adamw, bf16 moments", _cases.adamw_bf16_moments, "optax: bf16 mu only (no nu_dtype)"),
    ("adamw, 8-bit state", _cases.adamw_8bit_state, "gradtx.quantized_state; optax: none (float32 adamw)"),
    ("sgd momentum", _cases.sgd_momentum, ""),
    ("lion", _cases.lion, ""),
    ("adafactor", _cases.adafactor, "factored 2-D leaves"),
    ("muon", _cases.muon, "gradtx: embeddings and heads on AdamW (2 moments); optax: on Muon (1)"),
    ("schedule-free adamw", _cases.schedule_free_adamw, "z and nu"),
    ("sophia", _cases.sophia, "mu and the Hessian EMA"),
)


def _bytes(tree: Any) -> int:
    return int(sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(tree)))


def run(quick: bool) -> list[dict[str, Any]]:
    """Bytes of state per parameter on the transformer tree (it has 1-D and 2-D leaves)."""
    params = jax.eval_shape(lambda: transformer(2 if quick else 16, 128))
    n = sum(x.size for x in jax.tree.leaves(params))
    results = []
    for name, factory, note in STATE_CASES:
        per_param = {lib: _bytes(jax.eval_shape(factory(mod).init, params)) / n for lib, mod in LIB_MODULES.items()}
        results.append({"case": name, "bytes_per_param": per_param, "note": note})
        g, o = per_param["gradtx"], per_param["optax"]
        print(f"  state {name:<22} gradtx {g:.2f}, optax {o:.2f} B/param", flush=True)
    return results
