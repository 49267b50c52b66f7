"""Layer-wise learning-rate decay (LLRD): lower rates for layers closer to the input.

The fine-tuning recipe of ELECTRA / BEiT: with ``L`` layers and decay ``d``, a parameter at
depth ``l`` (0 = embeddings, ``L`` = the head) trains at ``learning_rate * d ** (L - l)``.
A depth function over parameter paths assigns each leaf its depth; the helpers here turn
that into labels and per-group scales for :func:`gradtx.partition`.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

import jax
import numpy as np

from gradtx import _checks
from gradtx._base import GradientTransformation, Params, ScalarOrSchedule
from gradtx._partition import partition

__all__ = ["layerwise_decay_groups", "layerwise_lr_decay", "param_path_name"]


def param_path_name(path: Any) -> str:
    """A key path as a ``/``-joined name, e.g. ``encoder/layer_3/kernel`` (what depth functions see).

    Examples:
      >>> import jax, jax.numpy as jnp, gradtx
      >>> params = {"encoder": {"layer_0": {"kernel": jnp.ones(2)}}, "head": [jnp.ones(1)]}
      >>> [gradtx.param_path_name(path) for path, _ in jax.tree_util.tree_leaves_with_path(params)]
      ['encoder/layer_0/kernel', 'head/0']
    """
    parts = []
    for key in path:
        for attr in ("key", "name", "idx"):
            if hasattr(key, attr):
                parts.append(str(getattr(key, attr)))
                break
        else:
            parts.append(str(key))
    return "/".join(parts)


def _depths(params: Params, depth_fn: Callable[[str], int], num_layers: int, where: str) -> Any:
    def depth_of(path: Any, _: Any) -> int:
        name = param_path_name(path)
        depth = depth_fn(name)
        if (
            isinstance(depth, (bool, np.bool_))
            or not isinstance(depth, (int, np.integer))
            or not 0 <= depth <= num_layers
        ):
            raise ValueError(
                f"{where}: `depth_fn` must return an int in [0, num_layers={num_layers}], got {depth!r} for {name!r}."
            )
        return int(depth)

    return jax.tree_util.tree_map_with_path(depth_of, params)


def layerwise_decay_groups(
    params: Params, depth_fn: Callable[[str], int], *, num_layers: int, decay: float
) -> tuple[Any, dict[int, float]]:
    """Labels and per-group learning-rate scales for layer-wise learning-rate decay.

    ``scale[l] = decay ** (num_layers - l)`` for ``l = 0..num_layers``.

    Args:
      params: the params (or abstract params); only their paths are read.
      depth_fn: ``name -> depth``; ``name`` is the leaf's path joined by ``/`` (see
        :func:`param_path_name`), the depth an int in ``[0, num_layers]``.
      num_layers: the depth of the top (the head, which trains at the full rate).
      decay: the per-layer factor in ``(0, 1]``.

    Returns:
      ``(labels, scales)``: a tree of int depths with the params' structure (usable as
      ``param_labels``), and ``{depth: scale}`` for every depth ``0..num_layers``.

    Raises:
      ValueError: on ``num_layers < 0``, ``decay`` outside ``(0, 1]``, or a depth out of range
        (naming the parameter).

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> params = {"embed": jnp.ones(2), "layer_0": jnp.ones(2), "layer_1": jnp.ones(2), "head": jnp.ones(2)}
      >>> depth = {"embed": 0, "layer_0": 1, "layer_1": 2, "head": 3}
      >>> labels, scales = gradtx.layerwise_decay_groups(params, lambda name: depth[name], num_layers=3, decay=0.5)
      >>> labels
      {'embed': 0, 'head': 3, 'layer_0': 1, 'layer_1': 2}
      >>> scales  # decay ** (num_layers - depth)
      {0: 0.125, 1: 0.25, 2: 0.5, 3: 1.0}

    References:
      Clark et al., "ELECTRA: Pre-training Text Encoders as Discriminators Rather Than
      Generators", https://arxiv.org/abs/2003.10555, 2020.
    """
    where = "layerwise_decay_groups"
    _checks.check_int("num_layers", num_layers, where=where, low=0)
    _checks.check_in_range("decay", decay, 0.0, 1.0, where=where, low_inclusive=False)
    _checks.check_callable("depth_fn", depth_fn, where=where)
    labels = _depths(params, depth_fn, num_layers, where)
    return labels, _scales(decay, num_layers)


def _scales(decay: Any, num_layers: int) -> dict[int, Any]:
    """``{depth: decay ** (num_layers - depth)}``; a jax scalar stays one (traced in a sweep over
    decays), a Python or NumPy number becomes a float."""
    base = decay if isinstance(decay, jax.Array) else float(decay)
    return {depth: base ** (num_layers - depth) for depth in range(num_layers + 1)}


def layerwise_lr_decay(
    optimizer_fn: Callable[[ScalarOrSchedule], GradientTransformation],
    learning_rate: ScalarOrSchedule,
    depth_fn: Callable[[str], int],
    *,
    num_layers: int,
    decay: float,
) -> GradientTransformation:
    """An optimizer whose learning rate shrinks by ``decay`` per layer below the top.

    A parameter at depth ``l`` is stepped by ``optimizer_fn(learning_rate * decay ** (num_layers - l))``;
    each depth is one group of :func:`gradtx.partition` (its own optimizer state).
    A schedule ``learning_rate`` is scaled pointwise.

    Args:
      optimizer_fn: builds the optimizer from a learning rate, e.g.
        ``lambda lr: gradtx.adamw(lr, weight_decay=0.01)``.
      learning_rate: the top layer's rate (number or schedule).
      depth_fn: ``name -> depth`` over ``/``-joined parameter paths (see
        :func:`layerwise_decay_groups`).
      num_layers: the top depth.
      decay: the per-layer factor in ``(0, 1]``.

    Returns:
      A :class:`GradientTransformation` with :class:`~gradtx.PartitionState` keyed by depth.

    Raises:
      ValueError: as :func:`layerwise_decay_groups` (depth errors when ``init`` first sees the params).

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> params = {"embed": jnp.ones(2), "layer_0": jnp.ones(2), "head": jnp.ones(2)}
      >>> depth = lambda name: {"embed": 0, "layer_0": 1, "head": 2}[name.split("/")[0]]
      >>> tx = gradtx.layerwise_lr_decay(gradtx.sgd, 1.0, depth, num_layers=2, decay=0.5)
      >>> updates, _ = tx.update({k: jnp.ones(2) for k in params}, tx.init(params), params)
      >>> updates["embed"]
      Array([-0.25, -0.25], dtype=float32)
    """
    where = "layerwise_lr_decay"
    _checks.check_int("num_layers", num_layers, where=where, low=0)
    _checks.check_in_range("decay", decay, 0.0, 1.0, where=where, low_inclusive=False)
    _checks.check_callable("depth_fn", depth_fn, where=where)
    _checks.check_callable("optimizer_fn", optimizer_fn, where=where)
    _checks.check_scalar_or_schedule("learning_rate", learning_rate, where=where)
    scales = _scales(decay, num_layers)

    def scaled(scale: Any) -> ScalarOrSchedule:
        lr: Any = learning_rate
        if callable(lr):
            schedule: Callable[[Any], Any] = lr
            return lambda count: schedule(count) * scale
        return lr * scale

    transforms: dict[Hashable, GradientTransformation] = {}
    for depth, scale in scales.items():
        transforms[depth] = optimizer_fn(scaled(scale))
    return partition(transforms, lambda tree: _depths(tree, depth_fn, num_layers, where))
