"""The one place an ``InferenceData`` is assembled from a model and its draws.

Every route to draws (the NUTS back ends, the batched engine, the weighted likelihood bootstrap, the
sandwich adjustment) ends here, so every ``InferenceData`` of the suite has the same groups, named by
the model's dims and coords:

* ``posterior``: free variables and deterministics;
* ``sample_stats`` (NUTS only);
* ``log_likelihood``: the pointwise *weighted* terms ``w_i log p(y_i | theta)``, what the sampler's
  target sums and ``az.loo`` reads; beside it :data:`UNWEIGHTED_GROUP`, the same terms with every
  weight 1, ``log p(y_i | theta)``, which :func:`models.elpd.loo` needs;
* ``observed_data`` and ``constant_data``: the observed values and every other ``pm.Data`` (the
  weights among them).
"""

from __future__ import annotations

import warnings

import arviz as az
import numpy as np
import pymc as pm
import xarray as xr

from models import compiled
from models._graph import value_of
from models.errors import InputError

__all__ = ["UNWEIGHTED_GROUP", "add_log_likelihood", "from_draws", "posterior_dims"]

UNWEIGHTED_GROUP = "unweighted_log_likelihood"


def posterior_dims(model: pm.Model, names) -> tuple[dict, dict]:
    """``(dims, coords)`` of the named model variables, as ``az.from_dict`` takes them.

    Parameters
    ----------
    model : pymc.Model
    names : iterable of str
        Variables of the model; those without dims are left out of ``dims``.

    Returns
    -------
    tuple of (dict, dict)
        Name -> list of dims, and dim -> coordinate values for every dim used that has coordinates.

    Examples
    --------
    >>> import models
    >>> from models.sampling.idata import posterior_dims
    >>> model = models.classes.build_model([[-1.0, 0.5], [1.0, 0.2], [0.3, 0.1]], [0, 1, 1])
    >>> posterior_dims(model, ["coef", "intercept"])
    ({'coef': ['feature']}, {'feature': array(['x0', 'x1'], dtype='<U2')})
    """
    dims = {name: list(model.named_vars_to_dims[name]) for name in names if name in model.named_vars_to_dims}
    used = {dim for ds in dims.values() for dim in ds}
    coords = {dim: np.asarray(model.coords[dim]) for dim in used if model.coords.get(dim) is not None}
    return dims, coords


def from_draws(model: pm.Model, posterior: dict, *, sample_stats: dict | None = None,
               attrs: dict | None = None, log_likelihood: bool = False) -> az.InferenceData:
    """``InferenceData`` of draws of ``model`` at its current data.

    Parameters
    ----------
    model : pymc.Model
        The model the draws are of, holding the data they were made with.
    posterior : dict
        Name -> draws of shape ``(chain, draw, *shape)``, for free variables and deterministics.
    sample_stats : dict, optional
        Name -> ``(chain, draw)`` sampler statistics.
    attrs : dict, optional
        Provenance stored in ``idata.attrs``.
    log_likelihood : bool, default False
        Add the weighted and unweighted pointwise log-likelihood groups (:func:`add_log_likelihood`).

    Returns
    -------
    arviz.InferenceData
        ``posterior``, ``observed_data``, ``constant_data`` (every ``pm.Data`` that is not an observed
        value) and, when given or asked for, ``sample_stats`` and the log-likelihood groups.

    Raises
    ------
    InputError
        With ``log_likelihood``, as :func:`add_log_likelihood`.

    Examples
    --------
    >>> import numpy as np, models
    >>> from models.sampling.idata import from_draws
    >>> model = models.coin.build_model([1, 0, 1, 1])
    >>> idata = from_draws(model, {"p": np.full((1, 3), 0.75)}, attrs={"method": "example"})
    >>> sorted(idata.groups()), idata.attrs["method"]
    (['constant_data', 'observed_data', 'posterior'], 'example')
    """
    dims, coords = posterior_dims(model, posterior)
    observed_values = {model.rvs_to_values[rv] for rv in model.observed_RVs}
    constant = {d.name: np.asarray(d.get_value()) for d in model.data_vars if d not in observed_values}
    observed = {rv.name: np.asarray(value_of(model.rvs_to_values[rv], model)) for rv in model.observed_RVs}
    data_dims, data_coords = posterior_dims(model, [*constant, *observed])
    groups = {"posterior": posterior, "observed_data": observed, "constant_data": constant}
    if sample_stats is not None:
        groups["sample_stats"] = sample_stats
    idata = az.from_dict(**groups, dims={**dims, **data_dims}, coords={**coords, **data_coords})
    if log_likelihood:
        add_log_likelihood(idata, model)
    idata.attrs.update(attrs or {})
    return idata


