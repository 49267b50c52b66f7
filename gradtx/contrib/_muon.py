"""Muon: momentum orthogonalised by a Newton-Schulz iteration, sharding-aware (``optax.contrib.muon``'s names).

Each hidden 2-D weight's Nesterov momentum is replaced by (approximately) the nearest
semi-orthogonal matrix, computed with a few matrix products. Those products contract the larger
side of each matrix, so when that side is sharded (as ZeRO and FSDP shard) each device multiplies
its own block and only the small Gram matrix is all-reduced, never the whole update.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gradtx import _checks, _tree
from gradtx import _numerics as num
from gradtx._base import EmptyState, GradientTransformation, Params, Updates, safe_increment, zero_count
from gradtx._combine import chain
from gradtx._partition import partition
from gradtx._stack_view import check_per_leaf, resolve_prefix
from gradtx.contrib._newton_schulz import (
    MuonDimensionNumbers,
    _axes,
    _is_dims,
    _is_dims_entry,
    _layout,
    orthogonalize,
)
from gradtx.optimizers import adamw
from gradtx.transforms import add_decayed_weights, scale_by_learning_rate

_DEFAULT_NS_COEFFS = (3.4445, -4.7750, 2.0315)
_DION_NS_COEFFS = (
    (4.0848, -6.8946, 2.9270),
    (3.9505, -6.3029, 2.6377),
    (3.7418, -5.5913, 2.3037),
    (2.8769, -3.1427, 1.2046),
    (2.8366, -3.0525, 1.2012),
)
_PRESETS = {"standard": _DEFAULT_NS_COEFFS, "dion": _DION_NS_COEFFS}
_PRECONDITIONINGS = ("frobenius", "spectral", "aol", "schatten")
# Keys of leaves the default labelling never orthogonalises (whole keys or, for embeddings, parts).
_EMBEDDING = re.compile(r"embed|^wte$|^wpe$", re.IGNORECASE)
_HEAD = re.compile(r"^((lm|output|cls)_?)?head(_\d+)?$|^classifier(_\d+)?$|^logits?(_\d+)?$", re.IGNORECASE)


class MuonState(NamedTuple):
    """State of :func:`scale_by_muon` (optax's ``MuonState``).

    Attributes:
      count: steps taken (scalar int32, saturating).
      mu: the momentum, shaped like the params.
      ns_coeffs: the Newton-Schulz coefficients, shape ``(3,)`` or ``(n, 3)``.
    """

    count: jax.Array
    mu: Any
    ns_coeffs: jax.Array


def _resolve_dims(dims: Any, tree: Any, *, where: str) -> list[Any]:
    """Per-leaf dimension numbers (or ``None``) for the leaves of ``tree``, from a prefix tree or callable."""
    dims = resolve_prefix(dims, tree, prefix_name="the weight dimension numbers", where=where, is_leaf=_is_dims_entry)
    if dims is None or _is_dims(dims):
        return [dims] * len(jax.tree.leaves(tree))
    full = _tree.broadcast_prefix(
        dims, tree, prefix_name="the weight dimension numbers", tree_name="updates", where=where, is_leaf=_is_dims_entry
    )
    return jax.tree.structure(tree).flatten_up_to(full)


def _coeffs_array(coeffs: np.ndarray) -> jax.Array:
    # A copy made by jax (not a numpy constant): under `jax.set_mesh` it is committed to the mesh,
    # typed as a jitted init's output is, so an eager init and a jitted one share a trace.
    return jnp.array(jnp.asarray(coeffs, num.default_float()), copy=True)


def _check_coeffs(ns_coeffs: Any, ns_steps: Any, where: str) -> np.ndarray:
    _checks.check_int("ns_steps", ns_steps, where=where, low=1)
    coeffs = np.asarray(ns_coeffs, dtype=np.float64)
    if coeffs.ndim not in (1, 2) or coeffs.shape[-1] != 3:
        raise ValueError(f"{where}: `ns_coeffs` must have shape (3,) or (n, 3), got {coeffs.shape}.")
    if coeffs.ndim == 2 and coeffs.shape[0] > ns_steps:
        raise ValueError(
            f"{where}: `ns_coeffs` has {coeffs.shape[0]} rows, more than `ns_steps`={ns_steps}: raise `ns_steps`."
        )
    if not np.all(np.isfinite(coeffs)):
        raise ValueError(f"{where}: `ns_coeffs` must be finite, got {ns_coeffs!r}.")
    return coeffs


_STANDALONE_ROUTE = (
    "Route it to another transform with gradtx.partition (e.g. label it 'adam'), or give it "
    "MuonDimensionNumbers naming its reduction and output axes."
)


def _scale_by_muon(
    ns_coeffs: Any,
    ns_steps: int,
    beta: Any,
    eps: Any,
    mu_dtype: Any,
    nesterov: bool,
    adaptive: bool,
    preconditioning: str,
    weight_dimension_numbers: Any,
    *,
    where: str,
    route: str,
) -> GradientTransformation:
    coeffs = _check_coeffs(ns_coeffs, ns_steps, where)
    _checks.check_bool("nesterov", nesterov, where=where)
    _checks.check_bool("adaptive", adaptive, where=where)
    _checks.check_in_range("beta", beta, 0.0, 1.0, where=where, high_inclusive=False)
    _checks.check_non_negative("eps", eps, where=where)
    mu_dtype = _checks.check_dtype("mu_dtype", mu_dtype, where=where)
    if preconditioning not in _PRECONDITIONINGS:
        raise ValueError(f"{where}: `preconditioning` must be one of {_PRECONDITIONINGS}, got {preconditioning!r}.")
    steps = int(coeffs.shape[0]) if coeffs.ndim == 2 else int(ns_steps)

    def init_fn(params: Params) -> MuonState:
        check_per_leaf(params, where=where, statistic="the orthogonalization of each matrix")
        num.check_init_params(params, where=where, allow_complex=False)
        return MuonState(count=zero_count(), mu=num.state_zeros(params, mu_dtype), ns_coeffs=_coeffs_array(coeffs))

    def update_fn(
        updates: Updates, state: MuonState, params: Params | None = None, **extra_args: Any
    ) -> tuple[Updates, MuonState]:
        del extra_args
        check_per_leaf(updates, where=where, statistic="the orthogonalization of each matrix")
        num.check_updates(
            updates, where=where, state_tree=state.mu, state_name="state.mu", params=params, allow_complex=False
        )
        count = safe_increment(state.count)
        leaves_with_path, treedef = jax.tree_util.tree_flatten_with_path(updates)
        dims = _resolve_dims(weight_dimension_numbers, updates, where=where)
        mus = treedef.flatten_up_to(state.mu)
        new_updates, new_mu = [], []
        for (path, g), mu, d in zip(leaves_with_path, mus, dims, strict=True):
            name = f"updates{_tree.path_str(path)}"
            if d is None:
                if g.ndim > 2:
                    raise ValueError(
                        f"{where}: {name} has shape {list(g.shape)} and no MuonDimensionNumbers: a leaf with more "
                        f"than 2 dimensions needs its layer axes named (e.g. MuonDimensionNumbers(1, 2) for "
                        f"(layers, d_in, d_out)). {route}"
                    )
                d = MuonDimensionNumbers()  # a 1-D leaf fails in _layout, naming where to route it
            dtype = num.compute_dtype(g.dtype)
            gc = g.astype(dtype)
            m = num.as_dtype(beta, dtype) * mu.astype(dtype) + num.one_minus(beta, dtype) * gc
            if nesterov:
                next_corr = num.bias_correction(beta, safe_increment(count)).astype(dtype)
                corr = num.bias_correction(beta, count).astype(dtype)
                m_hat = num.as_dtype(beta, dtype) * (m / next_corr) + num.one_minus(beta, dtype) * (gc / corr)
            else:
                m_hat = m / num.bias_correction(beta, count).astype(dtype)
            o = orthogonalize(
                m_hat, d, state.ns_coeffs, steps, preconditioning, eps, name=name, where=where, route=route
            )
            if adaptive:
                o = jnp.sum(m_hat * o) * o
            new_updates.append(o.astype(g.dtype))
            new_mu.append(m.astype(mu.dtype))
        return treedef.unflatten(new_updates), MuonState(
            count=count, mu=treedef.unflatten(new_mu), ns_coeffs=state.ns_coeffs
        )

    return GradientTransformation(init_fn, update_fn)


def scale_by_muon(
    ns_coeffs: Any = _DEFAULT_NS_COEFFS,
    ns_steps: int = 5,
    beta: Any = 0.95,
    eps: Any = 1e-8,
    mu_dtype: Any = None,
    *,
    nesterov: bool = True,
    adaptive: bool = False,
    preconditioning: str = "frobenius",
    weight_dimension_numbers: Any = None,
) -> GradientTransformation:
    """Replaces each matrix's (Nesterov) momentum by its Newton-Schulz orthogonalisation (Muon's direction).

    .. math::
       m_t = \\beta m_{t-1} + (1-\\beta) g_t, \\quad
       \\hat m_t = \\frac{\\beta m_t}{1-\\beta^{t+1}} + \\frac{(1-\\beta) g_t}{1-\\beta^t}
       \\ \\Big(\\text{without Nesterov: } \\hat m_t = \\frac{m_t}{1-\\beta^t}\\Big), \\\\
       X_0 = \\hat m_t / (\\lVert \\hat m_t \\rVert_F + \\epsilon), \\quad
       X_{k+1} = a X_k + (b A_k + c A_k^2) X_k, \\ A_k = X_k X_k^\\top, \\quad u_t = X_K,

    with :math:`(a, b, c) =` ``ns_coeffs`` and :math:`K =` ``ns_steps``; each step maps every
    singular value :math:`\\sigma` of :math:`X` to :math:`a\\sigma + b\\sigma^3 + c\\sigma^5`, which
    drives them towards 1, so :math:`u_t \\approx U V^\\top` for :math:`\\hat m_t = U \\Sigma V^\\top`.
    ``adaptive=True`` scales :math:`u_t` by :math:`\\langle \\hat m_t, u_t \\rangle`.

    Sharding: the Gram matrix :math:`A_k` is the smaller side's (optax's rule, the fewest flops),
    so the products contract the larger side. When that side is sharded (as ZeRO's ``zero_axis``
    and FSDP shard the largest dimension), each device multiplies its own block and only the small
    Gram matrix (and the norm) is all-reduced: the update is never gathered, under ``jax.jit``
    shardings and in explicit sharding mode alike. When the *smaller* side is sharded, the matrix
    is gathered along it (contracting that side instead would all-reduce a Gram matrix larger than
    the update and repeat its cubic-cost square on every device): in explicit mode once per step,
    then iterated and sliced back; under ``jax.jit`` shardings XLA gathers it for each product.
    ``preconditioning="spectral"`` (an SVD) gathers every matrix.

    Args:
      ns_coeffs: the quintic's coefficients ``(a, b, c)``, or one row per step, shape ``(n, 3)``
        with ``n <= ns_steps``. Default ``(3.4445, -4.7750, 2.0315)``.
      ns_steps: number of Newton-Schulz steps (ignored when ``ns_coeffs`` has one row per step). Default 5.
      beta: momentum decay in ``[0, 1)``. Default 0.95.
      eps: added to the norm before dividing, ``>= 0``. Default 1e-8.
      mu_dtype: dtype of :math:`m`; ``None`` uses each param's dtype.
      nesterov: Nesterov momentum (above). Default ``True``.
      adaptive: scale by the dual norm :math:`\\langle \\hat m_t, u_t \\rangle`. Default ``False``.
      preconditioning: how :math:`X_0` is scaled: ``"frobenius"`` (default), ``"spectral"``,
        ``"aol"`` (rows by their Gram row sums, in the first step) or ``"schatten"`` (by the
        Schatten-4 norm, in the first step).
      weight_dimension_numbers: :class:`MuonDimensionNumbers` for every leaf, a tree (or prefix)
        of them like the params, or a callable ``updates -> such a tree``. ``None``: every leaf is a
        2-D matrix ``(d_in, d_out)``.

    Returns:
      A :class:`~gradtx.GradientTransformation` with :class:`MuonState`.

    Raises:
      ValueError: for a bad hyperparameter, and (at trace time) for a leaf Muon cannot
        orthogonalise: 1-D, or more than 2-D without dimension numbers; the message names the leaf
        and how to route it to another transform.
      TypeError: for complex or integer leaves.

    Examples:
      >>> import jax.numpy as jnp
      >>> from gradtx.contrib import scale_by_muon
      >>> params = {"w": jnp.ones((4, 2))}
      >>> tx = scale_by_muon()
      >>> updates, _ = tx.update({"w": jnp.arange(8.0).reshape(4, 2)}, tx.init(params))
      >>> s = jnp.linalg.svd(updates["w"], compute_uv=False)  # singular values pushed towards 1
      >>> bool(jnp.all((s > 0.6) & (s < 1.3)))
      True

    References:
      Jordan et al., "Muon: An optimizer for hidden layers in neural networks",
      https://kellerjordan.github.io/posts/muon/, 2024.
      Bernstein and Newhouse, "Old Optimizer, New Norm: An Anthology", https://arxiv.org/abs/2409.20325, 2024.
    """
    return _scale_by_muon(
        ns_coeffs,
        ns_steps,
        beta,
        eps,
        mu_dtype,
        nesterov,
        adaptive,
        preconditioning,
        weight_dimension_numbers,
        where="scale_by_muon",
        route=_STANDALONE_ROUTE,
    )


def _scale_by_shape(dims_fn: Callable[[Any], list[Any]], consistent_rms: Any) -> GradientTransformation:
    """Muon's shape factor: ``sqrt(max(1, fan_out / fan_in))``, or ``consistent_rms * sqrt(max(fan_in, fan_out))``."""

    def update_fn(
        updates: Updates, state: EmptyState, params: Params | None = None, **extra_args: Any
    ) -> tuple[Updates, EmptyState]:
        del params, extra_args
        leaves, treedef = jax.tree.flatten(updates)
        out = []
        for u, d in zip(leaves, dims_fn(updates), strict=True):
            d = MuonDimensionNumbers() if d is None else d
            fan_in = math.prod(u.shape[a] for a in _axes(d.reduction_axis, u.ndim))
            fan_out = math.prod(u.shape[a] for a in _axes(d.output_axis, u.ndim))
            if consistent_rms is None:
                scale = math.sqrt(max(1.0, fan_out / fan_in))
                out.append(u * jnp.asarray(scale, u.dtype))
            else:
                dtype = num.compute_dtype(u.dtype)
                scale = math.sqrt(max(fan_in, fan_out)) * num.as_dtype(consistent_rms, dtype)
                out.append((u.astype(dtype) * scale).astype(u.dtype))
        return treedef.unflatten(out), state

    return GradientTransformation(lambda params: EmptyState(), update_fn)


