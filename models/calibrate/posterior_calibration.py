"""Generalised posterior calibration (GPC): the weights' scale chosen from the data.

Syring & Martin (2019), "Calibrating general posterior credible regions", Biometrika 106(2). Multiply
every weight by a learning rate omega: the omega-posterior ``log p(theta) + omega sum_i w_i log p(y_i |
theta)`` keeps its (W)MLE and narrows as omega grows. GPC picks the omega at which its credible
regions cover at their nominal rate, with the full-data WMLE ``theta_hat`` standing in for the truth and
the bootstrap standing in for repeated samples::

    c(omega) = (1/B) sum_b 1{ theta_hat in C_level(omega-posterior of bootstrap sample b) },
    log omega_(t+1) = log omega_t + kappa_t (c(omega_t) - level),    kappa_t = step / t^0.51,

a Robbins-Monro iteration (c falls as omega grows: too much coverage asks for a larger omega), from
omega_1 = 1 (the weights as given), until ``|c - level|`` is within ``tolerance``. A bootstrap sample b
draws rows with replacement (multinomial counts m_b, the rows being the independent units), so its
weights are ``omega w m_b``; the B resamples and their sampler seeds are drawn once and kept for every
iteration (common random numbers), so c(omega) changes only through omega. The B fits of an iteration
run as one batch (:func:`models.sampling.many.sample_many`).

The credible region C_level of a fit is the draws' own Mahalanobis ellipsoid: theta is in it when
``(theta - mean)' S^-1 (theta - mean)`` is at most the ``level`` quantile of the same distance over the
draws (mean and covariance S of the draws of every free variable, flattened, in the constrained
space; for one parameter an interval symmetric about the mean). Directions the posterior does not
move in (a softmax's common shift) are dropped through a pseudo-inverse.

Assumptions (as the paper's): rows are independent units (expand frequency-weighted rows first); the
WMLE exists and is the target the omega-posterior should cover; the bootstrap approximates the
sampling distribution of the data. Cost: iterations x B fits of the model (each one chain pair), plus
one final fit.

The same iteration without MCMC, for simulation studies, is kept with the families whose
omega-posteriors have closed forms or Laplace approximations: :func:`models.coin.gpc_scale` and
:func:`models.classes.gpc_scale`.
"""

from __future__ import annotations

from dataclasses import dataclass

import arviz as az
import numpy as np
import pymc as pm

from models._graph import weights_data
from models._validate import check_count
from models.errors import InputError
from models.estimation.estimators import mle
from models.estimation.existence import UnboundedLikelihoodError
from models.sampling.many import sample_many
from models.sampling.nuts import sample

__all__ = ["GPCResult", "GPCScale", "bootstrap_counts", "covers", "default_tolerance", "gpc", "robbins_monro"]


@dataclass(frozen=True)
class GPCResult:
    """What :func:`gpc` found: the calibrated scale of the weights and the posterior there.

    Attributes
    ----------
    scale : float
        omega, the learning rate every weight is multiplied by.
    effective_sample_size : float
        omega x sum w: the sample size the calibrated posterior behaves as.
    coverage : float
        The bootstrap coverage reached at ``level``.
    level : float
        The nominal level of the credible regions.
    converged : bool
        Whether ``coverage`` is within tolerance of ``level``.
    idata : arviz.InferenceData
        The full data's posterior with weights omega w, provenance in ``attrs`` (``gpc_*``).
    path : list of dict
        One record per iteration (``iteration``, ``scale``, ``coverage``).

    Examples
    --------
    >>> import models
    >>> model = models.coin.build_model([1, 0, 1, 1, 0, 1, 1, 0, 1, 1])
    >>> result = models.gpc(model, random_seed=1, bootstrap=20, iterations=3,  # doctest: +SKIP
    ...                     draws=200, tune=200)
    >>> result.scale, result.converged, result.path[0]["coverage"]  # doctest: +SKIP
    (1.0, True, 0.95)
    """

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
    """Whether ``point`` lies in the draws' Mahalanobis credible region of probability ``level``.

    ``point`` is in the region when ``(point - mean)' S^-1 (point - mean)`` is at most the ``level``
    quantile of the same distance over the draws (S the draws' covariance, inverted by a
    pseudo-inverse, so directions the draws do not move in are dropped).

    Parameters
    ----------
    draws : numpy.ndarray, shape (draws, d)
        Draws, every free variable flattened.
    point : numpy.ndarray, shape (d,)
    level : float
        The region's probability.

    Returns
    -------
    bool

    Examples
    --------
    >>> import numpy as np
    >>> from models.calibrate.posterior_calibration import covers
    >>> draws = np.random.default_rng(0).normal(size=(1000, 2))
    >>> covers(draws, np.zeros(2), 0.9), covers(draws, np.array([2.0, 2.0]), 0.9)
    (True, False)
    """
    mean = draws.mean(axis=0)
    precision = np.linalg.pinv(np.atleast_2d(np.cov(draws, rowvar=False)), hermitian=True)
    centred = draws - mean
    distances = np.einsum("ij,jk,ik->i", centred, precision, centred)
    gap = point - mean
    return bool(gap @ precision @ gap <= np.quantile(distances, level))