def add_log_likelihood(idata: az.InferenceData, model: pm.Model) -> az.InferenceData:
    """Add ``log_likelihood`` (weighted) and :data:`UNWEIGHTED_GROUP` to ``idata``, in place.

    Parameters
    ----------
    idata : arviz.InferenceData
        Draws of ``model``'s free variables in ``posterior``.
    model : pymc.Model
        Holding the data the draws were made with.

    Returns
    -------
    arviz.InferenceData
        ``idata``, with every observed term at every draw under the observed variables' own dims (as
        ``pm.compute_log_likelihood`` names them).

    Notes
    -----
    The unweighted terms are evaluated once (:func:`models.compiled.pointwise_log_likelihood`); a
    weighted term of :mod:`models.likelihood` is linear in its weights, so its pointwise values are
    ``w_i`` times the unweighted ones (0 where ``w_i = 0``, as the term itself gives).

    Raises
    ------
    InputError
        When the weights of a weighted term depend on random variables (weights are data).

    Examples
    --------
    >>> import numpy as np, models
    >>> from models.sampling.idata import add_log_likelihood, from_draws
    >>> model = models.coin.build_model([1, 0, 1, 1], [1, 1, 2, 0])
    >>> idata = add_log_likelihood(from_draws(model, {"p": np.full((1, 3), 0.75)}), model)
    >>> idata.log_likelihood["heads"].shape
    (1, 3, 4)
    >>> idata.log_likelihood["heads"].values[0, 0].round(4)
    array([-0.2877, -1.3863, -0.5754,  0.    ])
    >>> idata.unweighted_log_likelihood["heads"].values[0, 0].round(4)
    array([-0.2877, -1.3863, -0.2877, -0.2877])
    """
    posterior = idata.posterior
    draws = {rv.name: posterior[rv.name].values for rv in model.free_RVs}
    unweighted = compiled.pointwise_log_likelihood(model, draws)
    groups = {"log_likelihood": {}, UNWEIGHTED_GROUP: {}}
    for rv in model.observed_RVs:
        array = unweighted[rv.name]
        marker = getattr(rv.tag, "weighted_term", None)
        weighted = array
        # Which constant_data holds the term's weights ("": none), for models.elpd.loo.
        weights_name = getattr(marker.weights, "name", None) if marker is not None else None
        idata.attrs[f"weights_of_{rv.name}"] = weights_name or ""
        if marker is not None:
            weights = value_of(marker.weights, model)
            if weights is None:
                raise InputError(f"the weights of {rv.name!r} depend on random variables: weights are data")
            weights = np.broadcast_to(weights, array.shape[2:])
            weighted = np.where(weights == 0, 0.0, weights * array)
        # The observed variable's batch dims (a multivariate term has one log density per row).
        dims = list(model.named_vars_to_dims.get(rv.name) or
                    [f"{rv.name}_dim_{i}" for i in range(array.ndim - 2)])[:array.ndim - 2]
        coords = {"chain": posterior["chain"], "draw": posterior["draw"],
                  **{dim: np.asarray(model.coords[dim]) for dim in dims if model.coords.get(dim) is not None}}
        for group, values in (("log_likelihood", weighted), (UNWEIGHTED_GROUP, array)):
            groups[group][rv.name] = xr.DataArray(values, dims=["chain", "draw", *dims], coords=coords)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is not defined in the InferenceData scheme")
        idata.add_groups({name: xr.Dataset(variables) for name, variables in groups.items()})
    return idata
