"""wmle: MLE, weighted MLE, MAP and full posteriors of the same PyMC model, side by side.

One log density runs through the suite, ``log p(theta) + sum_i w_i log p(y_i | theta)``: with
``w_i = 1`` and no prior its maximiser is the MLE, with weights the weighted MLE, with the prior the
MAP, and sampled it is the (pseudo-)posterior. This package is the public interface:

* the families, each a small factory from data to ``pm.Model``: :mod:`~models.coin`,
  :mod:`~models.classes`, :mod:`~models.policy`; the weights' tools, :mod:`~models.weights`; a PyMC
  model of your own made weighted in one call, :func:`weighted`, or written with the one weighted
  term, :func:`weighted_likelihood` and :func:`weighted_softmax`;
* the estimators of any such model: :func:`mle`, :func:`map_estimate`, :func:`sample`,
  :func:`sample_many`, :func:`compare`, :func:`compare_many`, :func:`diagnose`;
* what the weights do to uncertainty: :func:`loo`, :func:`loo_compare`, :func:`gpc`,
  :func:`weighted_likelihood_bootstrap`, :func:`sandwich_adjust`.

Importing it first runs :func:`configure`: PyTensor linked to OpenBLAS and a cheaper C compilation.

Examples
--------
>>> import models
>>> model = models.coin.build_model([1, 0, 1, 1, 0, 1, 1, 0, 1, 1], [1, 1, 10, 1, 1, 1, 1, 1, 1, 1])
>>> result = models.compare(model, random_seed=1)
>>> result.point_name, round(float(result.point["p"]), 3)
('wmle', 0.842)
"""

from models._config import configure

configure()

from models import classes, coin, inference, likelihood, policy, summary, weights  # noqa: E402
from models.calibrate import (  # noqa: E402
    GPCResult,
    gpc,
    sandwich_adjust,
    weighted_likelihood_bootstrap,
    weighted_likelihood_bootstrap_many,
)
from models.comparison import Comparison, compare, compare_many  # noqa: E402
from models.diagnostics import Diagnostics, diagnose  # noqa: E402
from models.elpd import LooResult, loo, loo_compare  # noqa: E402
from models.errors import InputError  # noqa: E402
from models.estimation.estimators import compile_log_likelihood, map_estimate, mle  # noqa: E402
from models.estimation.existence import Existence, UnboundedLikelihoodError  # noqa: E402
from models.estimation.maximise import Estimate  # noqa: E402
from models.likelihood import estimator_name, weighted_likelihood, weighted_softmax, weights_summary  # noqa: E402
from models.sampling.batched import BatchResult  # noqa: E402
from models.sampling.many import sample_many  # noqa: E402
from models.sampling.nuts import sample  # noqa: E402
from models.transform import weighted  # noqa: E402

__all__ = [
    # set-up
    "configure",
    # the families, the weights and the weighted term
    "coin", "classes", "policy", "weights", "likelihood", "weighted_likelihood", "weighted_softmax",
    "weighted",
    # estimators
    "mle", "map_estimate", "Estimate", "Existence", "UnboundedLikelihoodError", "compile_log_likelihood",
    "sample", "sample_many", "BatchResult", "compare", "compare_many", "Comparison", "estimator_name",
    "weights_summary", "diagnose", "Diagnostics",
    # uncertainty and prediction
    "loo", "loo_compare", "LooResult", "gpc", "GPCResult", "weighted_likelihood_bootstrap",
    "weighted_likelihood_bootstrap_many", "sandwich_adjust",
    # the rest
    "inference", "summary", "InputError",
]