def gpc(model: pm.Model, *, level: float = 0.9, random_seed: int, bootstrap: int = 200,
        iterations: int = 30, tolerance: float | None = None, step: float = 4.0, draws: int = 1000,
        tune: int = 500, chains: int = 2, sampler: str = "auto", progress=None) -> GPCResult:
    """Calibrate the scale of ``model``'s weights by GPC (see the module docstring).

    The model is left holding its own weights.

    Parameters
    ----------
    model : pymc.Model
        With non-negative weights in ``pm.Data("weights")`` and a (W)MLE that exists.
    level : float, default 0.9
        The nominal level of the credible regions, in (0, 1).
    random_seed : int
        Seeds the bootstrap resamples, their fits and the final fit.
    bootstrap : int, default 200
        B, the bootstrap resamples (at least 10).
    iterations : int, default 30
        Robbins-Monro iterations at most.
    tolerance : float, optional
        How close to ``level`` the coverage must come; defaults to the Monte Carlo error of the
        coverage estimate, ``sqrt(level (1 - level) / bootstrap)``, and at least 0.01
        (:func:`default_tolerance`).
    step : float, default 4.0
        The Robbins-Monro step (:func:`robbins_monro`).
    draws, tune, chains : int, default 1000, 500, 2
        NUTS settings of every fit.
    sampler : {"auto", "pymc", "numpyro", "nutpie"}
        As :func:`models.sampling.many.sample_many` and :func:`models.sampling.nuts.sample` take it.
    progress : callable, optional
        ``progress(iteration, scale, coverage)``, called after each iteration.

    Returns
    -------
    GPCResult

    Raises
    ------
    InputError
        For ``level`` outside (0, 1), ``bootstrap`` below 10, ``iterations`` below 1, a model without
        ``pm.Data("weights")``, negative weights, or a WMLE that does not exist.

    Examples
    --------
    >>> import models
    >>> model = models.coin.build_model([1, 0, 1, 1, 0, 1, 1, 0, 1, 1])
    >>> result = models.gpc(model, random_seed=1, bootstrap=20, iterations=3,  # doctest: +SKIP
    ...                     draws=200, tune=200)
    >>> result.scale, result.effective_sample_size, result.idata.attrs["method"]  # doctest: +SKIP
    (1.0, 10.0, 'gpc')
    """
    if isinstance(level, bool) or not 0 < float(level) < 1:
        raise InputError(f"level must be a number in (0, 1), got {level!r}")
    bootstrap = check_count(bootstrap, "bootstrap", 10)
    iterations = check_count(iterations, "iterations", 1)
    data = weights_data(model)
    weights = np.asarray(data.get_value(), dtype=float)
    if np.any(weights < 0):
        raise InputError("gpc needs non-negative weights (the bootstrap resamples units)")
    tolerance = default_tolerance(level, bootstrap) if tolerance is None else float(tolerance)
    try:
        point = mle(model)
    except UnboundedLikelihoodError as err:
        raise InputError(f"gpc calibrates around the WMLE, which does not exist here: {err}") from err
    names = [rv.name for rv in model.free_RVs]
    target = np.concatenate([np.ravel(point[name]) for name in names])
    rng = np.random.default_rng([random_seed, 0x6C9C])
    counts = bootstrap_counts(weights.size, bootstrap, rng)
    seeds = [int(s) for s in rng.integers(2**31 - 1, size=bootstrap)]

    def coverage_at(scale: float) -> float:
        fits = sample_many(model, [{data.name: scale * weights * m} for m in counts], random_seeds=seeds,
                           draws=draws, tune=tune, chains=chains, sampler=sampler)
        return float(np.mean([covers(_flat(fits.posterior, names, b), target, level)
                              for b in range(bootstrap)]))

    calibrated = robbins_monro(coverage_at, level=level, tolerance=tolerance, step=step,
                               iterations=iterations, progress=progress)
    scale, coverage, path = calibrated.scale, calibrated.coverage, calibrated.path
    pm.set_data({data.name: scale * weights}, model=model)
    try:
        idata = sample(model, draws=draws, tune=tune, chains=chains, random_seed=random_seed, sampler=sampler)
    finally:
        pm.set_data({data.name: weights}, model=model)
    converged = calibrated.converged
    idata.attrs.update(method="gpc", gpc_scale=scale, gpc_level=float(level), gpc_coverage=coverage,
                       gpc_bootstrap=bootstrap, gpc_iterations=len(path), gpc_converged=int(converged))
    return GPCResult(scale=scale, effective_sample_size=scale * float(weights.sum()), coverage=coverage,
                     level=float(level), converged=converged, idata=idata, path=path)


