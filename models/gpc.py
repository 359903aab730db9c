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

Assumptions (as the paper's): rows are independent units (expand frequency-weighted rows first); the
WMLE exists and is the target the omega-posterior should cover; the bootstrap approximates the
sampling distribution of the data. Cost: iterations x B fits of the model (each one chain pair), plus
one final fit; the coin with B = 200 takes a few seconds in all, a 300-row logistic regression about
20 s per iteration.

Without MCMC, for simulation studies (:func:`coin_scale`, :func:`logistic_scale`; the same
iteration, :func:`robbins_monro`): the coin's omega-posteriors are Beta in closed form, and its
region, symmetric about the mean, covers theta_hat exactly when ``P(|p - mean| <= |theta_hat - mean|)
<= level``; for the logistic regression the omega-posterior of each resample is replaced by its
Laplace approximation N(mode_b, H_b^-1) (mode by Newton's method, all B at once) and the region by the
ellipsoid ``(theta - mode_b)' H_b (theta - mode_b) <= chi2_d(level)``. Milliseconds per iteration.
The same with the focal loss in place of the log-likelihood (``focal_gamma > 0``): a Gibbs posterior,
whose learning rate is the loss's only scale, calibrated around the data's loss minimiser.
"""

from __future__ import annotations

from dataclasses import dataclass

import arviz as az
import numpy as np
import pymc as pm
from scipy import special, stats

from models.errors import InputError

__all__ = ["GPCResult", "GPCScale", "binary_terms", "coin_scale", "gpc", "laplace_logistic", "logistic_scale",
           "robbins_monro"]


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
    tolerance = default_tolerance(level, bootstrap) if tolerance is None else float(tolerance)
    try:
        point = inference.mle(model)
    except inference.UnboundedLikelihoodError as err:
        raise InputError(f"gpc calibrates around the WMLE, which does not exist here: {err}") from err
    names = [rv.name for rv in model.free_RVs]
    target = np.concatenate([np.ravel(point[name]) for name in names])
    rng = np.random.default_rng([random_seed, 0x6C9C])
    counts = bootstrap_counts(weights.size, bootstrap, rng)
    seeds = [int(s) for s in rng.integers(2**31 - 1, size=bootstrap)]
    def coverage_at(scale: float) -> float:
        fits = inference.sample_many(model, [{"weights": scale * weights * m} for m in counts],
                                     random_seeds=seeds, draws=draws, tune=tune, chains=chains,
                                     sampler=sampler)
        return float(np.mean([covers(_flat(fits.posterior, names, b), target, level)
                              for b in range(bootstrap)]))

    calibrated = robbins_monro(coverage_at, level=level, tolerance=tolerance, step=step,
                               iterations=iterations, progress=progress)
    scale, coverage, path = calibrated.scale, calibrated.coverage, calibrated.path
    pm.set_data({"weights": scale * weights}, model=model)
    try:
        idata = inference.sample(model, draws=draws, tune=tune, chains=chains, random_seed=random_seed,
                                 sampler=sampler)
    finally:
        pm.set_data({"weights": weights}, model=model)
    converged = calibrated.converged
    idata.attrs.update(method="gpc", gpc_scale=scale, gpc_level=float(level), gpc_coverage=coverage,
                       gpc_bootstrap=bootstrap, gpc_iterations=len(path), gpc_converged=int(converged))
    return GPCResult(scale=scale, effective_sample_size=scale * float(weights.sum()), coverage=coverage,
                     level=float(level), converged=converged, idata=idata, path=path)


# --------------------------------------------------------------------------- the iteration; GPC without MCMC


@dataclass(frozen=True)
class GPCScale:
    """The calibrated ``scale`` (omega), the bootstrap ``coverage`` there, whether it is within the
    tolerance of the level (``converged``) and the ``path`` (``iteration``, ``scale``, ``coverage``)."""

    scale: float
    coverage: float
    converged: bool
    path: list[dict]


def default_tolerance(level: float, bootstrap: int) -> float:
    """The Monte Carlo sd of a coverage estimate from ``bootstrap`` resamples, and at least 0.01."""
    return max(0.01, float(np.sqrt(level * (1 - level) / bootstrap)))


def bootstrap_counts(units: int, bootstrap: int, rng) -> np.ndarray:
    """Multinomial resampling counts of ``units`` rows, one row of counts per resample: (bootstrap, units)."""
    return rng.multinomial(units, np.full(units, 1 / units), size=bootstrap)


def robbins_monro(coverage_at, *, level: float, tolerance: float, step: float = 4.0, iterations: int = 30,
                  progress=None) -> GPCScale:
    """``log omega_(t+1) = log omega_t + step / t^0.51 (coverage_at(omega_t) - level)`` from omega_1 = 1,
    until the coverage is within ``tolerance`` of ``level`` or ``iterations`` have run."""
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


def coin_scale(flips, weights, *, prior=(1.0, 1.0), level: float = 0.9, bootstrap: int = 200, rng,
               step: float = 4.0, iterations: int = 30) -> GPCScale:
    """GPC for the weighted coin in closed form (module docstring): the omega-posterior of resample b is
    Beta(a + omega sum w m_b y, b + omega sum w m_b (1 - y)); rows of ``flips`` are the units."""
    y, w = np.asarray(flips, dtype=float), np.asarray(weights, dtype=float)
    a, b = prior
    target = np.sum(w * y) / np.sum(w)   # the WMLE, possibly on the boundary
    counts = bootstrap_counts(y.size, bootstrap, rng) * w
    heads, tails = counts @ y, counts @ (1 - y)

    def coverage_at(scale: float) -> float:
        posterior = stats.beta(a + scale * heads, b + scale * tails)
        mean = posterior.mean()
        gap = np.abs(target - mean)
        inside = posterior.cdf(mean + gap) - posterior.cdf(mean - gap)   # P(|p - mean| <= gap)
        return float(np.mean(inside <= level))

    return robbins_monro(coverage_at, level=level, tolerance=default_tolerance(level, bootstrap), step=step,
                         iterations=iterations)


NEWTON_TOLERANCE = 1e-10
NEWTON_ITERATIONS = 100


def binary_terms(eta: np.ndarray, y: np.ndarray, focal_gamma: float = 0.0):
    """Per-row ``(l, dl/deta, c)`` of the binary log-likelihood term ``l = log q`` (``focal_gamma = 0``)
    or of minus the focal loss ``l = (1 - q)^gamma log q`` (Lin et al. 2017), with ``q = sigmoid(u)`` the
    fitted probability of the observed class, ``u = s eta`` and ``s = 2 y - 1``; ``c = -d^2 l / deta^2``
    is the curvature the Hessian sums. With ``a = 1 - q``, ``L = log q`` and ``r = L / a``:

        dl/du = a^gamma (a - gamma q L),    c = q a^(gamma + 1) (1 + 2 gamma + gamma L - gamma^2 q r).

    ``c`` is q a > 0 for the log-likelihood; for the focal loss it turns negative on badly misclassified
    rows (gamma = 2: below zero for u < -2.79, least -0.047 at u = -3.85): the focal loss is not
    convex in the logit."""
    if focal_gamma == 0:
        p = special.expit(eta)
        return y * eta - np.logaddexp(0.0, eta), y - p, p * (1 - p)
    sign = 2 * y - 1
    u = sign * eta
    q, a, log_q = special.expit(u), special.expit(-u), special.log_expit(u)
    ratio = np.where(u > 30, -1.0, log_q / np.where(u > 30, 1.0, a))   # L / a -> -1 as q -> 1
    power = a**focal_gamma
    gradient = sign * power * (a - focal_gamma * q * log_q)
    curvature = q * a * power * (1 + 2 * focal_gamma + focal_gamma * log_q - focal_gamma**2 * q * ratio)
    return power * log_q, gradient, curvature


def laplace_logistic(design: np.ndarray, y: np.ndarray, weights: np.ndarray, prior_precision: np.ndarray,
                     start: np.ndarray | None = None, *,
                     focal_gamma: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Modes and Hessians of weighted logistic log posteriors, one per row of ``weights`` (fits, n):
    ``sum_i w_i l_i(design_i theta) - theta' P theta / 2`` with P = diag(``prior_precision``) (zeros: no
    prior, the WMLE) and ``l_i`` the log-likelihood term, or with ``focal_gamma > 0`` minus the focal loss
    (the Gibbs posterior and the loss minimiser; :func:`binary_terms`). Newton's method with step
    halving, all fits at once; where a fit's Hessian is not positive definite (the focal loss is not
    concave) the step uses the rows of positive curvature only, still an ascent direction. Returns
    ``(modes (fits, d), H (fits, d, d))``, H = minus the Hessian at the mode. Raises ``RuntimeError`` when
    a fit does not converge (no finite mode: separation without a prior; or no step: the rows of
    positive curvature do not span every direction) or stops where H is not positive definite (not a
    maximum: no Laplace approximation)."""
    if not focal_gamma >= 0:
        raise InputError(f"focal_gamma must be >= 0, got {focal_gamma!r}")
    w = np.atleast_2d(np.asarray(weights, dtype=float))
    fits, d = w.shape[0], design.shape[1]
    theta = np.zeros((fits, d)) if start is None else np.array(np.broadcast_to(start, (fits, d)), dtype=float)
    precision = np.asarray(prior_precision, dtype=float)

    def objective(t):
        log_terms = binary_terms(t @ design.T, y, focal_gamma)[0]
        return np.sum(w * log_terms, axis=1) - 0.5 * np.sum(precision * t**2, axis=1)

    def hessian(curvature):
        return np.einsum("fn,ni,nj->fij", w * curvature, design, design) + np.diag(precision)

    for _ in range(NEWTON_ITERATIONS):
        _, slope, curvature = binary_terms(theta @ design.T, y, focal_gamma)
        gradient = (w * slope) @ design - precision * theta
        matrix = hessian(curvature)
        if focal_gamma != 0:
            concave = np.linalg.eigvalsh(matrix)[:, 0] > 0
            matrix = np.where(concave[:, None, None], matrix, hessian(np.maximum(curvature, 0.0)))
        try:
            newton = np.linalg.solve(matrix, gradient[..., None])[..., 0]
        except np.linalg.LinAlgError:   # no curvature left on any row: the mode runs off
            break
        size = np.ones(fits)
        current = objective(theta)
        for _ in range(30):   # halve the step where it would lower the objective
            worse = objective(theta + size[:, None] * newton) < current - 1e-12 * np.abs(current)
            if not worse.any():
                break
            size = np.where(worse, size / 2, size)
        theta = theta + size[:, None] * newton
        if np.max(np.abs(size[:, None] * newton)) < NEWTON_TOLERANCE * (1 + np.max(np.abs(theta))):
            final = hessian(binary_terms(theta @ design.T, y, focal_gamma)[2])
            if np.any(np.linalg.eigvalsh(final)[:, 0] <= 0):
                raise RuntimeError("Newton's method stopped where the Hessian is not negative definite")
            return theta, final
    raise RuntimeError("Newton's method did not converge: no finite mode (separation?)")


def logistic_scale(design: np.ndarray, y: np.ndarray, weights: np.ndarray, prior_precision: np.ndarray, *,
                   level: float = 0.9, bootstrap: int = 200, rng, step: float = 4.0, iterations: int = 30,
                   focal_gamma: float = 0.0) -> tuple[GPCScale, np.ndarray]:
    """GPC for a weighted logistic regression with Laplace-approximated omega-posteriors (module
    docstring); rows of ``design`` (n, d) are the units. ``focal_gamma > 0``: the focal loss's Gibbs
    posterior, centred on the loss minimiser. Returns the calibration and the WMLE (loss minimiser) it
    centres on; raises ``RuntimeError`` when that does not exist."""
    w = np.asarray(weights, dtype=float)
    target, _ = laplace_logistic(design, y, w, np.zeros(design.shape[1]), focal_gamma=focal_gamma)
    counts = bootstrap_counts(y.size, bootstrap, rng) * w
    radius = stats.chi2.ppf(level, design.shape[1])
    modes = {"last": target}

    def coverage_at(scale: float) -> float:
        mode, hessian = laplace_logistic(design, y, scale * counts, prior_precision, start=modes["last"],
                                         focal_gamma=focal_gamma)
        modes["last"] = mode   # warm start for the next scale
        gap = target - mode
        return float(np.mean(np.einsum("fi,fij,fj->f", gap, hessian, gap) <= radius))

    return robbins_monro(coverage_at, level=level, tolerance=default_tolerance(level, bootstrap), step=step,
                         iterations=iterations), target[0]
