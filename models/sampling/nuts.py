"""NUTS draws of one model: :func:`sample`, on the back end :mod:`~models.sampling.dispatch` picks."""

from __future__ import annotations

import sys
import warnings

import arviz as az
import pymc as pm

from models._graph import check_model
from models._validate import check_count, check_open_unit
from models.errors import InputError
from models.likelihood import check_weights
from models.sampling import backends, dispatch

__all__ = ["sample"]


def sample(
    model: pm.Model,
    *,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    random_seed: int | None = None,
    sampler: str = "auto",
    posterior_predictive: bool = False,
    progressbar: bool | None = None,
    target_accept: float = 0.8,
    log_likelihood: bool | None = None,
    cores: int | None = None,
) -> az.InferenceData:
    """NUTS draws of the (pseudo-)posterior as ``InferenceData``.

    Parameters
    ----------
    model : pymc.Model
        Any PyMC model with continuous free variables.
    draws, tune, chains : int
        Draws kept and tuning iterations per chain, and the number of chains.
    random_seed : int, optional
        The same seed repeats the draws of a back end.
    sampler : {"auto", "pymc", "numpyro", "nutpie"}
        A back end, or ``"auto"``: NumPyro for models with large data when it is installed, PyMC
        otherwise (:func:`models.sampling.dispatch.resolve` states the rule).
    posterior_predictive : bool, default False
        Add ``posterior_predictive``, drawn from the *unweighted* generative distribution.
    progressbar : bool, optional
        Default: shown when standard error is a terminal.
    target_accept : float, default 0.8
        NUTS's target acceptance rate; nearer 1 buys smaller steps for curved posteriors.
    log_likelihood : bool, optional
        Store the pointwise log-likelihood groups (True) or not (False); by default stored when they
        take at most :data:`~models.sampling.dispatch.LOG_LIKELIHOOD_MAX_GIB`, else left out with a
        warning and ``attrs["log_likelihood"]`` saying so.
    cores : int, optional
        Chains run in parallel, at most this many at once (1: one after another, as inside a worker
        of a pool). By default a short fit runs its chains in turn in this process
        (:func:`models.sampling.dispatch.cores_for`).

    Returns
    -------
    arviz.InferenceData
        ``posterior``, ``sample_stats``, ``log_likelihood`` (pointwise *weighted*),
        ``unweighted_log_likelihood``, ``observed_data``, ``constant_data`` (:mod:`models.sampling.idata`);
        ``attrs`` record the back end used (``sampler``), the one asked for (``sampler_requested``)
        and the other settings.

    Raises
    ------
    InputError
        For settings out of range, an unknown sampler or one that is not installed.

    Warns
    -----
    UserWarning
        When the pointwise log-likelihood is left out by default for its size.

    Examples
    --------
    >>> import models
    >>> idata = models.sample(models.coin.build_model([1, 0, 1, 1]), draws=200, tune=200, chains=2,
    ...                       random_seed=1)
    >>> idata.posterior["p"].shape
    (2, 200)
    """
    check_weights(check_model(model))
    draws = check_count(draws, "draws", 1)
    tune = check_count(tune, "tune", 0)
    chains = check_count(chains, "chains", 1)
    if cores is None:
        cores = dispatch.cores_for(model, chains=chains, tune=tune, draws=draws)
    else:
        cores = min(chains, check_count(cores, "cores", 1))
    if random_seed is not None:
        random_seed = check_count(random_seed, "random_seed", 0)
    target_accept = check_open_unit(target_accept, "target_accept")
    if progressbar is None:
        progressbar = sys.stderr.isatty()
    if log_likelihood not in (None, True, False):
        raise InputError(f"log_likelihood must be None, True or False, got {log_likelihood!r}")
    backend = dispatch.resolve(sampler, model)  # InputError for an unknown or missing back end
    gib = dispatch.log_likelihood_bytes(model, chains, draws) / 2**30
    if log_likelihood is None:
        log_likelihood = gib <= dispatch.LOG_LIKELIHOOD_MAX_GIB
        if not log_likelihood:
            warnings.warn(f"log_likelihood left out: {gib:.1f} GiB > {dispatch.LOG_LIKELIHOOD_MAX_GIB} GiB "
                          "(pass log_likelihood=True to store it anyway)", stacklevel=2)
    idata, settings = backends.draw(
        model, backend, draws=draws, tune=tune, chains=chains, cores=cores,
        random_seed=random_seed, progressbar=progressbar, target_accept=target_accept,
        log_likelihood=log_likelihood,
    )
    if posterior_predictive:
        add_posterior_predictive(model, idata, random_seed=random_seed, progressbar=progressbar)
    idata.attrs.update(
        sampler=backend,
        sampler_requested=sampler,
        **settings,
        log_likelihood="stored" if log_likelihood else "left out",
        draws=draws,
        tune=tune,
        chains=chains,
        target_accept=target_accept,
        random_seed="none" if random_seed is None else random_seed,
    )
    return idata


def add_posterior_predictive(model: pm.Model, idata: az.InferenceData, *, random_seed,
                             progressbar: bool) -> None:
    """Add ``posterior_predictive`` to ``idata`` in place, from the unweighted model.

    Draws of every observed variable from the model's unweighted generative distribution at every
    posterior draw (weights are an inferential device, not data).

    Parameters
    ----------
    model : pymc.Model
        The model the draws are of, holding the data they were made with.
    idata : arviz.InferenceData
        With a ``posterior`` group.
    random_seed : int or None
        Seed of the predictive draws.
    progressbar : bool
        Show PyMC's progress bar.

    Returns
    -------
    None
        ``idata`` gains a ``posterior_predictive`` group.

    Examples
    --------
    >>> import models
    >>> from models.sampling.nuts import add_posterior_predictive
    >>> model = models.coin.build_model([1, 0, 1, 1])
    >>> idata = models.sample(model, draws=200, tune=200, chains=2, random_seed=1)
    >>> add_posterior_predictive(model, idata, random_seed=1, progressbar=False)
    >>> idata.posterior_predictive["heads"].shape
    (2, 200, 4)
    """
    with model:
        # Naming the observed variables avoids PyMC 5.28's default branch, which appends them to
        # ``model.observed_RVs`` in place and breaks every later ``model.logp()``.
        pm.sample_posterior_predictive(idata, var_names=[rv.name for rv in model.observed_RVs],
                                       extend_inferencedata=True, random_seed=random_seed,
                                       progressbar=progressbar)
