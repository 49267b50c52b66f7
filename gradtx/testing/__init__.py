"""The property-test kit: check your own transforms against the contract gradtx's optimizers keep.

``check_transformation(tx, params)`` raises an ``AssertionError`` naming the broken property
(purity, jit, vmap, state stability, abstract init, retracing, finiteness); the hypothesis
strategies draw the pytrees to run it on. Needs hypothesis (``pip install gradtx[testing]``);
this namespace is not imported by ``import gradtx``.
"""

from gradtx.testing._contract import PROPERTIES as PROPERTIES
from gradtx.testing._contract import check_transformation as check_transformation
from gradtx.testing._strategies import array_shapes as array_shapes
from gradtx.testing._strategies import arrays as arrays
from gradtx.testing._strategies import float_dtypes as float_dtypes
from gradtx.testing._strategies import params_and_updates as params_and_updates
from gradtx.testing._strategies import pytrees as pytrees
