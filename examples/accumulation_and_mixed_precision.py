"""Gradient accumulation and 16-bit compute: ``MultiSteps``, ``apply_if_finite`` and ``DynamicLossScale``.

An MLP on scikit-learn's digits, float32 *master* params throughout, in four runs:

1. ``float32, batch 128``: the reference.
2. ``float32, 4 x 32 accumulated``: ``MultiSteps(adamw, 4)`` over micro-batches of 32. The mean
   of four micro-batch gradients is the gradient of their union, so this run must reproduce run 1
   (checked to float32 rounding): accumulation trades memory for steps, not for accuracy.
3. ``bfloat16 compute, accumulated, one corrupted micro-batch``: the forward and backward passes
   in bfloat16, and one micro-batch holding a NaN pixel. ``apply_if_finite`` around ``MultiSteps``
   drops that micro-batch's gradient (it never reaches the accumulator) and training goes on.
   bfloat16 has float32's exponent range: no loss scaling needed.
4. ``float16 compute, DynamicLossScale``: float16 overflows above 65504, so the loss is scaled
   by ``S`` to keep small gradients from underflowing, the gradients unscaled before the
   optimizer, ``S`` halved on every overflow (that step skipped by ``apply_if_finite``) and
   doubled after ``period`` finite steps. Starting from a deliberately too large ``S = 2^24``
   shows the first steps being skipped while ``S`` finds its level.

Run with ``python examples/accumulation_and_mixed_precision.py``; ``--smoke`` runs a few steps.
"""

from __future__ import annotations

import argparse
import itertools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from sklearn.datasets import load_digits

import gradtx

MICRO = 4  # micro-batches per optimizer step
MICRO_BATCH = 32


def init_mlp(key: jax.Array, sizes: tuple[int, ...] = (64, 128, 10)) -> dict[str, Any]:
    params = {}
    for i, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes)):
        key, sub = jax.random.split(key)
        params[f"dense_{i}"] = {
            "kernel": jax.random.normal(sub, (fan_in, fan_out), jnp.float32) * jnp.sqrt(2.0 / fan_in),
            "bias": jnp.zeros((fan_out,), jnp.float32),
        }
    return params


def forward(params: Any, x: jax.Array, compute_dtype: Any = jnp.float32) -> jax.Array:
    """The logits, computed in ``compute_dtype``: the float32 master params are cast on the way in."""
    p = jax.tree.map(lambda w: w.astype(compute_dtype), params)
    h = x.astype(compute_dtype)
    for i in range(len(p)):
        h = h @ p[f"dense_{i}"]["kernel"] + p[f"dense_{i}"]["bias"]
        if i < len(p) - 1:
            h = jax.nn.gelu(h)
    return h


def loss_fn(params: Any, x: jax.Array, y: jax.Array, compute_dtype: Any) -> jax.Array:
    # The softmax in float32: cheap, and safe from float16's small range.
    log_probs = jax.nn.log_softmax(forward(params, x, compute_dtype).astype(jnp.float32))
    return -jnp.mean(jnp.take_along_axis(log_probs, y[:, None], axis=1))


class Run(NamedTuple):
    name: str
    batch: int  # examples per call of the step
    accumulate: bool
    compute_dtype: Any
    loss_scale: Any  # a DynamicLossScale or NoOpLossScale
    corrupt_call: int | None = None  # the call whose batch gets a NaN pixel


def make_tx(run: Run) -> gradtx.GradientTransformation:
    tx = gradtx.adamw(1e-3, weight_decay=1e-4)
    if run.accumulate:
        tx = gradtx.MultiSteps(tx, every_k_schedule=MICRO).gradient_transformation()
    # Outermost: a non-finite gradient is dropped before it reaches the accumulator or Adam's moments.
    return gradtx.apply_if_finite(tx, max_consecutive_errors=10)


