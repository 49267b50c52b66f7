"""The optimizers compared, built the same way from gradtx and from optax.

Each factory takes the library module (``gradtx`` or ``optax``: gradtx follows optax's
names and defaults) and returns a transform; both sides get identical hyperparameters.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax.numpy as jnp

Factory = Callable[[Any], Any]

LR = 1e-3


def adamw(lib: Any) -> Any:
    return lib.adamw(LR, weight_decay=1e-4)


def clip_adamw(lib: Any) -> Any:
    return lib.chain(lib.clip_by_global_norm(1.0), lib.adamw(LR, weight_decay=1e-4))


def sgd_momentum(lib: Any) -> Any:
    return lib.sgd(LR, momentum=0.9)


def lion(lib: Any) -> Any:
    return lib.lion(LR, weight_decay=1e-4)


def adafactor(lib: Any) -> Any:
    return lib.adafactor(LR)


def lamb(lib: Any) -> Any:
    return lib.lamb(LR, weight_decay=1e-4)


def adamw_bf16_moments(lib: Any) -> Any:
    """AdamW with bfloat16 moments; optax has no ``nu_dtype``, so its ``nu`` stays float32."""
    if lib.__name__ == "gradtx":
        return lib.chain(
            lib.scale_by_adam(mu_dtype=jnp.bfloat16, nu_dtype=jnp.bfloat16),
            lib.add_decayed_weights(1e-4),
            lib.scale_by_learning_rate(LR),
        )
    return lib.adamw(LR, weight_decay=1e-4, mu_dtype=jnp.bfloat16)


def adamw_8bit_state(lib: Any) -> Any:
    """AdamW with its moments in 8-bit blocks (``gradtx.quantized_state``); optax has no such wrapper: float32 AdamW."""
    if lib.__name__ == "gradtx":
        return lib.quantized_state(adamw(lib))
    return adamw(lib)


def flat_adamw(lib: Any) -> Any:
    """AdamW inside ``flatten``: the state as one buffer (measured, not in the default run)."""
    return lib.flatten(adamw(lib))


def stacked_adamw(lib: Any) -> Any:
    """AdamW on the leaves stacked by shape and dtype (``gradtx.stacked``); optax has no such wrapper: its AdamW."""
    if lib.__name__ == "gradtx":
        return lib.stacked(adamw(lib))
    return adamw(lib)


def stacked_clip_adamw(lib: Any) -> Any:
    """clip + AdamW inside ``gradtx.stacked`` (exact: a global norm); optax: the same chain unstacked."""
    if lib.__name__ == "gradtx":
        return lib.stacked(clip_adamw(lib))
    return clip_adamw(lib)


def stacked_lamb(lib: Any) -> Any:
    """LAMB in ``gradtx.stacked(..., per_leaf=True)`` (exact: trust ratios per leaf); optax: its LAMB."""
    if lib.__name__ == "gradtx":
        return lib.stacked(lamb(lib), per_leaf=True)
    return lamb(lib)


def muon(lib: Any) -> Any:
    """Muon on the hidden matrices, AdamW on the rest (gradtx keeps embeddings and heads on AdamW; optax does not)."""
    return lib.contrib.muon(0.02, adam_learning_rate=LR)


def schedule_free_adamw(lib: Any) -> Any:
    return lib.contrib.schedule_free_adamw(LR, warmup_steps=100, weight_decay=1e-4)


def sophia(lib: Any) -> Any:
    return lib.contrib.sophia(LR)
