"""The ``optax.contrib`` names gradtx has, so that ``optax.contrib.X`` code runs under ``import gradtx as optax``.

A name gradtx also has at its top level is the same object there (``gradtx.contrib.reduce_on_plateau
is gradtx.reduce_on_plateau``); the modern optimizers (Muon, Schedule-Free, Sophia) live here only,
as in optax. ``tests/test_optax_namespaces.py`` lists the ``optax.contrib`` names gradtx does not
have yet.
"""

from gradtx.contrib._muon import MuonDimensionNumbers as MuonDimensionNumbers
from gradtx.contrib._muon import MuonState as MuonState
from gradtx.contrib._muon import muon as muon
from gradtx.contrib._muon import scale_by_muon as scale_by_muon
from gradtx.contrib._schedule_free import ScheduleFreeState as ScheduleFreeState
from gradtx.contrib._schedule_free import schedule_free as schedule_free
from gradtx.contrib._schedule_free import schedule_free_adamw as schedule_free_adamw
from gradtx.contrib._schedule_free import schedule_free_eval_params as schedule_free_eval_params
from gradtx.contrib._schedule_free import schedule_free_sgd as schedule_free_sgd
from gradtx.contrib._sophia import HutchinsonState as HutchinsonState
from gradtx.contrib._sophia import SophiaState as SophiaState
from gradtx.contrib._sophia import hutchinson_estimator_diag_hessian as hutchinson_estimator_diag_hessian
from gradtx.contrib._sophia import sophia as sophia
from gradtx.tuning._plateau import ReduceLROnPlateauState as ReduceLROnPlateauState
from gradtx.tuning._plateau import reduce_on_plateau as reduce_on_plateau
