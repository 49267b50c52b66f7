"""Draws docs/img/contrib_digits.png: AdamW vs Muon vs Schedule-Free AdamW vs Sophia-G on the digits task.

A two-hidden-layer MLP (64-256-256-10, ~85k parameters) is trained on scikit-learn's handwritten digits
(1,437 training images; nothing is downloaded) for 600 steps of 128 images, the same seed and batches
for every optimizer. Muon takes the two hidden matrices (its default labelling leaves the ``head`` and
the biases to AdamW); Schedule-Free is evaluated at ``schedule_free_eval_params``; Sophia-G gets the
Gauss-Newton-Bartlett estimate (labels sampled from the model) every 10 steps. The learning rates are
each method's usual ones, not tuned here. The script prints the final training loss (mean of the last
50 steps), validation loss and accuracy, which ``docs/contrib.md`` quotes.

Run: ``python docs/make_contrib.py``.
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
from gradtx import contrib

STEPS, BATCH, SEED = 600, 128, 0
OUT = pathlib.Path(__file__).resolve().parent / "img" / "contrib_digits.png"


def data() -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(SEED).permutation(len(x))
    x, y = x[order].astype(np.float32) / 16.0, y[order]
    n_val = len(x) // 5
    return jnp.asarray(x[n_val:]), jnp.asarray(y[n_val:]), jnp.asarray(x[:n_val]), jnp.asarray(y[:n_val])


def init_params() -> dict[str, jax.Array]:
    rng = np.random.default_rng(SEED)

    def dense(a: int, b: int) -> jax.Array:
        return jnp.asarray(rng.normal(size=(a, b)) * np.sqrt(2.0 / a), jnp.float32)

    return {
        "w0": dense(64, 256),
        "b0": jnp.zeros(256, jnp.float32),
        "w1": dense(256, 256),
        "b1": jnp.zeros(256, jnp.float32),
        "head": dense(256, 10),
        "head_bias": jnp.zeros(10, jnp.float32),
    }


def logits(params: dict[str, jax.Array], x: jax.Array) -> jax.Array:
    h = jax.nn.relu(x @ params["w0"] + params["b0"])
    h = jax.nn.relu(h @ params["w1"] + params["b1"])
    return h @ params["head"] + params["head_bias"]


def loss_fn(params: dict[str, jax.Array], x: jax.Array, y: jax.Array) -> jax.Array:
    return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits(params, x)), y[:, None], axis=1))


def gnb_estimator() -> gradtx.GradientTransformation:
    """Sophia-G's Gauss-Newton-Bartlett estimate: B * (grad of the loss on labels sampled from the model)^2."""

    def update(updates: Any, state: Any, params: Any = None, *, x: Any = None, key: Any = None, **extra: Any) -> Any:
        sampled = jax.random.categorical(key, jax.lax.stop_gradient(logits(params, x)))
        g = jax.grad(loss_fn)(params, x, sampled)
        return jax.tree.map(lambda t: x.shape[0] * t * t, g), state

    return gradtx.GradientTransformation(gradtx.init_empty_state, update)


OPTIMIZERS = {
    "AdamW": lambda: gradtx.adamw(1e-3, weight_decay=1e-4),
    "Muon": lambda: contrib.muon(0.02, adam_learning_rate=1e-3),
    "Schedule-Free AdamW": lambda: contrib.schedule_free_adamw(3e-3, warmup_steps=50),
    "Sophia-G": lambda: contrib.sophia(1e-3, b1=0.9, hessian_diagonal_fn=gnb_estimator()),
}


def run(name: str) -> tuple[np.ndarray, float, float]:
    x_train, y_train, x_val, y_val = data()
    tx = OPTIMIZERS[name]()
    params = init_params()
    state = tx.init(params)

    @jax.jit
    def step(params: Any, state: Any, i: jax.Array) -> Any:
        idx = jax.random.choice(jax.random.fold_in(jax.random.key(SEED), i), x_train.shape[0], (BATCH,), False)
        x, y = x_train[idx], y_train[idx]
        loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
        key = jax.random.fold_in(jax.random.key(SEED + 1), i)
        updates, state = tx.update(grads, state, params, x=x, key=key)
        return gradtx.apply_updates(params, updates), state, loss

    losses = []
    for i in range(STEPS):
        params, state, loss = step(params, state, jnp.asarray(i))
        losses.append(float(loss))
    if name.startswith("Schedule-Free"):
        params = contrib.schedule_free_eval_params(state, params)
    val_loss = float(loss_fn(params, x_val, y_val))
    accuracy = float(jnp.mean(jnp.argmax(logits(params, x_val), axis=1) == y_val))
    return np.asarray(losses), val_loss, accuracy


def main() -> None:
    fig, ax = plt.subplots(figsize=(7, 4))
    for name in OPTIMIZERS:
        losses, val_loss, accuracy = run(name)
        smooth = np.convolve(losses, np.ones(20) / 20, mode="valid")
        ax.plot(np.arange(len(smooth)) + 20, smooth, label=name)
        print(f"{name:20s} train {losses[-50:].mean():.4f}  val {val_loss:.4f}  accuracy {accuracy:.4f}")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("training loss (20-step mean)")
    ax.set_title("digits MLP, 600 steps of 128")
    ax.legend()
    fig.tight_layout()
    fig.savefig(OUT, dpi=110)


if __name__ == "__main__":
    main()
