"""The registry of every optimizer that ``tests/test_contract.py`` runs through the contract.

To add an optimizer, append an :class:`Entry` (to ``CATALOG`` here, or to ``PARITY`` in
``tests/registry_parity.py``):

- ``name``: a unique id (the pytest id).
- ``build(**overrides)``: returns the transform; ``overrides`` are keyword arguments merged
  over the entry's own defaults (the contract passes e.g. ``mu_dtype=jnp.bfloat16``).
- ``mu_dtype_arg`` / ``nu_dtype_arg``: the name of the builder's keyword that sets the first
  / second moment dtype, or ``None`` when it has none. The contract then checks that the
  moment leaves (found by ``moment_fields``) take that dtype.
- ``moment_fields``: state field names holding the moment whose dtype ``mu_dtype_arg``
  controls (default ``("mu",)``); ``nu_fields`` likewise for ``nu_dtype_arg``.
- ``complex_ok``: the optimizer supports complex params (the Adam family, SGD, RMSprop...).
- ``needs_params``: informative only; every contract call passes params.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import gradtx


class Entry(NamedTuple):
    """One optimizer in the contract registry (see the module docstring)."""

    name: str
    build: Callable[..., Any]
    mu_dtype_arg: str | None = None
    complex_ok: bool = False
    nu_dtype_arg: str | None = None
    moment_fields: tuple[str, ...] = ("mu",)
    nu_fields: tuple[str, ...] = ("nu",)


def _builder(fn: Callable[..., Any], *args: Any, **defaults: Any) -> Callable[..., Any]:
    def build(**overrides: Any) -> Any:
        return fn(*args, **{**defaults, **overrides})

    return build


CATALOG: list[Entry] = [
    Entry("sgd", _builder(gradtx.sgd, 0.1), complex_ok=True),
    Entry(
        "sgd_momentum",
        _builder(gradtx.sgd, 0.1, momentum=0.9, nesterov=True),
        mu_dtype_arg="accumulator_dtype",
        complex_ok=True,
        moment_fields=("trace",),
    ),
    Entry("adagrad", _builder(gradtx.adagrad, 0.1), complex_ok=True),
    Entry("rmsprop", _builder(gradtx.rmsprop, 0.01, momentum=0.9), complex_ok=True),
    Entry("rmsprop_centered", _builder(gradtx.rmsprop, 0.01, centered=True), complex_ok=True),
    Entry("adam", _builder(gradtx.adam, 0.01), mu_dtype_arg="mu_dtype", complex_ok=True),
    Entry(
        "scale_by_adam",
        lambda **kw: gradtx.chain(gradtx.scale_by_adam(**kw), gradtx.scale_by_learning_rate(0.01)),
        mu_dtype_arg="mu_dtype",
        nu_dtype_arg="nu_dtype",
        complex_ok=True,
    ),
    Entry("adamw", _builder(gradtx.adamw, 0.01, weight_decay=0.01), mu_dtype_arg="mu_dtype", complex_ok=True),
    Entry("nadam", _builder(gradtx.nadam, 0.01), mu_dtype_arg="mu_dtype", complex_ok=True),
    Entry("radam", _builder(gradtx.radam, 0.01), complex_ok=True),
    Entry("adamax", _builder(gradtx.adamax, 0.01), complex_ok=True),
    Entry("lamb", _builder(gradtx.lamb, 0.01, weight_decay=0.01), complex_ok=True),
    Entry("lars", _builder(gradtx.lars, 0.1, weight_decay=0.01)),
    Entry("lion", _builder(gradtx.lion, 1e-3), mu_dtype_arg="mu_dtype"),
    Entry("adafactor", _builder(gradtx.adafactor, 0.01, min_dim_size_to_factor=4)),
    Entry(
        "adafactor_momentum",
        _builder(gradtx.adafactor, 0.01, min_dim_size_to_factor=4, momentum=0.9, weight_decay_rate=1e-3),
        mu_dtype_arg="dtype_momentum",
        moment_fields=("ema",),
    ),
    Entry("sign_sgd", _builder(gradtx.sign_sgd, 1e-3)),
    Entry("signum", _builder(gradtx.signum, 1e-3), mu_dtype_arg="accumulator_dtype", moment_fields=("ema",)),
]

# Imported at the bottom: the parity registries build on `Entry` and `_builder` defined above.
from tests.registry_lbfgs import LBFGS_ENTRIES  # noqa: E402
from tests.registry_parity import PARITY  # noqa: E402

REGISTRY: list[Entry] = CATALOG + list(PARITY) + list(LBFGS_ENTRIES)
