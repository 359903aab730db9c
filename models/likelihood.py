"""The one weighted log-likelihood term every model in the suite is built with.

    weighted_likelihood(name, D, weights, observed=y, p=theta)   adds   sum_i w_i log D(y_i | theta)

It is a ``pm.CustomDist`` whose

* ``logp`` is ``w_i * log D(y_i | theta)`` (exactly 0 where ``w_i = 0``):
  ``pm.sample(idata_kwargs={"log_likelihood": True})`` and ``pm.compute_log_likelihood`` then store
  the *pointwise weighted* log-likelihood, which is what this model's ``az.loo`` measures;
* ``dist`` is the plain, unweighted ``D(theta)``: prior and posterior predictive draws come from
  the generative model, because weights are an inferential device, not data.

The weights are an input of the term, so the caller's ``pm.Data("weights", ...)`` travels into
``constant_data`` and can be swapped with ``pm.set_data`` without recompiling. ``logp`` and
``dist`` are module-level functions bound with ``functools.partial`` so that the model pickles
and PyMC samples chains in parallel processes.
"""

from __future__ import annotations

from functools import partial

import pymc as pm
import pytensor.tensor as pt


def _plain_distribution(*inputs, distribution, parameter_names):
    *parameters, _weights, size = inputs
    return distribution.dist(**dict(zip(parameter_names, parameters)), size=size)


def _weighted_logp(value, *inputs, distribution, parameter_names):
    *parameters, weights = inputs
    plain = distribution.dist(**dict(zip(parameter_names, parameters)))
    # A zero weight drops its observation exactly, even where its log density is -inf (0 * -inf = NaN).
    return pt.switch(pt.eq(weights, 0), 0.0, weights * pm.logp(plain, value))


def weighted_likelihood(name, distribution, weights, *, observed, dims, signature=None, **parameters):
    """Add the observed term ``name`` with log density ``sum_i weights_i log distribution(y_i | ...)``.

    ``distribution`` is a PyMC distribution class (``pm.Bernoulli``, ``pm.Categorical``, ...),
    ``parameters`` its keyword parameters, ``weights`` a tensor (normally ``pm.Data``) broadcastable
    to ``observed``. ``signature`` is the gufunc signature of (parameters..., weights) -> value when
    a parameter has core dimensions, e.g. ``"(k),()->()"`` for a categorical with probabilities;
    by default every input is scalar per observation.
    """
    parameter_names = tuple(parameters)
    if signature is None:
        signature = ",".join(["()"] * (len(parameter_names) + 1)) + "->()"
    settings = {"distribution": distribution, "parameter_names": parameter_names}
    return pm.CustomDist(
        name,
        *parameters.values(),
        weights,
        dist=partial(_plain_distribution, **settings),
        logp=partial(_weighted_logp, **settings),
        signature=signature,
        observed=observed,
        dims=dims,
    )
