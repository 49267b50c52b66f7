"""Schedules (pure ``step -> value`` functions) and hyperparameter injection.

Mirrors ``optax.schedules``; every name here is also re-exported flat as ``gradtx.<name>``.
"""

from gradtx._base import Schedule as Schedule
from gradtx.schedules._composite import cosine_onecycle_momentum_schedule as cosine_onecycle_momentum_schedule
from gradtx.schedules._composite import cosine_onecycle_schedule as cosine_onecycle_schedule
from gradtx.schedules._composite import cosine_restarts_schedule as cosine_restarts_schedule
from gradtx.schedules._composite import linear_onecycle_momentum_schedule as linear_onecycle_momentum_schedule
from gradtx.schedules._composite import linear_onecycle_schedule as linear_onecycle_schedule
from gradtx.schedules._composite import sgdr_schedule as sgdr_schedule
from gradtx.schedules._composite import warmup_constant_schedule as warmup_constant_schedule
from gradtx.schedules._composite import warmup_cosine_decay_schedule as warmup_cosine_decay_schedule
from gradtx.schedules._composite import warmup_exponential_decay_schedule as warmup_exponential_decay_schedule
from gradtx.schedules._inject import InjectHyperparamsState as InjectHyperparamsState
from gradtx.schedules._inject import InjectStatefulHyperparamsState as InjectStatefulHyperparamsState
from gradtx.schedules._inject import WrappedSchedule as WrappedSchedule
from gradtx.schedules._inject import inject_hyperparams as inject_hyperparams
from gradtx.schedules._inject import inject_stateful_hyperparams as inject_stateful_hyperparams
from gradtx.schedules._piecewise import join_schedules as join_schedules
from gradtx.schedules._piecewise import piecewise_constant_schedule as piecewise_constant_schedule
from gradtx.schedules._piecewise import piecewise_interpolate_schedule as piecewise_interpolate_schedule
from gradtx.schedules._primitive import constant_schedule as constant_schedule
from gradtx.schedules._primitive import cosine_decay_schedule as cosine_decay_schedule
from gradtx.schedules._primitive import exponential_decay as exponential_decay
from gradtx.schedules._primitive import linear_schedule as linear_schedule
from gradtx.schedules._primitive import polynomial_schedule as polynomial_schedule
