"""Six optimizers on two classic 2-D test functions: trajectories on a contour plot, and steps to tolerance.

- Rosenbrock's banana valley ``(1 - x)^2 + 100 (y - x^2)^2`` (minimum 0 at (1, 1)): a curved,
  narrow valley where plain gradient descent crawls along the floor.
- An ill-conditioned bowl ``(u^2 + 50 v^2) / 2`` in coordinates ``(u, v)`` rotated by 30 degrees
  (condition number 50; minimum 0 at the origin): the rotation takes away the advantage that
  per-coordinate methods (RMSProp, Adam, Lion) have on an axis-aligned bowl.

Each optimizer runs ``--steps`` steps in one ``jax.lax.scan`` (one compile per optimizer and
function) with a learning rate picked from a sweep over 19 values from 1e-5 to 0.3 (log-spaced; SGD and
RMSProp on Rosenbrock, which never got there, keep 1e-3). The table gives the first step at which
``f - f* < --tol``; a dash means not within the budget (SGD and RMSProp on Rosenbrock). The picked rate is
a good one, not always the fastest: the step counts depend on it, chaotically so for Lion, whose
fixed-size sign steps hover around the minimum at a distance of about the learning rate.

Run with ``python examples/rosenbrock.py`` (writes ``out/rosenbrock.png``); ``--smoke`` runs 200 steps.
"""

from __future__ import annotations

import argparse
import math
import pathlib
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

import gradtx


class Problem(NamedTuple):
    name: str
    fn: Callable[[jax.Array], jax.Array]
    start: tuple[float, float]
    minimum: tuple[float, float]
    extent: tuple[float, float, float, float]  # x_min, x_max, y_min, y_max of the plot
    learning_rates: dict[str, float]


def rosenbrock(w: jax.Array) -> jax.Array:
    x, y = w[0], w[1]
    return (1.0 - x) ** 2 + 100.0 * (y - x**2) ** 2


_ANGLE = math.pi / 6


def rotated_bowl(w: jax.Array) -> jax.Array:
    u = math.cos(_ANGLE) * w[0] + math.sin(_ANGLE) * w[1]
    v = -math.sin(_ANGLE) * w[0] + math.cos(_ANGLE) * w[1]
    return 0.5 * (u**2 + 50.0 * v**2)


PROBLEMS = (
    Problem(
        "Rosenbrock",
        rosenbrock,
        start=(-1.2, 1.0),
        minimum=(1.0, 1.0),
        extent=(-2.0, 2.0, -1.0, 3.0),
        learning_rates={
            "SGD": 1e-3,
            "momentum": 3.16e-3,
            "Nesterov": 1e-3,
            "RMSProp": 1e-3,
            "Adam": 0.316,
            "Lion": 5.62e-3,
        },
    ),
    Problem(
        "rotated bowl (condition 50)",
        rotated_bowl,
        start=(-2.0, 1.5),
        minimum=(0.0, 0.0),
        extent=(-2.5, 2.5, -2.0, 2.0),
        learning_rates={
            "SGD": 3.16e-2,
            "momentum": 3.16e-2,
            "Nesterov": 1.78e-2,
            "RMSProp": 1.78e-3,
            "Adam": 0.316,
            "Lion": 1e-2,
        },
    ),
)

OPTIMIZERS: dict[str, Callable[[float], gradtx.GradientTransformation]] = {
    "SGD": lambda lr: gradtx.sgd(lr),
    "momentum": lambda lr: gradtx.sgd(lr, momentum=0.9),
    "Nesterov": lambda lr: gradtx.sgd(lr, momentum=0.9, nesterov=True),
    "RMSProp": lambda lr: gradtx.rmsprop(lr),
    "Adam": lambda lr: gradtx.adam(lr),
    "Lion": lambda lr: gradtx.lion(lr),
}


