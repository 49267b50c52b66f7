"""Train a small Flax NNX CNN on scikit-learn's handwritten digits with a gradtx chain.

This is what ``make demo`` runs. The data (1,797 8x8 grey-scale digits, 10 classes) ships inside
scikit-learn, so nothing is downloaded. The optimizer is one ``gradtx.chain``:

- ``monitor`` records the raw gradient norm (before clipping);
- ``clip_by_global_norm`` caps it;
- ``adamw`` with a warmup-cosine learning rate and a weight-decay *mask*: kernels decay, biases
  and LayerNorm scales do not (decaying them only hurts);
- a second ``monitor`` records the update's norm and the update/param ratio, the quantity to
  watch when choosing a learning rate (around 1e-3 per step is the usual healthy range).

A tqdm bar shows the loss and learning rate; the end prints train and validation accuracy, and a
PNG with loss, learning rate, gradient norm and update/param ratio against step is written to
``out/demo.png`` (``--out`` to change it).

Run with ``make demo`` (or ``python examples/train_digits.py``); ``--smoke`` runs a few steps only.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from sklearn.datasets import load_digits
from tqdm import tqdm

import gradtx

CLIP_NORM = 1.0


def load_data(seed: int, val_fraction: float = 0.2) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The digits as ``(x_train, y_train, x_val, y_val)``: images (N, 8, 8, 1) in [0, 1], int32 labels."""
    pixels, labels = load_digits(return_X_y=True)
    x = (np.asarray(pixels) / 16.0).astype(np.float32).reshape(-1, 8, 8, 1)  # pixel values are 0..16
    y = np.asarray(labels).astype(np.int32)
    order = np.random.default_rng(seed).permutation(len(x))
    n_val = int(len(x) * val_fraction)
    val, train = order[:n_val], order[n_val:]
    return x[train], y[train], x[val], y[val]