def _is_hidden_matrix(path: tuple[Any, ...], leaf: Any) -> bool:
    """The default labelling: a 2-D leaf whose path names no embedding and no output head."""
    if len(np.shape(leaf)) != 2:
        return False
    keys = [str(getattr(k, "key", getattr(k, "name", getattr(k, "idx", "")))) for k in path]
    return not any(_EMBEDDING.search(k) or _HEAD.search(k) for k in keys)


_MUON_ROUTE = (
    "Give it None in `muon_weight_dimension_numbers` (the 'adam' label: AdamW), or name its layer axes with "
    "MuonDimensionNumbers."
)


def muon(
    learning_rate: Any,
    ns_coeffs: Any = _DEFAULT_NS_COEFFS,
    ns_steps: int = 5,
    beta: Any = 0.95,
    eps: Any = 1e-8,
    weight_decay: Any = 0.0,
    weight_decay_mask: Any = None,
    mu_dtype: Any = None,
    *,
    nesterov: bool = True,
    adaptive: bool = False,
    preconditioning: str = "frobenius",
    adam_b1: Any = 0.9,
    adam_b2: Any = 0.999,
    adam_eps_root: Any = 0.0,
    adam_weight_decay: Any = 0.0,
    adam_learning_rate: Any = None,
    muon_weight_dimension_numbers: Any = None,
    consistent_rms: Any = None,
) -> GradientTransformation:
    """Muon for the hidden matrices, AdamW for everything else: ``partition`` of two chains.

    .. math::
       W \\leftarrow W - \\eta \\big(s\\, O_t + \\lambda W\\big), \\quad
       s = \\sqrt{\\max(1, d_{out}/d_{in})}
       \\ \\big(\\text{or } \\rho \\sqrt{\\max(d_{in}, d_{out})} \\ (\\rho = \\texttt{consistent\\_rms})\\big),

    with :math:`O_t` the orthogonalised momentum of :func:`scale_by_muon`; the other leaves follow
    :func:`gradtx.adamw` (``adam_*`` arguments, ``eps``, ``mu_dtype`` and ``nesterov`` shared).

    Which leaves Muon takes (labels ``"muon"`` and ``"adam"``, as in optax):

    - by default, the 2-D leaves whose key path names no embedding (a key containing ``embed``,
      or ``wte``/``wpe``) and no output head (``head``, ``lm_head``, ``classifier``, ``logits``):
      embeddings and heads are never orthogonalised; biases, norms (1-D) and >2-D leaves go to
      AdamW. (optax's default takes every 2-D leaf, embeddings included: a deliberate difference.)
    - with ``muon_weight_dimension_numbers``, exactly the leaves it gives a
      :class:`MuonDimensionNumbers`; ``None`` sends a leaf (or a whole subtree) to AdamW. It is a
      tree like the params (or a prefix), or a callable ``params -> such a tree``. optax's
      labelling is ``lambda p: jax.tree.map(lambda x: MuonDimensionNumbers() if x.ndim == 2 else None, p)``.
      Stacked layers ``(L, d_in, d_out)`` take ``MuonDimensionNumbers(1, 2)``.

    Args:
      learning_rate: :math:`\\eta`, a scalar or a schedule.
      ns_coeffs: as :func:`scale_by_muon`, or a preset name: ``"standard"`` or ``"dion"``.
      ns_steps: as :func:`scale_by_muon`. Default 5.
      beta: momentum decay in ``[0, 1)``. Default 0.95.
      eps: Muon's norm epsilon and AdamW's ``eps``. Default 1e-8.
      weight_decay: :math:`\\lambda` of the Muon leaves (multiplied by :math:`\\eta`). Default 0.
      weight_decay_mask: a mask (or callable) over the Muon leaves for the weight decay.
      mu_dtype: dtype of both momenta; ``None`` uses each param's dtype.
      nesterov: Nesterov momentum, for both. Default ``True``.
      adaptive: as :func:`scale_by_muon`. Default ``False``.
      preconditioning: as :func:`scale_by_muon`. Default ``"frobenius"``.
      adam_b1: AdamW's ``b1``. Default 0.9.
      adam_b2: AdamW's ``b2``. Default 0.999.
      adam_eps_root: AdamW's ``eps_root``. Default 0.
      adam_weight_decay: AdamW's weight decay. Default 0.
      adam_learning_rate: AdamW's learning rate; ``None`` uses ``learning_rate``.
      muon_weight_dimension_numbers: which leaves Muon takes and their matrix axes (above).
      consistent_rms: ``None`` (default) for the width factor, or :math:`\\rho` (e.g. 0.2, to match
        AdamW's update RMS).

    Returns:
      A :class:`~gradtx.GradientTransformation` (a :func:`gradtx.partition`).

    Raises:
      ValueError: for a bad hyperparameter or preset name, and (at ``init``) when dimension
        numbers are given for a leaf Muon cannot orthogonalise (the message names the leaf and says
        to give it ``None``: the ``"adam"`` label).

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from gradtx.contrib import muon
      >>> params = {"embedding": jnp.ones((10, 4)), "hidden": jnp.ones((4, 4)), "bias": jnp.zeros(4)}
      >>> tx = muon(learning_rate=0.02)
      >>> state = tx.init(params)
      >>> jax.tree.map(jnp.shape, state.inner_states["muon"].inner_state[0].mu)  # only the hidden matrix
      {'bias': MaskedNode(), 'embedding': MaskedNode(), 'hidden': (4, 4)}
      >>> grads = jax.tree.map(jnp.ones_like, params)
      >>> updates, state = tx.update(grads, state, params)
      >>> updates["hidden"].shape, updates["bias"].shape
      ((4, 4), (4,))

    References:
      Jordan et al., "Muon: An optimizer for hidden layers in neural networks",
      https://kellerjordan.github.io/posts/muon/, 2024.
      Liu et al., "Muon is Scalable for LLM Training", https://arxiv.org/abs/2502.16982, 2025.
    """
    where = "muon"
    if isinstance(ns_coeffs, str):
        if ns_coeffs not in _PRESETS:
            raise ValueError(f"{where}: unknown `ns_coeffs` preset {ns_coeffs!r}; the presets are {list(_PRESETS)}.")
        ns_coeffs = _PRESETS[ns_coeffs]
    _checks.check_scalar_or_schedule("learning_rate", learning_rate, where=where)
    if consistent_rms is not None:
        _checks.check_non_negative("consistent_rms", consistent_rms, where=where)
    dims = muon_weight_dimension_numbers
    group_dims = MuonDimensionNumbers() if dims is None else dims

    def labels(tree: Any) -> Any:
        if dims is None:
            return jax.tree_util.tree_map_with_path(
                lambda path, x: "muon" if _is_hidden_matrix(path, x) else "adam", tree
            )
        per_leaf = _resolve_dims(dims, tree, where=where)
        leaves_with_path, treedef = jax.tree_util.tree_flatten_with_path(tree)
        out = []
        for (path, x), d in zip(leaves_with_path, per_leaf, strict=True):
            if _is_dims(d):
                _layout(tuple(np.shape(x)), d, name=f"params{_tree.path_str(path)}", where=where, route=_MUON_ROUTE)
            out.append("muon" if _is_dims(d) else "adam")
        return treedef.unflatten(out)

    muon_chain = chain(
        _scale_by_muon(
            ns_coeffs,
            ns_steps,
            beta,
            eps,
            mu_dtype,
            nesterov,
            adaptive,
            preconditioning,
            group_dims,
            where=where,
            route=_MUON_ROUTE,
        ),
        _scale_by_shape(lambda u: _resolve_dims(group_dims, u, where=where), consistent_rms),
        add_decayed_weights(weight_decay, weight_decay_mask),
        scale_by_learning_rate(learning_rate),
    )
    adam_chain = adamw(
        learning_rate=learning_rate if adam_learning_rate is None else adam_learning_rate,
        b1=adam_b1,
        b2=adam_b2,
        eps=eps,
        eps_root=adam_eps_root,
        weight_decay=adam_weight_decay,
        mu_dtype=mu_dtype,
        nesterov=nesterov,
    )
    return partition({"muon": muon_chain, "adam": adam_chain}, labels)
