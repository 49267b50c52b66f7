"""The trust ratio and Fromage with a param or gradient norm below ``min_norm``, against the formula.

``scale_by_trust_ratio`` floors both norms at ``min_norm``:
``u = g * kappa * max(||p||, m) / (max(||g||, m) + eps)``; Fromage takes that step with
``kappa = 1``, ``eps = 0`` and contracts: ``x' = (x - eta * ratio * g) / sqrt(1 + eta^2)``.
Each case puts one norm (or both) below the floor, so that dropping the floor on either norm,
or flooring the wrong one, changes the result.
"""

from __future__ import annotations

import numpy as np
import pytest

import gradtx

MIN_NORM = 0.5
# (param, gradient): ||p|| below the floor; ||g|| below it; both below; both above.
CASES = {
    "param_below": (np.array([0.03, -0.04]), np.array([1.5, -2.0])),
    "grad_below": (np.array([1.2, -0.9]), np.array([0.006, 0.008])),
    "both_below": (np.array([0.1, 0.0]), np.array([0.0, -0.02])),
    "both_above": (np.array([1.2, -0.9]), np.array([1.5, -2.0])),
}


def _ratio(p: np.ndarray, g: np.ndarray, min_norm: float, kappa: float = 1.0, eps: float = 0.0) -> float:
    pn = max(float(np.linalg.norm(p)), min_norm)
    gn = max(float(np.linalg.norm(g)), min_norm)
    return 1.0 if pn == 0 or gn == 0 else kappa * pn / (gn + eps)


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize(("kappa", "eps"), [(1.0, 0.0), (0.7, 1e-3)])
def test_trust_ratio_floors_both_norms(case: str, kappa: float, eps: float) -> None:
    p, g = CASES[case]
    tx = gradtx.scale_by_trust_ratio(min_norm=MIN_NORM, trust_coefficient=kappa, eps=eps)
    params, grads = {"w": np.asarray(p, np.float64)}, {"w": np.asarray(g, np.float64)}
    updates, _ = tx.update(grads, tx.init(params), params)
    expected = g * _ratio(p, g, MIN_NORM, kappa, eps)
    np.testing.assert_allclose(np.asarray(updates["w"]), expected, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("case", CASES)
def test_fromage_floors_both_norms(case: str) -> None:
    p, g = CASES[case]
    eta = 0.2
    tx = gradtx.fromage(eta, min_norm=MIN_NORM)
    params, grads = {"w": np.asarray(p, np.float64)}, {"w": np.asarray(g, np.float64)}
    updates, _ = tx.update(grads, tx.init(params), params)
    new = gradtx.apply_updates(params, updates)["w"]
    expected = (p - eta * _ratio(p, g, MIN_NORM) * g) / np.sqrt(1 + eta**2)
    np.testing.assert_allclose(np.asarray(new), expected, rtol=1e-12, atol=1e-15)


def test_the_floor_matters_in_these_cases() -> None:
    """Without the floor the ratios differ, so the cases above can tell the two apart."""
    for case, (p, g) in CASES.items():
        if case != "both_above":
            assert not np.isclose(_ratio(p, g, MIN_NORM), _ratio(p, g, 0.0)), case
