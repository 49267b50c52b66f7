"""Which of optax's public names for building optimizers gradtx lacks, or offers with another signature.

Run ``python tests/support/optax_names.py`` for a grouped report; ``tests/test_optax_names.py`` turns
the same comparison into a test. The rules for which optax names count are spelled out in
:func:`excluded_reason`; the names gradtx differs on purpose are in ``DELIBERATE_DIFFERENCES`` (each
one is also a bullet under "Deliberate differences from optax" in ``docs/conventions.md``).
"""

from __future__ import annotations

import inspect
import os
import sys
import types
import typing
import warnings
from typing import Any

import numpy as np

if __name__ == "__main__":  # run as a script: make the checkout importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import optax

import gradtx

# Names where gradtx differs from optax on purpose: {name: reason}. Keep in sync with the
# "Deliberate differences from optax" section of docs/conventions.md (a test checks both ways).
DELIBERATE_DIFFERENCES: dict[str, str] = {
    "scale_by_adam": "adds a keyword-only `nu_dtype` after optax's arguments (second-moment dtype)",
    "adam": "adds a keyword-only `nu_dtype` after optax's arguments (second-moment dtype)",
    "adamw": "adds a keyword-only `nu_dtype` after optax's arguments (second-moment dtype)",
    "nadam": "adds a keyword-only `nu_dtype` after optax's arguments (second-moment dtype)",
    "nadamw": "adds a keyword-only `nu_dtype` after optax's arguments (second-moment dtype)",
    "amsgrad": "adds a keyword-only `nu_dtype` after optax's arguments (second-moment dtype)",
    "scale_by_amsgrad": "adds a keyword-only `nu_dtype` after optax's arguments (second-moment dtype)",
    "radam": "adds keyword-only `mu_dtype` and `nu_dtype` after optax's arguments (moment dtypes)",
    "scale_by_radam": "adds keyword-only `mu_dtype` and `nu_dtype` after optax's arguments (moment dtypes)",
    "adamax": "adds keyword-only `mu_dtype` and `nu_dtype` after optax's arguments (moment dtypes)",
    "adamaxw": "adds keyword-only `mu_dtype` and `nu_dtype` after optax's arguments (moment dtypes)",
    "scale_by_adamax": "adds keyword-only `mu_dtype` and `nu_dtype` after optax's arguments (moment dtypes)",
    "scale_by_rms": "adds keyword-only `centered`, `mu_dtype`, `nu_dtype` after optax's arguments (centered RMSprop)",
    "lamb": "adds keyword-only `mu_dtype` and `nu_dtype` after optax's arguments (moment dtypes)",
    "adabelief": "adds keyword-only `mu_dtype` and `nu_dtype` after optax's arguments (moment dtypes)",
    "scale_by_belief": "adds keyword-only `mu_dtype` and `nu_dtype` after optax's arguments (moment dtypes)",
    "yogi": "adds keyword-only `mu_dtype` and `nu_dtype` after optax's arguments (moment dtypes)",
    "scale_by_yogi": "adds keyword-only `mu_dtype` and `nu_dtype` after optax's arguments (moment dtypes)",
    "adan": "adds keyword-only `mu_dtype` and `nu_dtype` after optax's arguments (moment dtypes)",
    "scale_by_adan": "adds keyword-only `mu_dtype` and `nu_dtype` after optax's arguments (moment dtypes)",
    "optimistic_adam": "adds a keyword-only `nu_dtype` after optax's arguments (second-moment dtype)",
    "optimistic_adam_v2": "adds a keyword-only `nu_dtype` after optax's arguments (second-moment dtype)",
    "rmsprop": "adds a keyword-only `nu_dtype` after optax's arguments (second-moment dtype)",
    "adagrad": "adds a keyword-only `nu_dtype` after optax's arguments (second-moment dtype)",
    "scale_by_rss": "adds a keyword-only `nu_dtype` after optax's arguments (second-moment dtype)",
}

# Modules of optax whose top-level re-exports are not about building optimizers.
_LOSS_MODULES = ("optax.losses",)
_TREE_MODULES = ("optax.tree_utils", "optax.tree")
_NUMERICS_MODULES = ("optax._src.numerics", "optax._src.linear_algebra", "optax._src.utils")
_GRADIENT_COMPUTATION_MODULES = ("optax.microbatching",)


