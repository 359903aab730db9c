"""Calibrated uncertainty for weighted (pseudo-)posteriors.

The weighted posterior ``log p(theta) + sum_i w_i log p(y_i | theta)`` narrows by about ``1 / sqrt(c)``
when every weight is multiplied by ``c``, while the weighted MLE stays put. Unless the weights are
frequency weights (``w_i`` independent copies of row i), its spread is therefore set by an arbitrary
scale, and its credible intervals need not cover anything at their nominal rate. Three remedies, each
treating the model's *rows* as the independently sampled units:

* :mod:`~models.calibrate.wlb`: the weighted likelihood bootstrap (Newton & Raftery 1994), draws of
  the WMLE's approximate sampling distribution;
* :mod:`~models.calibrate.sandwich`: the sandwich adjustment of posterior draws (Williams & Savitsky
  2021), their covariance made ``H^-1 J H^-1``;
* :mod:`~models.calibrate.posterior_calibration`: the weights' scale chosen from the data by
  generalised posterior calibration (Syring & Martin 2019), :func:`gpc`.
"""

from models.calibrate.posterior_calibration import GPCResult, gpc
from models.calibrate.sandwich import SandwichAdjustment, sandwich_adjust
from models.calibrate.wlb import (
    BatchedWLB,
    WeightedLikelihoodBootstrap,
    weighted_likelihood_bootstrap,
    weighted_likelihood_bootstrap_many,
)

__all__ = ["BatchedWLB", "GPCResult", "SandwichAdjustment", "WeightedLikelihoodBootstrap", "gpc",
           "sandwich_adjust", "weighted_likelihood_bootstrap", "weighted_likelihood_bootstrap_many"]
