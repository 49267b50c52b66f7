"""Hypothesis strategies for random parameter pytrees shared by the property tests."""

import jax.numpy as jnp
import numpy as np
from hypothesis import strategies as st

FLOAT_DTYPES = (jnp.float32, jnp.float64, jnp.bfloat16, jnp.float16)

shapes = st.lists(st.integers(1, 4), min_size=0, max_size=3).map(tuple)


@st.composite
def float_trees(draw, dtypes=FLOAT_DTYPES, max_leaves: int = 4, leaf_shapes=shapes):
    """A nested dict/list pytree of 1..max_leaves float arrays with random shapes and dtypes.

    ``leaf_shapes``: the strategy for each leaf's shape (eager tests pass a small fixed set, since
    every new shape/dtype pair compiles each jax primitive once more).
    """
    n = draw(st.integers(1, max_leaves))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    leaves = []
    for _ in range(n):
        shape = draw(leaf_shapes)
        dtype = draw(st.sampled_from(dtypes))
        leaves.append(jnp.asarray(rng.normal(size=shape), dtype))
    tree: dict = {}
    for i, leaf in enumerate(leaves):
        if i % 3 == 2:
            tree.setdefault("nested", {})[f"leaf{i}"] = leaf
        elif i % 3 == 1:
            tree.setdefault("seq", []).append(leaf)
        else:
            tree[f"leaf{i}"] = leaf
    return tree
