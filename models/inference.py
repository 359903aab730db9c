"""Estimators for any model of the suite: MLE / weighted MLE, MAP, posterior draws, diagnostics.

For a model with log density ``log p(theta) + sum_i w_i log p(y_i | theta)``:

* :func:`mle` maximises the likelihood part alone, ``sum_i w_i log p(y_i | theta)`` (observed
  terms and potentials; priors dropped). With ``w = 1`` this is the MLE, otherwise the weighted MLE.
* :func:`map_estimate` maximises the whole log density (no Jacobian: the mode of the posterior
  density in the model's own parameterisation).
* :func:`sample` draws from the (pseudo-)posterior with NUTS and stores the pointwise weighted
  log-likelihood and the sampler settings with the draws.
* :func:`diagnose` reduces the draws to the numbers one checks before trusting them.

Both optimisers run L-BFGS on the model's own compiled log density and gradient, in the
unconstrained space PyMC samples in, and follow a vanishing ridge path to find out whether a finite
maximiser exists (see :func:`_maximise`).
"""

from __future__ import annotations

import os
import sys
from dataclasses import asdict, dataclass

import arviz as az
import numpy as np
import pymc as pm
import pytensor
import pytensor.tensor as pt
from scipy import optimize

SAMPLERS = ("pymc",)

R_HAT_MAX = 1.01
ESS_MIN = 400.0
BFMI_MIN = 0.3

# Ridge strengths lambda of  max f(z) / |f(z0)| - lambda/2 |z - z0|^2  (z unconstrained, z0 the
# model's initial point).
_RIDGE_PATH = (1e-2, 1e-4, 1e-6, 1e-8)
# Between the last two ridge solutions: a rise of the objective larger than this (relative) means it
# has no upper bound; a move of a constrained value larger than this (relative) means it runs away.
_UNBOUNDED_RISE = 1e-3
_RUNAWAY_MOVE = 1e-3
# An unconstrained coordinate that moved more than this since the 1e-6 ridge is running off.
_RUNNING_STEP = 1.0
_LBFGS_OPTIONS = {"maxiter": 20_000, "ftol": 1e-15, "gtol": 1e-9}


class UnboundedLikelihoodError(ValueError):
    """The (weighted) log-likelihood has no finite maximiser, so the (W)MLE does not exist."""


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

    @property
    def problems(self) -> list[str]:
        """One sentence per failed check (empty when ``ok``)."""
        found = []
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
        raise ValueError(f"model must be a pymc.Model, got {type(model).__name__}")
    return model


class _Objective:
    """``terms``' log density and gradient as functions of the raveled unconstrained vector z."""

    def __init__(self, model: pm.Model, terms):
        if model.discrete_value_vars:
            names = [v.name for v in model.discrete_value_vars]
            raise ValueError(f"cannot optimise discrete free variables {names}")
        if not model.value_vars:
            raise ValueError("the model has no free variables to estimate")
        self.model = model
        self.value_vars = list(model.value_vars)
        start = model.initial_point()
        self.shapes = [np.shape(start[v.name]) for v in self.value_vars]
        self.sizes = [int(np.prod(s)) for s in self.shapes]
        self.x0 = np.concatenate([np.ravel(start[v.name]) for v in self.value_vars]).astype(float)
        target = model.logp(vars=terms, jacobian=False)
        gradients = pytensor.grad(target, self.value_vars)
        self._value_and_grad = model.compile_fn(
            [target, *gradients], inputs=self.value_vars, point_fn=False, on_unused_input="ignore"
        )
        outputs = [*model.free_RVs, *model.deterministics]
        self.output_names = [v.name for v in outputs]
        self._outputs = model.compile_fn(
            model.replace_rvs_by_values(outputs), inputs=self.value_vars, point_fn=False,
            on_unused_input="ignore",
        )

    def _split(self, z):
        parts = np.split(np.asarray(z, dtype=float), np.cumsum(self.sizes)[:-1])
        return [p.reshape(s) for p, s in zip(parts, self.shapes)]

    def value_and_grad(self, z):
        value, *grads = self._value_and_grad(*self._split(z))
        return float(value), np.concatenate([np.ravel(g) for g in grads])

    def point(self, z) -> dict[str, np.ndarray]:
        """Constrained values of the free variables and the deterministics at z."""
        return {name: np.asarray(v) for name, v in zip(self.output_names, self._outputs(*self._split(z)))}

    def free_values(self, z) -> np.ndarray:
        point = self.point(z)
        return np.concatenate([np.ravel(point[v.name]) for v in self.model.free_RVs])

    def free_labels(self) -> list[str]:
        """``name[dim=coord, ...]`` for every scalar element of the free variables."""
        labels = []
        point = self.point(self.x0)
        for rv in self.model.free_RVs:
            shape = np.shape(point[rv.name])
            dims = self.model.named_vars_to_dims.get(rv.name) or (None,) * len(shape)
            for index in np.ndindex(*shape):
                parts = []
                for dim, i in zip(dims, index):
                    coords = self.model.coords.get(dim) if dim else None
                    parts.append(f"{dim}={coords[i]}" if coords is not None else str(i))
                labels.append(f"{rv.name}[{', '.join(parts)}]" if parts else rv.name)
        return labels