def run(tx: gradtx.GradientTransformation, fn: Callable[[jax.Array], jax.Array], start: jax.Array, steps: int):
    """The iterates ``w_0 .. w_steps`` (shape ``(steps + 1, 2)``) and the values ``f(w_t)``."""

    def step(carry, _):
        w, state = carry
        value, grad = jax.value_and_grad(fn)(w)
        updates, state = tx.update(grad, state, w)
        return (gradtx.apply_updates(w, updates), state), (w, value)

    (last, _), (path, values) = jax.jit(lambda w: jax.lax.scan(step, (w, tx.init(w)), length=steps))(start)
    return np.vstack([np.asarray(path), np.asarray(last)[None]]), np.append(np.asarray(values), float(fn(last)))


def steps_to_tolerance(values: np.ndarray, tol: float) -> int | None:
    """The first step ``t`` with ``f(w_t) < tol`` (f* = 0 for both problems), or ``None``."""
    hits = np.flatnonzero(values < tol)
    return int(hits[0]) if hits.size else None


def save_plot(results: dict[str, dict[str, np.ndarray]], path: pathlib.Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(PROBLEMS), figsize=(6 * len(PROBLEMS), 5))
    for ax, problem in zip(axes, PROBLEMS):
        x0, x1, y0, y1 = problem.extent
        xs, ys = np.meshgrid(np.linspace(x0, x1, 200), np.linspace(y0, y1, 200))
        grid = np.stack([xs, ys]).astype(np.float32)
        zs = np.asarray(jax.vmap(jax.vmap(problem.fn, in_axes=1), in_axes=2)(jnp.asarray(grid))).T
        ax.contour(xs, ys, zs, levels=np.logspace(-3, 3.5, 20), colors="0.7", linewidths=0.6)
        for name, path_ in results[problem.name].items():
            ax.plot(path_[:, 0], path_[:, 1], linewidth=1.3, label=f"{name} (lr {problem.learning_rates[name]:g})")
        ax.plot(*problem.start, "ko", markersize=5)
        ax.plot(*problem.minimum, "k*", markersize=12)
        ax.set_xlim(x0, x1)
        ax.set_ylim(y0, y1)
        ax.set_title(problem.name)
        ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict[str, dict[str, int | None]]:
    """Runs every optimizer on both problems, prints the table, writes the plot.

    Args:
      argv: command-line arguments (default: ``sys.argv[1:]``).

    Returns:
      ``{problem name: {optimizer name: steps to tolerance or None}}``.
    """
    parser = argparse.ArgumentParser(description="Optimizers on Rosenbrock and an ill-conditioned bowl.")
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--tol", type=float, default=1e-4)
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("out/rosenbrock.png"))
    parser.add_argument("--smoke", action="store_true", help="200 steps, for CI")
    args = parser.parse_args(argv)
    steps = 200 if args.smoke else args.steps
    if steps < 1 or not args.tol > 0:
        parser.error("--steps must be >= 1 and --tol > 0")

    table: dict[str, dict[str, int | None]] = {}
    paths: dict[str, dict[str, np.ndarray]] = {}
    for problem in PROBLEMS:
        table[problem.name], paths[problem.name] = {}, {}
        start = jnp.asarray(problem.start, jnp.float32)
        for name, make in OPTIMIZERS.items():
            path, values = run(make(problem.learning_rates[name]), problem.fn, start, steps)
            if not np.all(np.isfinite(values)):
                raise SystemExit(f"{name} diverged on {problem.name}: lower its learning rate")
            paths[problem.name][name] = path
            table[problem.name][name] = steps_to_tolerance(values, args.tol)

    width = max(len(n) for n in OPTIMIZERS)
    print(f"steps until f - f* < {args.tol:g} (budget {steps}; - = not reached)")
    print(f"{'':{width}}  " + "  ".join(f"{p.name:>28}" for p in PROBLEMS))
    for name in OPTIMIZERS:
        cells = [table[p.name][name] for p in PROBLEMS]
        print(f"{name:{width}}  " + "  ".join(f"{'-' if c is None else c:>28}" for c in cells))
    save_plot(paths, args.out)
    print(f"trajectories: {args.out}")
    return table


if __name__ == "__main__":
    main()
