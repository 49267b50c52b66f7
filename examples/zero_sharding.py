"""ZeRO stages 0-3 and host offload on 8 simulated devices: per-device optimizer-state memory.

A small transformer-like model (token embedding, one causal attention block, an MLP; the
embedding is tied to the output) learns a synthetic next-token rule, data-parallel over a
``("data",)`` mesh of 8 CPU devices. For each setup it prints the bytes each device holds
between steps, measured from the arrays' ``addressable_shards``, next to the ZeRO paper's
prediction (Rajbhandari et al. 2020, https://arxiv.org/abs/1910.02054): with P params and N
devices, float32 params (4 bytes) and AdamW's float32 moments (K = 8 bytes per param):

    stage 0: params 4P,   state K P        (plus the 4-byte step count everywhere)
    stage 1: params 4P,   state K P / N
    stage 2: params 4P,   state K P / N    (gradients are reduce-scattered inside the step)
    stage 3: params 4P/N, state K P / N
    offload: stage 1 with the state in host memory between steps (none on the device)

Run: ``python examples/zero_sharding.py`` (``--smoke`` for a two-step run). docs/sharding.md
shows this printout; tests/sharding/test_example.py checks that they agree.
"""

from __future__ import annotations

import argparse
import os

# 8 simulated devices: set before jax is imported.
os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax
import jax.numpy as jnp
import numpy as np

import gradtx

VOCAB, D_MODEL, D_MLP, SEQ, BATCH = 512, 64, 256, 16, 16
K_ADAMW = 8  # bytes of optimizer state per param: float32 mu and nu


def init_params(key: jax.Array) -> dict[str, jax.Array]:
    keys = jax.random.split(key, 7)

    def dense(k: jax.Array, shape: tuple[int, int]) -> jax.Array:
        return jax.random.normal(k, shape, jnp.float32) / np.sqrt(shape[0])

    return {
        "embed": jax.random.normal(keys[0], (VOCAB, D_MODEL), jnp.float32) * 0.1,
        "wq": dense(keys[1], (D_MODEL, D_MODEL)),
        "wk": dense(keys[2], (D_MODEL, D_MODEL)),
        "wv": dense(keys[3], (D_MODEL, D_MODEL)),
        "wo": dense(keys[4], (D_MODEL, D_MODEL)),
        "w_in": dense(keys[5], (D_MODEL, D_MLP)),
        "w_out": dense(keys[6], (D_MLP, D_MODEL)),
        "norm1": jnp.ones(D_MODEL, jnp.float32),
        "norm2": jnp.ones(D_MODEL, jnp.float32),
    }


def rms_norm(x: jax.Array, scale: jax.Array) -> jax.Array:
    return x * jax.lax.rsqrt(jnp.mean(x * x, axis=-1, keepdims=True) + 1e-6) * scale


def loss_fn(params: dict[str, jax.Array], tokens: jax.Array) -> jax.Array:
    """Next-token cross-entropy of one pre-norm attention + MLP block."""
    x = params["embed"][tokens[:, :-1]]
    h = rms_norm(x, params["norm1"])
    q, k, v = h @ params["wq"], h @ params["wk"], h @ params["wv"]
    scores = (q @ jnp.swapaxes(k, -1, -2)) / np.sqrt(D_MODEL)
    causal = jnp.tril(jnp.ones((SEQ - 1, SEQ - 1), bool))
    attn = jax.nn.softmax(jnp.where(causal, scores, -1e9), axis=-1)
    x = x + (attn @ v) @ params["wo"]
    x = x + jax.nn.gelu(rms_norm(x, params["norm2"]) @ params["w_in"]) @ params["w_out"]
    logits = x @ params["embed"].T
    logp = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.mean(jnp.take_along_axis(logp, tokens[:, 1:, None], axis=-1))


def batches(steps: int) -> list[np.ndarray]:
    """Sequences that follow ``t_{i+1} = (5 t_i + 3) mod VOCAB`` from random starts."""
    rng = np.random.default_rng(0)
    out = []
    for _ in range(steps):
        seq = np.empty((BATCH, SEQ), np.int32)
        seq[:, 0] = rng.integers(0, VOCAB, BATCH)
        for i in range(1, SEQ):
            seq[:, i] = (5 * seq[:, i - 1] + 3) % VOCAB
        out.append(seq)
    return out


def bytes_in(tree: object, memory_kind: str) -> int:
    """Bytes device 0 holds of ``tree`` in ``memory_kind`` memory."""
    device0 = jax.devices()[0]
    return sum(
        s.data.nbytes
        for leaf in jax.tree.leaves(tree)
        if leaf.sharding.memory_kind == memory_kind
        for s in leaf.addressable_shards
        if s.device == device0
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="ZeRO stages 0-3 and host offload on 8 simulated devices")
    parser.add_argument("--smoke", action="store_true", help="two steps per setup (for CI)")
    args = parser.parse_args()
    steps = 2 if args.smoke else 30

    mesh = jax.make_mesh((8,), ("data",))
    n = mesh.shape["data"]
    params0 = init_params(jax.random.PRNGKey(0))
    p = sum(x.size for x in jax.tree.leaves(params0))
    tx = gradtx.adamw(3e-3, weight_decay=1e-2)
    data = batches(steps)
    print(f"P = {p:,} params, N = {n} devices, K = {K_ADAMW} bytes of AdamW state per param")
    print()
    print("| setup | params / device | state on device / device | state in host memory / device | predicted state |")
    print("| --- | --- | --- | --- | --- |")
    setups = [("stage 0", 0, False), ("stage 1", 1, False), ("stage 2", 2, False), ("stage 3", 3, False)]
    setups.append(("stage 1 + offload", 1, True))
    losses = {}
    for name, stage, offload in setups:
        if offload and "pinned_host" not in {m.kind for m in jax.devices()[0].addressable_memories()}:
            print(f"| {name} | skipped: this backend has no pinned_host memory | | | |")
            continue
        zero = gradtx.sharding.zero_train_step(loss_fn, tx, mesh, params0, zero_stage=stage, offload=offload)
        params, state = zero.init(params0)
        for batch in data:
            params, state, loss = zero.step(params, state, batch)
        losses[name] = float(loss)
        count = 4  # the int32 step count, replicated
        predicted = (K_ADAMW * p if stage == 0 else K_ADAMW * p // n) + count
        kind = "pinned_host" if offload else "device"
        measured = bytes_in(state, kind)
        assert measured == predicted, (name, measured, predicted)
        print(
            f"| {name} | {bytes_in(params, 'device'):,} B | {bytes_in(state, 'device'):,} B | "
            f"{bytes_in(state, 'pinned_host'):,} B | {predicted:,} B |"
        )
    print()
    first = next(iter(losses.values()))
    spread = max(abs(v - first) for v in losses.values())
    print(f"loss after {steps} steps: {first:.4f} in every setup (largest difference {spread:.1e}, float32)")


if __name__ == "__main__":
    main()
