"""Fine-tuning with parameter groups: a frozen backbone, and layer-wise learning-rate decay.

An MLP backbone (``embed``, ``block_0``, ``block_1``) is pre-trained on the digits 0-4, then
fine-tuned with a new ``head`` on the digits 5-9 from only 20 labelled examples per class, three ways:

- ``scratch``: everything trained from a random start, one learning rate (the baseline);
- ``frozen backbone``: ``partition`` sends the backbone to ``set_to_zero()`` (no optimizer state,
  params bit-for-bit unchanged) and the head to AdamW;
- ``layer-wise decay``: ``layerwise_lr_decay`` trains every layer, the head at the full rate and
  each layer below at ``decay`` times the rate of the one above, so the pre-trained features
  move least where they are most general.

The script prints each group's learning rate, how far each layer moved, how many floats of
optimizer state each strategy keeps, and the validation accuracy on the digits 5-9.

Run with ``python examples/finetune_param_groups.py``; ``--smoke`` runs a few steps.
"""

from __future__ import annotations

import argparse
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from sklearn.datasets import load_digits

import gradtx

LAYERS = ("embed", "block_0", "block_1", "head")
DEPTH = {name: depth for depth, name in enumerate(LAYERS)}  # 0 = closest to the input; 3 = the head
WIDTH = 96


def init_params(key: jax.Array) -> dict[str, Any]:
    sizes = {"embed": (64, WIDTH), "block_0": (WIDTH, WIDTH), "block_1": (WIDTH, WIDTH), "head": (WIDTH, 5)}
    params = {}
    for name, key_ in zip(LAYERS, jax.random.split(key, len(LAYERS))):
        fan_in, fan_out = sizes[name]
        kernel = jax.random.normal(key_, (fan_in, fan_out), jnp.float32) * jnp.sqrt(2.0 / fan_in)
        params[name] = {"kernel": kernel, "bias": jnp.zeros((fan_out,), jnp.float32)}
    return params


def forward(params: Any, x: jax.Array) -> jax.Array:
    h = x
    for name in LAYERS[:-1]:
        h = jax.nn.gelu(h @ params[name]["kernel"] + params[name]["bias"])
    return h @ params["head"]["kernel"] + params["head"]["bias"]


def loss_fn(params: Any, x: jax.Array, y: jax.Array) -> jax.Array:
    log_probs = jax.nn.log_softmax(forward(params, x))
    return -jnp.mean(jnp.take_along_axis(log_probs, y[:, None], axis=1))


def accuracy(params: Any, x: jax.Array, y: jax.Array) -> float:
    return float(jnp.mean(jnp.argmax(forward(params, x), axis=-1) == y))


def fit(tx: gradtx.GradientTransformation, params: Any, x: jax.Array, y: jax.Array, steps: int) -> tuple[Any, Any]:
    """``steps`` full-batch steps in one ``lax.scan``; returns the params and the optimizer state."""

    def step(carry: Any, _: Any) -> Any:
        p, s = carry
        grads = jax.grad(loss_fn)(p, x, y)
        updates, s = tx.update(grads, s, p)
        return (gradtx.apply_updates(p, updates), s), None

    (params, state), _ = jax.jit(lambda p: jax.lax.scan(step, (p, tx.init(p)), length=steps))(params)
    return params, state


def depth_of(name: str) -> int:
    """The depth of a parameter from its path, e.g. ``block_1/kernel`` -> 2."""
    return DEPTH[name.split("/")[0]]


