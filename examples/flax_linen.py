"""Flax linen + gradtx: a ``TrainState`` trained with a gradtx chain, checkpointed with orbax, resumed.

The run is interrupted on purpose half-way: a second ``TrainState`` is built from nothing, the
latest checkpoint is restored into it (the optimizer state too: AdamW's moments, the schedule's
step count) and training goes on. Because each batch is a function of the step number, the
resumed run must end exactly where an uninterrupted run ends, and the script checks that it does.

gradtx's state is plain pytrees of arrays (NamedTuples), so orbax saves and restores it with no
registration; restoring against ``jax.eval_shape`` of a fresh state gives orbax the target
structure, shapes and dtypes without allocating anything.

Run with ``python examples/flax_linen.py`` (checkpoints under ``out/flax_linen_checkpoints``);
``--smoke`` runs a few steps.
"""

from __future__ import annotations

import argparse
import pathlib
import shutil
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
from flax import linen as nn
from flax.training import train_state
from sklearn.datasets import load_digits

import gradtx


class MLP(nn.Module):
    hidden: int = 64

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = nn.gelu(nn.Dense(self.hidden)(x))
        return nn.Dense(10)(x)


def load_data() -> tuple[jax.Array, jax.Array]:
    pixels, labels = load_digits(return_X_y=True)
    return jnp.asarray(np.asarray(pixels, np.float32) / 16.0), jnp.asarray(np.asarray(labels, np.int32))


def create_state(total_steps: int, seed: int = 0) -> train_state.TrainState:
    """A fresh TrainState: MLP params and a gradtx chain with its own (empty) state."""
    model = MLP()
    params = model.init(jax.random.key(seed), jnp.zeros((1, 64), jnp.float32))
    schedule = gradtx.warmup_cosine_decay_schedule(0.0, 3e-3, max(1, total_steps // 10), total_steps)
    tx = gradtx.chain(gradtx.clip_by_global_norm(1.0), gradtx.adamw(schedule, weight_decay=1e-3))
    # TrainState annotates optax's transform type; gradtx's is the same (init, update) pair.
    return train_state.TrainState.create(apply_fn=model.apply, params=params, tx=tx)  # pyright: ignore[reportArgumentType]


@jax.jit
def train_step(state: train_state.TrainState, x: jax.Array, y: jax.Array) -> tuple[train_state.TrainState, jax.Array]:
    def loss_fn(params: Any) -> jax.Array:
        log_probs = jax.nn.log_softmax(state.apply_fn(params, x))
        return -jnp.mean(jnp.take_along_axis(log_probs, y[:, None], axis=1))

    loss, grads = jax.value_and_grad(loss_fn)(state.params)
    return state.apply_gradients(grads=grads), loss


def batch(x: jax.Array, y: jax.Array, step: int, size: int) -> tuple[jax.Array, jax.Array]:
    """The batch of a step: a function of the step number only, so a resumed run sees the same data."""
    idx = np.random.default_rng(step).choice(x.shape[0], size, replace=False)
    return x[idx], y[idx]


def train(state: train_state.TrainState, data: Any, until: int, manager: Any, save_every: int) -> Any:
    x, y = data
    loss = jnp.nan
    while int(state.step) < until:
        state, loss = train_step(state, *batch(x, y, int(state.step), 64))
        if manager is not None and int(state.step) % save_every == 0:
            manager.save(int(state.step), args=ocp.args.StandardSave(state))
    return state, float(loss)


def main(argv: list[str] | None = None) -> float:
    """Trains with an interruption and a resume; returns the largest parameter difference to an uninterrupted run.

    Args:
      argv: command-line arguments (default: ``sys.argv[1:]``).

    Returns:
      ``max |resumed - uninterrupted|`` over the parameters (0.0 when resuming is exact).

    Raises:
      SystemExit: when the resumed run does not match the uninterrupted one.
    """
    parser = argparse.ArgumentParser(description="Flax linen TrainState with a gradtx optimizer and orbax resume.")
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("out/flax_linen_checkpoints"))
    parser.add_argument("--smoke", action="store_true", help="a few steps, for CI")
    args = parser.parse_args(argv)
    total = 8 if args.smoke else args.steps
    if total < 4:
        parser.error("--steps must be >= 4")
    save_every, interrupt_at = max(1, total // 8), total // 2
    data = load_data()

    # The reference: one uninterrupted run.
    reference, _ = train(create_state(total), data, total, None, save_every)

    # The same run, checkpointed, "killed" half-way...
    directory = args.out.resolve()
    shutil.rmtree(directory, ignore_errors=True)
    options = ocp.CheckpointManagerOptions(max_to_keep=2)
    with ocp.CheckpointManager(directory, options=options) as manager:
        _, loss = train(create_state(total), data, interrupt_at, manager, save_every)
        manager.wait_until_finished()
        print(f"interrupted at step {interrupt_at} (loss {loss:.4f}); checkpoints at steps {manager.all_steps()}")

    # ... and resumed from nothing but the checkpoint directory, as a new process would.
    with ocp.CheckpointManager(directory, options=options) as manager:
        fresh = create_state(total)
        latest = manager.latest_step()
        restored = manager.restore(latest, args=ocp.args.StandardRestore(jax.eval_shape(lambda: fresh)))
        state = fresh.replace(step=restored.step, params=restored.params, opt_state=restored.opt_state)
        print(f"resumed from step {int(state.step)}")
        state, loss = train(state, data, total, manager, save_every)
        manager.wait_until_finished()

    x, y = data
    accuracy = float(jnp.mean(jnp.argmax(state.apply_fn(state.params, x), axis=-1) == y))
    diff = max(
        float(jnp.max(jnp.abs(a - b)))
        for a, b in zip(jax.tree.leaves(state.params), jax.tree.leaves(reference.params), strict=True)
    )
    print(f"finished at step {int(state.step)}: loss {loss:.4f}, training accuracy {accuracy:.1%}")
    print(f"resumed run vs uninterrupted run: max |param difference| = {diff:.2e}")
    if diff > 1e-6:
        raise SystemExit("the resumed run diverged from the uninterrupted one: the checkpoint lost state")
    return diff


if __name__ == "__main__":
    main()
