"""Generalised posterior calibration (GPC): the weights' scale chosen from the data.

Syring & Martin (2019), "Calibrating general posterior credible regions", Biometrika 106(2). Multiply
every weight by a learning rate omega: the omega-posterior ``log p(theta) + omega sum_i w_i log p(y_i |
theta)`` keeps its (W)MLE and narrows as omega grows. GPC picks the omega at which its credible
regions cover at their nominal rate, with the full-data WMLE ``theta_hat`` standing in for the truth and
the bootstrap standing in for repeated samples::

    c(omega) = (1/B) sum_b 1{ theta_hat in C_level(omega-posterior of bootstrap sample b) }  =  level.

A bootstrap sample b draws rows with replacement (multinomial counts m_b, the rows being the
independent units), so its weights are ``omega w m_b``; the B resamples and their sampler seeds are
drawn once and kept for every iteration (common random numbers), so c(omega) changes only through
omega. The B fits of an iteration run as one batch (:func:`models.sampling.many.sample_many`).

:func:`gpc` (MCMC) solves it through each resample's *threshold*: theta_hat is in C_level(b) when its
distance ratio ``r_b`` (below) is at most 1, and as the omega-posterior narrows like ``1/omega``
(Bernstein-von Mises) ``r_b`` grows in proportion to omega, so resample b covers exactly while
omega < ``tau_b = omega / r_b``. Then ``c(omega) = #{tau_b > omega} / B`` and its root is the
``1 - level`` quantile of the thresholds. Each iteration fits the B resamples at the current omega,
reads their thresholds there, and moves omega to that quantile; the proportionality only sets how fast
this fixed point is reached, not where it is (there, the share of ratios at most 1 is the level). The
thresholds are independent draws across resamples, so the quantile's Monte Carlo interval is the
distribution-free one of order statistics (ranks from Binomial(B, 1 - level)), which counts both the
resampling and the MCMC error. The iteration stops when a step moves omega by less than ``precision``
times that interval's half-width (in log omega): the answer is then the scale last fitted, its
coverage measured there, with its interval.

The closed-form and Laplace versions (:func:`models.coin.gpc_scale`, :func:`models.classes.gpc_scale`)
run the Robbins-Monro iteration on the same c(omega) instead (:func:`robbins_monro`)::

    log omega_(t+1) = log omega_t + kappa_t (c(omega_t) - level),    kappa_t = step / t^0.51,

from omega_1 = 1 (the weights as given), until ``|c - level|`` is within ``tolerance``.

The credible region C_level of a fit is the draws' own Mahalanobis ellipsoid: theta is in it when
``(theta - mean)' S^-1 (theta - mean)`` is at most the ``level`` quantile of the same distance over the
draws (mean and covariance S of the draws of every free variable, flattened, in the constrained
space; for one parameter an interval symmetric about the mean); ``r_b`` is the ratio of the two.
Directions the posterior does not move in (a softmax's common shift) are dropped through a
pseudo-inverse.

Assumptions (as the paper's): rows are independent units (expand frequency-weighted rows first); the
WMLE exists and is the target the omega-posterior should cover; the bootstrap approximates the
sampling distribution of the data. Cost: iterations x B fits of the model (two or three iterations
when the posterior is near Gaussian), plus one final fit.
"""

from __future__ import annotations

from dataclasses import dataclass

import arviz as az
import numpy as np
import pymc as pm
from scipy import stats

from models._graph import data_kept, weights_data
from models._validate import check_count
from models.errors import InputError
from models.estimation.estimators import mle
from models.estimation.existence import UnboundedLikelihoodError
from models.sampling.many import sample_many
from models.sampling.nuts import sample

__all__ = ["GPCResult", "GPCScale", "bootstrap_counts", "covers", "default_tolerance", "distance_ratio",
           "gpc", "quantile_interval", "robbins_monro"]

