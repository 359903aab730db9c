"""Point estimators of any model: the (weighted) MLE and the MAP, each with its verdict on existence.

For a model with log density ``log p(theta) + sum_i w_i log p(y_i | theta)``:

* :func:`mle` maximises the likelihood part alone, ``sum_i w_i log p(y_i | theta)`` (observed terms
  and potentials; priors dropped). With ``w = 1`` this is the MLE, otherwise the weighted MLE.
* :func:`map_estimate` maximises the whole log density (no Jacobian: the mode of the posterior
  density in the model's own parameterisation).

Both first settle whether a finite maximiser exists: exactly, from the model's family or its
structure (:mod:`models.estimation.existence`), else by the numerical vanishing-ridge path
(:mod:`models.estimation.maximise`). The estimate carries the verdict (``estimate.existence``), and
so does the :class:`UnboundedLikelihoodError` raised when there is none. The log density is compiled
once per model object: fitting the same model again after ``pm.set_data`` reuses it.
"""

from __future__ import annotations

import pymc as pm
import pytensor
import pytensor.tensor as pt

from models._graph import check_model
from models.errors import InputError
from models.estimation import existence, linear_predictor
from models.estimation.existence import UnboundedLikelihoodError
from models.estimation.maximise import Estimate, maximise
from models.likelihood import check_weights

__all__ = ["compile_log_likelihood", "likelihood_terms", "map_estimate", "mle", "mle_verdict", "try_mle"]


def likelihood_terms(model: pm.Model) -> list:
    """The model's likelihood terms: its observed variables and potentials.

    Parameters
    ----------
    model : pymc.Model

    Returns
    -------
    list
        The observed variables, then the potentials.

    Raises
    ------
    InputError
        When ``model`` is not a ``pymc.Model``, or has no observed variables or potentials.

    Examples
    --------
    >>> import models
    >>> from models.estimation.estimators import likelihood_terms
    >>> [term.name for term in likelihood_terms(models.coin.build_model([1, 0, 1, 1]))]
    ['heads']
    """
    check_model(model)
    terms = [*model.observed_RVs, *model.potentials]
    if not terms:
        raise InputError("the model has no observed variables or potentials: there is no likelihood")
    check_weights(model)
    return terms


def compile_log_likelihood(model: pm.Model):
    """The model's weighted log-likelihood as a Python function of the free variables' values.

    Parameters
    ----------
    model : pymc.Model
        A model with observed variables or potentials.

    Returns
    -------
    callable
        ``f(**values) -> float``: ``sum_i w_i log p(y_i | theta)`` at constrained values of every free
        variable, compiled once. For likelihood curves and profiles.

    Raises
    ------
    InputError
        When the model has no likelihood terms, or (on a call) a free variable's value is missing.

    Examples
    --------
    >>> from models import coin
    >>> log_likelihood = compile_log_likelihood(coin.build_model([1, 0, 1]))
    >>> round(log_likelihood(p=0.5), 4)
    -2.0794
    """
    likelihood_terms(model)
    parts = [pt.sum(pm.logp(rv, model.rvs_to_values[rv])) for rv in model.observed_RVs]
    parts += [pt.sum(potential) for potential in model.potentials]
    names = [rv.name for rv in model.free_RVs]
    total = sum(parts[1:], start=parts[0])
    function = pytensor.function(model.free_RVs, total, on_unused_input="ignore")

    def log_likelihood(**values) -> float:
        missing = set(names) - set(values)
        if missing:
            raise InputError(f"values needed for {sorted(missing)}")
        return float(function(*(values[name] for name in names)))

    return log_likelihood


def mle(model: pm.Model) -> Estimate:
    """(Weighted) maximum likelihood: maximise the observed terms and potentials, priors dropped.

    Parameters
    ----------
    model : pymc.Model
        A model with observed variables or potentials and continuous free variables.

    Returns
    -------
    Estimate
        The constrained values of every free variable and deterministic (a dict), with the verdict on
        existence in ``.existence``. A maximiser on the boundary of a bounded parameter (all heads:
        ``p = 1``) is returned.

    Raises
    ------
    UnboundedLikelihoodError
        When no finite maximiser exists; its ``.existence`` names the directions that run off.
    InputError
        When the model has no likelihood terms or no continuous free variables.

    Examples
    --------
    >>> from models import coin
    >>> round(float(mle(coin.build_model([1, 0, 1, 1]))["p"]), 6)
    0.75
    """
    terms = likelihood_terms(model)
    return maximise(model, terms, "weighted log-likelihood", mle_verdict(model))


def mle_verdict(model: pm.Model) -> existence.Existence | None:
    """The exact verdict on the (weighted) MLE: the model family's, else the linear program of a
    GLM-like model (:mod:`models.estimation.linear_predictor`), else None (the ridge path decides).

    Parameters
    ----------
    model : pymc.Model

    Returns
    -------
    Existence or None

    Examples
    --------
    >>> import numpy as np, pymc as pm, models
    >>> with pm.Model() as model:
    ...     a = pm.Normal("a", 0, 5)
    ...     y = pm.Poisson("y", mu=pm.math.exp(a), observed=[0, 0, 0])
    >>> verdict = mle_verdict(model)
    >>> verdict.exists, verdict.method, verdict.diverging
    (False, 'linear program', ('a -> -inf',))
    """
    verdict = existence.of_mle(model)
    return verdict if verdict is not None else linear_predictor.mle_existence(model)


def map_estimate(model: pm.Model) -> Estimate:
    """Maximum a posteriori: the mode of the whole log density (priors included, no Jacobian).

    Parameters
    ----------
    model : pymc.Model
        A model with observed variables or potentials and continuous free variables.

    Returns
    -------
    Estimate
        As :func:`mle` returns it, with the MAP's verdict in ``.existence``.

    Raises
    ------
    UnboundedLikelihoodError
        When the log posterior density has no finite maximiser (an improper prior along a direction
        the data do not bound).
    InputError
        When the model has no likelihood terms or no continuous free variables.

    Examples
    --------
    >>> from models import coin
    >>> round(float(map_estimate(coin.build_model([1, 1, 1], prior=(2, 2)))["p"]), 6)
    0.8
    """
    likelihood = likelihood_terms(model)
    return maximise(model, [*model.free_RVs, *likelihood], "log posterior density", existence.of_map(model))


def try_mle(model: pm.Model) -> tuple[Estimate | None, str | None]:
    """The (W)MLE, or why it does not exist: a missing MLE is recorded, not raised.

    Parameters
    ----------
    model : pymc.Model

    Returns
    -------
    tuple of (Estimate or None, str or None)
        ``(estimate, None)`` when the (W)MLE exists, else ``(None, why)``, ``why`` the message of the
        :class:`UnboundedLikelihoodError` :func:`mle` raised.

    Raises
    ------
    InputError
        As :func:`mle`.

    Examples
    --------
    >>> import models
    >>> from models.estimation.estimators import try_mle
    >>> estimate, failure = try_mle(models.classes.build_model([[-1.0], [1.0]], [0, 1]))
    >>> estimate is None, failure.split(":")[0]
    (True, 'the weighted log-likelihood has no finite maximiser (linear program)')
    """
    try:
        return mle(model), None
    except UnboundedLikelihoodError as err:
        return None, str(err)
