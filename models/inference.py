"""Estimators for any model of the suite: MLE / weighted MLE, MAP, posterior draws, diagnostics.

For a model with log density ``log p(theta) + sum_i w_i log p(y_i | theta)``:

* :func:`mle` maximises the likelihood part alone, ``sum_i w_i log p(y_i | theta)`` (observed
  terms and potentials; priors dropped). With ``w = 1`` this is the MLE, otherwise the weighted MLE.
* :func:`map_estimate` maximises the whole log density (no Jacobian: the mode of the posterior
  density in the model's own parameterisation).
* :func:`sample` draws from the (pseudo-)posterior with NUTS and stores the pointwise weighted
  log-likelihood and the sampler settings with the draws.
* :func:`diagnose` reduces the draws to the numbers one checks before trusting them.
* :func:`compare` does all of it to one model and returns a :class:`Comparison`: the (W)MLE or why it
  does not exist, the MAP, the posterior with its provenance and diagnostics, and tidy rows.
* :func:`sample_many` and :func:`compare_many` do the same for one model structure and many data sets
  (weights, simulated data, prior scales swapped in as ``pm.Data``): NUTS compiled once and run on all
  of them at once (:mod:`models.batched`, with JAX), or one after another on PyMC.

Both optimisers first settle whether a finite maximiser exists: exactly, from the model's family or
its structure (:mod:`models.existence`), else by a numerical vanishing-ridge path
(:mod:`models.maximise`); the returned estimate carries the verdict (``estimate.existence``), and so
does the ``UnboundedLikelihoodError`` raised when there is none. They run L-BFGS on the model's own
compiled log density and gradient, in the unconstrained space PyMC samples in (or take the family's
closed form), and compile that log density once per model object:
fitting the same model again after ``pm.set_data`` (new weights, as in sweeps, curriculum phases and
repeated simulations) reuses it.
"""

from __future__ import annotations

import os
import sys
import warnings
import weakref
from dataclasses import dataclass

import arviz as az
import numpy as np
import pymc as pm
import pytensor
import pytensor.tensor as pt

from models import backends, batched, compiled, existence, summary
from models.calibrate import sandwich_adjust, weighted_likelihood_bootstrap
from models.diagnostics import Diagnostics, diagnose
from models.errors import InputError
from models.loo import LooResult, loo
from models.loo import compare as loo_compare
from models.maximise import Estimate, UnboundedLikelihoodError, maximise

__all__ = ["Comparison", "Diagnostics", "Estimate", "LooResult", "RepeatedNUTS", "UnboundedLikelihoodError",
           "available_cores", "compare", "compare_many", "compile_log_likelihood", "diagnose",
           "estimator_name", "loo", "loo_compare", "map_estimate", "mle", "sample", "sample_many",
           "sandwich_adjust", "weighted_likelihood_bootstrap"]

SAMPLERS = backends.SAMPLERS  # "auto" and the back ends of models.backends

# --------------------------------------------------------------------------- optimisation


def _check_model(model) -> pm.Model:
    if not isinstance(model, pm.Model):
        raise InputError(f"model must be a pymc.Model, got {type(model).__name__}")
    return model


def _likelihood_terms(model: pm.Model):
    _check_model(model)
    terms = [*model.observed_RVs, *model.potentials]
    if not terms:
        raise InputError("the model has no observed variables or potentials: there is no likelihood")
    return terms