class CNN(nnx.Module):
    """Two 3x3 convolutions, then a LayerNorm'd dense head."""

    def __init__(self, rngs: nnx.Rngs) -> None:
        self.conv1 = nnx.Conv(1, 16, kernel_size=(3, 3), rngs=rngs)
        self.conv2 = nnx.Conv(16, 32, kernel_size=(3, 3), strides=(2, 2), rngs=rngs)
        self.norm = nnx.LayerNorm(4 * 4 * 32, rngs=rngs)
        self.hidden = nnx.Linear(4 * 4 * 32, 128, rngs=rngs)
        self.out = nnx.Linear(128, 10, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        x = nnx.gelu(self.conv1(x))
        x = nnx.gelu(self.conv2(x))  # (N, 4, 4, 32)
        x = self.norm(x.reshape(x.shape[0], -1))
        return self.out(nnx.gelu(self.hidden(x)))


def decay_mask(params: Any) -> Any:
    """Weight decay on kernels (>= 2 dims) only: not on biases or LayerNorm scales."""
    return jax.tree.map(lambda p: p.ndim >= 2, params)


def update_param_ratio(updates: Any, params: Any) -> jax.Array:
    """``|update| / |params|`` over the whole tree: how far one step moves the weights, relatively."""
    return gradtx.global_norm(updates) / (gradtx.global_norm(params) + 1e-12)


def make_optimizer(total_steps: int, peak_lr: float = 3e-3) -> tuple[gradtx.GradientTransformation, Any]:
    """The gradtx chain of the demo and its learning-rate schedule."""
    schedule = gradtx.warmup_cosine_decay_schedule(
        init_value=0.0,
        peak_value=peak_lr,
        warmup_steps=max(1, total_steps // 10),
        decay_steps=total_steps,
        end_value=peak_lr / 100,
    )
    tx = gradtx.chain(
        gradtx.monitor({"grad_norm": gradtx.global_norm}),
        gradtx.clip_by_global_norm(CLIP_NORM),
        gradtx.adamw(learning_rate=schedule, weight_decay=1e-2, mask=decay_mask),
        # A function measure sees only the updates; `stateless` also sees the params.
        gradtx.monitor({"update_norm": gradtx.global_norm, "update_ratio": gradtx.stateless(update_param_ratio)}),
    )
    return tx, schedule


def cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    log_probs = jax.nn.log_softmax(logits)
    return -jnp.mean(jnp.take_along_axis(log_probs, labels[:, None], axis=1))


@nnx.jit
def train_step(model: CNN, optimizer: nnx.Optimizer, x: jax.Array, y: jax.Array) -> dict[str, jax.Array]:
    loss, grads = nnx.value_and_grad(lambda m: cross_entropy(m(x), y))(model)
    optimizer.update(model, grads)
    first, *_, last = optimizer.opt_state  # the two monitors' states, first and last in the chain
    return {"loss": loss, **first.measurements, **last.measurements}


@nnx.jit
def accuracy(model: CNN, x: jax.Array, y: jax.Array) -> jax.Array:
    return jnp.mean(jnp.argmax(model(x), axis=-1) == y)


def save_plot(history: dict[str, list[float]], path: pathlib.Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [
        ("loss", "training loss", True),
        ("lr", "learning rate", False),
        ("grad_norm", "gradient norm (before clipping)", True),
        ("update_ratio", "|update| / |params|", True),
    ]
    fig, axes = plt.subplots(2, 2, figsize=(10, 6), sharex=True)
    for ax, (key, title, log) in zip(axes.flat, panels):
        ax.plot(history[key], linewidth=1.2)
        ax.set_title(title)
        if log:
            ax.set_yscale("log")
        if key == "grad_norm":
            ax.axhline(CLIP_NORM, color="grey", linestyle="--", linewidth=1, label="clipped above")
            ax.legend(loc="upper right")
        ax.grid(alpha=0.3)
    for ax in axes[1]:
        ax.set_xlabel("step")
    fig.suptitle("gradtx demo: CNN on scikit-learn digits")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Trains, prints the accuracies, writes the plot; returns the final metrics.

    Args:
      argv: command-line arguments (default: ``sys.argv[1:]``).

    Returns:
      ``{"train_accuracy", "val_accuracy", "first_loss", "last_loss", "seconds"}``.

    Raises:
      SystemExit: when the loss did not fall (something is broken).
    """
    parser = argparse.ArgumentParser(description="Train a Flax NNX CNN on the digits with a gradtx chain.")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("out/demo.png"))
    parser.add_argument("--smoke", action="store_true", help="a few steps only, for CI")
    args = parser.parse_args(argv)
    if args.epochs < 1 or args.batch_size < 1:
        parser.error("--epochs and --batch-size must be >= 1")

    start = time.perf_counter()
    x_train, y_train, x_val, y_val = load_data(args.seed)
    steps_per_epoch = len(x_train) // args.batch_size
    total_steps = 12 if args.smoke else args.epochs * steps_per_epoch

    model = CNN(nnx.Rngs(args.seed))
    tx, schedule = make_optimizer(total_steps)
    # nnx.Optimizer is annotated with optax's transform type; gradtx's is the same (init, update) pair.
    optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)  # pyright: ignore[reportArgumentType]

    history: dict[str, list[float]] = {k: [] for k in ("loss", "lr", "grad_norm", "update_norm", "update_ratio")}
    rng = np.random.default_rng(args.seed)
    order = rng.permutation(len(x_train))
    bar = tqdm(range(total_steps), desc="training", unit="step", disable=args.smoke, file=sys.stdout)
    for step in bar:
        i = step % steps_per_epoch
        if i == 0 and step > 0:
            order = rng.permutation(len(x_train))
        batch = order[i * args.batch_size : (i + 1) * args.batch_size]
        metrics = train_step(model, optimizer, jnp.asarray(x_train[batch]), jnp.asarray(y_train[batch]))
        # The learning rate this step used: the schedule at the step count before the update.
        history["lr"].append(float(schedule(step)))
        for key, value in metrics.items():
            history[key].append(float(value))
        if step % 10 == 0 or step == total_steps - 1:
            bar.set_postfix(
                loss=f"{history['loss'][-1]:.4f}",
                lr=f"{history['lr'][-1]:.2e}",
                grad_norm=f"{history['grad_norm'][-1]:.2f}",
                update_ratio=f"{history['update_ratio'][-1]:.1e}",
            )
    bar.close()

    train_acc = float(accuracy(model, jnp.asarray(x_train), jnp.asarray(y_train)))
    val_acc = float(accuracy(model, jnp.asarray(x_val), jnp.asarray(y_val)))
    save_plot(history, args.out)
    seconds = time.perf_counter() - start
    first_loss, last_loss = history["loss"][0], float(np.mean(history["loss"][-5:]))
    print(f"{total_steps} steps in {seconds:.1f} s: loss {first_loss:.4f} -> {last_loss:.4f}")
    print(f"train accuracy {train_acc:.1%}, validation accuracy {val_acc:.1%}")
    print(f"last gradient norm {history['grad_norm'][-1]:.3f}, update/param ratio {history['update_ratio'][-1]:.1e}")
    print(f"plot of loss, learning rate, gradient norm and update/param ratio: {args.out}")
    if not last_loss < first_loss:
        raise SystemExit("the loss did not fall: something is wrong")
    return {
        "train_accuracy": train_acc,
        "val_accuracy": val_acc,
        "first_loss": first_loss,
        "last_loss": last_loss,
        "seconds": seconds,
    }


if __name__ == "__main__":
    main()
