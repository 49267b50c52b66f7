"""Names that exist only so that optax code runs unchanged under ``import gradtx as optax``.

Each is a thin alias or wrapper of a gradtx concept that has its own, primary name:

- ``GradientTransformationExtraArgs`` *is* :class:`gradtx.GradientTransformation`: gradtx has one
  transform type, whose ``update`` always accepts ``**extra_args``.
- :func:`with_extra_args_support` returns a gradtx transform unchanged (a foreign one whose
  ``update`` lacks ``**extra_args`` is wrapped once, as :func:`gradtx.chain` does).
- :func:`as_optax` goes the other way: a gradtx transform as optax's extra-arguments type, so
  that optax's combinators pass it ``value=`` and the like (they drop them for other types).
- :func:`trace` is :func:`gradtx.scale_by_momentum` under optax's older name and argument names;
  ``TraceState`` is its state type.
- :func:`scale_by_rss` is :func:`gradtx.scale_by_adagrad` (optax's name for Adagrad's scaling);
  ``ScaleByRssState`` is ``ScaleByAdagradState``.
- :func:`scale_by_stddev` is :func:`gradtx.scale_by_rms` with ``centered=True``.
- :func:`multi_transform` is :func:`gradtx.partition` and ``MultiTransformState`` is
  ``PartitionState``: optax 0.2.8 keeps both names.
- ``tree_utils`` is optax's older module of tree utilities: each ``tree_utils.tree_X`` is
  ``gradtx.tree.X`` (``tree_utils.tree_map_params`` is ``gradtx.tree.map_params``).
- :func:`outside_scope_error` explains the optax names gradtx leaves out on purpose (losses,
  assignment, perturbations, second-order utilities): ``gradtx.losses`` and
  ``gradtx.softmax_cross_entropy`` raise an ``AttributeError`` that points to ``optax.losses``.
- ``TransformInitFn`` is :class:`gradtx.InitFn`; ``TransformUpdateFn`` and
  ``TransformUpdateExtraArgsFn`` are :class:`gradtx.UpdateFn` (every gradtx ``update`` takes
  ``**extra_args``): optax's names of the two typing protocols, for annotations.
- ``AdaptiveGradClipState``, ``NonNegativeParamsState``, ``AddDecayedWeightsState``,
  ``ClipState``, ``ClipByGlobalNormState``, ``ScaleState`` and ``ScaleByTrustRatioState`` are
  :class:`gradtx.EmptyState`: the states of stateless transforms, named as optax names them.
"""

from __future__ import annotations

import sys
import types
from typing import Any

from gradtx import _checks
from gradtx import tree as _tree_namespace
from gradtx._base import EmptyState, GradientTransformation, InitFn, UpdateFn, as_gradient_transformation
from gradtx._partition import PartitionState, partition
from gradtx.transforms._momentum import ScaleByMomentumState, scale_by_momentum
from gradtx.transforms._rms import ScaleByAdagradState, scale_by_adagrad, scale_by_rms

__all__ = [
    "AdaptiveGradClipState",
    "AddDecayedWeightsState",
    "ClipByGlobalNormState",
    "ClipState",
    "GradientTransformationExtraArgs",
    "MultiTransformState",
    "NonNegativeParamsState",
    "ScaleByRssState",
    "ScaleByTrustRatioState",
    "ScaleState",
    "TraceState",
    "TransformInitFn",
    "TransformUpdateExtraArgsFn",
    "TransformUpdateFn",
    "as_optax",
    "multi_transform",
    "outside_scope_error",
    "scale_by_rss",
    "scale_by_stddev",
    "trace",
    "tree_utils",
    "with_extra_args_support",
]

TransformInitFn = InitFn
"""optax's name of :class:`gradtx.InitFn`."""
TransformUpdateFn = UpdateFn
"""optax's name of :class:`gradtx.UpdateFn`."""
TransformUpdateExtraArgsFn = UpdateFn
"""optax's name of :class:`gradtx.UpdateFn` with ``**extra_args``: every gradtx ``update`` takes them."""

