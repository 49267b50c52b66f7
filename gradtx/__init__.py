"""gradtx: composable gradient transformations for JAX.

An optimizer is a pure ``(init, update)`` pair, and everything else is composition. Names,
argument order and defaults follow optax, so ``import gradtx as optax`` runs ordinary
training code.
"""

# --- core (foundation) -------------------------------------------------------------------
from gradtx._base import EmptyState as EmptyState
from gradtx._base import GradientTransformation as GradientTransformation
from gradtx._base import OptState as OptState
from gradtx._base import Params as Params
from gradtx._base import Schedule as Schedule
from gradtx._base import ScalarOrSchedule as ScalarOrSchedule
from gradtx._base import Updates as Updates
from gradtx._base import apply_updates as apply_updates
from gradtx._base import identity as identity
from gradtx._base import init_empty_state as init_empty_state
from gradtx._base import safe_increment as safe_increment
from gradtx._base import set_to_zero as set_to_zero
from gradtx._base import stateless as stateless
from gradtx._base import stateless_with_tree_map as stateless_with_tree_map
from gradtx._combine import chain as chain
from gradtx._combine import named_chain as named_chain
from gradtx._tree import global_norm as global_norm

# --- transforms and optimizers (catalog) -------------------------------------------------

# --- schedules, hyperparameter injection, plateau, lr finder ------------------------------

# --- wrappers (masks, groups, accumulation, mixed precision, lookahead, ema) --------------
from gradtx._accumulate import ApplyEvery as ApplyEvery
from gradtx._accumulate import MultiSteps as MultiSteps
from gradtx._accumulate import MultiStepsState as MultiStepsState
from gradtx._accumulate import ShouldSkipUpdateFunction as ShouldSkipUpdateFunction
from gradtx._accumulate import apply_every as apply_every
from gradtx._accumulate import skip_large_updates as skip_large_updates
from gradtx._accumulate import skip_not_finite as skip_not_finite
from gradtx._averaging import EmaParamsState as EmaParamsState
from gradtx._averaging import averaged_params as averaged_params
from gradtx._averaging import ema_params as ema_params
from gradtx._averaging import incremental_update as incremental_update
from gradtx._averaging import periodic_update as periodic_update
from gradtx._conditional import ConditionFn as ConditionFn
from gradtx._conditional import ConditionallyMaskState as ConditionallyMaskState
from gradtx._conditional import ConditionallyTransformState as ConditionallyTransformState
from gradtx._conditional import conditionally_mask as conditionally_mask
from gradtx._conditional import conditionally_transform as conditionally_transform
from gradtx._finite import ApplyIfFiniteState as ApplyIfFiniteState
from gradtx._finite import ZeroNansState as ZeroNansState
from gradtx._finite import all_finite as all_finite
from gradtx._finite import apply_if_finite as apply_if_finite
from gradtx._finite import zero_nans as zero_nans
from gradtx._flatten import flatten as flatten
from gradtx._freeze import freeze as freeze
from gradtx._freeze import selective_transform as selective_transform
from gradtx._layerwise import layerwise_decay_groups as layerwise_decay_groups
from gradtx._layerwise import layerwise_lr_decay as layerwise_lr_decay
from gradtx._layerwise import param_path_name as param_path_name
from gradtx._lookahead import LookaheadParams as LookaheadParams
from gradtx._lookahead import LookaheadState as LookaheadState
from gradtx._lookahead import lookahead as lookahead
from gradtx._loss_scale import DynamicLossScale as DynamicLossScale
from gradtx._loss_scale import NoOpLossScale as NoOpLossScale
from gradtx._monitoring import MonitorState as MonitorState
from gradtx._monitoring import SnapshotState as SnapshotState
from gradtx._monitoring import measure_with_ema as measure_with_ema
from gradtx._monitoring import monitor as monitor
from gradtx._monitoring import snapshot as snapshot
from gradtx._partition import MultiTransformState as MultiTransformState
from gradtx._partition import PartitionState as PartitionState
from gradtx._partition import multi_transform as multi_transform
from gradtx._partition import partition as partition

# --- optax parity -------------------------------------------------------------------------

__version__ = "0.1.0"
