"""Weights for a model the suite did not build: :func:`weighted` turns a PyMC model into its weighted
version, with the suite's weighted term in place of each observed variable named.

The model ``log p(theta) + sum_i log p(y_i | theta)`` becomes

    log p(theta) + sum_i w_i log p(y_i | theta)

for the observed variables given weights; everything else (priors, hierarchical structure,
deterministics, ``pm.Data``, coords and dims, potentials, observed variables given no weights) is
kept as it was. The rewrite runs on the model's graph (``pymc.model.fgraph``: ``fgraph_from_model``,
then ``model_from_fgraph``), so the input model is left untouched, and the result is what a model
written by hand with :mod:`models.likelihood` would be: the weights a ``pm.Data`` with the
variable's dims (``"weights"``, or ``"<name>_weights"`` when several variables are weighted), the
pointwise weighted terms in ``log_likelihood``, posterior predictive draws from the unweighted
distribution, every estimator of the suite (``compare``, ``sample_many``, ``loo``, ``gpc``, the
WLB, the sandwich) at hand.

What cannot be weighted is refused with an :class:`~models.errors.InputError` naming the variable:
an observed variable with missing values that PyMC imputes, a minibatched one (``total_size``), a
name that is not an observed random variable (a deterministic function of observations, a
potential), and a variable weighted already.

A Bambi model (``bambi.Model``) is weighted through the PyMC model it builds (``build()``, then
``backend.model``): its parameters keep Bambi's names, and its ``Intercept`` is the intercept of the
predictors Bambi centres, as in Bambi's own posterior. A Bambi formula weighted already with Bambi's
``weighted(y, w)`` is refused: its weights are baked into the response.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pymc as pm
import pytensor
from pymc.model.fgraph import (
    ModelObservedRV,
    fgraph_from_model,
    model_from_fgraph,
    model_named,
    model_observed_rv,
)
from pymc.variational.minibatch_rv import MinibatchRandomVariable

from models import weights as weights_lib
from models.errors import InputError
from models.likelihood import WeightedTerm, check_weights, observed_batch_shape, weighted_term

__all__ = ["weighted"]


def _is_bambi(model) -> bool:
    return type(model).__module__.split(".")[0] == "bambi" and hasattr(model, "build")


def _pymc_model(model) -> pm.Model:
    """The PyMC model to weight: ``model`` itself, or the one a ``bambi.Model`` builds."""
    if isinstance(model, pm.Model):
        return model
    if not _is_bambi(model):
        raise InputError(f"model must be a pymc.Model or a bambi.Model, got {type(model).__name__}")
    response = model.response_component.term
    if response.is_weighted:
        raise InputError(f"the Bambi response {response.name!r} is weighted already with Bambi's weighted(): "
                         "write the formula without it and give the weights to models.weighted")
    if not model.built:
        model.build()
    return model.backend.model


def _observed_names(model: pm.Model) -> list[str]:
    return [rv.name for rv in model.observed_RVs]


def _weights_by_name(model: pm.Model, weights) -> dict:
    """``weights`` as name -> values: a mapping as given, a bare array for the one observed variable."""
    if isinstance(weights, dict):
        return dict(weights)
    observed = _observed_names(model)
    if len(observed) != 1:
        raise InputError(f"the model has {len(observed)} observed variables {observed}: give the weights "
                         "as a dict from observed variable names to arrays")
    return {observed[0]: weights}


def _refusal(model: pm.Model, name: str) -> str | None:
    """Why the observed variable ``name`` cannot be weighted, or None."""
    observed = {rv.name: rv for rv in model.observed_RVs}
    if name not in observed:
        if f"{name}_observed" in observed and f"{name}_unobserved" in model.named_vars:
            return (f"{name!r} has missing values that PyMC imputes ({name}_unobserved): a weighted "
                    "likelihood of imputed values is not defined; drop or impute the rows first")
        if name in model.named_vars:
            variable = model.named_vars[name]
            kind = ("a deterministic function of other variables" if variable in model.deterministics
                    else "a potential" if variable in model.potentials else "not an observed random variable")
            return f"{name!r} is {kind}: only observed random variables can be weighted"
        return f"the model has no observed variable {name!r} (observed: {_observed_names(model)})"
    rv = observed[name]
    if getattr(rv.tag, "weighted_term", None) is not None:
        return f"{name!r} is weighted already (a term of models.likelihood)"
    if isinstance(rv.owner.op, MinibatchRandomVariable):
        return (f"{name!r} is minibatched (total_size): its likelihood is rescaled to the full data set, "
                "which weights per row would contradict")
    return None


def _relinked(old, new) -> WeightedTerm:
    """The marker of ``old`` (a weighted term of the input model) for ``new``, its copy in the rewritten
    model: every tensor it names that is an input of ``old`` is replaced by ``new``'s input in the same
    place (the weights, the focal loss's alpha and gamma); constants stay as they are."""
    marker = old.tag.weighted_term
    places = {variable: index for index, variable in enumerate(old.owner.inputs)}

    def relinked(tensor):
        if tensor in places:
            return new.owner.inputs[places[tensor]]
        if tensor.owner is None and not isinstance(tensor, pytensor.compile.SharedVariable):
            return tensor   # a constant
        raise InputError(f"{old.name!r} is a weighted term whose weights are not one of its inputs: "
                         "it cannot be carried into the weighted model")

    return dataclasses.replace(
        marker, weights=relinked(marker.weights),
        multipliers=tuple(relinked(tensor) for tensor in marker.multipliers),
        likelihood_when=tuple((relinked(tensor), value) for tensor, value in marker.likelihood_when))


def weighted(model, weights, *, normalize: str = "none", allow_negative: bool = False) -> pm.Model:
    """A new model in which each named observed variable's log density is multiplied by its weights.

    The input model is left as it is; the result has the log density
    ``log p(theta) + sum_i w_i log p(y_i | theta)`` over the weighted variables (module docstring).

    Parameters
    ----------
    model : pymc.Model or bambi.Model
        Any PyMC model with observed variables: univariate or multivariate (one weight per row),
        censored or truncated, hierarchical, with several observed variables; or a Bambi model
        (built here if it is not yet), weighted through the PyMC model it builds.
    weights : array_like or dict
        One weight per row of the observed variable (its batch shape; a scalar weighs every row
        alike), or, for several or a chosen few, a dict from observed variable names to such arrays.
    normalize : {"none", "n", "ess"}, default "none"
        Rescale each variable's weights: as given, to sum to its number of rows, or to sum to their
        Kish effective sample size (:func:`models.weights.normalize`).
    allow_negative : bool, default False
        Accept negative weights (advantages).

    Returns
    -------
    pymc.Model
        The weighted model: the weights as ``pm.Data`` (``"weights"``, or ``"<name>_weights"`` when
        several variables are weighted or the model has a ``"weights"`` already) with the variable's
        dims, each weighted variable a term of :mod:`models.likelihood` under its own name.

    Raises
    ------
    InputError
        For a model that is neither a ``pymc.Model`` nor a ``bambi.Model``, a Bambi formula weighted
        already by Bambi's ``weighted()``, a name that is not an observed random variable,
        an imputed, minibatched or already weighted variable, and weights that do not fit (wrong
        shape, NaN or infinite, negative unless allowed, all zero).

    Examples
    --------
    >>> import numpy as np, pymc as pm, models
    >>> with pm.Model(coords={"obs_id": range(4)}) as model:
    ...     p = pm.Beta("p", 1.0, 1.0)
    ...     y = pm.Bernoulli("y", p=p, observed=[1, 0, 1, 1], dims="obs_id")
    >>> weighted_model = models.weighted(model, [1.0, 1.0, 10.0, 1.0])
    >>> models.estimator_name(weighted_model), round(float(models.mle(weighted_model)["p"]), 4)
    ('wmle', 0.9231)
    """
    model = _pymc_model(model)
    by_name = _weights_by_name(model, weights)
    if not by_name:
        raise InputError("no weights given: name at least one observed variable")
    for name in by_name:
        reason = _refusal(model, name)
        if reason is not None:
            raise InputError(reason)
    observed = {rv.name: rv for rv in model.observed_RVs}
    checked = {}
    for name, values in by_name.items():
        shape = observed_batch_shape(model, observed[name])
        w = weights_lib.check_shaped(values, shape, allow_negative=allow_negative,
                                     name=f"the weights of {name!r}")
        w = np.array(np.broadcast_to(w, shape), dtype=float)   # one weight per row, as the rows are laid out
        checked[name] = weights_lib.normalize(w.ravel(), normalize).reshape(shape)
    single = len(checked) == 1 and "weights" not in model.named_vars
    data_names = {name: "weights" if single else f"{name}_weights" for name in checked}
    taken = [data for data in data_names.values() if data in model.named_vars]
    if taken:
        raise InputError(f"the model already has variables named {taken}: rename them to weight it")

    distributions = {name: type(observed[name].owner.op).__name__ for name in checked}
    try:
        fgraph, _ = fgraph_from_model(model, inlined_views=True)
    except (NotImplementedError, ValueError) as err:   # initial values set by hand, a nested model
        raise InputError(f"PyMC cannot rewrite this model's graph, so it cannot be weighted: {err}") from None
    for output in list(fgraph.outputs):
        if not (isinstance(output.owner.op, ModelObservedRV) and output.name in checked):
            continue
        name = output.name
        rv, value, *dims = output.owner.inputs
        batch = rv.ndim - rv.owner.op.ndim_supp
        data = pytensor.shared(checked[name], name=data_names[name])
        data_dims = dims[:batch] if dims else ()
        term = weighted_term(rv, model_named(data, *data_dims))
        replacement = model_observed_rv(term, value, *dims)
        replacement.name = name
        fgraph.replace(output, replacement, import_missing=True)
    new = model_from_fgraph(fgraph, mutate_fgraph=True)
    for term in new.observed_RVs:   # terms weighted before: their markers name the input model's tensors
        carried = term.name not in data_names
        if carried and getattr(observed[term.name].tag, "weighted_term", None) is not None:
            term.tag.weighted_term = _relinked(observed[term.name], term)
    for name, data_name in data_names.items():
        term = new[name]
        discrete = term.dtype.startswith("int")   # the log of a probability mass: at most zero
        term.tag.weighted_term = WeightedTerm(weights=new[data_name], at_most_zero=discrete,
                                              allow_negative=allow_negative, distribution=distributions[name])
    check_weights(new)
    return new