GradientTransformationExtraArgs = GradientTransformation
"""optax's transform type with extra-argument support: the same type as :class:`gradtx.GradientTransformation`."""

TraceState = ScaleByMomentumState
"""optax's name for the state of :func:`trace`: the same type as ``ScaleByMomentumState``."""

ScaleByRssState = ScaleByAdagradState
"""optax's name for the state of :func:`scale_by_rss`: the same type as ``ScaleByAdagradState``."""

MultiTransformState = PartitionState
"""optax's older name for :class:`gradtx.PartitionState` (the same class)."""

multi_transform = partition
"""optax's older name for :func:`gradtx.partition` (the same function)."""

AdaptiveGradClipState = EmptyState
"""The state of :func:`gradtx.adaptive_grad_clip`: :class:`gradtx.EmptyState`."""

NonNegativeParamsState = EmptyState
"""The state of :func:`gradtx.keep_params_nonnegative`: :class:`gradtx.EmptyState`."""

AddDecayedWeightsState = EmptyState
"""The state of :func:`gradtx.add_decayed_weights` with a constant decay: :class:`gradtx.EmptyState`."""

ClipState = EmptyState
"""The state of :func:`gradtx.clip`: :class:`gradtx.EmptyState`."""

ClipByGlobalNormState = EmptyState
"""The state of :func:`gradtx.clip_by_global_norm`: :class:`gradtx.EmptyState`."""

ScaleState = EmptyState
"""The state of :func:`gradtx.scale`: :class:`gradtx.EmptyState`."""

ScaleByTrustRatioState = EmptyState
"""The state of :func:`gradtx.scale_by_trust_ratio`: :class:`gradtx.EmptyState`."""


def with_extra_args_support(tx: Any) -> GradientTransformation:
    """Returns ``tx`` as a transform whose ``update`` accepts ``**extra_args``.

    Every gradtx transform already does, so a gradtx transform comes back unchanged (the same
    object). A foreign (e.g. optax) transform whose ``update`` takes no extra arguments is wrapped
    so that it ignores them.

    Args:
      tx: a gradient transformation.

    Returns:
      ``tx`` itself, or the wrapped foreign transform.

    Raises:
      TypeError: when ``tx`` has no callable ``init`` and ``update``.

    Examples:
      >>> import gradtx
      >>> tx = gradtx.adam(0.1)
      >>> gradtx.with_extra_args_support(tx) is tx  # gradtx transforms already accept extra arguments
      True
    """
    return as_gradient_transformation(tx, where="with_extra_args_support: `tx`")


def as_optax(tx: Any) -> Any:
    """``tx`` as an ``optax.GradientTransformationExtraArgs``, for optax's combinators.

    optax's ``chain``, ``masked``, ``MultiSteps`` and the like pass ``update``'s extra arguments
    (``value=``, ``value_fn=``, ...) only to transforms of optax's own extra-arguments type, and
    drop them for any other. A gradtx transform that needs them (:func:`gradtx.reduce_on_plateau`,
    :func:`gradtx.polyak_sgd`, the line searches, Sophia) then raises that they are missing. The
    same ``init`` and ``update`` in optax's type receive them. (Inside gradtx's combinators
    every transform receives them; this is only needed in optax's.)

    Args:
      tx: a gradtx (or any) transform with ``init`` and ``update``.

    Returns:
      ``optax.GradientTransformationExtraArgs(tx.init, tx.update)``.

    Raises:
      TypeError: when ``tx`` has no callable ``init`` and ``update``.
      ImportError: when optax is not installed.

    Examples:
      >>> import jax.numpy as jnp, optax, gradtx
      >>> tx = optax.chain(optax.sgd(1.0), gradtx.compat.as_optax(gradtx.reduce_on_plateau()))
      >>> params = jnp.ones(2)
      >>> updates, _ = tx.update(params, tx.init(params), params, value=jnp.asarray(1.0))
      >>> updates.tolist()
      [-1.0, -1.0]
    """
    tx = as_gradient_transformation(tx, where="as_optax: `tx`")
    import optax  # only here: gradtx does not depend on optax

    return optax.GradientTransformationExtraArgs(tx.init, tx.update)


