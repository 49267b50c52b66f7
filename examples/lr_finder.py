"""The learning-rate range test (``gradtx.lr_finder``) on an MLP, then a check of its suggestion.

``lr_finder`` trains from the initial params while the learning rate grows geometrically from
1e-6 to 10, one mini-batch a step, in one jitted ``lax.while_loop``; it stops when the smoothed
loss diverges and suggests the learning rate where the smoothed loss fell fastest. The curve is
written to ``out/lr_finder.png``.

A suggestion is only worth what it trains, so the script then trains the same MLP for a short
while at a tenth of the suggestion, at the suggestion and at ten times it, and prints the
validation accuracy of each: the suggestion should be the best of the three or close to it.

Run with ``python examples/lr_finder.py``; ``--smoke`` runs a short sweep.
"""

from __future__ import annotations

import argparse
import itertools
import pathlib
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from sklearn.datasets import load_digits

import gradtx


def init_mlp(key: jax.Array, sizes: tuple[int, ...] = (64, 128, 128, 10)) -> dict[str, Any]:
    params = {}
    for i, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes)):
        key, sub = jax.random.split(key)
        params[f"dense_{i}"] = {
            "kernel": jax.random.normal(sub, (fan_in, fan_out), jnp.float32) * jnp.sqrt(2.0 / fan_in),
            "bias": jnp.zeros((fan_out,), jnp.float32),
        }
    return params


def forward(params: Any, x: jax.Array) -> jax.Array:
    n = len(params)
    for i in range(n):
        x = x @ params[f"dense_{i}"]["kernel"] + params[f"dense_{i}"]["bias"]
        if i < n - 1:
            x = jax.nn.relu(x)
    return x


def loss_fn(params: Any, batch: tuple[jax.Array, jax.Array]) -> jax.Array:
    x, y = batch
    log_probs = jax.nn.log_softmax(forward(params, x))
    return -jnp.mean(jnp.take_along_axis(log_probs, y[:, None], axis=1))


def batches(x: np.ndarray, y: np.ndarray, count: int, size: int, seed: int) -> tuple[jax.Array, jax.Array]:
    """``count`` random mini-batches stacked on a leading axis, as ``lr_finder`` takes them."""
    rng = np.random.default_rng(seed)
    idx = np.stack([rng.choice(len(x), size, replace=False) for _ in range(count)])
    return jnp.asarray(x[idx]), jnp.asarray(y[idx])


def train(lr: float, params: Any, data: tuple[jax.Array, jax.Array]) -> Any:
    """Adam at a constant ``lr`` over the stacked batches ``data``, in one ``lax.scan``."""
    tx = gradtx.adam(lr)

    def step(carry: Any, batch: Any) -> Any:
        p, s = carry
        updates, s = tx.update(jax.grad(loss_fn)(p, batch), s, p)
        return (gradtx.apply_updates(p, updates), s), None

    (params, _), _ = jax.jit(lambda p, d: jax.lax.scan(step, (p, tx.init(p)), d))(params, data)
    return params


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Runs the range test, plots it, and trains at three learning rates around the suggestion.

    Args:
      argv: command-line arguments (default: ``sys.argv[1:]``).

    Returns:
      ``{"suggestion": lr, "<lr>": validation accuracy, ...}``.

    Raises:
      SystemExit: when the suggestion trains clearly worse than a learning rate ten times off.
    """
    parser = argparse.ArgumentParser(description="Learning-rate range test with gradtx.lr_finder.")
    parser.add_argument("--steps", type=int, default=200, help="steps of the range test")
    parser.add_argument("--train-steps", type=int, default=150, help="steps of each check run")
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("out/lr_finder.png"))
    parser.add_argument("--smoke", action="store_true", help="a short sweep, for CI")
    args = parser.parse_args(argv)
    sweep, train_steps = (30, 10) if args.smoke else (args.steps, args.train_steps)
    if sweep < 2 or train_steps < 1:
        parser.error("--steps must be >= 2 and --train-steps >= 1")

    pixels, labels = load_digits(return_X_y=True)
    x, y = np.asarray(pixels, np.float32) / 16.0, np.asarray(labels, np.int32)
    order = np.random.default_rng(0).permutation(len(x))
    train_idx, val_idx = order[:1400], order[1400:]
    params = init_mlp(jax.random.key(0))

    result = gradtx.lr_finder(
        gradtx.adam,
        loss_fn,
        params,
        batches(x[train_idx], y[train_idx], sweep, 64, seed=1),
        min_lr=1e-6,
        max_lr=10.0,
        num_steps=sweep,
        # The default 0.98 averages over ~50 steps: a quarter of this short sweep, too slow to follow it.
        smoothing=0.9,
    )
    suggestion = float(result.suggestion)
    n = int(result.num_run)
    last_lr = float(result.learning_rates[n - 1])
    stop = "the smoothed loss diverged" if n < sweep else "the sweep ended"
    print(f"range test: {n} of {sweep} steps, up to lr {last_lr:.2e}, where {stop}")
    print(f"suggested learning rate: {suggestion:.2e}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    result.plot(str(args.out), title="gradtx.lr_finder: Adam, MLP on the digits")
    print(f"curve: {args.out}")

    data = batches(x[train_idx], y[train_idx], train_steps, 64, seed=2)
    x_val, y_val = jnp.asarray(x[val_idx]), jnp.asarray(y[val_idx])
    accuracies = {}
    print(f"validation accuracy after {train_steps} Adam steps at a constant learning rate:")
    candidates = {"suggestion / 10": suggestion / 10, "suggestion": suggestion, "suggestion x 10": suggestion * 10}
    for label, lr in candidates.items():
        trained = train(lr, params, data)
        accuracies[label] = float(jnp.mean(jnp.argmax(forward(trained, x_val), axis=-1) == y_val))
        print(f"  {label:16} lr {lr:.2e}: {accuracies[label]:.1%}")
    if not args.smoke and accuracies["suggestion"] < max(accuracies.values()) - 0.05:
        raise SystemExit("the suggestion trained clearly worse than a learning rate ten times off")
    return {"suggestion": suggestion, **accuracies}


if __name__ == "__main__":
    main()