def _module_of(obj: Any) -> str:
    return getattr(obj, "__module__", "") or ""


def _in_modules(obj: Any, prefixes: tuple[str, ...]) -> bool:
    module = _module_of(obj)
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def _is_protocol(obj: Any) -> bool:
    return isinstance(obj, type) and bool(getattr(obj, "_is_protocol", False))


def _is_generic_alias(obj: Any) -> bool:
    return obj is typing.Any or type(obj).__module__ in ("typing", "collections.abc", "types")


def excluded_reason(name: str, obj: Any) -> str | None:
    """Why an optax top-level name is not part of "building optimizers"; ``None`` when it is.

    The excluded categories, in order:

    1. sub-modules (``optax.losses``, ``optax.tree_utils``, ``optax.tree``, ``optax.projections``,
       ``optax.assignment``, ``optax.second_order``, ``optax.perturbations``, ``optax.contrib``,
       ``optax.schedules``, ``optax.transforms``, ``optax.experimental``, ``optax.microbatching``): the
       namespace objects themselves; the schedule functions re-exported at the top level do count;
    2. deprecated aliases that optax serves through its module ``__getattr__`` (``optax._deprecations``);
    3. loss functions (defined under ``optax.losses``);
    4. tree utilities (defined under ``optax.tree_utils`` / ``optax.tree``, e.g. ``tree_map_params``,
       ``update_moment``, ``bias_correction``);
    5. typing aliases and typing protocols (``Params``, ``OptState``, ``Schedule``, ``TransformInitFn``...);
    6. numerics and linear-algebra helpers (``optax._src.numerics``, ``linear_algebra``, ``utils``:
       ``safe_norm``, ``power_iteration``, ``matrix_inverse_pth_root``, ``scale_gradient``...);
    7. gradient-computation utilities that are not transforms (``optax.microbatching.microbatch``).
    """
    if isinstance(obj, types.ModuleType):
        return "sub-module namespace"
    if name in getattr(optax, "_deprecations", {}):
        return "deprecated alias (optax._deprecations)"
    if _in_modules(obj, _LOSS_MODULES):
        return "loss function"
    if _in_modules(obj, _TREE_MODULES):
        return "tree utility"
    if _is_protocol(obj) or _is_generic_alias(obj):
        return "typing alias or protocol"
    if _in_modules(obj, _NUMERICS_MODULES):
        return "numerics / linear-algebra helper"
    if _in_modules(obj, _GRADIENT_COMPUTATION_MODULES):
        return "gradient-computation utility"
    return None


def optax_names() -> dict[str, Any]:
    """optax's top-level public names (``dir(optax)``, which also holds names missing from ``__all__``)."""
    names: dict[str, Any] = {}
    for name in sorted(dir(optax)):
        if name.startswith("_"):
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            names[name] = getattr(optax, name)
    return names


def building_names() -> dict[str, Any]:
    """The optax names that gradtx must offer."""
    return {n: o for n, o in optax_names().items() if excluded_reason(n, o) is None}


def excluded_names() -> dict[str, str]:
    """``{name: reason}`` for the optax names left out, with the category that excludes each."""
    out = {}
    for n, o in optax_names().items():
        reason = excluded_reason(n, o)
        if reason is not None:
            out[n] = reason
    return out


def _is_transform(x: Any) -> bool:
    return callable(getattr(x, "init", None)) and callable(getattr(x, "update", None))


def _defaults_equal(a: Any, b: Any) -> bool:
    if a is inspect.Parameter.empty or b is inspect.Parameter.empty:
        return a is b
    if a is None or b is None:
        return a is b
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if _is_transform(a) or _is_transform(b):  # e.g. lbfgs's default line search: compare the kind only
        return _is_transform(a) and _is_transform(b)
    if isinstance(a, (int, float, np.number)) and isinstance(b, (int, float, np.number)):
        return float(a) == float(b) or (np.isnan(a) and np.isnan(b))
    if isinstance(a, type) or isinstance(b, type) or isinstance(a, np.dtype) or isinstance(b, np.dtype):
        try:
            return np.dtype(a) == np.dtype(b)
        except TypeError:
            return a is b
    if hasattr(a, "shape") or hasattr(b, "shape"):
        try:
            return bool(np.array_equal(np.asarray(a), np.asarray(b)))
        except (TypeError, ValueError):
            return False
    if callable(a) or callable(b):
        return getattr(a, "__name__", None) == getattr(b, "__name__", object())
    try:
        return bool(a == b)
    except Exception:  # a default whose == raises is simply different
        return False