def trace(decay: Any, nesterov: bool = False, accumulator_dtype: Any = None) -> GradientTransformation:
    """optax's momentum transform: :func:`gradtx.scale_by_momentum` (``momentum=decay``).

    .. math::
       t_k = \\text{decay}\\; t_{k-1} + g_k, \\qquad u_k = t_k \\;\\text{or, with Nesterov,}\\;
       u_k = g_k + \\text{decay}\\; t_k.

    Args:
      decay: the momentum decay, ``>= 0``.
      nesterov: use Nesterov's form. Default ``False``.
      accumulator_dtype: dtype of the momentum buffer; ``None`` uses each param's dtype.

    Returns:
      :func:`gradtx.scale_by_momentum`'s transform; its state is ``TraceState`` (= ``ScaleByMomentumState``).

    Raises:
      ValueError: when ``decay`` is negative.

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> grads = {"w": jnp.array([0.5, -0.5])}
      >>> tx = gradtx.trace(decay=0.9)  # gradtx.scale_by_momentum(momentum=0.9)
      >>> state = tx.init(params)
      >>> for _ in range(2):
      ...     updates, state = tx.update(grads, state, params)
      >>> [round(float(u), 4) for u in updates["w"]]
      [0.95, -0.95]

    References:
      Polyak, "Some methods of speeding up the convergence of iteration methods", 1964.
    """
    _checks.check_non_negative("decay", decay, where="trace")
    return scale_by_momentum(decay, nesterov=nesterov, accumulator_dtype=accumulator_dtype)


def scale_by_stddev(
    decay: Any = 0.9, eps: Any = 1e-8, initial_scale: Any = 0.0, eps_in_sqrt: bool = True, bias_correction: bool = False
) -> GradientTransformation:
    """optax's centred RMS scaling: :func:`gradtx.scale_by_rms` with ``centered=True``.

    .. math::
       m_t = \\beta m_{t-1} + (1-\\beta) g_t, \\quad v_t = \\beta v_{t-1} + (1-\\beta)|g_t|^2, \\qquad
       u_t = g_t / \\sqrt{v_t - |m_t|^2 + \\epsilon}

    (or :math:`g_t / (\\sqrt{v_t - |m_t|^2} + \\epsilon)` with ``eps_in_sqrt=False``).

    Args:
      decay: :math:`\\beta`. Default 0.9.
      eps: the stabiliser. Default 1e-8.
      initial_scale: :math:`v_0`. Default 0.
      eps_in_sqrt: ``eps`` inside the root. Default ``True``.
      bias_correction: divide both moments by :math:`1 - \\beta^t`. Default ``False``.

    Returns:
      The transform, with state ``ScaleByRStdDevState`` (``ScaleByRStdDevWithCountState`` with bias correction).

    Raises:
      ValueError: when an argument lies outside its range.

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> grads = {"w": jnp.array([0.5, -0.5])}
      >>> tx = gradtx.scale_by_stddev()  # gradtx.scale_by_rms(centered=True)
      >>> updates, state = tx.update(grads, tx.init(params), params)
      >>> [round(float(u), 4) for u in updates["w"]]  # g / sqrt(0.1 g^2 - (0.1 g)^2)
      [3.3333, -3.3333]

    References:
      Graves, "Generating Sequences With Recurrent Neural Networks", https://arxiv.org/abs/1308.0850, 2013.
    """
    return scale_by_rms(
        decay, eps, initial_scale, eps_in_sqrt=eps_in_sqrt, bias_correction=bias_correction, centered=True
    )