def _argmax(objective: _Objective, z_start, ridge: float, anchor, scale: float):
    """argmax of ``f(z) / scale - ridge/2 |z - anchor|^2`` by L-BFGS from ``z_start``."""

    def negative(z):
        value, grad = objective.value_and_grad(z)
        if not np.isfinite(value):
            return np.inf if value < 0 or np.isnan(value) else -np.inf, np.zeros_like(z)
        shift = z - anchor
        return -(value / scale - 0.5 * ridge * shift @ shift), -(grad / scale - ridge * shift)

    result = optimize.minimize(negative, z_start, jac=True, method="L-BFGS-B", options=_LBFGS_OPTIONS)
    return result.x


def _maximise(model: pm.Model, terms, what: str) -> dict[str, np.ndarray]:
    """Maximise ``terms``' log density over the free variables, or explain why no maximiser exists.

    Solves ``max f(z) / |f(z0)| - lambda/2 |z - z0|^2`` for lambda = 1e-2 ... 1e-8 (each from the
    previous solution), then ``max f(z)``. Dividing by ``|f(z0)|`` makes the path, and the optimiser's
    tolerances, indifferent to the scale of the weights. As lambda -> 0 the solutions converge to the maximiser when there is
    one. Otherwise either f keeps rising (unbounded above: e.g. net negative weights), or f levels off
    while some constrained value keeps moving (the supremum lies at infinity: separation), and
    ``UnboundedLikelihoodError`` names the variables. If only the unconstrained coordinates run off
    while the constrained values converge (all heads: logit p -> inf, p -> 1) the maximiser is on the
    boundary of the parameter space and is returned there.
    """
    objective = _Objective(model, terms)
    start_value, _ = objective.value_and_grad(objective.x0)
    if not np.isfinite(start_value):
        raise ValueError(f"the {what} is not finite at the model's initial point")
    scale = abs(start_value) or 1.0
    z = objective.x0
    path = []
    for ridge in _RIDGE_PATH:
        z = _argmax(objective, z, ridge, objective.x0, scale)
        path.append((objective.value_and_grad(z)[0], objective.free_values(z), z))
    (value_before, free_before, z_before), (value_last, free_last, z_last) = path[-2:]

    rise = value_last - value_before
    if not np.isfinite(value_last) or rise > _UNBOUNDED_RISE * (scale + abs(value_before)):
        moving = _moving_labels(objective, free_before, free_last)
        driven = f", driven by {', '.join(moving)}" if moving else ""
        raise UnboundedLikelihoodError(
            f"the {what} has no upper bound: it climbs to {value_last:.4g} as the ridge vanishes"
            f"{driven}; no finite maximiser exists (net negative weights?)"
        )
    moving = _moving_labels(objective, free_before, free_last)
    if moving:
        raise UnboundedLikelihoodError(
            f"the {what} has no finite maximiser: it levels off at {value_last:.4g} while "
            f"{', '.join(moving)} run(s) off to infinity (separation?)"
        )
    z_final = _argmax(objective, z_last, 0.0, objective.x0, scale)
    # Constrained values converged. Unconstrained coordinates that still run (logit p -> inf) are
    # pushed to their limit, so a boundary maximiser is reported exactly (p = 1, not 1 - 1e-10).
    step = z_final - z_before
    running = np.abs(step) > _RUNNING_STEP
    if running.any():
        limit = z_final.copy()
        limit[running] += 1e6 * step[running]
        limit_value = objective.value_and_grad(limit)[0]
        if np.isfinite(limit_value) and limit_value >= objective.value_and_grad(z_final)[0]:
            return objective.point(limit)
    return objective.point(z_final)


def _moving_labels(objective: _Objective, before, after) -> list[str]:
    with np.errstate(invalid="ignore"):
        moved = ~(np.abs(after - before) <= _RUNAWAY_MOVE * (1 + np.abs(before)))
    labels = objective.free_labels()
    return [labels[i] for i in np.flatnonzero(moved)]


def _likelihood_terms(model: pm.Model):
    _check_model(model)
    terms = [*model.observed_RVs, *model.potentials]
    if not terms:
        raise ValueError("the model has no observed variables or potentials: there is no likelihood")
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
            raise ValueError(f"values needed for {sorted(missing)}")
        return float(function(*(values[name] for name in names)))

    return log_likelihood


def mle(model: pm.Model) -> dict[str, np.ndarray]:
    """(Weighted) maximum likelihood: maximise the observed terms and potentials, priors dropped.

    Returns the constrained values of every free variable and deterministic. Raises
    ``UnboundedLikelihoodError`` when no finite maximiser exists; a maximiser on the boundary of a
    bounded parameter (all heads: p = 1) is returned.
    """
    return _maximise(model, _likelihood_terms(model), "weighted log-likelihood")


