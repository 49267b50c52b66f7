"""A deep residual MLP with hundreds of parameter tensors: compile time of its training step, plain and stacked.

Each block has a kernel, a bias and a layer-norm scale and bias, so ``--blocks 200`` makes an
800-leaf model. The script builds the same training step (loss, gradients, ``clip_by_global_norm``
+ AdamW, ``apply_updates``) twice: with the optimizer as it is, and inside ``gradtx.stacked``,
which stacks the leaves of equal shape so that the optimizer compiles to a few kernels per shape
instead of a few per leaf (docs/compile_time.md). It prints the CPU seconds of tracing and
compiling each step and the wall time of a step, and checks that both compute the same update:
stacking changes the layout of the optimizer state, not the numbers.

Run with ``python examples/many_tensors.py``; ``--smoke`` uses 24 blocks and 5 steps.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import gradtx

WIDTH = 32


def init_params(key: jax.Array, blocks: int) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for i, k in enumerate(jax.random.split(key, blocks)):
        params[f"block_{i:03d}"] = {
            "dense": {
                "kernel": jax.random.normal(k, (WIDTH, WIDTH)) / np.sqrt(WIDTH),
                "bias": jnp.zeros(WIDTH),
            },
            "norm": {"scale": jnp.ones(WIDTH), "bias": jnp.zeros(WIDTH)},
        }
    return params


def loss_fn(params: dict[str, Any], x: jax.Array, y: jax.Array) -> jax.Array:
    h = x
    scale = 1.0 / np.sqrt(len(params))  # keeps the residual stream's size independent of the depth
    for name in sorted(params):
        block = params[name]
        z = jnp.tanh(h @ block["dense"]["kernel"] + block["dense"]["bias"])
        mean, var = z.mean(-1, keepdims=True), z.var(-1, keepdims=True)
        h = h + scale * (block["norm"]["scale"] * (z - mean) / jnp.sqrt(var + 1e-5) + block["norm"]["bias"])
    return jnp.mean((h.mean(-1) - y) ** 2)


def make_optimizer() -> gradtx.GradientTransformation:
    return gradtx.chain(gradtx.clip_by_global_norm(1.0), gradtx.adamw(1e-3, weight_decay=1e-4))


def run(tx: gradtx.GradientTransformation, params: Any, data: tuple[jax.Array, jax.Array], steps: int) -> tuple:
    def step(params: Any, state: Any, x: jax.Array, y: jax.Array) -> tuple[Any, Any, jax.Array]:
        loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
        updates, state = tx.update(grads, state, params)
        return gradtx.apply_updates(params, updates), state, loss

    state = tx.init(params)
    start = time.process_time()
    compiled = jax.jit(step).lower(params, state, *data).compile()
    compile_s = time.process_time() - start
    start = time.perf_counter()
    loss = jnp.zeros(())
    for _ in range(steps):
        params, state, loss = compiled(params, state, *data)
    jax.block_until_ready(params)
    return params, float(loss), compile_s, (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description="Compile time of a many-tensor training step, plain and stacked.")
    parser.add_argument("--blocks", type=int, default=200)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--smoke", action="store_true", help="24 blocks, 5 steps")
    args = parser.parse_args()
    blocks, steps = (24, 5) if args.smoke else (args.blocks, args.steps)

    key_params, key_x = jax.random.split(jax.random.key(0))
    params = init_params(key_params, blocks)
    x = jax.random.normal(key_x, (64, WIDTH))
    data = (x, jnp.sin(x.sum(-1)))
    n_leaves = len(jax.tree.leaves(params))
    print(f"{blocks} blocks, {n_leaves} parameter tensors, {sum(p.size for p in jax.tree.leaves(params)):,} parameters")

    plain = run(make_optimizer(), params, data, steps)
    stacked_tx = gradtx.stacked(make_optimizer())
    stacked = run(stacked_tx, params, data, steps)
    groups = sorted(stacked_tx.init(params).group_sizes)
    print(f"stacked groups: {', '.join(groups)}")
    print(f"{'optimizer':<28}{'trace+compile CPU s':>20}{'step ms':>10}{'final loss':>12}")
    for name, (_, loss, compile_s, step_s) in (("clip + adamw", plain), ("stacked(clip + adamw)", stacked)):
        print(f"{name:<28}{compile_s:>20.2f}{step_s * 1e3:>10.2f}{loss:>12.5f}")
    print(f"compile time ratio stacked/plain: {stacked[2] / plain[2]:.2f}")
    # Stacking changes the layout, not the numbers: the first updates agree to float32 rounding
    # (the global norm sums its squares in another order). Later steps drift apart by more in a
    # few entries, where AdamW divides tiny moments by tiny moments; in float64 the two runs end
    # within 1e-12 of each other (tests/wrappers/test_stacked.py checks that).
    grads = jax.grad(loss_fn)(params, *data)
    first = [jax.jit(tx.update)(grads, tx.init(params), params)[0] for tx in (make_optimizer(), stacked_tx)]
    for a, b in zip(jax.tree.leaves(first[0]), jax.tree.leaves(first[1]), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-10)
    print("same first update: yes")


if __name__ == "__main__":
    main()
