"""Mixed precision and low-memory state: dynamic loss scaling, quantized state, state memory.

Every name here is also re-exported flat as ``gradtx.<name>``.
"""

from gradtx.precision._loss_scale import DynamicLossScale as DynamicLossScale
from gradtx.precision._loss_scale import NoOpLossScale as NoOpLossScale
from gradtx.precision._memory import state_bytes_per_param as state_bytes_per_param
from gradtx.precision._quantized import QuantizedArray as QuantizedArray
from gradtx.precision._quantized import quantized_state as quantized_state
