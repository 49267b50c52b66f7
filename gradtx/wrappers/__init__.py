"""Transforms of transforms: accumulation, skipping non-finite steps, conditionals, lookahead,
averaging, freezing, flattening, stacking, monitoring.

Every name here is also re-exported flat as ``gradtx.<name>``.
"""

from gradtx.wrappers._accumulate import ApplyEvery as ApplyEvery
from gradtx.wrappers._accumulate import MultiSteps as MultiSteps
from gradtx.wrappers._accumulate import MultiStepsState as MultiStepsState
from gradtx.wrappers._accumulate import ShouldSkipUpdateFunction as ShouldSkipUpdateFunction
from gradtx.wrappers._accumulate import apply_every as apply_every
from gradtx.wrappers._accumulate import skip_large_updates as skip_large_updates
from gradtx.wrappers._accumulate import skip_not_finite as skip_not_finite
from gradtx.wrappers._averaging import EmaParamsState as EmaParamsState
from gradtx.wrappers._averaging import averaged_params as averaged_params
from gradtx.wrappers._averaging import ema_params as ema_params
from gradtx.wrappers._averaging import incremental_update as incremental_update
from gradtx.wrappers._averaging import periodic_update as periodic_update
from gradtx.wrappers._conditional import ConditionallyMaskState as ConditionallyMaskState
from gradtx.wrappers._conditional import ConditionallyTransformState as ConditionallyTransformState
from gradtx.wrappers._conditional import ConditionFn as ConditionFn
from gradtx.wrappers._conditional import conditionally_mask as conditionally_mask
from gradtx.wrappers._conditional import conditionally_transform as conditionally_transform
from gradtx.wrappers._finite import ApplyIfFiniteState as ApplyIfFiniteState
from gradtx.wrappers._finite import ZeroNansState as ZeroNansState
from gradtx.wrappers._finite import all_finite as all_finite
from gradtx.wrappers._finite import apply_if_finite as apply_if_finite
from gradtx.wrappers._finite import zero_nans as zero_nans
from gradtx.wrappers._flatten import flatten as flatten
from gradtx.wrappers._freeze import freeze as freeze
from gradtx.wrappers._freeze import selective_transform as selective_transform
from gradtx.wrappers._lookahead import LookaheadParams as LookaheadParams
from gradtx.wrappers._lookahead import LookaheadState as LookaheadState
from gradtx.wrappers._lookahead import lookahead as lookahead
from gradtx.wrappers._monitoring import MonitorState as MonitorState
from gradtx.wrappers._monitoring import SnapshotState as SnapshotState
from gradtx.wrappers._monitoring import measure_with_ema as measure_with_ema
from gradtx.wrappers._monitoring import monitor as monitor
from gradtx.wrappers._monitoring import snapshot as snapshot
from gradtx.wrappers._stacked import StackedState as StackedState
from gradtx.wrappers._stacked import stacked as stacked
