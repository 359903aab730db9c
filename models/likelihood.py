"""The weighted log-likelihood term every model in the suite is built with, in two forms::

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
loss), so that :mod:`models.estimation.existence` can tell from the structure alone that the weighted
log-likelihood is bounded above.

The weights are an input of the term, so the caller's ``pm.Data("weights", ...)`` travels into
``constant_data`` and can be swapped with ``pm.set_data`` without recompiling. ``logp`` and
``dist`` are module-level functions bound with ``functools.partial`` so that the model pickles
and PyMC samples chains in parallel processes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import partial

import numpy as np
import pymc as pm
import pytensor
import pytensor.tensor as pt
from pymc.distributions.distribution import SymbolicRandomVariable
from pytensor.compile.sharedvalue import SharedVariable
from pytensor.graph.basic import Variable
from pytensor.tensor.random.op import RandomVariable
from pytensor.tensor.random.type import RandomGeneratorType
from pytensor.tensor.type_other import NoneConst, NoneTypeT

from models import compiled
from models import weights as weights_lib
from models._graph import value_of
from models.errors import InputError

__all__ = ["POINT_NAMES", "WeightedTerm", "check_weights", "estimator_name", "observed_batch_shape",
           "term_weights", "weighted_likelihood", "weighted_softmax", "weighted_term", "weights_summary"]


@dataclass(frozen=True)
class WeightedTerm:
    """What a weighted term is: the marker ``term.tag.weighted_term``.

    :func:`weighted_likelihood`, :func:`weighted_softmax` and :func:`models.weighted` attach it; the
    estimators read the weights from it (:func:`check_weights`, the pointwise log-likelihood) and
    :mod:`models.estimation.existence` whether the weighted log-likelihood is bounded above.

    Parameters
    ----------
    weights : TensorVariable
        The term's weights (a tensor, normally ``pm.Data``).
    at_most_zero : bool
        Whether each unweighted term is at most zero (a probability mass function's log, or the focal
        loss).
    multipliers : tuple of TensorVariable, default ()
        Tensors, such as the focal loss's alpha, that must also be non-negative for the weighted term
        to be bounded above by 0 wherever the weights are.
    likelihood_when : tuple of (TensorVariable, float), default ()
        Pairs (tensor, value) that make the term a log-likelihood when every tensor holds its value
        (the focal loss at gamma = 0 and alpha = 1); empty for a term that always is one.
    allow_negative : bool, default False
        Whether negative weights are meant (advantages); :func:`check_weights` refuses them otherwise.
    distribution : str, default ""
        The class name of the random variable the term weights (``"PoissonRV"``), where known: what
        :mod:`models.estimation.linear_predictor` reads the link from.
    parameter_names : tuple of str, default ()
        The names of the term's parameters in order (``("mu",)``); empty: the random variable's own.

    Attributes
    ----------
    weights, at_most_zero, multipliers, likelihood_when, allow_negative, distribution, parameter_names
        The parameters, as given (a frozen dataclass).

    Examples
    --------
    >>> import pymc as pm
    >>> with pm.Model(coords={"toss": range(3)}):
    ...     p = pm.Beta("p", 1.0, 1.0)
    ...     weights = pm.Data("weights", [1.0, 2.0, 0.5], dims="toss")
    ...     heads = weighted_likelihood("heads", pm.Bernoulli, weights, observed=[1, 0, 1], dims="toss", p=p)
    >>> marker = heads.tag.weighted_term
    >>> marker.weights.name, marker.at_most_zero, marker.allow_negative
    ('weights', True, False)
    """

    weights: object
    at_most_zero: bool
    multipliers: tuple = ()
    likelihood_when: tuple = ()
    allow_negative: bool = False
    distribution: str = ""
    parameter_names: tuple = ()


def _mark(term, weights, *, at_most_zero: bool, allow_negative: bool, multipliers: tuple = (),
          likelihood_when: tuple = (), distribution: str = "", parameter_names: tuple = ()):
    term.tag.weighted_term = WeightedTerm(weights=weights, at_most_zero=at_most_zero,
                                          multipliers=multipliers, likelihood_when=likelihood_when,
                                          allow_negative=bool(allow_negative), distribution=distribution,
                                          parameter_names=parameter_names)
    return term


def _as_weights(weights):
    """Weights as a tensor: a ``pm.Data`` or other tensor as it is, numbers as a float64 constant
    (a NumPy array cannot key the suite's caches, a tensor can)."""
    if isinstance(weights, Variable):
        return weights
    try:
        return pt.as_tensor_variable(np.asarray(weights, dtype="float64"))
    except (TypeError, ValueError) as err:
        raise InputError(f"weights must be numbers or a tensor, got {type(weights).__name__}: "
                         f"{err}") from None


def _times_weights(log_density, weights):
    """``w * log_density``, exactly 0 where ``w = 0`` (even where the log density is -inf, where
    0 * -inf would be NaN)."""
    return pt.switch(pt.eq(weights, 0), 0.0, weights * log_density)


def _plain_distribution(*inputs, distribution, parameter_names):
    *parameters, _weights, size = inputs
    return distribution.dist(**dict(zip(parameter_names, parameters)), size=size)


def _weighted_logp(value, *inputs, distribution, parameter_names):
    *parameters, weights = inputs
    plain = distribution.dist(**dict(zip(parameter_names, parameters)))
    return _times_weights(pm.logp(plain, value), weights)


def weighted_likelihood(name, distribution, weights, *, observed, dims, signature=None, allow_negative=False,
                        **parameters):
    """Add an observed term with log density ``sum_i w_i log distribution(y_i | ...)``.

    The term ``name`` has log density ``sum_i weights_i log distribution(y_i | ...)``. Call it inside a model
    context. The term is a ``pm.CustomDist`` (module docstring): its logp is
    ``w_i * log distribution(y_i | ...)``, exactly 0 where ``w_i = 0``, and its draws come from the plain,
    unweighted distribution.

    Parameters
    ----------
    name : str
        The name of the observed term.
    distribution : type
        A PyMC distribution class (``pm.Bernoulli``, ``pm.Categorical``, ...).
    weights : TensorVariable or array_like
        A tensor (normally ``pm.Data``) broadcastable to ``observed``.
    observed : array_like or TensorVariable
        The observations y.
    dims : str or tuple of str
        The term's dims.
    signature : str, optional
        The gufunc signature of (parameters..., weights) -> value when a parameter has core
        dimensions, e.g. ``"(k),()->()"`` for a categorical with probabilities; by default every input
        is scalar per observation.
    allow_negative : bool, default False
        Accept negative weights (advantages); otherwise they are refused, here and by every estimator.
    **parameters
        The distribution's keyword parameters (``p=theta``).

    Returns
    -------
    TensorVariable
        The observed random variable, marked with a :class:`WeightedTerm` (``term.tag.weighted_term``;
        ``at_most_zero`` for a discrete distribution).

    Raises
    ------
    InputError
        When the weights are not numbers, do not fit the observations' shape, are NaN or infinite,
        negative (unless ``allow_negative``) or all zero (:func:`check_weights`).

    Examples
    --------
    >>> import pymc as pm
    >>> with pm.Model(coords={"toss": range(3)}) as model:
    ...     p = pm.Beta("p", 1.0, 1.0)
    ...     weights = pm.Data("weights", [1.0, 2.0, 0.5], dims="toss")
    ...     heads = weighted_likelihood("heads", pm.Bernoulli, weights, observed=[1, 0, 1], dims="toss", p=p)
    >>> logp = model.compile_logp(vars=[heads], sum=False)
    >>> logp({"p_logodds__": 0.0})[0].round(4)  # w_i log 0.5
    array([-0.6931, -1.3863, -0.3466])
    """
    weights = _as_weights(weights)
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
    _mark(term, weights, at_most_zero=issubclass(distribution, pm.Discrete), allow_negative=allow_negative,
          distribution=type(getattr(distribution, "rv_op", None)).__name__, parameter_names=parameter_names)
    return _checked(term)


def _checked(term):
    """``term`` after :func:`check_weights` of its model's current weights (at build, before any fit)."""
    model = pm.modelcontext(None)
    _check_term(model, term, {})
    return term


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
    return _times_weights(loss, weights)


def weighted_softmax(name, logits, weights, *, observed, dims, gamma=0.0, alpha=None, allow_negative=False):
    """Add a weighted softmax (or focal loss) term of class codes given logits.

    The term is ``sum_i w_i alpha_{y_i} (1 - p_i)^gamma log p_i`` with ``p_i = softmax(logits_i)[y_i]``.
    With ``gamma = 0`` and no ``alpha`` this is the weighted categorical log-likelihood of class codes
    ``y`` given logits (two classes: logits ``(0, eta)`` give the logistic model), computed through
    ``log_softmax`` so that its gradient stays finite at any logit (PyMC's ``Categorical`` and
    ``Bernoulli`` with ``logit_p`` return NaN gradients once a logit passes about 40, which the
    existence check of the MLE and separated data reach).

    With ``gamma > 0`` or ``alpha`` it is the focal loss of Lin et al. (2017), one positive ``alpha``
    per class: not the log density of any distribution. Used in place of the log-likelihood it makes
    the posterior a generalised (Gibbs) posterior, ``prior x exp(-loss)``. It stays a ``pm.CustomDist``
    (rather than a bare ``pm.Potential``) so that the pointwise terms still land in ``log_likelihood``
    (as pseudo-log-likelihoods: ``az.loo`` on them is not an expected log predictive density) and
    predictive draws come from the plain categorical model.

    Parameters
    ----------
    name : str
        The name of the observed term.
    logits : TensorVariable or array_like
        The logits, with the classes on the last axis.
    weights : TensorVariable or array_like
        One weight per observation (normally ``pm.Data``).
    observed : array_like or TensorVariable
        The class codes y, 0..K-1; a code outside them has log density -inf.
    dims : str or tuple of str
        The term's dims.
    gamma : float or TensorVariable, default 0.0
        The focal loss's exponent, >= 0.
    alpha : array_like or TensorVariable, optional
        The focal loss's positive multiplier of each class; default all ones. ``gamma`` and ``alpha``
        may be tensors (``pm.Data``): the focal term is then compiled once for every value they are
        set to.
    allow_negative : bool, default False
        Accept negative weights (advantages); otherwise they are refused, here and by every estimator.

    Returns
    -------
    TensorVariable
        The observed random variable, marked with a :class:`WeightedTerm` (``at_most_zero``; for the
        focal loss, ``alpha`` as a multiplier and gamma = 0, alpha = 1 as what makes it a likelihood).

    Raises
    ------
    InputError
        When the weights are not numbers, do not fit the observations' shape, are NaN or infinite,
        negative (unless ``allow_negative``) or all zero (:func:`check_weights`).

    Examples
    --------
    >>> import pymc as pm
    >>> import pytensor.tensor as pt
    >>> with pm.Model(coords={"obs_id": range(3)}) as model:
    ...     eta = pm.Normal("eta", 0.0, 1.0)
    ...     logits = pt.stack([pt.zeros(3), pt.zeros(3) + eta], axis=-1)  # logistic: (0, eta)
    ...     weights = pm.Data("weights", [1.0, 1.0, 3.0], dims="obs_id")
    ...     label = weighted_softmax("label", logits, weights, observed=[0, 1, 1], dims="obs_id")
    >>> estimator_name(model)
    'wmle'
    >>> logp = model.compile_logp(vars=[label], sum=False)
    >>> logp({"eta": 0.0})[0].round(4)  # w_i log 0.5
    array([-0.6931, -0.6931, -2.0794])
    """
    weights = _as_weights(weights)
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
    _mark(term, weights, at_most_zero=True, allow_negative=allow_negative, multipliers=(alpha,),
          likelihood_when=((gamma, 0.0), (alpha, 1.0)) if focal else ())
    return _checked(term)


# --------------------------------------------------------------------------- the term of an existing variable


def _is_unregistered_variable(x) -> bool:
    """Whether ``x`` is a random variable given as the input of another (``pm.Censored``'s ``dist``)."""
    return x.owner is not None and isinstance(x.owner.op, (RandomVariable, SymbolicRandomVariable))


def _layout(node) -> tuple:
    """How a random variable's node is rebuilt from a flat list of tensors: per input ``("rng",)``,
    ``("size",)``, ``("param",)`` or, for a random variable given as an input (the distribution inside
    ``pm.Censored``, a mixture's components), ``("variable", op, layout)`` of that variable's own node.
    The tensors are the parameters in this order (:func:`_parameters`). An inner variable's size is
    not kept: rebuilt, it takes the outer variable's size where the outer has none of its own (a
    censored variable's draws), else its parameters' shape (its log density at the observations
    broadcasts)."""
    op = node.op
    size = op.size_param(node)
    entries = []
    for x in node.inputs:
        if isinstance(x.type, RandomGeneratorType):
            entries.append(("rng",))
        elif size is not None and x is size:
            entries.append(("size",))
        elif _is_unregistered_variable(x):
            entries.append(("variable", x.owner.op, _layout(x.owner)))
        else:
            entries.append(("param",))
    return tuple(entries)


def _parameters(node, layout) -> list:
    """The tensors :func:`_rebuilt` takes, in the order of ``layout``."""
    found = []
    for x, entry in zip(node.inputs, layout):
        if entry[0] == "param":
            found.append(x)
        elif entry[0] == "variable":
            found += _parameters(x.owner, entry[2])
    return found


def _signature(op, layout) -> str:
    """The gufunc signature of the flat parameters (:func:`_parameters`) to the variable's value."""
    inputs, output = op.signature.split("->")
    parts = iter(re.findall(r"\([^)]*\)", inputs))   # "(n),(n,n)": one part per input
    flat = []
    for entry in layout:
        if entry[0] == "param":
            flat.append(next(parts))
        elif entry[0] == "variable":
            next(parts)
            flat.append(_signature(entry[1], entry[2]).split("->")[0])
    return ",".join(part for part in flat if part) + "->" + output


def _rebuilt(op, layout, parameters, size):
    """A fresh draw of the random variable ``op`` (new generators, the given parameters and size)."""
    parameters = iter(parameters)

    def build(op, layout, size):
        inputs = []
        inner_size = None if any(entry[0] == "size" for entry in layout) else size
        for entry in layout:
            if entry[0] == "rng":
                inputs.append(pytensor.shared(np.random.default_rng()))
            elif entry[0] == "size":
                inputs.append(NoneConst if size is None else size)
            elif entry[0] == "variable":
                inputs.append(build(entry[1], entry[2], inner_size))
            else:
                inputs.append(next(parameters))
        outputs = op.make_node(*inputs).outputs
        return outputs[op.default_output] if op.default_output is not None else outputs[-1]

    return build(op, layout, size)


def _plain_variable(*inputs, op, layout):
    *parameters, _weights, size = inputs
    return _rebuilt(op, layout, parameters, size)


def _weighted_variable_logp(value, *inputs, op, layout):
    *parameters, weights = inputs
    return _times_weights(pm.logp(_rebuilt(op, layout, parameters, None), value), weights)


def weighted_term(variable, weights):
    """The suite's weighted term of an existing random variable, unnamed (``pm.CustomDist.dist``).

    The term's log density at ``y`` is ``w * log p(y | ...)``, the variable's own log density times its
    weights (exactly 0 where ``w = 0``); its draws are the variable's own. What
    :func:`models.weighted` puts in place of an observed variable: any PyMC random variable, univariate
    or multivariate (one weight per row: the variable's batch dimensions), ``pm.Censored`` and
    ``pm.Truncated`` included.

    Parameters
    ----------
    variable : TensorVariable
        The output of a random variable's node (a ``RandomVariable`` or ``SymbolicRandomVariable``).
    weights : TensorVariable
        Broadcastable to the variable's batch shape.

    Returns
    -------
    TensorVariable
        A ``pm.CustomDist`` variable with the same parameters (and the weights as one more input).

    Examples
    --------
    >>> import numpy as np, pymc as pm, pytensor.tensor as pt
    >>> term = weighted_term(pm.Poisson.dist(3.0, size=2), pt.as_tensor([1.0, 2.0]))
    >>> pm.logp(term, np.array([1, 4])).eval().round(4)
    array([-1.9014, -3.5672])
    """
    node = variable.owner
    op = node.op
    layout = _layout(node)
    size = op.size_param(node)
    size = None if size is None or isinstance(size.type, NoneTypeT) else size
    inputs, output = _signature(op, layout).split("->")
    return pm.CustomDist.dist(
        *_parameters(node, layout), weights,
        dist=partial(_plain_variable, op=op, layout=layout),
        logp=partial(_weighted_variable_logp, op=op, layout=layout),
        signature=f"{inputs},()->{output}" if inputs else f"()->{output}",
        size=size, dtype=variable.dtype,
    )


# --------------------------------------------------------------------------- what a model's terms say


def term_weights(model: pm.Model) -> np.ndarray:
    """Every weight of the model's weighted terms, concatenated (empty when it has none).

    Parameters
    ----------
    model : pymc.Model
        A model whose observed terms may carry a :class:`WeightedTerm` marker.

    Returns
    -------
    numpy.ndarray
        The weights' current values, flattened, in the order of ``model.observed_RVs``.

    Examples
    --------
    >>> from models import coin
    >>> term_weights(coin.build_model([1, 0, 1], [1, 1, 10]))
    array([ 1.,  1., 10.])
    """
    found = [np.ravel(value_of(term.tag.weighted_term.weights, model))
             for term in model.observed_RVs if getattr(term.tag, "weighted_term", None) is not None]
    return np.concatenate(found) if found else np.zeros(0)


POINT_NAMES = ("mle", "wmle", "pseudo_mle")


def estimator_name(model: pm.Model) -> str:
    """What maximising the model's likelihood terms estimates.

    Parameters
    ----------
    model : pymc.Model
        A model built with :func:`weighted_likelihood` or :func:`weighted_softmax` terms (or with
        potentials).

    Returns
    -------
    str
        One of ``POINT_NAMES``: ``"mle"`` when every weight is 1 and every term a log-likelihood,
        ``"wmle"`` when some weight is not 1, ``"pseudo_mle"`` when a term is a loss rather than a
        log-likelihood (the focal loss with gamma > 0 or alpha != 1, a potential).

    Examples
    --------
    >>> from models import coin
    >>> estimator_name(coin.build_model([1, 0, 1], [1, 1, 10]))
    'wmle'
    """
    if model.potentials:
        return "pseudo_mle"
    for term in model.observed_RVs:
        marker = getattr(term.tag, "weighted_term", None)
        for tensor, value in (marker.likelihood_when if marker is not None else ()):
            if np.any(np.asarray(value_of(tensor, model)) != value):
                return "pseudo_mle"
    return "mle" if np.all(term_weights(model) == 1) else "wmle"


def weights_summary(model: pm.Model) -> dict[str, float]:
    """The weights' ``sum``, Kish ESS and share of negative weights.

    As every comparison records them.

    Parameters
    ----------
    model : pymc.Model
        A model whose observed terms may carry a :class:`WeightedTerm` marker (:func:`term_weights`).

    Returns
    -------
    dict
        ``sum``, ``kish_ess`` (of the weights' magnitudes when some are negative; NaN when there are
        no weights or all are zero) and ``negative_share``.

    Examples
    --------
    >>> from models import coin
    >>> weights_summary(coin.build_model([1, 0, 1], [1, 1, 10]))
    {'sum': 12.0, 'kish_ess': 1.411764705882353, 'negative_share': 0.0}
    """
    w = term_weights(model)
    if w.size == 0 or not np.any(w):
        return {"sum": float(np.sum(w)), "kish_ess": float("nan"), "negative_share": 0.0}
    return {"sum": float(w.sum()), "kish_ess": float(np.sum(np.abs(w)) ** 2 / np.sum(w**2)),
            "negative_share": float(np.mean(w < 0))}


def observed_batch_shape(model: pm.Model, term, data: dict | None = None) -> tuple:
    """The shape of ``term``'s observations without its core dimensions: one weight per element.

    Parameters
    ----------
    model : pymc.Model
    term : TensorVariable
        An observed variable of ``model``.
    data : dict, optional
        ``pm.Data`` name -> values to read instead of the model's current ones.

    Returns
    -------
    tuple of int

    Examples
    --------
    >>> import models
    >>> model = models.coin.build_model([1, 0, 1])
    >>> observed_batch_shape(model, model["heads"])
    (3,)
    """
    data = data or {}
    value = model.rvs_to_values[term]
    if isinstance(value, SharedVariable) and value.name in data:
        shape = np.shape(data[value.name])
    else:   # read by a function of the shapes compiled once per model (no C module for a few integers)
        shape = compiled.cached(model, ("observed_shape", term), lambda: pytensor.function(
            [], value.shape, mode="FAST_COMPILE"))()
    core = term.owner.op.ndim_supp
    return tuple(int(s) for s in (shape[:len(shape) - core] if core else shape))


def _check_term(model: pm.Model, term, data: dict) -> None:
    marker = term.tag.weighted_term
    weights = marker.weights
    if isinstance(weights, SharedVariable) and weights.name in data:
        values = data[weights.name]
    else:
        values = value_of(weights, model)
    if values is None:
        raise InputError(f"the weights of {term.name!r} depend on random variables: weights are data")
    weights_lib.check_shaped(values, observed_batch_shape(model, term, data),
                             allow_negative=marker.allow_negative, name=f"the weights of {term.name!r}")


def check_weights(model: pm.Model, data: dict | None = None) -> None:
    """Refuse weights no estimator should fit with, naming the term, before anything is fitted.

    Parameters
    ----------
    model : pymc.Model
        Its weighted terms (those marked with :class:`WeightedTerm`) are checked at their current
        values, as ``pm.set_data`` left them.
    data : dict, optional
        ``pm.Data`` name -> values to check instead of the model's current ones (a data set of
        ``models.sample_many``).

    Raises
    ------
    InputError
        When a term's weights are not data, do not fit its observations' shape, are NaN or infinite,
        negative (unless the term allows them) or all zero.

    Examples
    --------
    >>> import numpy as np, pymc as pm
    >>> from models import coin
    >>> model = coin.build_model([1, 0, 1])
    >>> pm.set_data({"weights": np.array([1.0, np.nan, 1.0])}, model=model)
    >>> check_weights(model)
    Traceback (most recent call last):
        ...
    models.errors.InputError: the weights of 'heads' has 1 NaN value(s), first at index 1
    """
    data = data or {}
    for term in model.observed_RVs:
        if getattr(term.tag, "weighted_term", None) is not None:
            _check_term(model, term, data)