MONTE_CARLO_LEVEL = 0.95   # the probability of the scale's Monte Carlo interval


@dataclass(frozen=True)
class GPCResult:
    """What :func:`gpc` found: the calibrated scale of the weights, its Monte Carlo interval, and the
    posterior there.

    Attributes
    ----------
    scale : float
        omega, the learning rate every weight is multiplied by: the last scale fitted.
    scale_interval : tuple of float
        The Monte Carlo interval of the root of c(omega), probability ``MONTE_CARLO_LEVEL`` (0.95),
        from the thresholds of the last iteration's resamples (module docstring).
    effective_sample_size : float
        omega x sum w: the sample size the calibrated posterior behaves as.
    coverage : float
        The bootstrap coverage measured at ``scale``.
    level : float
        The nominal level of the credible regions.
    converged : bool
        Whether the last step moved omega by less than ``precision`` times the interval's half-width.
    idata : arviz.InferenceData
        The full data's posterior with weights omega w, provenance in ``attrs`` (``gpc_*``).
    path : list of dict
        One record per iteration: ``iteration``, ``scale`` (fitted), ``coverage`` (measured there),
        ``estimate`` (the thresholds' quantile, the next scale) and its interval ``low``, ``high``.
    weights_sum : float
        sum w, the weights as the model holds them.

    Examples
    --------
    >>> import models
    >>> model = models.coin.build_model([1, 0, 1, 1, 0, 1, 1, 0, 1, 1])
    >>> result = models.gpc(model, random_seed=1, bootstrap=40, draws=300, tune=300)  # doctest: +SKIP
    >>> result.scale, result.scale_interval, result.effective_sample_size_interval  # doctest: +SKIP
    """

    scale: float
    scale_interval: tuple[float, float]
    effective_sample_size: float
    coverage: float
    level: float
    converged: bool
    idata: az.InferenceData
    path: list[dict]
    weights_sum: float

    @property
    def effective_sample_size_interval(self) -> tuple[float, float]:
        """``scale_interval`` times sum w."""
        low, high = self.scale_interval
        return low * self.weights_sum, high * self.weights_sum


def _flat(posterior: dict, names: list[str], index: int) -> np.ndarray:
    """Draws of fit ``index`` of a batch, chains pooled, every free variable flattened: (draws, d)."""
    parts = []
    for name in names:
        values = posterior[name][index]
        parts.append(values.reshape(values.shape[0] * values.shape[1], -1))
    return np.concatenate(parts, axis=1)


def distance_ratio(draws: np.ndarray, point: np.ndarray, level: float) -> float:
    """How far ``point`` lies from the draws' mean, relative to the edge of their credible region.

    ``(point - mean)' S^-1 (point - mean)`` divided by the ``level`` quantile of the same distance over
    the draws (S the draws' covariance, inverted by a pseudo-inverse, so directions the draws do not
    move in are dropped): at most 1 exactly when the region of probability ``level`` covers ``point``.

    Parameters
    ----------
    draws : numpy.ndarray, shape (draws, d)
        Draws, every free variable flattened.
    point : numpy.ndarray, shape (d,)
    level : float
        The region's probability.

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> from models.calibrate.posterior_calibration import distance_ratio
    >>> draws = np.random.default_rng(0).normal(size=(100_000, 1))
    >>> round(distance_ratio(draws, np.array([1.645]), 0.9), 1)   # at the 90% interval's edge
    1.0
    """
    mean = draws.mean(axis=0)
    precision = np.linalg.pinv(np.atleast_2d(np.cov(draws, rowvar=False)), hermitian=True)
    centred = draws - mean
    distances = np.einsum("ij,jk,ik->i", centred, precision, centred)
    gap = point - mean
    return float(gap @ precision @ gap / np.quantile(distances, level))