def compile_log_likelihood(model: pm.Model):
    """``f(**values) -> sum_i w_i log p(y_i | theta)`` at constrained values of the free variables.

    The model's own likelihood terms (observed variables and potentials), compiled once; e.g.
    ``compile_log_likelihood(coin_model)(p=0.7)``. For likelihood curves and profiles.
    """
    _likelihood_terms(model)
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

    Returns the constrained values of every free variable and deterministic (a dict) with the verdict
    on existence in ``.existence``. Raises ``UnboundedLikelihoodError`` (its ``.existence`` naming the
    directions that run off) when no finite maximiser exists; a maximiser on the boundary of a bounded
    parameter (all heads: p = 1) is returned.
    """
    return maximise(model, _likelihood_terms(model), "weighted log-likelihood", existence.of_mle(model))


def map_estimate(model: pm.Model) -> Estimate:
    """Maximum a posteriori: the mode of the whole log density (priors included, no Jacobian), as
    :func:`mle` returns it."""
    likelihood = _likelihood_terms(model)
    return maximise(model, [*model.free_RVs, *likelihood], "log posterior density", existence.of_map(model))


# --------------------------------------------------------------------------- sampling


def _check_count(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InputError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def available_cores() -> int:
    """CPU cores this process may use (PyMC's own default halves the count to guess at SMT)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


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

    ``log_likelihood`` holds the pointwise *weighted* log-likelihood; ``posterior_predictive``
    (when asked for) comes from the *unweighted* generative distribution. ``sampler`` is one of
    :data:`SAMPLERS`: a back end (``"pymc"``, ``"numpyro"``, ``"nutpie"``; the last two are optional
    extras) or ``"auto"``, which picks NumPyro for models with large data when it is installed and
    PyMC otherwise (:func:`models.backends.resolve` states the rule). Every back end gives the same
    groups (:mod:`models.backends`), and the same ``random_seed`` repeats the draws of a back end.
    ``attrs`` record the back end used (``sampler``), the one asked for (``sampler_requested``) and
    the other settings. Chains run in parallel, one per core (``cores``: at most that many at once;
    1 runs them one after another, as inside a worker process of a pool); by default (None) a short
    fit, one whose work is under :data:`IN_PROCESS_ITERATIONS`, runs its chains in turn in this process,
    where starting chain processes would cost more than it saves. ``progressbar`` defaults to showing
    progress when standard error is a terminal. ``target_accept`` (NUTS's target acceptance rate,
    PyMC's default 0.8) buys smaller steps for curved posteriors when set nearer 1.

    ``log_likelihood``: store the pointwise log-likelihood (True), or not (False); by default (None)
    stored when it takes at most ``backends.LOG_LIKELIHOOD_MAX_GIB`` (observations x chains x draws
    float64s), else left out with a warning and ``attrs["log_likelihood"]`` saying why.
    """
    _check_model(model)
    draws = _check_count("draws", draws, 1)
    tune = _check_count("tune", tune, 0)
    chains = _check_count("chains", chains, 1)
    if cores is None:
        short = chains * (tune + draws) * _iteration_cost(model) < IN_PROCESS_ITERATIONS
        cores = 1 if short else min(chains, available_cores())
    else:
        cores = min(chains, _check_count("cores", cores, 1))
    if random_seed is not None:
        random_seed = _check_count("random_seed", random_seed, 0)
    if isinstance(target_accept, bool) or not isinstance(target_accept, (int, float, np.floating)) \
            or not 0 < target_accept < 1:
        raise InputError(f"target_accept must be a number in (0, 1), got {target_accept!r}")
    if progressbar is None:
        progressbar = sys.stderr.isatty()
    if log_likelihood not in (None, True, False):
        raise InputError(f"log_likelihood must be None, True or False, got {log_likelihood!r}")
    backend = backends.resolve(sampler, model)  # InputError for an unknown or missing back end
    gib = backends.log_likelihood_bytes(model, chains, draws) / 2**30
    if log_likelihood is None:
        log_likelihood = gib <= backends.LOG_LIKELIHOOD_MAX_GIB
        if not log_likelihood:
            warnings.warn(f"log_likelihood left out: {gib:.1f} GiB > {backends.LOG_LIKELIHOOD_MAX_GIB} GiB "
                          "(pass log_likelihood=True to store it anyway)", stacklevel=2)
    idata, settings = backends.draw(
        model, backend, draws=draws, tune=tune, chains=chains, cores=cores,
        random_seed=random_seed, progressbar=progressbar, target_accept=float(target_accept),
        log_likelihood=log_likelihood,
    )
    if posterior_predictive:
        with model:
            # Naming the observed variables avoids PyMC 5.28's default branch, which appends them
            # to ``model.observed_RVs`` in place and breaks every later ``model.logp()``.
            pm.sample_posterior_predictive(
                idata, var_names=[rv.name for rv in model.observed_RVs], extend_inferencedata=True,
                random_seed=random_seed, progressbar=progressbar,
            )
    idata.attrs.update(
        sampler=backend,
        sampler_requested=sampler,
        **settings,
        log_likelihood="stored" if log_likelihood else "left out",
        draws=draws,
        tune=tune,
        chains=chains,
        target_accept=float(target_accept),
        random_seed="none" if random_seed is None else random_seed,
    )
    return idata


class RepeatedNUTS:
    """NUTS for one model structure fitted to many data sets, compiled once.

    Simulation studies (SBC, coverage) fit the same model to hundreds of data sets; building and
    compiling it each time costs more than sampling a small model. This keeps one ``pm.NUTS`` step
    (the compiled log density and gradient) and swaps the data through ``pm.set_data``; step size and
    mass matrix adaptation restart for every fit, and each chain starts at the model's initial point
    jittered by U(-1, 1) in the unconstrained space, as ``pm.sample`` does by default, so that r_hat
    still compares chains from different starts. Chains run one after another in this process:
    parallelise across fits instead.
    """

    def __init__(self, model: pm.Model, *, draws: int = 1000, tune: int = 1000, chains: int = 2):
        self.model = _check_model(model)
        self.draws = _check_count("draws", draws, 1)
        self.tune = _check_count("tune", tune, 0)
        self.chains = _check_count("chains", chains, 1)
        self._start = compiled.initial_point(model)
        # The log density and gradient inference.sample and the estimators of this model use too.
        self._step = pm.NUTS(model=model, initial_point=self._start,
                             logp_dlogp_func=compiled.logp_dlogp(model))
        self._constrain = model.compile_fn(model.replace_rvs_by_values(model.free_RVs),
                                           inputs=model.value_vars, point_fn=False)

    def _jittered_starts(self, rng) -> list[dict[str, np.ndarray]]:
        starts = []
        for _ in range(self.chains):
            unconstrained = [self._start[v.name] + rng.uniform(-1, 1, np.shape(self._start[v.name]))
                             for v in self.model.value_vars]
            constrained = self._constrain(*unconstrained)
            starts.append({rv.name: value for rv, value in zip(self.model.free_RVs, constrained)})
        return starts

    def __call__(self, data: dict[str, np.ndarray], random_seed: int) -> az.InferenceData:
        """Fit to ``data`` (``pm.Data`` name -> values): a light ``InferenceData`` with the free
        variables in ``posterior``, ``diverging``/``energy`` in ``sample_stats`` (enough for
        :func:`diagnose`) and the settings in ``attrs``."""
        random_seed = _check_count("random_seed", random_seed, 0)
        pm.set_data(data, model=self.model)
        starts = self._jittered_starts(np.random.default_rng(random_seed))
        with self.model:
            trace = pm.sample(
                draws=self.draws, tune=self.tune, chains=self.chains, cores=1, step=self._step,
                initvals=starts, random_seed=random_seed, progressbar=False,
                compute_convergence_checks=False, return_inferencedata=False,
            )
        posterior = {rv.name: np.stack(trace.get_values(rv.name, combine=False, squeeze=False))
                     for rv in self.model.free_RVs}
        stats = {name: np.stack(trace.get_sampler_stats(name, combine=False, squeeze=False))
                 for name in ("diverging", "energy")}
        idata = az.from_dict(posterior=posterior, sample_stats=stats)
        idata.attrs.update(method="nuts", sampler="pymc (RepeatedNUTS)", draws=self.draws, tune=self.tune,
                           chains=self.chains, target_accept=float(self._step.target_accept),
                           random_seed=random_seed)
        return idata


# --------------------------------------------------------------------------- all estimators of one model


def _weights(model: pm.Model) -> np.ndarray:
    """Every weight of the model's weighted terms, concatenated (empty when it has none)."""
    found = [np.ravel(existence.value_of(term.tag.weighted_term.weights, model))
             for term in model.observed_RVs if getattr(term.tag, "weighted_term", None) is not None]
    return np.concatenate(found) if found else np.zeros(0)


POINT_NAMES = ("mle", "wmle", "pseudo_mle")


def estimator_name(model: pm.Model) -> str:
    """What maximising the model's likelihood terms estimates: ``"mle"`` when every weight is 1 and
    every term a log-likelihood, ``"wmle"`` when some weight is not 1, ``"pseudo_mle"`` when a term is
    a loss rather than a log-likelihood (the focal loss with gamma > 0 or alpha != 1, a potential)."""
    if model.potentials:
        return "pseudo_mle"
    for term in model.observed_RVs:
        marker = getattr(term.tag, "weighted_term", None)
        for tensor, value in (marker.likelihood_when if marker is not None else ()):
            if np.any(np.asarray(existence.value_of(tensor, model)) != value):
                return "pseudo_mle"
    return "mle" if np.all(_weights(model) == 1) else "wmle"


def weights_summary(model: pm.Model) -> dict[str, float]:
    """The weights' ``sum``, Kish ESS (``kish_ess``; of their magnitudes when some are negative) and
    ``negative_share``, as recorded with every comparison."""
    w = _weights(model)
    if w.size == 0 or not np.any(w):
        return {"sum": float(np.sum(w)), "kish_ess": float("nan"), "negative_share": 0.0}
    return {"sum": float(w.sum()), "kish_ess": float(np.sum(np.abs(w)) ** 2 / np.sum(w**2)),
            "negative_share": float(np.mean(w < 0))}


@dataclass(frozen=True)
class Comparison:
    """The estimators of one model, side by side (what :func:`compare` returns).

    ``point``: the (W)MLE (an :class:`Estimate`: free variables and deterministics, with the verdict
    on existence in ``point.existence``), or ``None`` when no finite maximiser exists, and then
    ``point_failure`` says why, naming the directions that run off. ``point_name``: ``"mle"``,
    ``"wmle"`` or ``"pseudo_mle"`` (:func:`estimator_name`). ``map``: the MAP estimate. ``idata``: the
    NUTS draws, with the settings, seed, weights summary, verdicts and diagnostics in ``attrs``.
    ``diagnostics``: :func:`diagnose` of the draws. ``weights``: :func:`weights_summary`.
    """

    point: Estimate | None
    point_failure: str | None
    point_name: str
    map: Estimate
    idata: az.InferenceData
    diagnostics: Diagnostics
    weights: dict

    def estimate_rows(self, label: str, var_names) -> list[dict]:
        """Every scalar element of ``var_names`` at the (W)MLE (when it exists) and at the MAP."""
        rows = []
        for estimator, estimate in ((self.point_name, self.point), ("map", self.map)):
            if estimate is not None:
                rows += summary.estimate_rows(label, estimator, estimate, var_names, self.idata)
        return rows

    def rows(self, label: str, var_names=None, *, diagnostics: bool = True) -> list[dict]:
        """Tidy rows (:mod:`models.summary`) under the model name ``label``: the weights' sum and Kish
        ESS, whether the (W)MLE exists, the (W)MLE and MAP of every scalar element of ``var_names``
        (default: the free variables), the posterior mean and 94% HDI of each, and the diagnostics
        (unless ``diagnostics=False``)."""
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
    model). The sampling arguments are those of :func:`sample`. ``idata.attrs`` add to the sampler's
    settings the provenance of the comparison: the point estimator's name and verdict, the MAP's
    verdict, the weights' summary and the diagnostics (``diagnostics_*``). ``point_name`` overrides
    the name :func:`estimator_name` infers from the weights, for weights that are counts of identical
    rows of unweighted data (a collapsed model of behaviour cloning fits the MLE).
    """
    if point_name not in (None, *POINT_NAMES):
        raise InputError(f"point_name must be one of {POINT_NAMES}, got {point_name!r}")
    _check_model(model)
    try:
        point, failure = mle(model), None
    except UnboundedLikelihoodError as err:
        point, failure = None, str(err)
    map_point = map_estimate(model)
    idata = sample(model, draws=draws, tune=tune, chains=chains, random_seed=random_seed, sampler=sampler,
                   target_accept=target_accept, posterior_predictive=posterior_predictive,
                   progressbar=progressbar, log_likelihood=log_likelihood, cores=cores)
    return _comparison(model, point, failure, map_point, idata, diagnose(idata),
                       point_name or estimator_name(model), weights_summary(model))


# --------------------------------------------------------------------------- many data sets of one model

BATCH_MIN_ITERATIONS = 50_000
"""``"auto"`` batches when the job's work, fits x chains x (tune + draws) NUTS iterations weighted by
:func:`_iteration_cost`, reaches this: below it, the JAX program's compilation (about 5 s cold)
costs more than PyMC's sampler spends on the whole job (about 10,000 iterations a second on a small
model)."""

DATA_NUMBERS_PER_OVERHEAD = 1000
"""PyMC's cost per iteration is its fixed Python overhead plus a part that grows with the data; about
this many numbers of data cost as much as the overhead (the 4 fits of a 1000-row logistic regression
of the classes analysis, 4 x 4 x 2000 iterations: 172 s one at a time, 113 s batched)."""


_ENGINES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()   # batched NUTS per model and settings


def _iteration_cost(model: pm.Model) -> float:
    """The cost of one NUTS iteration of ``model`` in PyMC, in units of a tiny model's."""
    return 1.0 + backends.data_size(model) / DATA_NUMBERS_PER_OVERHEAD