def map_estimate(model: pm.Model) -> dict[str, np.ndarray]:
    """Maximum a posteriori: the mode of the whole log density (priors included, no Jacobian)."""
    likelihood = _likelihood_terms(model)
    return _maximise(model, [*model.free_RVs, *likelihood], "log posterior density")


# --------------------------------------------------------------------------- sampling


def _check_count(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _available_cores() -> int:
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
    sampler: str = "pymc",
    posterior_predictive: bool = False,
    progressbar: bool | None = None,
) -> az.InferenceData:
    """NUTS draws of the (pseudo-)posterior as ``InferenceData``.

    ``log_likelihood`` holds the pointwise *weighted* log-likelihood; ``posterior_predictive``
    (when asked for) comes from the *unweighted* generative distribution. ``attrs`` record the
    sampler settings. Chains run in parallel processes, one per core. ``progressbar`` defaults to
    showing progress when standard error is a terminal.
    """
    _check_model(model)
    draws = _check_count("draws", draws, 1)
    tune = _check_count("tune", tune, 0)
    chains = _check_count("chains", chains, 1)
    if random_seed is not None:
        random_seed = _check_count("random_seed", random_seed, 0)
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {SAMPLERS}, got {sampler!r}")
    if progressbar is None:
        progressbar = sys.stderr.isatty()
    with model:
        idata = pm.sample(
            draws=draws,
            tune=tune,
            chains=chains,
            cores=min(chains, _available_cores()),
            random_seed=random_seed,
            progressbar=progressbar,
            compute_convergence_checks=False,
            idata_kwargs={"log_likelihood": True},
        )
        if posterior_predictive:
            # Naming the observed variables avoids PyMC 5.28's default branch, which appends them
            # to ``model.observed_RVs`` in place and breaks every later ``model.logp()``.
            pm.sample_posterior_predictive(
                idata, var_names=[rv.name for rv in model.observed_RVs], extend_inferencedata=True,
                random_seed=random_seed, progressbar=progressbar,
            )
    idata.attrs.update(
        sampler=sampler,
        draws=draws,
        tune=tune,
        chains=chains,
        random_seed="none" if random_seed is None else random_seed,
    )
    return idata


class RepeatedNUTS:
    """NUTS for one model structure fitted to many data sets, compiled once.

    Simulation studies (SBC, coverage) fit the same model to hundreds of data sets; building and
    compiling it each time costs more than sampling a small model. This keeps one ``pm.NUTS`` step
    (the compiled log density and gradient) and swaps the data through ``pm.set_data``; step size and
    mass matrix adaptation restart for every fit, and chains start at the model's initial point.
    Chains run one after another in this process: parallelise across fits instead.
    """

    def __init__(self, model: pm.Model, *, draws: int = 1000, tune: int = 1000, chains: int = 2):
        self.model = _check_model(model)
        self.draws = _check_count("draws", draws, 1)
        self.tune = _check_count("tune", tune, 0)
        self.chains = _check_count("chains", chains, 1)
        with model:
            self._step = pm.NUTS()

    def __call__(self, data: dict[str, np.ndarray], random_seed: int) -> az.InferenceData:
        """Fit to ``data`` (``pm.Data`` name -> values): a light ``InferenceData`` with the free
        variables in ``posterior`` and ``diverging``/``energy`` in ``sample_stats`` (enough for
        :func:`diagnose`)."""
        pm.set_data(data, model=self.model)
        with self.model:
            trace = pm.sample(
                draws=self.draws, tune=self.tune, chains=self.chains, cores=1, step=self._step,
                random_seed=_check_count("random_seed", random_seed, 0), progressbar=False,
                compute_convergence_checks=False, return_inferencedata=False,
            )
        posterior = {rv.name: np.stack(trace.get_values(rv.name, combine=False))
                     for rv in self.model.free_RVs}
        stats = {name: np.stack(trace.get_sampler_stats(name, combine=False))
                 for name in ("diverging", "energy")}
        return az.from_dict(posterior=posterior, sample_stats=stats)


def diagnose(idata: az.InferenceData) -> Diagnostics:
    """Worst-case r_hat, bulk/tail ESS and BFMI over all posterior variables, and divergences.

    Elements that are constant across draws (e.g. a fixed reference category) are skipped: their
    r_hat and ESS are undefined, not bad.
    """
    if not isinstance(idata, az.InferenceData) or "posterior" not in idata.groups():
        raise ValueError(f"idata must be an InferenceData with a posterior group, got {type(idata).__name__}")
    posterior = idata.posterior
    varying = {
        name: posterior[name].std(dim=("chain", "draw")) > 0 for name in posterior.data_vars
    }

    def worst(dataset, reduce):
        values = [dataset[name].where(mask).values.ravel() for name, mask in varying.items()]
        values = np.concatenate(values) if values else np.array([])
        values = values[np.isfinite(values)]
        return float(reduce(values)) if values.size else float("nan")

    chains = posterior.sizes["chain"]
    with np.errstate(invalid="ignore", divide="ignore"):  # constant elements: 0 / 0, skipped below
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
    )
