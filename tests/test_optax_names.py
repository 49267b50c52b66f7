"""``import gradtx as optax`` must not meet a missing name or a different signature.

The list of optax names, the excluded categories and the comparison live in ``tests/support/optax_names.py``
(also runnable as a script). Deliberate differences are named in its ``DELIBERATE_DIFFERENCES`` and in
``docs/conventions.md``.
"""

from __future__ import annotations

import inspect
import pathlib
import re
import types
from typing import Any, NamedTuple

import pytest

from tests.support import optax_names as pr

CONVENTIONS = pathlib.Path(__file__).resolve().parent.parent / "docs" / "conventions.md"
SECTION = "## Deliberate differences from optax"


def test_gradtx_offers_every_optax_name_for_building_optimizers():
    missing, _ = pr.find_problems()
    assert not missing, f"gradtx lacks {len(missing)} optax name(s): {', '.join(missing)}"


def test_gradtx_signatures_match_optax():
    _, mismatches = pr.find_problems()
    assert not mismatches, "signatures differ from optax:\n" + "\n".join(f"{k}: {v}" for k, v in mismatches.items())


def _documented_names() -> set[str]:
    text = CONVENTIONS.read_text()
    assert SECTION in text, f"{CONVENTIONS} has no '{SECTION}' section"
    section = text.split(SECTION, 1)[1]
    section = re.split(r"\n## ", section, maxsplit=1)[0]
    # Each bullet starts with the name in backticks: "- `name`: reason".
    return set(re.findall(r"^\s*[-*]\s+`([A-Za-z_][A-Za-z0-9_]*)`", section, flags=re.MULTILINE))


def test_deliberate_differences_are_documented_both_ways():
    documented = _documented_names()
    allowed = set(pr.DELIBERATE_DIFFERENCES)
    assert allowed <= documented, f"allow-listed but not in docs/conventions.md: {sorted(allowed - documented)}"
    assert documented <= allowed, f"in docs/conventions.md but not allow-listed: {sorted(documented - allowed)}"


def test_deliberate_differences_name_real_optax_names_with_reasons():
    names = pr.optax_names()
    for name, reason in pr.DELIBERATE_DIFFERENCES.items():
        assert name in names, f"allow-list entry {name!r} is not an optax name"
        assert isinstance(reason, str) and len(reason.split()) >= 3, f"allow-list entry {name!r} needs a reason"


def test_the_name_list_covers_what_optax_offers_beyond_its_all():
    required = pr.building_names()
    # Core, catalog, schedules and wrappers, including names optax exports without listing in __all__.
    for name in (
        "adam",
        "chain",
        "cosine_decay_schedule",
        "MultiSteps",
        "ScaleByAdamState",
        "lbfgs",
        "optimistic_adam",
        "normalize_by_update_norm",
        "inject_stateful_hyperparams",
        "snapshot",
    ):
        assert name in required, name
    excluded = pr.excluded_names()
    assert excluded["l2_loss"] == "loss function"
    assert excluded["tree_map_params"] == "tree utility"
    assert excluded["Params"] == "typing alias or protocol"
    assert excluded["TransformUpdateFn"] == "typing alias or protocol"
    assert excluded["losses"] == "sub-module namespace"
    assert excluded["power_iteration"] == "numerics / linear-algebra helper"
    assert not set(required) & set(excluded)


# --- the comparison itself can fail ------------------------------------------------------------------


def _ref(a, b=1.0, *, flag=False):
    del a, b, flag


def _same(a, b=1.0, *, flag=False):
    del a, b, flag


def _renamed(x, b=1.0, *, flag=False):
    del x, b, flag


def _reordered(b=1.0, a=None, *, flag=False):
    del a, b, flag


def _positional_flag(a, b=1.0, flag=False):
    del a, b, flag


def _other_default(a, b=0.5, *, flag=False):
    del a, b, flag


def _bool_vs_int(a, b=1.0, *, flag=0):
    del a, b, flag


def _extra(a, b=1.0, *, flag=False, more=None):
    del a, b, flag, more


@pytest.mark.parametrize(
    ("candidate", "needle"),
    [
        (_renamed, "names/order"),
        (_reordered, "names/order"),
        (_positional_flag, "`flag` is positional or keyword"),
        (_other_default, "default of `b`"),
        (_bool_vs_int, "default of `flag`"),
        (_extra, "names/order"),
    ],
)
def test_compare_signatures_detects_each_kind_of_difference(candidate, needle):
    assert pr.compare_signatures("f", _same, _ref) is None
    problem = pr.compare_signatures("f", candidate, _ref)
    assert problem is not None and needle in problem, problem


def test_variadic_names_do_not_count_but_their_kind_does():
    def theirs(*args, **kwargs):
        del args, kwargs

    def ours(*transforms, **extra):
        del transforms, extra

    def ours_list(transforms, **extra):
        del transforms, extra

    assert pr.compare_signatures("f", ours, theirs) is None
    assert pr.compare_signatures("f", ours_list, theirs) is not None


def test_compare_namedtuple_fields():
    class Theirs(NamedTuple):
        count: Any
        mu: Any

    class Ours(NamedTuple):
        count: Any
        mu: Any

    class Renamed(NamedTuple):
        count: Any
        momentum: Any

    assert pr.compare_signatures("S", Ours, Theirs) is None
    assert "fields differ" in (pr.compare_signatures("S", Renamed, Theirs) or "")
    assert "NamedTuple" in (pr.compare_signatures("S", _same, Theirs) or "")


def test_find_problems_reports_a_missing_and_a_mismatching_name():
    fake = types.SimpleNamespace(**{n: getattr(pr.gradtx, n) for n in dir(pr.gradtx) if not n.startswith("_")})
    fake.lion = _ref  # a wrong signature for a required name (one not allow-listed)
    if hasattr(fake, "sgd"):
        del fake.sgd
    missing, mismatches = pr.find_problems(fake)
    assert "sgd" in missing
    assert "lion" in mismatches


def test_defaults_of_transforms_and_dtypes_compare_by_kind():
    import jax.numpy as jnp
    import optax

    assert pr._defaults_equal(optax.identity(), pr.gradtx.identity())
    assert not pr._defaults_equal(optax.identity(), None)
    assert pr._defaults_equal(jnp.float32, jnp.float32)
    assert not pr._defaults_equal(jnp.float32, jnp.bfloat16)
    assert pr._defaults_equal(1e-8, 1e-08) and pr._defaults_equal(0, 0.0)
    assert not pr._defaults_equal(True, 1)
    assert inspect.Parameter.empty is not None
