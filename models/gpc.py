"""Generalised posterior calibration (GPC): the weights' scale chosen from the data.

Syring & Martin (2019), "Calibrating general posterior credible regions", Biometrika 106(2). Multiply
every weight by a learning rate omega: the omega-posterior ``log p(theta) + omega sum_i w_i log p(y_i |
theta)`` keeps its (W)MLE and narrows as omega grows. GPC picks the omega at which its credible
regions cover at their nominal rate, with the full-data WMLE ``theta_hat`` standing in for the truth and
the bootstrap standing in for repeated samples:

    c(omega) = (1/B) sum_b 1{ theta_hat in C_level(omega-posterior of bootstrap sample b) },
    log omega_(t+1) = log omega_t + kappa_t (c(omega_t) - level),    kappa_t = step / t^0.51,

a Robbins-Monro iteration (c falls as omega grows: too much coverage asks for a larger omega), from
omega_1 = 1 (the weights as given), until ``|c - level|`` is within ``tolerance``. A bootstrap sample b
draws rows with replacement (multinomial counts m_b, the rows being the independent units), so its
weights are ``omega w m_b``; the B resamples and their sampler seeds are drawn once and kept for every
iteration (common random numbers), so c(omega) changes only through omega. The B fits of an iteration
run as one batch (:func:`models.inference.sample_many`).

The credible region C_level of a fit is the draws' own Mahalanobis ellipsoid: theta is in it when
``(theta - mean)' S^-1 (theta - mean)`` is at most the ``level`` quantile of the same distance over the
draws (mean and covariance S of the draws of every free variable, flattened, in the constrained
space; for one parameter an interval symmetric about the mean). Directions the posterior does not
move in (a softmax's common shift) are dropped through a pseudo-inverse.

Assumptions (as the paper's): rows are independent units; the WMLE exists and is the target the
omega-posterior should cover; the bootstrap approximates the sampling distribution of the data.
Cost: iterations x B fits of the model (each one chain pair), plus one final fit; the coin with B =
200 takes a few seconds in all, a 300-row logistic regression about 20 s per iteration.
"""

from __future__ import annotations

from dataclasses import dataclass

import arviz as az
import numpy as np
import pymc as pm

from models.errors import InputError

__all__ = ["GPCResult", "gpc"]


@dataclass(frozen=True)
class GPCResult:
    """``scale`` (omega), ``effective_sample_size`` (omega x sum w: the sample size the calibrated
    posterior behaves as), the ``coverage`` reached at ``level`` and whether that is within tolerance
    (``converged``), ``idata`` (the full data's posterior with weights omega w, provenance in attrs) and
    ``path``: one record per iteration (``iteration``, ``scale``, ``coverage``)."""

    scale: float
    effective_sample_size: float
    coverage: float
    level: float
    converged: bool
    idata: az.InferenceData
    path: list[dict]


def _flat(posterior: dict, names: list[str], index: int) -> np.ndarray:
    """Draws of fit ``index`` of a batch, chains pooled, every free variable flattened: (draws, d)."""
    parts = []
    for name in names:
        values = posterior[name][index]
        parts.append(values.reshape(values.shape[0] * values.shape[1], -1))
    return np.concatenate(parts, axis=1)


def covers(draws: np.ndarray, point: np.ndarray, level: float) -> bool:
    """Whether ``point`` lies in the draws' Mahalanobis credible region of probability ``level``."""
    mean = draws.mean(axis=0)
    precision = np.linalg.pinv(np.atleast_2d(np.cov(draws, rowvar=False)), hermitian=True)
    centred = draws - mean
    distances = np.einsum("ij,jk,ik->i", centred, precision, centred)
    gap = point - mean
    return bool(gap @ precision @ gap <= np.quantile(distances, level))


def gpc(model: pm.Model, *, level: float = 0.9, random_seed: int, bootstrap: int = 200,
        iterations: int = 30, tolerance: float | None = None, step: float = 4.0, draws: int = 1000,
        tune: int = 500, chains: int = 2, sampler: str = "auto", progress=None) -> GPCResult:
    """Calibrate the scale of ``model``'s weights (``pm.Data("weights")``) by GPC; see the module
    docstring. ``tolerance`` defaults to the Monte Carlo error of the coverage estimate,
    ``sqrt(level (1 - level) / bootstrap)``, and at least 0.01. ``progress(iteration, scale,
    coverage)`` is called after each iteration. The model is left holding its own weights."""
    from models import inference

    if isinstance(level, bool) or not 0 < float(level) < 1:
        raise InputError(f"level must be a number in (0, 1), got {level!r}")
    bootstrap = inference._check_count("bootstrap", bootstrap, 10)
    iterations = inference._check_count("iterations", iterations, 1)
    if "weights" not in {d.name for d in model.data_vars}:
        raise InputError("gpc needs the weights in pm.Data('weights'): build the model with a models.* "
                         "builder or name them so")
    weights = np.asarray(model["weights"].get_value(), dtype=float)
    if np.any(weights < 0):
        raise InputError("gpc needs non-negative weights (the bootstrap resamples units)")
    tolerance = max(0.01, np.sqrt(level * (1 - level) / bootstrap)) if tolerance is None else float(tolerance)
    try:
        point = inference.mle(model)
    except inference.UnboundedLikelihoodError as err:
        raise InputError(f"gpc calibrates around the WMLE, which does not exist here: {err}") from err
    names = [rv.name for rv in model.free_RVs]
    target = np.concatenate([np.ravel(point[name]) for name in names])
    rng = np.random.default_rng([random_seed, 0x6C9C])
    counts = rng.multinomial(weights.size, np.full(weights.size, 1 / weights.size), size=bootstrap)
    seeds = [int(s) for s in rng.integers(2**31 - 1, size=bootstrap)]
    log_scale, path = 0.0, []
    for iteration in range(1, iterations + 1):
        scale = float(np.exp(log_scale))
        fits = inference.sample_many(model, [{"weights": scale * weights * m} for m in counts],
                                     random_seeds=seeds, draws=draws, tune=tune, chains=chains,
                                     sampler=sampler)
        coverage = float(np.mean([covers(_flat(fits.posterior, names, b), target, level)
                                  for b in range(bootstrap)]))
        path.append({"iteration": iteration, "scale": scale, "coverage": coverage})
        if progress is not None:
            progress(iteration, scale, coverage)
        if abs(coverage - level) <= tolerance:
            break
        log_scale += step / iteration**0.51 * (coverage - level)
    pm.set_data({"weights": scale * weights}, model=model)
    try:
        idata = inference.sample(model, draws=draws, tune=tune, chains=chains, random_seed=random_seed,
                                 sampler=sampler)
    finally:
        pm.set_data({"weights": weights}, model=model)
    converged = abs(coverage - level) <= tolerance
    idata.attrs.update(method="gpc", gpc_scale=scale, gpc_level=float(level), gpc_coverage=coverage,
                       gpc_bootstrap=bootstrap, gpc_iterations=len(path), gpc_converged=int(converged))
    return GPCResult(scale=scale, effective_sample_size=scale * float(weights.sum()), coverage=coverage,
                     level=float(level), converged=converged, idata=idata, path=path)