IN_PROCESS_ITERATIONS = 5_000
"""Fits shorter than this (chains x (tune + draws) x :func:`_iteration_cost`) get ``cores = 1`` when
:func:`sample` is not given ``cores`` (as in every fit of :func:`sample_many`'s loop), so PyMC runs
their chains one after another in this process: starting chain processes costs about 0.15 s a fit
(the coin, 2 x 400 iterations: 0.21 s in-process, 0.36 s in two processes, on the 2-core machine),
about what running the chains in turn instead of side by side costs a small model at 5,000
iterations."""


def _many_sampler(sampler: str, work: float) -> str:
    if sampler not in SAMPLERS:
        raise InputError(f"sampler must be one of {SAMPLERS}, got {sampler!r}")
    if sampler == "numpyro" and not batched.available():
        raise InputError('sampler "numpyro" needs JAX and NumPyro: pip install -e ".[jax]"')
    if sampler == "numpyro" or (sampler == "auto" and batched.available()
                                  and work >= BATCH_MIN_ITERATIONS):
        return "batched"
    return "pymc" if sampler == "auto" else sampler


def sample_many(model: pm.Model, datasets, *, random_seeds, draws: int = 1000, tune: int = 1000,
                chains: int = 4, sampler: str = "auto", target_accept: float = 0.8,
                progress=None) -> batched.BatchResult:
    """NUTS fits of one model structure to many data sets, as one :class:`~models.batched.BatchResult`.

    ``datasets`` are dicts from ``pm.Data`` names to values (shapes as the model's; names left out keep
    the model's values), one seed each in ``random_seeds``. ``sampler``: ``"numpyro"`` runs them all
    in one compiled JAX program (:class:`models.batched.BatchedNUTS`); ``"pymc"`` (or ``"nutpie"``) one
    after another through :func:`sample` on the model compiled once; ``"auto"`` batches when JAX is
    installed and the job has at least :data:`BATCH_MIN_ITERATIONS` iterations in all, weighted by
    the model's data size (:data:`DATA_NUMBERS_PER_OVERHEAD`).
    ``progress(done, total)`` is called as fits finish (per chunk of lanes when batched).
    """
    _check_model(model)
    datasets, seeds = batched.resolve_datasets(model, datasets), list(random_seeds)
    if not datasets or len(datasets) != len(seeds):
        raise InputError(f"need one seed per data set, got {len(datasets)} data sets and {len(seeds)} seeds")
    work = len(datasets) * chains * (tune + draws) * _iteration_cost(model)
    if _many_sampler(sampler, work) == "batched":
        key = (draws, tune, chains, float(target_accept))
        engines = _ENGINES.setdefault(model, {})
        if key not in engines:
            engines[key] = batched.BatchedNUTS(model, draws=draws, tune=tune, chains=chains,
                                               target_accept=target_accept)
        return engines[key](datasets, seeds, progress=progress)
    fits = []
    for data, seed in zip(datasets, seeds):
        pm.set_data(data, model=model)
        fits.append(sample(model, draws=draws, tune=tune, chains=chains, random_seed=seed, sampler=sampler,
                           target_accept=target_accept, log_likelihood=False))
        if progress is not None:
            progress(len(fits), len(datasets))
    names = [v.name for v in [*model.free_RVs, *model.deterministics]]
    stat_names = [name for name in ("diverging", "energy", "tree_depth", "n_steps", "step_size",
                                    "acceptance_rate") if all(name in f.sample_stats for f in fits)]
    return batched.BatchResult(
        model, {name: np.stack([f.posterior[name].values for f in fits]) for name in names},
        {name: np.stack([f.sample_stats[name].values for f in fits]) for name in stat_names},
        [diagnose(f) for f in fits], datasets, seeds,
        {"draws": draws, "tune": tune, "chains": chains, "target_accept": float(target_accept)},
        fits[0].attrs["sampler"])