def state_floats(state: Any) -> int:
    return sum(int(np.prod(jnp.shape(x))) for x in jax.tree.leaves(state) if jnp.ndim(x) > 0)


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Pre-trains, fine-tunes three ways, prints what each did; returns the validation accuracies.

    Args:
      argv: command-line arguments (default: ``sys.argv[1:]``).

    Returns:
      ``{strategy: validation accuracy on the digits 5-9}``.

    Raises:
      SystemExit: when the frozen backbone moved, or layer-wise decay did not order the layers.
    """
    parser = argparse.ArgumentParser(description="Fine-tuning with a frozen backbone and layer-wise LR decay.")
    parser.add_argument("--steps", type=int, default=300, help="full-batch steps of each phase")
    parser.add_argument("--decay", type=float, default=0.5)
    parser.add_argument("--smoke", action="store_true", help="a few steps, for CI")
    args = parser.parse_args(argv)
    steps = 10 if args.smoke else args.steps
    if steps < 1 or not 0 < args.decay <= 1:
        parser.error("--steps must be >= 1 and --decay in (0, 1]")

    pixels, labels = load_digits(return_X_y=True)
    x_all, y_all = jnp.asarray(np.asarray(pixels, np.float32) / 16.0), np.asarray(labels, np.int32)
    old, new = y_all < 5, y_all >= 5
    x_pre, y_pre = x_all[old], jnp.asarray(y_all[old])
    # Few-shot: 20 examples of each new class to train on, the rest to validate.
    rng = np.random.default_rng(0)
    few = np.concatenate([rng.choice(np.flatnonzero(y_all == c), 20, replace=False) for c in range(5, 10)])
    val = np.setdiff1d(np.flatnonzero(new), few)
    x_ft, y_ft = x_all[few], jnp.asarray(y_all[few] - 5)
    x_val, y_val = x_all[val], jnp.asarray(y_all[val] - 5)

    key_pre, key_head, key_scratch = jax.random.split(jax.random.key(0), 3)
    pretrained, _ = fit(gradtx.adamw(1e-3, weight_decay=1e-4), init_params(key_pre), x_pre, y_pre, steps)
    print(f"pre-trained on digits 0-4: accuracy {accuracy(pretrained, x_pre, y_pre):.1%}")
    start = {**pretrained, "head": init_params(key_head)["head"]}  # a new head for the new classes

    lr = 1e-3
    frozen_labels = {name: "train" if name == "head" else "frozen" for name in LAYERS}
    strategies = {
        "scratch": (gradtx.adamw(lr, weight_decay=1e-4), init_params(key_scratch)),
        "frozen backbone": (
            # A prefix of the params' tree labels each layer's whole subtree.
            gradtx.partition({"train": gradtx.adamw(lr, weight_decay=1e-4), "frozen": gradtx.set_to_zero()},
                             frozen_labels),
            start,
        ),
        "layer-wise decay": (
            gradtx.layerwise_lr_decay(lambda rate: gradtx.adamw(rate, weight_decay=1e-4), lr, depth_of,
                                      num_layers=len(LAYERS) - 1, decay=args.decay),
            start,
        ),
    }  # fmt: skip

    _, scales = gradtx.layerwise_decay_groups(start, depth_of, num_layers=len(LAYERS) - 1, decay=args.decay)
    print("layer-wise decay learning rates: " + ", ".join(f"{n} {lr * scales[DEPTH[n]]:.2e}" for n in LAYERS))

    results, moved = {}, {}
    for name, (tx, init) in strategies.items():
        params, state = fit(tx, init, x_ft, y_ft, steps)
        results[name] = accuracy(params, x_val, y_val)
        moved[name] = {
            layer: float(jnp.linalg.norm(params[layer]["kernel"] - init[layer]["kernel"]))
            / float(jnp.linalg.norm(init[layer]["kernel"]))
            for layer in LAYERS
        }
        print(f"{name:17} validation accuracy {results[name]:6.1%}   optimizer state {state_floats(state):6d} floats")

    print("relative change of each kernel, |w - w0| / |w0|:")
    print(f"{'':17} " + " ".join(f"{layer:>9}" for layer in LAYERS))
    for name in strategies:
        print(f"{name:17} " + " ".join(f"{moved[name][layer]:9.2e}" for layer in LAYERS))

    if any(moved["frozen backbone"][layer] != 0.0 for layer in LAYERS[:-1]):
        raise SystemExit("the frozen backbone moved")
    llrd = [moved["layer-wise decay"][layer] for layer in LAYERS]
    if not args.smoke and not llrd[0] < llrd[-1]:
        raise SystemExit("layer-wise decay should move the embedding less than the head")
    return results


if __name__ == "__main__":
    main()
