"""All estimators of one model side by side: :func:`compare` and, for many data sets of one model,
:func:`compare_many`.

A :class:`Comparison` holds the (W)MLE (or why it does not exist), the MAP, the NUTS posterior with
its provenance and diagnostics, and the weights' summary, and turns them into tidy rows
(:mod:`models.summary`).
"""

from __future__ import annotations

from dataclasses import dataclass

import arviz as az
import pymc as pm

from models import summary
from models._graph import check_model, data_kept
from models.diagnostics import Diagnostics, diagnose
from models.errors import InputError
from models.estimation.estimators import map_estimate, try_mle
from models.estimation.maximise import Estimate
from models.likelihood import POINT_NAMES, estimator_name, weights_summary
from models.sampling.batched import resolve_datasets
from models.sampling.many import sample_many
from models.sampling.nuts import add_posterior_predictive, sample

__all__ = ["Comparison", "compare", "compare_many"]


@dataclass(frozen=True)
class Comparison:
    """The estimators of one model, side by side (what :func:`compare` returns).

    Attributes
    ----------
    point : Estimate or None
        The (W)MLE (an :class:`Estimate`: free variables and deterministics, with the verdict on
        existence in ``point.existence``), or ``None`` when no finite maximiser exists.
    point_failure : str or None
        When ``point`` is ``None``, why, naming the directions that run off.
    point_name : str
        ``"mle"``, ``"wmle"`` or ``"pseudo_mle"`` (:func:`estimator_name`).
    map : Estimate
        The MAP estimate.
    idata : arviz.InferenceData
        The NUTS draws, with the settings, seed, weights summary, verdicts and diagnostics in
        ``attrs``.
    diagnostics : Diagnostics
        :func:`diagnose` of the draws.
    weights : dict
        :func:`weights_summary`.

    Examples
    --------
    >>> import models
    >>> separated = models.classes.build_model([[-1.0], [1.0]], [0, 1])
    >>> result = models.compare(separated, draws=200, tune=200, chains=2, random_seed=1)
    >>> result.point is None, result.point_failure.split(":")[0]
    (True, 'the weighted log-likelihood has no finite maximiser (linear program)')
    >>> sorted(result.map), result.map.existence.exists
    (['coef', 'intercept'], True)
    """

    point: Estimate | None
    point_failure: str | None
    point_name: str
    map: Estimate
    idata: az.InferenceData
    diagnostics: Diagnostics
    weights: dict

    def estimate_rows(self, label: str, var_names) -> list[dict]:
        """Tidy rows of every scalar element of ``var_names`` at the (W)MLE (when it exists) and the MAP.

        Parameters
        ----------
        label : str
            The model's name in the rows.
        var_names : iterable of str
            Free variables or deterministics.

        Returns
        -------
        list of dict
            Rows of :mod:`models.summary` (``model``, ``estimator``, ``quantity``, ``value``).

        Examples
        --------
        >>> import models
        >>> result = models.compare(models.coin.build_model([1, 0, 1, 1]), draws=200, tune=200,
        ...                         chains=2, random_seed=1)
        >>> [(row["estimator"], row["value"]) for row in result.estimate_rows("coin", ["p"])]
        [('mle', 0.75), ('map', 0.75)]
        """
        rows = []
        for estimator, estimate in ((self.point_name, self.point), ("map", self.map)):
            if estimate is not None:
                rows += summary.estimate_rows(label, estimator, estimate, var_names, self.idata)
        return rows

    def rows(self, label: str, var_names=None, *, diagnostics: bool = True) -> list[dict]:
        """Tidy rows (:mod:`models.summary`) of the whole comparison, under the model name ``label``.

        Parameters
        ----------
        label : str
            The model's name in the rows.
        var_names : iterable of str, optional
            Free variables or deterministics; default the free variables.
        diagnostics : bool, default True
            Add the diagnostics' rows.

        Returns
        -------
        list of dict
            The weights' sum and Kish ESS, whether the (W)MLE exists, the (W)MLE and MAP of every
            scalar element of ``var_names``, the posterior mean and 94% HDI of each (``lower``,
            ``upper``), and the diagnostics (unless ``diagnostics=False``).

        Examples
        --------
        >>> import models
        >>> result = models.compare(models.coin.build_model([1, 0, 1, 1]), draws=200, tune=200,
        ...                         chains=2, random_seed=1)
        >>> rows = result.rows("coin", diagnostics=False)
        >>> [row["estimator"] for row in rows]
        ['weights', 'weights', 'mle', 'mle', 'map', 'posterior']
        >>> [row["quantity"] for row in rows]
        ['sum', 'kish_ess', 'exists', 'p', 'p', 'p']
        """
        names = list(var_names) if var_names is not None else [
            name for name in self.map if name in self.idata.posterior and name in self._free]
        rows = [summary.point(label, "weights", "sum", self.weights["sum"]),
                summary.point(label, "weights", "kish_ess", self.weights["kish_ess"]),
                summary.point(label, self.point_name, "exists", int(self.point is not None)),
                *self.estimate_rows(label, names),
                *summary.posterior_rows(label, self.idata, names)]
        return rows + (summary.diagnostic_rows(label, self.diagnostics) if diagnostics else [])

    @property
    def _free(self) -> set[str]:
        return set(self.idata.attrs.get("free_variables", "").split(","))


