"""Draws docs/img/low_memory_accuracy.png: float32 vs bfloat16 vs 8-bit AdamW state on the digits task.

A two-hidden-layer MLP (64-256-256-10, ~85k parameters) is trained on scikit-learn's handwritten
digits (1,437 training images; nothing is downloaded) with AdamW, its state stored three ways: float32
moments, bfloat16 moments, and ``quantized_state`` (8-bit blocks). Same seed, same batches, same steps.
The script prints each run's final training loss (mean of the last 50 steps), validation loss and
accuracy, and state bytes per parameter, which ``docs/low_memory.md`` quotes.

Run: ``python docs/make_low_memory.py``.
"""

from __future__ import annotations

import pathlib
from typing import Any

import jax
import jax.numpy as jnp
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits

import gradtx

STEPS, BATCH, SEED = 600, 128, 0
OUT = pathlib.Path(__file__).resolve().parent / "img" / "low_memory_accuracy.png"


def data() -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    x, y = load_digits(return_X_y=True)
    rng = np.random.default_rng(SEED)
    order = rng.permutation(len(x))
    x, y = x[order].astype(np.float32) / 16.0, y[order]
    n_val = len(x) // 5
    return jnp.asarray(x[n_val:]), jnp.asarray(y[n_val:]), jnp.asarray(x[:n_val]), jnp.asarray(y[:n_val])


def init_params() -> dict[str, jax.Array]:
    rng = np.random.default_rng(SEED)
    sizes = [(64, 256), (256, 256), (256, 10)]
    params = {}
    for i, (a, b) in enumerate(sizes):
        params[f"w{i}"] = jnp.asarray(rng.normal(size=(a, b)) * np.sqrt(2.0 / a), jnp.float32)
        params[f"b{i}"] = jnp.zeros(b, jnp.float32)
    return params


def logits(params: dict[str, jax.Array], x: jax.Array) -> jax.Array:
    h = jax.nn.relu(x @ params["w0"] + params["b0"])
    h = jax.nn.relu(h @ params["w1"] + params["b1"])
    return h @ params["w2"] + params["b2"]


def loss_fn(params: dict[str, jax.Array], x: jax.Array, y: jax.Array) -> jax.Array:
    return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits(params, x)), y[:, None], axis=1))


def train(tx: gradtx.GradientTransformation) -> tuple[np.ndarray, float, float]:
    x_train, y_train, x_val, y_val = data()
    idx = np.random.default_rng(SEED).integers(0, len(x_train), size=(STEPS, BATCH))

    @jax.jit
    def run(params: Any) -> tuple[Any, jax.Array]:
        def body(carry: Any, batch: jax.Array) -> tuple[Any, jax.Array]:
            p, s = carry
            loss, g = jax.value_and_grad(loss_fn)(p, x_train[batch], y_train[batch])
            u, s = tx.update(g, s, p)
            return (gradtx.apply_updates(p, u), s), loss

        (p, _), losses = jax.lax.scan(body, (params, tx.init(params)), jnp.asarray(idx))
        return p, losses

    params, losses = run(init_params())
    accuracy = float(jnp.mean(jnp.argmax(logits(params, x_val), axis=1) == y_val))
    return np.asarray(losses), float(loss_fn(params, x_val, y_val)), accuracy


def main() -> None:
    schedule = gradtx.warmup_cosine_decay_schedule(0.0, 1e-3, 100, STEPS)
    runs = {
        "float32 moments (8 bytes/param)": gradtx.adamw(schedule, weight_decay=1e-4),
        "bfloat16 moments (4 bytes/param)": gradtx.adamw(
            schedule, weight_decay=1e-4, mu_dtype=jnp.bfloat16, nu_dtype=jnp.bfloat16
        ),
        "quantized_state, 8-bit (~2 bytes/param)": gradtx.quantized_state(gradtx.adamw(schedule, weight_decay=1e-4)),
    }
    fig, ax = plt.subplots(figsize=(7, 4))
    smooth = np.ones(25) / 25
    for name, tx in runs.items():
        losses, val_loss, acc = train(tx)
        bytes_pp = gradtx.state_bytes_per_param(tx, init_params())
        print(
            f"{name}: train loss (last 50 steps) {losses[-50:].mean():.4f}, validation loss {val_loss:.4f}, "
            f"validation accuracy {acc:.4f}, state {bytes_pp:.3f} B/param"
        )
        ax.plot(np.convolve(losses, smooth, mode="valid"), label=name, linewidth=1.2)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("training loss (25-step mean)")
    ax.set_title("AdamW on digits (MLP, 85k params): same seed, batches and steps")
    ax.legend()
    fig.tight_layout()
    OUT.parent.mkdir(exist_ok=True)
    fig.savefig(OUT, dpi=110)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