def train(run: Run, data: tuple[np.ndarray, np.ndarray], optimizer_steps: int) -> dict[str, Any]:
    x_all, y_all = data
    tx = make_tx(run)
    params = init_mlp(jax.random.key(0))
    opt_state = tx.init(params)
    loss_scale = run.loss_scale

    @jax.jit
    def step(params: Any, opt_state: Any, loss_scale: Any, x: jax.Array, y: jax.Array) -> Any:
        loss, grads = jax.value_and_grad(lambda p: loss_scale.scale(loss_fn(p, x, y, run.compute_dtype)))(params)
        grads = loss_scale.unscale(grads)
        loss_scale = loss_scale.adjust(gradtx.all_finite(grads))
        updates, opt_state = tx.update(grads, opt_state, params)
        return gradtx.apply_updates(params, updates), opt_state, loss_scale, loss_scale.unscale(loss)

    calls = optimizer_steps * (MICRO if run.accumulate else 1)
    losses = []
    for call in range(calls):
        # Both kinds of run see the same examples: the batch of optimizer step s is 128 examples
        # drawn with seed s, and its micro-batches are its four quarters.
        opt_step, quarter = divmod(call, MICRO) if run.accumulate else (call, None)
        idx = np.random.default_rng(opt_step).choice(len(x_all), MICRO * MICRO_BATCH, replace=False)
        if quarter is not None:
            idx = idx[quarter * MICRO_BATCH : (quarter + 1) * MICRO_BATCH]
        x, y = x_all[idx], y_all[idx]  # fancy indexing copies: corrupting x leaves the data alone
        if call == run.corrupt_call:
            x[0, 0] = np.nan
        params, opt_state, loss_scale, loss = step(params, opt_state, loss_scale, jnp.asarray(x), jnp.asarray(y))
        losses.append(float(loss))
    accuracy = jnp.mean(jnp.argmax(forward(params, jnp.asarray(x_all)), axis=-1) == jnp.asarray(y_all))
    return {
        "params": params,
        "skipped": int(opt_state.total_notfinite),
        "loss": float(np.mean([v for v in losses[-MICRO:] if np.isfinite(v)] or [np.nan])),
        "accuracy": float(accuracy),
        "loss_scale": float(loss_scale.loss_scale),
    }


def main(argv: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """Runs the four configurations and prints a table; returns each run's results.

    Args:
      argv: command-line arguments (default: ``sys.argv[1:]``).

    Returns:
      ``{run name: {"skipped", "loss", "accuracy", "loss_scale", "params"}}``.

    Raises:
      SystemExit: when accumulation does not reproduce the large batch, or a run did not learn.
    """
    parser = argparse.ArgumentParser(description="MultiSteps, apply_if_finite and DynamicLossScale on the digits.")
    parser.add_argument("--steps", type=int, default=150, help="optimizer steps per run")
    parser.add_argument("--smoke", action="store_true", help="a few steps, for CI")
    args = parser.parse_args(argv)
    steps = 6 if args.smoke else args.steps
    if steps < 2:
        parser.error("--steps must be >= 2")
    pixels, labels = load_digits(return_X_y=True)
    data = (np.asarray(pixels, np.float32) / 16.0, np.asarray(labels, np.int32))

    no_scaling = gradtx.NoOpLossScale()
    runs = [
        Run("float32, batch 128", MICRO * MICRO_BATCH, False, jnp.float32, no_scaling),
        Run("float32, 4 x 32 accumulated", MICRO_BATCH, True, jnp.float32, no_scaling),
        Run("bfloat16, 4 x 32, one NaN batch", MICRO_BATCH, True, jnp.bfloat16, no_scaling, corrupt_call=5),
        Run("float16, loss scale from 2^24", MICRO * MICRO_BATCH, False, jnp.float16,
            gradtx.DynamicLossScale(jnp.float32(2.0**24), period=50)),
    ]  # fmt: skip
    results = {run.name: train(run, data, steps) for run in runs}

    width = max(len(r.name) for r in runs)
    print(f"{'run':{width}}  {'skipped':>7}  {'last loss':>9}  {'accuracy':>8}  {'loss scale':>10}")
    for name, r in results.items():
        print(f"{name:{width}}  {r['skipped']:7d}  {r['loss']:9.4f}  {r['accuracy']:8.1%}  {r['loss_scale']:10.0f}")

    big, accumulated = results[runs[0].name]["params"], results[runs[1].name]["params"]
    diff = max(float(jnp.max(jnp.abs(a - b))) for a, b in zip(jax.tree.leaves(big), jax.tree.leaves(accumulated)))
    print(f"accumulated vs large batch: max |param difference| = {diff:.1e} after {steps} optimizer steps")
    if diff > 1e-4:
        raise SystemExit("MultiSteps did not reproduce the large-batch run")
    if results[runs[2].name]["skipped"] != 1:
        raise SystemExit("apply_if_finite should have skipped exactly the corrupted micro-batch")
    if not args.smoke and min(r["accuracy"] for r in results.values()) < 0.8:
        raise SystemExit("a run did not learn")
    return results


if __name__ == "__main__":
    main()