def compare(model: pm.Model, *, draws: int = 1000, tune: int = 1000, chains: int = 4,
            random_seed: int | None = None, sampler: str = "auto", target_accept: float = 0.8,
            posterior_predictive: bool = False, progressbar: bool | None = None,
            log_likelihood: bool | None = None, point_name: str | None = None,
            cores: int | None = None) -> Comparison:
    """(W)MLE, MAP and NUTS posterior of one model, as a :class:`Comparison`.

    Works on any PyMC model with observed terms (or potentials): the weights are read from the
    weighted terms of :mod:`models.likelihood` (a model without them counts as unweighted). A (W)MLE
    that does not exist is recorded (``point=None``, ``point_failure``), not raised; the MAP always is
    raised when it does not exist (a prior that fails to keep the posterior proper is a bug of the
    model).

    Parameters
    ----------
    model : pymc.Model
    draws, tune, chains, random_seed, sampler, target_accept
        The sampling arguments, those of :func:`sample`.
    posterior_predictive, progressbar, log_likelihood, cores
        Likewise, as :func:`sample` takes them.
    point_name : {"mle", "wmle", "pseudo_mle"}, optional
        Overrides the name :func:`estimator_name` infers from the weights, for weights that are counts
        of identical rows of unweighted data (a collapsed model of behaviour cloning fits the MLE).

    Returns
    -------
    Comparison
        ``idata.attrs`` add to the sampler's settings the provenance of the comparison: the point
        estimator's name and verdict, the MAP's verdict, the weights' summary and the diagnostics
        (``diagnostics_*``).

    Raises
    ------
    UnboundedLikelihoodError
        When the MAP does not exist.
    InputError
        For an unknown ``point_name``, a model without likelihood terms, or sampling arguments
        :func:`sample` refuses.

    Examples
    --------
    >>> import models
    >>> result = models.compare(models.coin.build_model([1, 0, 1, 1]), draws=200, tune=200, chains=2,
    ...                         random_seed=1)
    >>> result.point_name, float(result.point["p"]), float(result.map["p"])
    ('mle', 0.75, 0.75)
    >>> result.idata.attrs["point_verdict"]
    'the weighted log-likelihood has a finite maximiser (closed form): heads weigh 3 and tails 1: p = 0.75'
    """
    if point_name not in (None, *POINT_NAMES):
        raise InputError(f"point_name must be one of {POINT_NAMES}, got {point_name!r}")
    check_model(model)
    point, failure = try_mle(model)
    map_point = map_estimate(model)
    idata = sample(model, draws=draws, tune=tune, chains=chains, random_seed=random_seed, sampler=sampler,
                   target_accept=target_accept, posterior_predictive=posterior_predictive,
                   progressbar=progressbar, log_likelihood=log_likelihood, cores=cores)
    return _comparison(model, point, failure, map_point, idata, diagnose(idata),
                       point_name or estimator_name(model), weights_summary(model))


