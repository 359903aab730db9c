"""The weighted log-likelihood term every model in the suite is built with, in two forms:

    weighted_likelihood(name, D, weights, observed=y, p=theta)   adds   sum_i w_i log D(y_i | theta)
    weighted_softmax(name, logits, weights, observed=y)          adds   sum_i w_i log softmax(logits_i)[y_i]

(the second, for class codes given logits, is numerically stable at any logit and has the focal
loss as an option). Each is a ``pm.CustomDist`` whose

* ``logp`` is ``w_i * log D(y_i | theta)`` (exactly 0 where ``w_i = 0``):
  ``pm.sample(idata_kwargs={"log_likelihood": True})`` and ``pm.compute_log_likelihood`` then store
  the *pointwise weighted* log-likelihood, which is what this model's ``az.loo`` measures;
* ``dist`` is the plain, unweighted ``D(theta)``: prior and posterior predictive draws come from
  the generative model, because weights are an inferential device, not data.

Each term carries a :class:`WeightedTerm` marker (``term.tag.weighted_term``): its weights, and
whether every unweighted term is at most zero (the log of a probability mass function, or the focal
loss), so that :mod:`models.existence` can tell from the structure alone that the weighted
log-likelihood is bounded above.

The weights are an input of the term, so the caller's ``pm.Data("weights", ...)`` travels into
``constant_data`` and can be swapped with ``pm.set_data`` without recompiling. ``logp`` and
``dist`` are module-level functions bound with ``functools.partial`` so that the model pickles
and PyMC samples chains in parallel processes.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import numpy as np
import pymc as pm
import pytensor.tensor as pt


@dataclass(frozen=True)
class WeightedTerm:
    """What a weighted term is: its ``weights`` (a tensor), whether each unweighted term is
    ``at_most_zero`` (a probability mass function's log, or the focal loss), the ``multipliers``
    (tensors, such as the focal loss's alpha) that must also be non-negative for the weighted term to
    be bounded above by 0 wherever the weights are, and ``likelihood_when``: pairs (tensor, value)
    that make the term a log-likelihood when every tensor holds its value (the focal loss at gamma = 0
    and alpha = 1); empty for a term that always is one."""

    weights: object
    at_most_zero: bool
    multipliers: tuple = ()
    likelihood_when: tuple = ()


def _mark(term, weights, *, at_most_zero: bool, multipliers: tuple = (), likelihood_when: tuple = ()):
    term.tag.weighted_term = WeightedTerm(weights=weights, at_most_zero=at_most_zero, multipliers=multipliers,
                                          likelihood_when=likelihood_when)
    return term


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
    term = pm.CustomDist(
        name,
        *parameters.values(),
        weights,
        dist=partial(_plain_distribution, **settings),
        logp=partial(_weighted_logp, **settings),
        signature=signature,
        observed=observed,
        dims=dims,
    )
    return _mark(term, weights, at_most_zero=issubclass(distribution, pm.Discrete))


def _softmax_plain(logits, alpha, gamma, weights, size, *, focal):
    return pm.Categorical.dist(logit_p=logits, size=size)


def _softmax_logp(value, logits, alpha, gamma, weights, *, focal):
    if logits.type.shape[-1] == 2:
        # Two classes: log softmax is minus the softplus of the other class's margin, about half the
        # work of the general form and as stable (softplus' gradient is a sigmoid, finite at any logit).
        positive = pt.eq(value, 1)
        margin = logits[..., 1] - logits[..., 0]
        signed = pt.switch(positive, margin, -margin)
        log_p_true, log_rest = -pt.softplus(-signed), -pt.softplus(signed)
        alpha_true = pt.switch(positive, alpha[1], alpha[0])
        valid = positive | pt.eq(value, 0)
    else:
        is_true = pt.eq(pt.shape_padright(value), pt.arange(logits.shape[-1]))
        log_p = pt.special.log_softmax(logits, axis=-1)  # stable: finite gradients at any logit
        log_p_true = pt.sum(pt.switch(is_true, log_p, 0.0), axis=-1)
        log_rest = pt.logsumexp(pt.switch(is_true, -np.inf, log_p), axis=-1) if focal else None
        alpha_true = pt.sum(pt.switch(is_true, alpha, 0.0), axis=-1)
        valid = pt.any(is_true, axis=-1)
    loss = log_p_true
    if focal:
        # alpha_t (1 - p_t)^gamma, the power as exp(gamma log sum_{k != t} p_k): exact where p_t is near
        # 1; exactly 1 at gamma = 0 (where 0 * log 0 would give NaN).
        factor = pt.switch(pt.gt(gamma, 0), pt.exp(gamma * log_rest), 1.0)
        loss = alpha_true * factor * loss
    loss = pt.switch(valid, loss, -np.inf)  # a code outside 0..K-1 is impossible
    return pt.switch(pt.eq(weights, 0), 0.0, weights * loss)


def weighted_softmax(name, logits, weights, *, observed, dims, gamma=0.0, alpha=None):
    """Add ``sum_i w_i alpha_{y_i} (1 - p_i)^gamma log p_i`` with ``p_i = softmax(logits_i)[y_i]``.

    With ``gamma = 0`` and no ``alpha`` this is the weighted categorical log-likelihood of class codes
    ``y`` given logits (two classes: logits ``(0, eta)`` give the logistic model), computed through
    ``log_softmax`` so that its gradient stays finite at any logit (PyMC's ``Categorical`` and
    ``Bernoulli`` with ``logit_p`` return NaN gradients once a logit passes about 40, which the
    existence check of the MLE and separated data reach). ``logits`` has the classes on its last axis.

    With ``gamma > 0`` or ``alpha`` it is the focal loss of Lin et al. (2017), one positive ``alpha``
    per class: not the log density of any distribution. Used in place of the log-likelihood it makes
    the posterior a generalised (Gibbs) posterior, ``prior x exp(-loss)``. It stays a ``pm.CustomDist``
    (rather than a bare ``pm.Potential``) so that the pointwise terms still land in ``log_likelihood``
    (as pseudo-log-likelihoods: ``az.loo`` on them is not an expected log predictive density) and
    predictive draws come from the plain categorical model. ``gamma`` and ``alpha`` may be tensors
    (``pm.Data``): the focal term is then compiled once for every value they are set to.
    """
    logits = pt.as_tensor_variable(logits)
    focal = not (isinstance(gamma, (int, float, np.number)) and gamma == 0 and alpha is None)
    alpha = pt.ones(logits.shape[-1]) if alpha is None else pt.as_tensor_variable(alpha, dtype="float64")
    gamma = pt.as_tensor_variable(gamma, dtype="float64")
    term = pm.CustomDist(
        name,
        logits,
        alpha,
        gamma,
        weights,
        dist=partial(_softmax_plain, focal=focal),
        logp=partial(_softmax_logp, focal=focal),
        signature="(k),(k),(),()->()",
        observed=observed,
        dims=dims,
    )
    # log p <= 0 and (1 - p)^gamma in [0, 1]: each term is at most 0 while alpha >= 0.
    return _mark(term, weights, at_most_zero=True, multipliers=(alpha,),
                 likelihood_when=((gamma, 0.0), (alpha, 1.0)) if focal else ())
