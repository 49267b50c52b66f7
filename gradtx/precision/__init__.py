"""Mixed precision: dynamic loss scaling.

Every name here is also re-exported flat as ``gradtx.<name>``.
"""

from gradtx.precision._loss_scale import DynamicLossScale as DynamicLossScale
from gradtx.precision._loss_scale import NoOpLossScale as NoOpLossScale
