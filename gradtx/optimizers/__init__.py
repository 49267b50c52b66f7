"""The named optimizers, each one ``chain(...)`` of :mod:`gradtx.transforms`; files follow the transform families.

Every name here is also re-exported flat as ``gradtx.<name>``.
"""

from gradtx.optimizers._adam import adam as adam
from gradtx.optimizers._adam import adamax as adamax
from gradtx.optimizers._adam import adamaxw as adamaxw
from gradtx.optimizers._adam import adamw as adamw
from gradtx.optimizers._adam import amsgrad as amsgrad
from gradtx.optimizers._adam import nadam as nadam
from gradtx.optimizers._adam import nadamw as nadamw
from gradtx.optimizers._adam import radam as radam
from gradtx.optimizers._adam_variants import adabelief as adabelief
from gradtx.optimizers._adam_variants import adan as adan
from gradtx.optimizers._adam_variants import yogi as yogi
from gradtx.optimizers._factored import adafactor as adafactor
from gradtx.optimizers._factored import sm3 as sm3
from gradtx.optimizers._lbfgs import lbfgs as lbfgs
from gradtx.optimizers._momentum import sgd as sgd
from gradtx.optimizers._noise import noisy_sgd as noisy_sgd
from gradtx.optimizers._optimistic import optimistic_adam as optimistic_adam
from gradtx.optimizers._optimistic import optimistic_adam_v2 as optimistic_adam_v2
from gradtx.optimizers._optimistic import optimistic_gradient_descent as optimistic_gradient_descent
from gradtx.optimizers._rms import adadelta as adadelta
from gradtx.optimizers._rms import adagrad as adagrad
from gradtx.optimizers._rms import rmsprop as rmsprop
from gradtx.optimizers._sign import lion as lion
from gradtx.optimizers._sign import rprop as rprop
from gradtx.optimizers._sign import sign_sgd as sign_sgd
from gradtx.optimizers._sign import signum as signum
from gradtx.optimizers._step_sizes import polyak_sgd as polyak_sgd
from gradtx.optimizers._trust_ratio import fromage as fromage
from gradtx.optimizers._trust_ratio import lamb as lamb
from gradtx.optimizers._trust_ratio import lars as lars
from gradtx.optimizers._trust_ratio import novograd as novograd