def covers(draws: np.ndarray, point: np.ndarray, level: float) -> bool:
    """Whether ``point`` lies in the draws' Mahalanobis credible region of probability ``level``
    (:func:`distance_ratio` at most 1).

    Parameters
    ----------
    draws, point, level
        As :func:`distance_ratio`.

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
    return distance_ratio(draws, point, level) <= 1


def quantile_interval(values: np.ndarray, probability: float, confidence: float = MONTE_CARLO_LEVEL
                      ) -> tuple[float, float, float]:
    """The ``probability`` quantile of independent draws ``values``, and its distribution-free interval.

    The interval runs between the order statistics whose ranks are the ``(1 - confidence) / 2`` and
    ``(1 + confidence) / 2`` quantiles of Binomial(n, probability): it holds the population quantile
    with probability at least ``confidence`` (about, for continuous values), whatever their law.

    Parameters
    ----------
    values : numpy.ndarray, shape (n,)
    probability : float
        In (0, 1).
    confidence : float, default 0.95

    Returns
    -------
    tuple of float
        The sample quantile, the interval's low and high ends (infinite where the ranks run past the
        sample).

    Examples
    --------
    >>> import numpy as np
    >>> from models.calibrate.posterior_calibration import quantile_interval
    >>> [round(v, 2) for v in quantile_interval(np.arange(1.0, 201.0), 0.1)]
    [20.9, 12.0, 30.0]
    """
    ordered = np.sort(np.asarray(values, dtype=float))
    n = ordered.size
    low_rank = int(stats.binom.ppf((1 - confidence) / 2, n, probability))
    high_rank = int(stats.binom.ppf((1 + confidence) / 2, n, probability)) + 1
    low = ordered[low_rank - 1] if low_rank >= 1 else -np.inf
    high = ordered[high_rank - 1] if high_rank <= n else np.inf
    return float(np.quantile(ordered, probability)), float(low), float(high)


def gpc(model: pm.Model, *, level: float = 0.9, random_seed: int, bootstrap: int = 200,
        iterations: int = 10, precision: float = 0.25, draws: int = 1000, tune: int = 500, chains: int = 2,
        sampler: str = "auto", progress=None) -> GPCResult:
    """Calibrate the scale of ``model``'s weights by GPC, with its Monte Carlo interval (module docstring).

    The model is left holding its own weights.

    Parameters
    ----------
    model : pymc.Model
        With non-negative weights in ``pm.Data`` (any name; :func:`models.weighted` makes them) and a
        (W)MLE that exists.
    level : float, default 0.9
        The nominal level of the credible regions, in (0, 1).
    random_seed : int
        Seeds the bootstrap resamples, their fits and the final fit.
    bootstrap : int, default 200
        B, the bootstrap resamples (at least 10); the interval narrows like 1 / sqrt(B).
    iterations : int, default 10
        Iterations at most (batches of B fits).
    precision : float, default 0.25
        Stop when a step moves omega by less than this fraction of its Monte Carlo interval's
        half-width (in log omega), in (0, 1].
    draws, tune, chains : int, default 1000, 500, 2
        NUTS settings of every fit.
    sampler : {"auto", "pymc", "numpyro", "nutpie"}
        As :func:`models.sampling.many.sample_many` and :func:`models.sampling.nuts.sample` take it.
    progress : callable, optional
        ``progress(record)`` with the iteration's record (see ``GPCResult.path``), after each iteration.

    Returns
    -------
    GPCResult

    Raises
    ------
    InputError
        For ``level`` outside (0, 1), ``bootstrap`` below 10, ``iterations`` below 1, ``precision``
        outside (0, 1], a model without weights in ``pm.Data``, negative weights, or a WMLE that does
        not exist.

    Examples
    --------
    >>> import models
    >>> model = models.coin.build_model([1, 0, 1, 1, 0, 1, 1, 0, 1, 1] * 6)
    >>> result = models.gpc(model, random_seed=1)  # doctest: +SKIP
    >>> result.effective_sample_size, result.effective_sample_size_interval  # doctest: +SKIP
    """
    if isinstance(level, bool) or not 0 < float(level) < 1:
        raise InputError(f"level must be a number in (0, 1), got {level!r}")
    if isinstance(precision, bool) or not 0 < float(precision) <= 1:
        raise InputError(f"precision must be a number in (0, 1], got {precision!r}")
    bootstrap = check_count(bootstrap, "bootstrap", 10)
    iterations = check_count(iterations, "iterations", 1)
    data = weights_data(model)
    weights = np.asarray(data.get_value(), dtype=float)
    if np.any(weights < 0):
        raise InputError("gpc needs non-negative weights (the bootstrap resamples units)")
    try:
        point = mle(model)
    except UnboundedLikelihoodError as err:
        raise InputError(f"gpc calibrates around the WMLE, which does not exist here: {err}") from err
    names = [rv.name for rv in model.free_RVs]
    target = np.concatenate([np.ravel(point[name]) for name in names])
    rng = np.random.default_rng([random_seed, 0x6C9C])
    counts = bootstrap_counts(weights.size, bootstrap, rng)
    seeds = [int(s) for s in rng.integers(2**31 - 1, size=bootstrap)]

    def ratios_at(scale: float) -> np.ndarray:
        fits = sample_many(model, [{data.name: scale * weights * m} for m in counts], random_seeds=seeds,
                           draws=draws, tune=tune, chains=chains, sampler=sampler)
        return np.array([distance_ratio(_flat(fits.posterior, names, b), target, level)
                         for b in range(bootstrap)])

    scale, path = 1.0, []
    for iteration in range(1, iterations + 1):
        ratios = ratios_at(scale)
        if not np.all(np.isfinite(ratios)):   # draws that do not move (a failed fit) have no region
            failed = int(np.sum(~np.isfinite(ratios)))
            raise InputError(f"gpc: {failed} bootstrap fit(s) at scale {scale:.4g} gave draws without "
                             "spread; check the fits' diagnostics (sample_many)")
        with np.errstate(divide="ignore"):   # a ratio of 0 (theta_hat at the mean) covers at every scale
            thresholds = scale / ratios
        estimate, low, high = quantile_interval(thresholds, 1 - float(level))
        record = {"iteration": iteration, "scale": scale, "coverage": float(np.mean(ratios <= 1)),
                  "estimate": estimate, "low": low, "high": high}
        path.append(record)
        if progress is not None:
            progress(record)
        converged = _settled(scale, estimate, low, high, precision)
        if converged or iteration == iterations or not 0 < estimate < np.inf:
            break
        scale = estimate
    with data_kept(model):
        pm.set_data({data.name: scale * weights}, model=model)
        idata = sample(model, draws=draws, tune=tune, chains=chains, random_seed=random_seed, sampler=sampler)
    last = path[-1]
    idata.attrs.update(method="gpc", gpc_scale=scale, gpc_scale_low=last["low"], gpc_scale_high=last["high"],
                       gpc_level=float(level), gpc_coverage=last["coverage"], gpc_bootstrap=bootstrap,
                       gpc_iterations=len(path), gpc_converged=int(converged))
    return GPCResult(scale=scale, scale_interval=(last["low"], last["high"]),
                     effective_sample_size=scale * float(weights.sum()), coverage=last["coverage"],
                     level=float(level), converged=converged, idata=idata, path=path,
                     weights_sum=float(weights.sum()))


def _settled(scale: float, estimate: float, low: float, high: float, precision: float) -> bool:
    """Whether the step from ``scale`` to ``estimate`` is below ``precision`` of the interval's
    half-width in log omega (never, while the interval is unbounded or of zero width)."""
    if not (0 < low < high < np.inf) or not 0 < estimate < np.inf:
        return False
    half_width = (np.log(high) - np.log(low)) / 2
    return abs(np.log(estimate) - np.log(scale)) <= precision * half_width


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