def _describe_params(sig: inspect.Signature) -> str:
    return "(" + ", ".join(_param_str(p) for p in sig.parameters.values()) + ")"


def _param_str(p: inspect.Parameter) -> str:
    prefix = {inspect.Parameter.VAR_POSITIONAL: "*", inspect.Parameter.VAR_KEYWORD: "**"}.get(p.kind, "")
    kind = {inspect.Parameter.KEYWORD_ONLY: "kw", inspect.Parameter.POSITIONAL_ONLY: "pos"}.get(p.kind, "")
    text = f"{prefix}{p.name}" + (f"[{kind}]" if kind else "")
    if p.default is not inspect.Parameter.empty:
        text += f"={p.default!r:.30}"
    return text


def _visible_name(p: inspect.Parameter) -> str:
    return {inspect.Parameter.VAR_POSITIONAL: "*args", inspect.Parameter.VAR_KEYWORD: "**kwargs"}.get(p.kind, p.name)


def compare_signatures(name: str, ours: Any, theirs: Any) -> str | None:
    """``None`` when ``ours`` matches ``theirs``; else a one-line description of the first difference."""
    if isinstance(theirs, type) and issubclass(theirs, tuple) and hasattr(theirs, "_fields"):
        fields = getattr(ours, "_fields", None)
        if not (isinstance(ours, type) and fields is not None):
            return f"optax's {name} is a NamedTuple with fields {theirs._fields}; gradtx's is {type(ours).__name__}"
        if tuple(fields) != tuple(theirs._fields):
            return f"NamedTuple fields differ: gradtx {tuple(fields)} vs optax {tuple(theirs._fields)}"
        return None
    try:
        sig_theirs = inspect.signature(theirs)
    except (TypeError, ValueError):
        return None  # nothing to compare (e.g. a builtin)
    try:
        sig_ours = inspect.signature(ours)
    except (TypeError, ValueError):
        return f"gradtx's {name} has no inspectable signature; optax's is {_describe_params(sig_theirs)}"
    p_ours = list(sig_ours.parameters.values())
    p_theirs = list(sig_theirs.parameters.values())
    # The names of `*args` / `**kwargs` are invisible to callers, so only their place and kind count.
    names_ours = [_visible_name(p) for p in p_ours]
    names_theirs = [_visible_name(p) for p in p_theirs]
    if names_ours != names_theirs:
        return f"parameter names/order differ: gradtx {names_ours} vs optax {names_theirs}"
    for a, b in zip(p_ours, p_theirs):
        if a.kind != b.kind:
            return f"parameter `{a.name}` is {a.kind.description} in gradtx but {b.kind.description} in optax"
        if not _defaults_equal(a.default, b.default):
            da = "no default" if a.default is inspect.Parameter.empty else repr(a.default)
            db = "no default" if b.default is inspect.Parameter.empty else repr(b.default)
            return f"default of `{a.name}` differs: gradtx {da:.60} vs optax {db:.60}"
    return None


def find_problems(ours: Any = gradtx) -> tuple[list[str], dict[str, str]]:
    """``(missing, mismatches)`` over optax's building names, less ``DELIBERATE_DIFFERENCES``.

    Excluded optax names that ``ours`` (gradtx by default) still exports under the same name are
    compared too: offering a name means offering optax's signature.
    """
    missing: list[str] = []
    mismatches: dict[str, str] = {}
    all_names = optax_names()
    required = building_names()
    for name, theirs in all_names.items():
        if name in DELIBERATE_DIFFERENCES:
            continue
        if not hasattr(ours, name):
            if name in required:
                missing.append(name)
            continue
        if isinstance(theirs, types.ModuleType) or _is_generic_alias(theirs) or _is_protocol(theirs):
            continue
        problem = compare_signatures(name, getattr(ours, name), theirs)
        if problem is not None:
            mismatches[name] = problem
    return missing, mismatches


