"""The ``optax.contrib`` names gradtx has, so that ``optax.contrib.X`` code runs under ``import gradtx as optax``.

A name gradtx also has at its top level is the same object there (``gradtx.contrib.reduce_on_plateau
is gradtx.reduce_on_plateau``); the modern optimizers (Muon, ...) live here only, as in optax. ``tests/test_optax_namespaces.py`` lists the ``optax.contrib``
names gradtx does not have yet.
"""

from gradtx.contrib._muon import MuonDimensionNumbers as MuonDimensionNumbers
from gradtx.contrib._muon import MuonState as MuonState
from gradtx.contrib._muon import muon as muon
from gradtx.contrib._muon import scale_by_muon as scale_by_muon
from gradtx.tuning._plateau import ReduceLROnPlateauState as ReduceLROnPlateauState
from gradtx.tuning._plateau import reduce_on_plateau as reduce_on_plateau
