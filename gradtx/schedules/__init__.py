"""Schedules (pure ``step -> value`` functions) and hyperparameter injection.

The public schedule API, re-exported from its implementation modules so that
``gradtx.schedules.X`` mirrors ``optax.schedules.X``:

- :mod:`gradtx._schedules_basic`: constant, linear, polynomial, piecewise constant and
  interpolated, exponential and cosine decay, and ``join_schedules``;
- :mod:`gradtx._schedules_composite`: warmups, one-cycle with its momentum cycle, SGDR and
  cosine restarts (torch's ``CosineAnnealingWarmRestarts``);
- :mod:`gradtx._inject`: ``inject_hyperparams`` and ``inject_stateful_hyperparams``.
"""

from gradtx._base import Schedule as Schedule
from gradtx._inject import InjectHyperparamsState as InjectHyperparamsState
from gradtx._inject import InjectStatefulHyperparamsState as InjectStatefulHyperparamsState
from gradtx._inject import WrappedSchedule as WrappedSchedule
from gradtx._inject import inject_hyperparams as inject_hyperparams
from gradtx._inject import inject_stateful_hyperparams as inject_stateful_hyperparams
from gradtx._schedules_basic import constant_schedule as constant_schedule
from gradtx._schedules_basic import cosine_decay_schedule as cosine_decay_schedule
from gradtx._schedules_basic import exponential_decay as exponential_decay
from gradtx._schedules_basic import join_schedules as join_schedules
from gradtx._schedules_basic import linear_schedule as linear_schedule
from gradtx._schedules_basic import piecewise_constant_schedule as piecewise_constant_schedule
from gradtx._schedules_basic import piecewise_interpolate_schedule as piecewise_interpolate_schedule
from gradtx._schedules_basic import polynomial_schedule as polynomial_schedule
from gradtx._schedules_composite import cosine_onecycle_momentum_schedule as cosine_onecycle_momentum_schedule
from gradtx._schedules_composite import cosine_onecycle_schedule as cosine_onecycle_schedule
from gradtx._schedules_composite import cosine_restarts_schedule as cosine_restarts_schedule
from gradtx._schedules_composite import linear_onecycle_momentum_schedule as linear_onecycle_momentum_schedule
from gradtx._schedules_composite import linear_onecycle_schedule as linear_onecycle_schedule
from gradtx._schedules_composite import sgdr_schedule as sgdr_schedule
from gradtx._schedules_composite import warmup_constant_schedule as warmup_constant_schedule
from gradtx._schedules_composite import warmup_cosine_decay_schedule as warmup_cosine_decay_schedule
from gradtx._schedules_composite import warmup_exponential_decay_schedule as warmup_exponential_decay_schedule