# A best guess at who owns each missing name, for the report only (the test does not use it).
_OWNER_HINTS: dict[str, tuple[str, ...]] = {
    "D2 (lbfgs, line searches)": (
        "lbfgs",
        "scale_by_lbfgs",
        "ScaleByLBFGSState",
        "scale_by_backtracking_linesearch",
        "ScaleByBacktrackingLinesearchState",
        "scale_by_zoom_linesearch",
        "ScaleByZoomLinesearchState",
        "ZoomLinesearchInfo",
        "value_and_grad_from_state",
    ),
    "B (schedules, injection)": (
        "schedule",
        "inject_",
        "InjectHyperparams",
        "InjectStateful",
        "WrappedSchedule",
        "exponential_decay",
        "join_schedules",
        "ScaleBySchedule",
    ),
    "C (wrappers)": (
        "MultiSteps",
        "apply_if_finite",
        "ApplyIfFinite",
        "lookahead",
        "Lookahead",
        "masked",
        "Masked",
        "multi_transform",
        "MultiTransform",
        "partition",
        "Partition",
        "ema",
        "EmaState",
        "flatten",
        "apply_every",
        "ApplyEvery",
        "skip_",
        "ShouldSkip",
        "conditionally_",
        "Conditionally",
        "selective_transform",
        "freeze",
        "monitor",
        "Monitor",
        "measure_with_ema",
        "snapshot",
        "Snapshot",
        "periodic_update",
        "incremental_update",
        "with_extra_args_support",
        "trace",
        "TraceState",
        "GradientTransformationExtraArgs",
    ),
    "D1 (parity optimizers/transforms)": (
        "adabelief",
        "adadelta",
        "adamaxw",
        "adan",
        "amsgrad",
        "fromage",
        "nadamw",
        "noisy_sgd",
        "novograd",
        "optimistic",
        "polyak",
        "rprop",
        "sm3",
        "yogi",
        "scale_by_belief",
        "scale_by_adadelta",
        "scale_by_adan",
        "scale_by_amsgrad",
        "scale_by_novograd",
        "scale_by_rss",
        "scale_by_stddev",
        "scale_by_distance",
        "scale_by_param_block_norm",
        "normalize_by_update_norm",
        "centralize",
        "adaptive_grad_clip",
        "per_example",
        "keep_params_nonnegative",
        "ScaleByBelief",
        "ScaleByAdaDelta",
        "ScaleByAdan",
        "ScaleByAmsgrad",
        "ScaleByNovograd",
        "ScaleByRprop",
        "ScaleByRss",
        "ScaleByRStdDev",
        "ScaleBySM3",
        "AdaptiveGradClip",
        "NonNegativeParams",
    ),
}


def owner_guess(name: str) -> str:
    """The engineer most likely responsible for ``name`` (a heuristic on the name)."""
    for owner, needles in _OWNER_HINTS.items():
        if name in needles:
            return owner
    for owner, needles in _OWNER_HINTS.items():
        if any(n in name for n in needles):
            return owner
    return "A (catalog) or foundation"


def report() -> str:
    """The grouped, printable report."""
    missing, mismatches = find_problems()
    lines = [
        f"optax {optax.__version__}: {len(building_names())} names for building optimizers "
        f"({len(excluded_names())} excluded, {len(DELIBERATE_DIFFERENCES)} deliberate differences)."
    ]
    groups: dict[str, list[str]] = {}
    for name in missing:
        groups.setdefault(owner_guess(name), []).append(f"  missing   {name}")
    for name, problem in mismatches.items():
        groups.setdefault(owner_guess(name), []).append(f"  mismatch  {name}: {problem}")
    if not groups:
        lines.append("gradtx offers every name with optax's signature.")
    for owner in sorted(groups):
        lines.append(f"{owner}: {len(groups[owner])}")
        lines.extend(sorted(groups[owner]))
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    """Prints the report (``--excluded`` also lists the excluded names); exit status 1 on problems."""
    print(report())
    if "--excluded" in argv:
        for name, reason in sorted(excluded_names().items(), key=lambda kv: (kv[1], kv[0])):
            print(f"  excluded  {name}: {reason}")
    missing, mismatches = find_problems()
    return 1 if (missing or mismatches) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
