"""Sharded optimizer state: where each state leaf lives, ZeRO stages 0-3 and host offload.

Sharding is data: these functions compute ``jax.sharding.NamedSharding`` pytrees for
``jax.jit``'s ``in_shardings``/``out_shardings`` (or ``jax.device_put``, or a checkpoint's
restore target), and XLA's partitioner does the communication. The names live here only (optax
has no such names), not flat in :mod:`gradtx`.
"""

from gradtx.sharding._offload import with_memory_kind as with_memory_kind
from gradtx.sharding._state import gradient_shardings as gradient_shardings
from gradtx.sharding._state import per_device_bytes as per_device_bytes
from gradtx.sharding._state import state_shardings as state_shardings
from gradtx.sharding._zero import ZeroTrainStep as ZeroTrainStep
from gradtx.sharding._zero import zero_train_step as zero_train_step