def compare_many(model: pm.Model, datasets, *, random_seeds, draws: int = 1000, tune: int = 1000,
                 chains: int = 4, sampler: str = "auto", target_accept: float = 0.8,
                 posterior_predictive: bool = False, log_likelihood: bool = True,
                 point_names=None) -> list[Comparison]:
    """:func:`compare` for one model structure and many data sets: a :class:`Comparison` per data set.

    The (W)MLE and MAP of each data set come from the optimiser compiled once for the model; the
    posteriors from :func:`sample_many` (one batched program with JAX). ``point_names`` (one per data
    set, or ``None``) override :func:`estimator_name` as ``compare``'s ``point_name`` does. The model
    is left holding the last data set.
    """
    _check_model(model)
    datasets = batched.resolve_datasets(model, datasets)
    names = list(point_names) if point_names is not None else [None] * len(datasets)
    if len(names) != len(datasets):
        raise InputError(f"{len(names)} point names for {len(datasets)} data sets")
    if any(name not in (None, *POINT_NAMES) for name in names):
        raise InputError(f"point names must be None or one of {POINT_NAMES}, got {names}")
    estimates = []
    for data in datasets:
        pm.set_data(data, model=model)
        try:
            point, failure = mle(model), None
        except UnboundedLikelihoodError as err:
            point, failure = None, str(err)
        estimates.append((point, failure, map_estimate(model), estimator_name(model), weights_summary(model)))
    fits = sample_many(model, datasets, random_seeds=random_seeds, draws=draws, tune=tune, chains=chains,
                       sampler=sampler, target_accept=target_accept)
    comparisons = []
    for index, (point, failure, map_point, inferred, weights) in enumerate(estimates):
        idata = fits.idata(index, log_likelihood=log_likelihood)
        if posterior_predictive:
            with model:
                pm.sample_posterior_predictive(idata, var_names=[rv.name for rv in model.observed_RVs],
                                               extend_inferencedata=True, random_seed=fits.seeds[index],
                                               progressbar=False)
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
