"""The estimators of the suite under one name, for ``from models import inference``.

A façade only: every name here is defined in the module that does the job and re-exported
unchanged (``models`` itself exports the same names). For a model with log density
``log p(theta) + sum_i w_i log p(y_i | theta)``:

* :func:`mle`, :func:`map_estimate`: the (weighted) MLE and the MAP, each with its verdict on
  existence (:mod:`models.estimation`);
* :func:`sample`, :func:`sample_many`: NUTS draws of one model, or of many data sets of one model
  (:mod:`models.sampling`);
* :func:`compare`, :func:`compare_many`: all of them side by side (:mod:`models.comparison`);
* :func:`diagnose`: convergence checks (:mod:`models.diagnostics`);
* :func:`loo`, :func:`loo_compare`: leave-one-out with weights (:mod:`models.elpd`);
* :func:`gpc`, :func:`weighted_likelihood_bootstrap`, :func:`sandwich_adjust`: calibrated
  uncertainty (:mod:`models.calibrate`).
"""

from models.calibrate import (
    GPCResult,
    gpc,
    sandwich_adjust,
    weighted_likelihood_bootstrap,
    weighted_likelihood_bootstrap_many,
)
from models.comparison import Comparison, compare, compare_many
from models.diagnostics import Diagnostics, diagnose
from models.elpd import LooResult, loo, loo_compare
from models.estimation.estimators import compile_log_likelihood, map_estimate, mle
from models.estimation.existence import Existence, UnboundedLikelihoodError
from models.estimation.maximise import Estimate
from models.likelihood import estimator_name, weights_summary
from models.sampling.batched import BatchResult
from models.sampling.dispatch import SAMPLERS
from models.sampling.many import sample_many
from models.sampling.nuts import sample

__all__ = ["SAMPLERS", "BatchResult", "Comparison", "Diagnostics", "Estimate", "Existence", "GPCResult",
           "LooResult", "UnboundedLikelihoodError", "compare", "compare_many", "compile_log_likelihood",
           "diagnose", "estimator_name", "gpc", "loo", "loo_compare", "map_estimate", "mle", "sample",
           "sample_many", "sandwich_adjust", "weighted_likelihood_bootstrap",
           "weighted_likelihood_bootstrap_many", "weights_summary"]
