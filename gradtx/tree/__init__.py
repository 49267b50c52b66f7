"""Tree utilities for optimizer code, with ``optax.tree``'s names and signatures.

Arithmetic and norms over whole pytrees, trees made like other trees, moment updates, and
reading/writing optimizer state by name (``get``, ``set``, ``map_params``). optax's older
``optax.tree_utils.tree_*`` names are in :mod:`gradtx.compat` as ``gradtx.tree_utils``.
"""

from gradtx.tree._creation import cast as cast
from gradtx.tree._creation import cast_like as cast_like
from gradtx.tree._creation import dtype as dtype
from gradtx.tree._creation import full_like as full_like
from gradtx.tree._creation import ones_like as ones_like
from gradtx.tree._creation import random_like as random_like
from gradtx.tree._creation import split_key_like as split_key_like
from gradtx.tree._creation import unwrap_random_key_data as unwrap_random_key_data
from gradtx.tree._creation import zeros_like as zeros_like
from gradtx.tree._math import add as add
from gradtx.tree._math import add_scale as add_scale
from gradtx.tree._math import allclose as allclose
from gradtx.tree._math import batch_shape as batch_shape
from gradtx.tree._math import clip as clip
from gradtx.tree._math import conj as conj
from gradtx.tree._math import div as div
from gradtx.tree._math import max as max
from gradtx.tree._math import min as min
from gradtx.tree._math import mul as mul
from gradtx.tree._math import norm as norm
from gradtx.tree._math import real as real
from gradtx.tree._math import safe_int32_increment as safe_int32_increment
from gradtx.tree._math import safe_norm as safe_norm
from gradtx.tree._math import safe_root_mean_squares as safe_root_mean_squares
from gradtx.tree._math import scale as scale
from gradtx.tree._math import size as size
from gradtx.tree._math import sub as sub
from gradtx.tree._math import sum as sum
from gradtx.tree._math import vdot as vdot
from gradtx.tree._math import where as where
from gradtx.tree._moments import bias_correction as bias_correction
from gradtx.tree._moments import update_infinity_moment as update_infinity_moment
from gradtx.tree._moments import update_moment as update_moment
from gradtx.tree._moments import update_moment_per_elem_norm as update_moment_per_elem_norm
from gradtx.tree._state import NamedTupleKey as NamedTupleKey
from gradtx.tree._state import get as get
from gradtx.tree._state import get_all_with_path as get_all_with_path
from gradtx.tree._state import map_params as map_params
from gradtx.tree._state import set as set
