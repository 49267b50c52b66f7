"""Draws the schedule gallery of docs/schedules.md into docs/img/ (needs matplotlib).

Run from the repository root: ``python docs/make_gallery.py``.
"""

from __future__ import annotations

import pathlib

import gradtx
from gradtx.plotting import plot_schedules

IMG = pathlib.Path(__file__).parent / "img"

GALLERY = {
    "constant_linear_polynomial": (
        {
            "constant_schedule(0.5)": gradtx.constant_schedule(0.5),
            "linear_schedule(1, 0.1, 60, 20)": gradtx.linear_schedule(1.0, 0.1, 60, 20),
            "polynomial_schedule(1, 0, 2, 80)": gradtx.polynomial_schedule(1.0, 0.0, 2.0, 80),
        },
        100,
        False,
    ),
    "step_decay": (
        {
            "piecewise_constant_schedule(1, {30: .3, 60: .3})": gradtx.piecewise_constant_schedule(
                1.0, {30: 0.3, 60: 0.3}
            ),
            "exponential_decay(1, 20, .5, staircase=True)": gradtx.exponential_decay(1.0, 20, 0.5, staircase=True),
            "exponential_decay(1, 20, .5)": gradtx.exponential_decay(1.0, 20, 0.5),
        },
        100,
        False,
    ),
    "cosine": (
        {
            "cosine_decay_schedule(1, 80)": gradtx.cosine_decay_schedule(1.0, 80),
            "cosine_decay_schedule(1, 80, alpha=.2, exponent=2)": gradtx.cosine_decay_schedule(1.0, 80, 0.2, 2.0),
            "warmup_cosine_decay_schedule(0, 1, 15, 100, .05)": gradtx.warmup_cosine_decay_schedule(
                0.0, 1.0, 15, 100, 0.05
            ),
        },
        100,
        False,
    ),
    "warmup": (
        {
            "warmup_constant_schedule(0, 1, 20)": gradtx.warmup_constant_schedule(0.0, 1.0, 20),
            "warmup_exponential_decay_schedule(0, 1, 20, 15, .5)": gradtx.warmup_exponential_decay_schedule(
                0.0, 1.0, 20, 15, 0.5
            ),
        },
        100,
        False,
    ),
    "onecycle": (
        {
            "cosine_onecycle_schedule(100, 1)": gradtx.cosine_onecycle_schedule(100, 1.0),
            "linear_onecycle_schedule(100, 1)": gradtx.linear_onecycle_schedule(100, 1.0),
        },
        110,
        False,
    ),
    "onecycle_momentum": (
        {
            "cosine_onecycle_momentum_schedule(100)": gradtx.cosine_onecycle_momentum_schedule(100),
            "linear_onecycle_momentum_schedule(100)": gradtx.linear_onecycle_momentum_schedule(100),
        },
        110,
        False,
    ),
    "restarts": (
        {
            "cosine_restarts_schedule(1, 10, T_mult=2)": gradtx.cosine_restarts_schedule(1.0, 10, 2),
            "sgdr_schedule(3 x warmup 5, 40 steps)": gradtx.sgdr_schedule(
                [{"init_value": 0.0, "peak_value": 0.8, "warmup_steps": 5, "decay_steps": 40}] * 3
            ),
        },
        150,
        False,
    ),
    "join_and_interpolate": (
        {
            "join_schedules([constant, linear], [40])": gradtx.join_schedules(
                [gradtx.constant_schedule(1.0), gradtx.linear_schedule(1.0, 0.2, 40)], [40]
            ),
            "piecewise_interpolate_schedule('cosine', 1, {30: .5, 70: .2})": gradtx.piecewise_interpolate_schedule(
                "cosine", 1.0, {30: 0.5, 70: 0.2}
            ),
        },
        100,
        False,
    ),
}


def main() -> None:
    IMG.mkdir(exist_ok=True)
    for name, (schedules, steps, log_scale) in GALLERY.items():
        path = IMG / f"schedule_{name}.png"
        plot_schedules(schedules, steps, str(path), title=name.replace("_", " "), log_scale=log_scale)
        print(path)


if __name__ == "__main__":
    main()
