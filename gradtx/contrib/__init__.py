"""The ``optax.contrib`` names gradtx has, so that ``optax.contrib.X`` code runs under ``import gradtx as optax``.

Each is the same object as its gradtx name (``gradtx.contrib.reduce_on_plateau is
gradtx.reduce_on_plateau``). ``tests/test_optax_namespaces.py`` lists the ``optax.contrib``
names gradtx does not have yet.
"""

from gradtx.tuning._plateau import ReduceLROnPlateauState as ReduceLROnPlateauState
from gradtx.tuning._plateau import reduce_on_plateau as reduce_on_plateau
