"""Estimators for any model of the suite: MLE / weighted MLE, MAP, posterior draws, diagnostics.

For a model with log density ``log p(theta) + sum_i w_i log p(y_i | theta)``:

* :func:`mle` maximises the likelihood part alone, ``sum_i w_i log p(y_i | theta)`` (observed
  terms and potentials; priors dropped). With ``w = 1`` this is the MLE, otherwise the weighted MLE.
* :func:`map_estimate` maximises the whole log density (no Jacobian: the mode of the posterior
  density in the model's own parameterisation).
* :func:`sample` draws from the (pseudo-)posterior with NUTS and stores the pointwise weighted
  log-likelihood and the sampler settings with the draws.
* :func:`diagnose` reduces the draws to the numbers one checks before trusting them.

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
from dataclasses import asdict, dataclass

import arviz as az
import numpy as np
import pymc as pm
import pytensor
import pytensor.tensor as pt

from models import backends, existence
from models.errors import InputError
from models.maximise import Estimate, UnboundedLikelihoodError, maximise

__all__ = ["Diagnostics", "Estimate", "RepeatedNUTS", "UnboundedLikelihoodError", "available_cores",
           "compile_log_likelihood", "diagnose", "map_estimate", "mle", "sample",
           "sandwich_adjust", "weighted_likelihood_bootstrap"]

SAMPLERS = backends.SAMPLERS  # "auto" and the back ends of models.backends

R_HAT_MAX = 1.01
ESS_MIN = 400.0
BFMI_MIN = 0.3


@dataclass(frozen=True)
class Diagnostics:
    """Convergence summary of one set of draws; ``ok`` when every check passes."""

    max_r_hat: float
    min_ess_bulk: float
    min_ess_tail: float
    divergences: int
    min_bfmi: float
    chains: int
    draws: int
    nonfinite_draws: int = 0

    @property
    def problems(self) -> list[str]:
        """One sentence per failed check (empty when ``ok``)."""
        found = []
        if self.nonfinite_draws:
            found.append(f"{self.nonfinite_draws} non-finite draw(s)")
        if self.chains < 2:
            found.append("r_hat needs at least 2 chains")
        elif not self.max_r_hat <= R_HAT_MAX:
            found.append(f"r_hat {self.max_r_hat:.3f} > {R_HAT_MAX}")
        if not self.min_ess_bulk >= ESS_MIN:
            found.append(f"bulk ESS {self.min_ess_bulk:.0f} < {ESS_MIN:.0f}")
        if not self.min_ess_tail >= ESS_MIN:
            found.append(f"tail ESS {self.min_ess_tail:.0f} < {ESS_MIN:.0f}")
        if self.divergences:
            found.append(f"{self.divergences} divergent transition(s)")
        if not self.min_bfmi >= BFMI_MIN:
            found.append(f"BFMI {self.min_bfmi:.2f} < {BFMI_MIN}")
        return found

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict:
        return {**asdict(self), "ok": self.ok}


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
) -> az.InferenceData:
    """NUTS draws of the (pseudo-)posterior as ``InferenceData``.

    ``log_likelihood`` holds the pointwise *weighted* log-likelihood; ``posterior_predictive``
    (when asked for) comes from the *unweighted* generative distribution. ``sampler`` is one of
    :data:`SAMPLERS`: a back end (``"pymc"``, ``"numpyro"``, ``"nutpie"``; the last two are optional
    extras) or ``"auto"``, which picks NumPyro for models with large data when it is installed and
    PyMC otherwise (:func:`models.backends.resolve` states the rule). Every back end gives the same
    groups (:mod:`models.backends`), and the same ``random_seed`` repeats the draws of a back end.
    ``attrs`` record the back end used (``sampler``), the one asked for (``sampler_requested``) and
    the other settings. Chains run in parallel, one per core. ``progressbar`` defaults to showing
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
        model, backend, draws=draws, tune=tune, chains=chains, cores=min(chains, available_cores()),
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
        with model:
            self._step = pm.NUTS()
        self._start = model.initial_point()
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
        variables in ``posterior`` and ``diverging``/``energy`` in ``sample_stats`` (enough for
        :func:`diagnose`)."""
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
        return az.from_dict(posterior=posterior, sample_stats=stats)


def diagnose(idata: az.InferenceData) -> Diagnostics:
    """Worst-case r_hat, bulk/tail ESS and BFMI over all posterior variables, and divergences.

    Elements that are constant across draws (e.g. a fixed reference category) are skipped: their
    r_hat and ESS are undefined, not bad. Anything else that is undefined counts as a failure: a
    non-finite r_hat or ESS of a varying element, and draws that are NaN or infinite.
    """
    if not isinstance(idata, az.InferenceData) or "posterior" not in idata.groups():
        raise InputError(f"idata must be an InferenceData with a posterior group, got {type(idata).__name__}")
    posterior = idata.posterior
    nonfinite = sum(int((~np.isfinite(posterior[name].values)).sum()) for name in posterior.data_vars)
    varying = {name: (posterior[name].std(dim=("chain", "draw"), skipna=False) > 0).values
               for name in posterior.data_vars}

    def worst(dataset, reduce):
        values = np.concatenate([np.ravel(dataset[name].values[mask]) for name, mask in varying.items()])
        return float(reduce(values)) if values.size else float("nan")  # NaN propagates: a failure

    chains = posterior.sizes["chain"]
    with np.errstate(invalid="ignore", divide="ignore"):  # constant elements: 0 / 0, masked out
        r_hat = worst(az.rhat(posterior), np.max) if chains > 1 else float("nan")
        ess_bulk = worst(az.ess(posterior, method="bulk"), np.min)
        ess_tail = worst(az.ess(posterior, method="tail"), np.min)
    stats = idata.get("sample_stats")
    divergences = int(stats["diverging"].sum()) if stats is not None and "diverging" in stats else 0
    has_energy = stats is not None and "energy" in stats
    return Diagnostics(
        max_r_hat=r_hat,
        min_ess_bulk=ess_bulk,
        min_ess_tail=ess_tail,
        divergences=divergences,
        min_bfmi=float(np.min(az.bfmi(idata))) if has_energy else float("nan"),
        chains=int(chains),
        draws=int(posterior.sizes["draw"]),
        nonfinite_draws=nonfinite,
    )


# Calibrated uncertainty for weighted posteriors (imported last: models.calibrate uses this module).
from models.calibrate import sandwich_adjust, weighted_likelihood_bootstrap  # noqa: E402
