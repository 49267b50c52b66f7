"""Gradient transforms, the building blocks of every optimizer: one private module per family.

Mirrors ``optax.transforms``; every name here is also re-exported flat as ``gradtx.<name>``.
"""

# optax.transforms also holds combinators and wrappers that gradtx keeps in its core and in
# gradtx.wrappers (chain, masked, partition, MultiSteps, ...): the same objects are re-exported
# here, so that `optax.transforms.X` code runs under `import gradtx as optax`.
from gradtx._combine import chain as chain
from gradtx._combine import named_chain as named_chain
from gradtx._masking import MaskedNode as MaskedNode
from gradtx._masking import MaskedState as MaskedState
from gradtx._masking import masked as masked
from gradtx._partition import PartitionState as PartitionState
from gradtx._partition import partition as partition
from gradtx.transforms._adam import ScaleByAdamState as ScaleByAdamState
from gradtx.transforms._adam import ScaleByAmsgradState as ScaleByAmsgradState
from gradtx.transforms._adam import scale_by_adam as scale_by_adam
from gradtx.transforms._adam import scale_by_adamax as scale_by_adamax
from gradtx.transforms._adam import scale_by_amsgrad as scale_by_amsgrad
from gradtx.transforms._adam import scale_by_radam as scale_by_radam
from gradtx.transforms._adam_variants import ScaleByAdanState as ScaleByAdanState
from gradtx.transforms._adam_variants import ScaleByBeliefState as ScaleByBeliefState
from gradtx.transforms._adam_variants import scale_by_adan as scale_by_adan
from gradtx.transforms._adam_variants import scale_by_belief as scale_by_belief
from gradtx.transforms._adam_variants import scale_by_yogi as scale_by_yogi
from gradtx.transforms._clipping import adaptive_grad_clip as adaptive_grad_clip
from gradtx.transforms._clipping import clip as clip
from gradtx.transforms._clipping import clip_by_global_norm as clip_by_global_norm
from gradtx.transforms._clipping import per_example_global_norm_clip as per_example_global_norm_clip
from gradtx.transforms._clipping import per_example_layer_norm_clip as per_example_layer_norm_clip
from gradtx.transforms._constraints import keep_params_nonnegative as keep_params_nonnegative
from gradtx.transforms._factored import FactoredState as FactoredState
from gradtx.transforms._factored import ScaleBySM3State as ScaleBySM3State
from gradtx.transforms._factored import clip_by_block_rms as clip_by_block_rms
from gradtx.transforms._factored import scale_by_factored_rms as scale_by_factored_rms
from gradtx.transforms._factored import scale_by_param_block_rms as scale_by_param_block_rms
from gradtx.transforms._factored import scale_by_sm3 as scale_by_sm3
from gradtx.transforms._lbfgs import ScaleByLBFGSState as ScaleByLBFGSState
from gradtx.transforms._lbfgs import scale_by_lbfgs as scale_by_lbfgs
from gradtx.transforms._linesearch import BacktrackingLinesearchInfo as BacktrackingLinesearchInfo
from gradtx.transforms._linesearch import ScaleByBacktrackingLinesearchState as ScaleByBacktrackingLinesearchState
from gradtx.transforms._linesearch import scale_by_backtracking_linesearch as scale_by_backtracking_linesearch
from gradtx.transforms._linesearch import value_and_grad_from_state as value_and_grad_from_state
from gradtx.transforms._momentum import EmaState as EmaState
from gradtx.transforms._momentum import ScaleByMomentumState as ScaleByMomentumState
from gradtx.transforms._momentum import ema as ema
from gradtx.transforms._momentum import scale_by_momentum as scale_by_momentum
from gradtx.transforms._noise import AddNoiseState as AddNoiseState
from gradtx.transforms._noise import add_noise as add_noise
from gradtx.transforms._normalization import centralize as centralize
from gradtx.transforms._normalization import normalize_by_update_norm as normalize_by_update_norm
from gradtx.transforms._normalization import scale_by_param_block_norm as scale_by_param_block_norm
from gradtx.transforms._optimistic import ScaleByOptimisticGradientState as ScaleByOptimisticGradientState
from gradtx.transforms._optimistic import scale_by_optimistic_gradient as scale_by_optimistic_gradient
from gradtx.transforms._rms import ScaleByAdaDeltaState as ScaleByAdaDeltaState
from gradtx.transforms._rms import ScaleByAdagradState as ScaleByAdagradState
from gradtx.transforms._rms import ScaleByRmsState as ScaleByRmsState
from gradtx.transforms._rms import ScaleByRmsWithCountState as ScaleByRmsWithCountState
from gradtx.transforms._rms import ScaleByRStdDevState as ScaleByRStdDevState
from gradtx.transforms._rms import ScaleByRStdDevWithCountState as ScaleByRStdDevWithCountState
from gradtx.transforms._rms import scale_by_adadelta as scale_by_adadelta
from gradtx.transforms._rms import scale_by_adagrad as scale_by_adagrad
from gradtx.transforms._rms import scale_by_rms as scale_by_rms
from gradtx.transforms._scaling import ScaleByScheduleState as ScaleByScheduleState
from gradtx.transforms._scaling import scale as scale
from gradtx.transforms._scaling import scale_by_learning_rate as scale_by_learning_rate
from gradtx.transforms._scaling import scale_by_schedule as scale_by_schedule
from gradtx.transforms._sign import ScaleByLionState as ScaleByLionState
from gradtx.transforms._sign import ScaleByRpropState as ScaleByRpropState
from gradtx.transforms._sign import scale_by_lion as scale_by_lion
from gradtx.transforms._sign import scale_by_rprop as scale_by_rprop
from gradtx.transforms._sign import scale_by_sign as scale_by_sign
from gradtx.transforms._step_sizes import ScaleByDistanceOverGradientsState as ScaleByDistanceOverGradientsState
from gradtx.transforms._step_sizes import scale_by_distance_over_gradients as scale_by_distance_over_gradients
from gradtx.transforms._step_sizes import scale_by_polyak as scale_by_polyak
from gradtx.transforms._trust_ratio import ScaleByNovogradState as ScaleByNovogradState
from gradtx.transforms._trust_ratio import scale_by_novograd as scale_by_novograd
from gradtx.transforms._trust_ratio import scale_by_trust_ratio as scale_by_trust_ratio
from gradtx.transforms._weight_decay import WeightDecaySchedule as WeightDecaySchedule
from gradtx.transforms._weight_decay import add_decayed_weights as add_decayed_weights
from gradtx.transforms._zoom_linesearch import ScaleByZoomLinesearchState as ScaleByZoomLinesearchState
from gradtx.transforms._zoom_linesearch import ZoomLinesearchInfo as ZoomLinesearchInfo
from gradtx.transforms._zoom_linesearch import scale_by_zoom_linesearch as scale_by_zoom_linesearch
from gradtx.wrappers._accumulate import MultiSteps as MultiSteps
from gradtx.wrappers._accumulate import MultiStepsState as MultiStepsState
from gradtx.wrappers._accumulate import ShouldSkipUpdateFunction as ShouldSkipUpdateFunction
from gradtx.wrappers._accumulate import skip_large_updates as skip_large_updates
from gradtx.wrappers._accumulate import skip_not_finite as skip_not_finite
from gradtx.wrappers._conditional import ConditionallyMaskState as ConditionallyMaskState
from gradtx.wrappers._conditional import ConditionallyTransformState as ConditionallyTransformState
from gradtx.wrappers._conditional import ConditionFn as ConditionFn
from gradtx.wrappers._conditional import conditionally_mask as conditionally_mask
from gradtx.wrappers._conditional import conditionally_transform as conditionally_transform
from gradtx.wrappers._finite import ApplyIfFiniteState as ApplyIfFiniteState
from gradtx.wrappers._finite import ZeroNansState as ZeroNansState
from gradtx.wrappers._finite import apply_if_finite as apply_if_finite
from gradtx.wrappers._finite import zero_nans as zero_nans
from gradtx.wrappers._flatten import flatten as flatten
from gradtx.wrappers._freeze import freeze as freeze
from gradtx.wrappers._freeze import selective_transform as selective_transform
from gradtx.wrappers._monitoring import MonitorState as MonitorState
from gradtx.wrappers._monitoring import SnapshotState as SnapshotState
from gradtx.wrappers._monitoring import measure_with_ema as measure_with_ema
from gradtx.wrappers._monitoring import monitor as monitor
from gradtx.wrappers._monitoring import snapshot as snapshot

_COMPAT_NAMES = ("NonNegativeParamsState", "TraceState", "trace")


def __getattr__(name: str) -> object:
    # optax.transforms' compatibility names (trace, TraceState, NonNegativeParamsState) are those of
    # gradtx.compat; looked up on first use, because gradtx.compat builds on this package (an
    # import at the top would be circular).
    if name in _COMPAT_NAMES:
        from gradtx import compat

        return getattr(compat, name)
    raise AttributeError(f"module 'gradtx.transforms' has no attribute {name!r}")