def compare_many(model: pm.Model, datasets, *, random_seeds, draws: int = 1000, tune: int = 1000,
                 chains: int = 4, sampler: str = "auto", target_accept: float = 0.8,
                 posterior_predictive: bool = False, log_likelihood: bool = True,
                 point_names=None, progress=None, kernel: str = "nuts") -> list[Comparison]:
    """:func:`compare` for one model structure and many data sets: a :class:`Comparison` per data set.

    The (W)MLE and MAP of each data set come from the optimiser compiled once for the model; the
    posteriors from :func:`sample_many` (one batched program with JAX). The model is left holding the
    last data set.

    Parameters
    ----------
    model : pymc.Model
    datasets : iterable of dict
        ``pm.Data`` name -> values; names left out keep the model's values.
    random_seeds : iterable of int
        One per data set.
    draws, tune, chains, sampler, target_accept
        As :func:`sample_many`.
    posterior_predictive : bool, default False
        Add ``posterior_predictive`` to every fit's ``idata``, from the unweighted model.
    log_likelihood : bool, default True
        Add the pointwise log-likelihood groups to every fit's ``idata``.
    point_names : iterable of str, optional
        One per data set (each ``None`` or a name), overriding :func:`estimator_name` as
        ``compare``'s ``point_name`` does.
    progress : callable, optional
        ``progress(done, total)`` with the data sets sampled so far (:func:`sample_many`'s).
    kernel : {"nuts", "jittered_hmc"}, default "nuts"
        The batched engine's transition (:func:`sample_many`'s).

    Returns
    -------
    list of Comparison
        One per data set, in their order.

    Raises
    ------
    UnboundedLikelihoodError
        When the MAP of a data set does not exist.
    InputError
        For point names that are not one per data set or not known, a data set naming something that
        is not ``pm.Data`` of the model, or not one seed per data set.

    Examples
    --------
    >>> import numpy as np, models
    >>> model = models.coin.build_model([1, 0, 1, 1])
    >>> results = models.compare_many(model, [{}, {"weights": np.full(4, 10.0)}], random_seeds=[1, 2],
    ...                               draws=200, tune=200, chains=2)
    >>> [(result.point_name, float(result.point["p"])) for result in results]
    [('mle', 0.75), ('wmle', 0.75)]
    """
    check_model(model)
    datasets = resolve_datasets(model, datasets)
    names = list(point_names) if point_names is not None else [None] * len(datasets)
    if len(names) != len(datasets):
        raise InputError(f"{len(names)} point names for {len(datasets)} data sets")
    if any(name not in (None, *POINT_NAMES) for name in names):
        raise InputError(f"point names must be None or one of {POINT_NAMES}, got {names}")
    estimates = []
    with data_kept(model):
        for data in datasets:
            pm.set_data(data, model=model)
            point, failure = try_mle(model)
            estimates.append((point, failure, map_estimate(model), estimator_name(model),
                              weights_summary(model)))
    fits = sample_many(model, datasets, random_seeds=random_seeds, draws=draws, tune=tune, chains=chains,
                       sampler=sampler, target_accept=target_accept, progress=progress, kernel=kernel)
    comparisons = []
    for index, (point, failure, map_point, inferred, weights) in enumerate(estimates):
        idata = fits.idata_of(index, log_likelihood=log_likelihood)
        if posterior_predictive:
            with data_kept(model):
                pm.set_data(fits.data[index], model=model)
                add_posterior_predictive(model, idata, random_seed=fits.seeds[index], progressbar=False)
        name = names[index] or inferred
        comparisons.append(_comparison(model, point, failure, map_point, idata, fits.diagnostics[index],
                                       name, weights, sampler_requested=sampler))
    return comparisons


def _comparison(model, point, failure, map_point, idata, diagnostics, name, weights, **attrs) -> Comparison:
    verdict = point.existence if point is not None else None
    idata.attrs.update(
        method="nuts",
        point_name=name,
        point_exists=int(point is not None),
        point_verdict=verdict.describe("weighted log-likelihood") if verdict is not None else failure,
        map_verdict=map_point.existence.describe("log posterior density"),
        free_variables=",".join(rv.name for rv in model.free_RVs),
        **attrs,
        **{f"weights_{key}": value for key, value in weights.items()},
        **{f"diagnostics_{key}": int(value) if isinstance(value, bool) else value
           for key, value in diagnostics.as_dict().items()},
    )
    return Comparison(point=point, point_failure=failure, point_name=name, map=map_point, idata=idata,
                      diagnostics=diagnostics, weights=weights)
