"""What sets a learning rate from outside the optimizer: the LR finder, plateau reduction and layer-wise LR decay.

Every name here is also re-exported flat as ``gradtx.<name>``.
"""

from gradtx.tuning._layerwise import layerwise_decay_groups as layerwise_decay_groups
from gradtx.tuning._layerwise import layerwise_lr_decay as layerwise_lr_decay
from gradtx.tuning._layerwise import param_path_name as param_path_name
from gradtx.tuning._lr_finder import LRFinderResult as LRFinderResult
from gradtx.tuning._lr_finder import lr_finder as lr_finder
from gradtx.tuning._plateau import ReduceLROnPlateauState as ReduceLROnPlateauState
from gradtx.tuning._plateau import reduce_on_plateau as reduce_on_plateau
