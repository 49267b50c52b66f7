"""Test set-up: 8 CPU devices, float64 available, strict dtype promotion, warnings are errors.

The environment must be set before jax is imported anywhere, hence at the top of conftest.
"""

import os

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax
from hypothesis import HealthCheck, settings

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_dtype_promotion", "strict")

# Deterministic property tests: a fixed seed per test (derandomize) and no deadline, since
# the first example of a jitted test pays for compilation.
settings.register_profile(
    "gradtx",
    derandomize=True,
    deadline=None,
    max_examples=25,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile("gradtx")
