"""Observation weights, pure NumPy (no PyMC): the one thing that tells the estimators apart.

Every model of the suite has the log density ``log p(theta) + sum_i w_i log p(y_i | theta)``. The
weights' tools, one module per job:

* :mod:`~models.weights.core`: validate (:func:`check`), rescale (:func:`normalize`) and count them
  (:func:`kish_ess`);
* :mod:`~models.weights.classes`: class weights for imbalanced classes (:func:`balanced`,
  :func:`effective_number`);
* :mod:`~models.weights.schedules`: curriculum weights over training progress (:func:`curriculum`);
* :mod:`~models.weights.rl`: weights of logged steps (:func:`returns_to_go`, :func:`advantages`,
  :func:`awr`, :func:`importance_ratios`);
* :mod:`~models.weights.diagnostics`: how much a set of weights is worth (:func:`psis_khat`,
  :func:`magnitude_diagnostics`, :func:`ratio_diagnostics`).
"""

from models.weights.classes import balanced, class_labels, effective_number
from models.weights.core import NORMALIZATIONS, check, check_shaped, kish_ess, normalize
from models.weights.diagnostics import finite_psis_khat, magnitude_diagnostics, psis_khat, ratio_diagnostics
from models.weights.rl import (
    advantages,
    awr,
    check_codes,
    check_episode_ends,
    check_states,
    importance_ratios,
    returns_to_go,
    self_normalised_ratios,
)
from models.weights.schedules import (
    CURRICULUM_SCHEDULES,
    MAX_SHARPNESS,
    SELF_PACED_FLOOR,
    curriculum,
    loss_difficulty,
    margin_difficulty,
)

__all__ = ["CURRICULUM_SCHEDULES", "MAX_SHARPNESS", "NORMALIZATIONS", "SELF_PACED_FLOOR", "advantages", "awr",
           "balanced", "check", "check_codes", "check_episode_ends", "check_shaped", "check_states",
           "class_labels", "curriculum", "effective_number", "finite_psis_khat", "importance_ratios",
           "kish_ess", "loss_difficulty", "magnitude_diagnostics", "margin_difficulty", "normalize",
           "psis_khat", "ratio_diagnostics", "returns_to_go", "self_normalised_ratios"]