# --------------------------------------------------------------------------- the iteration; GPC without MCMC


@dataclass(frozen=True)
class GPCScale:
    """What :func:`robbins_monro` found.

    Attributes
    ----------
    scale : float
        The calibrated scale, omega.
    coverage : float
        The bootstrap coverage there.
    converged : bool
        Whether it is within the tolerance of the level.
    path : list of dict
        One record per iteration (``iteration``, ``scale``, ``coverage``).

    Examples
    --------
    >>> from models.calibrate.posterior_calibration import robbins_monro
    >>> found = robbins_monro(lambda omega: 0.9 / omega**0.5, level=0.8, tolerance=0.01)
    >>> round(found.scale, 3), found.converged, len(found.path)
    (1.249, True, 3)
    """

    scale: float
    coverage: float
    converged: bool
    path: list[dict]


def default_tolerance(level: float, bootstrap: int) -> float:
    """The Monte Carlo sd of a coverage estimate from ``bootstrap`` resamples, and at least 0.01.

    Parameters
    ----------
    level : float
        The nominal coverage.
    bootstrap : int
        Resamples.

    Returns
    -------
    float
        ``max(0.01, sqrt(level (1 - level) / bootstrap))``.

    Examples
    --------
    >>> from models.calibrate.posterior_calibration import default_tolerance
    >>> round(default_tolerance(0.9, 200), 4), default_tolerance(0.9, 10_000)
    (0.0212, 0.01)
    """
    return max(0.01, float(np.sqrt(level * (1 - level) / bootstrap)))


def bootstrap_counts(units: int, bootstrap: int, rng) -> np.ndarray:
    """Multinomial resampling counts of ``units`` rows, one row of counts per resample.

    Parameters
    ----------
    units : int
        Rows, the independently sampled units.
    bootstrap : int
        Resamples.
    rng : numpy.random.Generator

    Returns
    -------
    numpy.ndarray, shape (bootstrap, units)
        Each row sums to ``units``.

    Examples
    --------
    >>> import numpy as np
    >>> from models.calibrate.posterior_calibration import bootstrap_counts
    >>> bootstrap_counts(4, 3, np.random.default_rng(0))
    array([[1, 0, 0, 3],
           [0, 2, 2, 0],
           [1, 1, 1, 1]])
    """
    return rng.multinomial(units, np.full(units, 1 / units), size=bootstrap)


def robbins_monro(coverage_at, *, level: float, tolerance: float, step: float = 4.0, iterations: int = 30,
                  progress=None) -> GPCScale:
    """The Robbins-Monro iteration of GPC, for any coverage function.

    ``log omega_(t+1) = log omega_t + step / t^0.51 (coverage_at(omega_t) - level)`` from omega_1 = 1,
    until the coverage is within ``tolerance`` of ``level`` or ``iterations`` have run.

    Parameters
    ----------
    coverage_at : callable
        ``coverage_at(omega) -> float``, falling as omega grows.
    level : float
        The nominal coverage.
    tolerance : float
        How close to ``level`` the coverage must come.
    step : float, default 4.0
        The step's size at t = 1.
    iterations : int, default 30
        Iterations at most.
    progress : callable, optional
        ``progress(iteration, scale, coverage)``, called after each iteration.

    Returns
    -------
    GPCScale
        The last omega tried and its coverage, and the path.

    Examples
    --------
    >>> from models.calibrate.posterior_calibration import robbins_monro
    >>> found = robbins_monro(lambda omega: 0.9 / omega**0.5, level=0.8, tolerance=0.01)
    >>> [round(record["scale"], 3) for record in found.path]
    [1.0, 1.492, 1.249]
    """
    log_scale, path = 0.0, []
    for iteration in range(1, iterations + 1):
        scale = float(np.exp(log_scale))
        coverage = float(coverage_at(scale))
        path.append({"iteration": iteration, "scale": scale, "coverage": coverage})
        if progress is not None:
            progress(iteration, scale, coverage)
        if abs(coverage - level) <= tolerance:
            break
        log_scale += step / iteration**0.51 * (coverage - level)
    return GPCScale(scale, coverage, abs(coverage - level) <= tolerance, path)