def scale_by_rss(initial_accumulator_value: Any = 0.1, eps: Any = 1e-7) -> GradientTransformation:
    """optax's name for :func:`gradtx.scale_by_adagrad`: scale by the root of the sum of squares.

    .. math:: G_t = G_{t-1} + g_t^2, \\qquad u_t = g_t / \\sqrt{G_t + \\epsilon}

    (and :math:`u_t = 0` where :math:`G_t = 0`), with :math:`G_0` = ``initial_accumulator_value``.

    Args:
      initial_accumulator_value: :math:`G_0 \\ge 0`. Default 0.1.
      eps: added inside the root, ``>= 0``. Default 1e-7.

    Returns:
      ``scale_by_adagrad(initial_accumulator_value, eps)``.

    Examples:
      >>> import jax.numpy as jnp, gradtx
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> grads = {"w": jnp.array([0.5, -0.5])}
      >>> tx = gradtx.scale_by_rss()  # gradtx.scale_by_adagrad()
      >>> updates, state = tx.update(grads, tx.init(params), params)
      >>> [round(float(u), 4) for u in updates["w"]]  # g / sqrt(0.1 + g^2)
      [0.8452, -0.8452]

    References:
      Duchi et al., "Adaptive Subgradient Methods for Online Learning and Stochastic Optimization", JMLR, 2011.
    """
    return scale_by_adagrad(initial_accumulator_value, eps)


def _make_tree_utils() -> types.ModuleType:
    module = types.ModuleType(
        "gradtx.tree_utils",
        "optax's older name for gradtx.tree: each ``tree_X`` here is ``gradtx.tree.X``.",
    )
    for name in dir(_tree_namespace):
        if name.startswith("_") or isinstance(getattr(_tree_namespace, name), types.ModuleType):
            continue
        alias = name if name == "NamedTupleKey" or name.startswith("safe_") else f"tree_{name}"
        setattr(module, alias, getattr(_tree_namespace, name))
    return module


tree_utils = _make_tree_utils()
"""optax's ``optax.tree_utils``: ``tree_utils.tree_X`` is ``gradtx.tree.X`` (``import gradtx.tree_utils`` works too)."""
sys.modules.setdefault("gradtx.tree_utils", tree_utils)


# optax 0.2.8's namespaces and flat names that are not gradient transformations.
_OUTSIDE_NAMESPACES = {
    "losses": "optax.losses",
    "assignment": "optax.assignment",
    "perturbations": "optax.perturbations",
    "second_order": "optax.second_order",
}
_OUTSIDE_FLAT = frozenset(
    [
        "convex_kl_divergence",
        "cosine_distance",
        "cosine_similarity",
        "ctc_loss",
        "ctc_loss_with_forward_probs",
        "generalized_kl_divergence",
        "hinge_loss",
        "huber_loss",
        "kl_divergence",
        "l2_loss",
        "log_cosh",
        "ntxent",
        "safe_softmax_cross_entropy",
        "sigmoid_binary_cross_entropy",
        "sigmoid_focal_loss",
        "smooth_labels",
        "softmax_cross_entropy",
        "softmax_cross_entropy_with_integer_labels",
        "squared_error",
    ]
)


def outside_scope_error(name: str) -> AttributeError:
    """The ``AttributeError`` for ``gradtx.<name>``: says why, for the optax names gradtx leaves out.

    Losses, assignment, perturbations and second-order utilities are not gradient
    transformations; ``optax.losses`` (and the others) work with gradtx unchanged.

    Examples:
      >>> import gradtx
      >>> gradtx.softmax_cross_entropy
      Traceback (most recent call last):
      ...
      AttributeError: gradtx has no `softmax_cross_entropy`: ...
    """
    if name in _OUTSIDE_NAMESPACES:
        where = _OUTSIDE_NAMESPACES[name]
        return AttributeError(
            f"gradtx has no `{name}`: it is a library of gradient transformations, and {name} are outside it. "
            f"Use `{where}` beside gradtx (`import optax; {where}...`); it works with gradtx unchanged."
        )
    if name in _OUTSIDE_FLAT:
        return AttributeError(
            f"gradtx has no `{name}`: losses are outside a library of gradient transformations. "
            f"Use `optax.losses.{name}` beside gradtx (`import optax`); it works with gradtx unchanged."
        )
    return AttributeError(f"module 'gradtx' has no attribute {name!r}")
