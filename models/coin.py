"""A weighted coin: Bernoulli tosses with a Beta prior on the probability of heads.

The model::

    p ~ Beta(a, b)
    log p(p | y, w) = log Beta(p | a, b) + sum_i w_i [y_i log p + (1 - y_i) log(1 - p)] + const

with ``y_i = 1`` for heads. Because the weighted Bernoulli likelihood is a Beta kernel in ``p``
for any non-negative weights, the weighted posterior is exactly::

    Beta(a + sum_i w_i y_i,  b + sum_i w_i (1 - y_i)),

which the tests and the coin analysis use as ground truth for the sampler. The weighted MLE is
``sum w y / sum w``: unchanged when every weight is multiplied by ``c``, whereas the posterior's
pseudo-counts (and so its width) scale with ``c``.

Existence, in closed form. Both estimators maximise ``A log p + B log(1 - p)`` over [0, 1]: the
WMLE with ``A = sum w y`` and ``B = sum w (1 - y)``, the MAP (the mode of the density, no Jacobian)
with ``A = a - 1 + sum w y`` and ``B = b - 1 + sum w (1 - y)``. With A, B >= 0 the maximiser is
``A / (A + B)``, on the boundary (p = 0 or 1) when one side carries nothing, so the WMLE of
non-negative weights always exists; every p maximises when A = B = 0. With A < 0 (or B < 0) the
objective rises to +infinity as p -> 0 (or 1): no maximiser (a net negative weight on heads, or a
Beta prior with a < 1 that no heads outweigh). The models carry this verdict
(:mod:`models.estimation.existence`), so ``inference.mle`` and ``map_estimate`` return these values exactly.
"""

from __future__ import annotations

import numpy as np
import pymc as pm
from scipy import stats

from models import weights as weights_lib
from models.calibrate.posterior_calibration import (
    GPCScale,
    bootstrap_counts,
    default_tolerance,
    robbins_monro,
)
from models.errors import InputError
from models.estimation import existence
from models.likelihood import weighted_likelihood

__all__ = ["build_model", "exact_posterior", "gpc_scale", "map_existence", "maximiser_existence",
           "mle_existence", "prepare"]


def _check_flips(flips) -> np.ndarray:
    y = np.asarray(flips)
    if y.ndim != 1 or y.size == 0:
        raise InputError(f"flips must be a non-empty one-dimensional array, got shape {y.shape}")
    if y.dtype == bool:
        y = y.astype(np.int64)
    if not np.issubdtype(y.dtype, np.number) or not np.all(np.isin(y, (0, 1))):
        raise InputError("flips must hold only 0 (tails) and 1 (heads)")
    return y.astype(np.int64)


def _check_prior(prior) -> tuple[float, float]:
    try:
        a, b = (float(v) for v in prior)
    except (TypeError, ValueError):
        raise InputError(f"prior must be a pair (a, b) of Beta parameters, got {prior!r}") from None
    if not (np.isfinite(a) and np.isfinite(b) and a > 0 and b > 0):
        raise InputError(f"prior Beta(a, b) needs finite a > 0 and b > 0, got ({a:g}, {b:g})")
    return a, b


def prepare(flips, weights=None, *, prior=(1.0, 1.0), normalize="none"):
    """Validated ``(flips, weights, (a, b))`` exactly as the model uses them.

    Parameters
    ----------
    flips, weights, prior, normalize
        As for :func:`build_model`.

    Returns
    -------
    flips : numpy.ndarray
        The tosses as int64 0 (tails) and 1 (heads).
    weights : numpy.ndarray
        The checked weights, rescaled by ``normalize``.
    prior : tuple of float
        ``(a, b)``.

    Raises
    ------
    InputError
        As :func:`build_model`.

    Examples
    --------
    >>> prepare([True, False, True], [1, 2, 3], normalize="n")
    (array([1, 0, 1]), array([0.5, 1. , 1.5]), (1.0, 1.0))
    """
    y = _check_flips(flips)
    w = weights_lib.normalize(weights_lib.check(weights, y.size), normalize)
    return y, w, _check_prior(prior)


def build_model(flips, weights=None, *, prior=(1.0, 1.0), normalize="none") -> pm.Model:
    """The weighted coin model; free variable ``p``.

    Observed term ``heads`` (dims ``toss``). With tosses ``y_i`` (1 for heads), weights ``w_i`` and the prior
    ``(a, b)``::

        p ~ Beta(a, b)
        log p(p | y, w) = log Beta(p | a, b) + sum_i w_i [y_i log p + (1 - y_i) log(1 - p)] + const

    The tosses are stored as ``pm.Data("flips")``, the weights as ``pm.Data("weights")`` and the
    prior as ``pm.Data("prior_a")`` and ``pm.Data("prior_b")``, so that new data or a new prior of the
    same shapes reuse the compiled model (``pm.set_data``). The model carries the closed-form
    verdicts :func:`mle_existence` and :func:`map_existence`.

    Parameters
    ----------
    flips : array_like
        The tosses, 0 (tails) and 1 (heads) or booleans, one-dimensional, not empty.
    weights : array_like, optional
        One weight per toss, default all ones; checked (:func:`models.weights.check`: negative
        weights are refused) and rescaled by ``normalize``.
    prior : tuple of float, default (1.0, 1.0)
        ``(a, b)`` of the Beta prior, finite and positive.
    normalize : {"none", "n", "ess"}, default "none"
        How the weights are rescaled, see :func:`models.weights.normalize`.

    Returns
    -------
    pymc.Model
        The model, with coords ``toss``.

    Raises
    ------
    InputError
        For flips that are not a non-empty one-dimensional array of 0 and 1, weights that
        :func:`models.weights.check` refuses, a prior that is not a pair of finite positive numbers,
        or an unknown ``normalize``.

    Examples
    --------
    >>> model = build_model([1, 0, 1, 1], [1.0, 2.0, 1.0, 0.5])
    >>> model.free_RVs, model.observed_RVs
    ([p], [heads])
    >>> model["weights"].get_value()
    array([1. , 2. , 1. , 0.5])
    """
    y, w, (a, b) = prepare(flips, weights, prior=prior, normalize=normalize)
    with pm.Model(coords={"toss": np.arange(y.size)}) as model:
        flips_data = pm.Data("flips", y, dims="toss")
        weights_data = pm.Data("weights", w, dims="toss")
        # Data, not constants: a constant would be compiled into the C code, once per prior.
        p = pm.Beta("p", alpha=pm.Data("prior_a", np.float64(a)), beta=pm.Data("prior_b", np.float64(b)))
        weighted_likelihood("heads", pm.Bernoulli, weights_data, observed=flips_data, dims="toss", p=p)
    return existence.attach(model, "coin", mle_existence, map_existence)


def _weighted_counts(model: pm.Model) -> tuple[float, float]:
    """``(sum w y, sum w (1 - y))`` from the model's current data."""
    y, w = model["flips"].get_value(), model["weights"].get_value()
    return float(np.sum(w * y)), float(np.sum(w * (1 - y)))


def maximiser_existence(heads: float, tails: float) -> existence.Existence:
    """The verdict on ``argmax_p heads log p + tails log(1 - p)`` over [0, 1], in closed form.

    With both sides non-negative the maximiser is ``heads / (heads + tails)`` (on the boundary when
    one side weighs nothing); every p maximises when both weigh nothing (p = 0.5 is reported); a
    negative side sends the objective to +infinity at its boundary (module docstring).

    Parameters
    ----------
    heads : float
        The coefficient of ``log p``.
    tails : float
        The coefficient of ``log(1 - p)``.

    Returns
    -------
    models.estimation.existence.Existence
        The verdict (method ``"closed form"``), with the maximiser ``{"p": ...}`` when it exists, or
        the boundary the objective runs off to (``"p -> 0"``, ``"p -> 1"``) when it does not.

    Examples
    --------
    >>> verdict = maximiser_existence(3.0, 1.0)
    >>> verdict.exists, verdict.maximiser
    (True, {'p': 0.75})
    >>> verdict = maximiser_existence(-1.0, 1.0)
    >>> verdict.exists, verdict.diverging
    (False, ('p -> 0',))
    """
    if heads < 0 or tails < 0:
        running = [*(["p -> 0"] if heads < 0 else []), *(["p -> 1"] if tails < 0 else [])]
        return existence.Existence(
            False, "closed form", f"heads weigh {heads:.4g} and tails {tails:.4g}; a negative side sends "
            "the objective to +infinity at its boundary", diverging=tuple(running))
    if heads + tails == 0:
        return existence.Existence(True, "closed form", "heads and tails weigh nothing: every p maximises "
                                   "(p = 0.5 reported)", aliased=("p",), maximiser={"p": 0.5})
    p_hat = heads / (heads + tails)
    where = " (on the boundary)" if p_hat in (0.0, 1.0) else ""
    return existence.Existence(True, "closed form", f"heads weigh {heads:.4g} and tails {tails:.4g}: "
                               f"p = {p_hat:.6g}{where}", maximiser={"p": p_hat})


def mle_existence(model: pm.Model) -> existence.Existence:
    """The WMLE's verdict for a coin model (its current data): ``sum w y / sum w``.

    Parameters
    ----------
    model : pymc.Model
        A model :func:`build_model` made (its current ``pm.Data`` is read).

    Returns
    -------
    models.estimation.existence.Existence
        :func:`maximiser_existence` of ``(sum w y, sum w (1 - y))``.

    Examples
    --------
    >>> mle_existence(build_model([1, 0, 1, 1], [1.0, 2.0, 1.0, 0.5])).reason
    'heads weigh 2.5 and tails 2: p = 0.555556'
    """
    return maximiser_existence(*_weighted_counts(model))


def map_existence(model: pm.Model) -> existence.Existence:
    """The MAP's verdict for a coin model with a Beta(a, b) prior.

    The MAP is the mode of Beta(a + sum w y, b + sum w (1 - y)) when it has one: the maximiser of
    ``A log p + B log(1 - p)`` with ``A = a - 1 + sum w y`` and ``B = b - 1 + sum w (1 - y)``.

    Parameters
    ----------
    model : pymc.Model
        A model :func:`build_model` made (its current ``pm.Data`` is read).

    Returns
    -------
    models.estimation.existence.Existence
        :func:`maximiser_existence` of ``(A, B)``.

    Examples
    --------
    >>> map_existence(build_model([1, 1], prior=(2.0, 2.0))).maximiser
    {'p': 0.75}
    >>> map_existence(build_model([1, 1], prior=(0.5, 0.5))).exists  # a < 1 and b < 1, no tails
    False
    """
    heads, tails = _weighted_counts(model)
    a, b = (float(model[name].get_value()) for name in ("prior_a", "prior_b"))
    return maximiser_existence(a - 1 + heads, b - 1 + tails)


def exact_posterior(flips, weights=None, *, prior=(1.0, 1.0), normalize="none"):
    """The exact weighted posterior ``Beta(a + sum w y, b + sum w (1 - y))``.

    Conjugate, as a scipy frozen distribution; exact for any non-negative weights (module docstring).

    Parameters
    ----------
    flips, weights, prior, normalize
        As for :func:`build_model`.

    Returns
    -------
    scipy.stats.rv_continuous_frozen
        The Beta distribution.

    Raises
    ------
    InputError
        As :func:`build_model`.

    Examples
    --------
    >>> posterior = exact_posterior([1, 0, 1, 1], [1.0, 2.0, 1.0, 0.5])
    >>> [float(shape) for shape in posterior.args]
    [3.5, 3.0]
    >>> round(float(posterior.mean()), 4)
    0.5385
    """
    y, w, (a, b) = prepare(flips, weights, prior=prior, normalize=normalize)
    return stats.beta(a + np.sum(w * y), b + np.sum(w * (1 - y)))


def gpc_scale(flips, weights, *, prior=(1.0, 1.0), level: float = 0.9, bootstrap: int = 200, rng,
              step: float = 4.0, iterations: int = 30) -> GPCScale:
    """GPC of the weighted coin in closed form, without MCMC.

    Generalised posterior calibration (GPC). The omega-posterior of bootstrap resample b is
    Beta(a + omega sum w m_b y, b + omega sum w m_b (1 - y)); rows of ``flips`` are the units.
    Its region, symmetric about the mean, covers the WMLE theta_hat exactly when
    ``P(|p - mean| <= |theta_hat - mean|) <= level``; the scale follows
    :func:`models.calibrate.posterior_calibration.robbins_monro`, each iteration in closed form.

    Parameters
    ----------
    flips : array_like
        The tosses, 0 and 1 (not checked here: pass what :func:`prepare` returns).
    weights : array_like
        One non-negative weight per toss.
    prior : tuple of float, default (1.0, 1.0)
        ``(a, b)`` of the Beta prior.
    level : float, default 0.9
        The credible level to calibrate.
    bootstrap : int, default 200
        The number of bootstrap resamples m_b.
    rng : numpy.random.Generator
        Draws the bootstrap resamples.
    step : float, default 4.0
        The Robbins-Monro step size.
    iterations : int, default 30
        The most Robbins-Monro iterations.

    Returns
    -------
    models.calibrate.posterior_calibration.GPCScale
        The calibrated scale omega, the bootstrap coverage there, whether it converged and the path.

    Examples
    --------
    >>> import numpy as np
    >>> result = gpc_scale([1, 0, 1, 1, 0, 1, 1, 1], [1, 1, 2, 1, 1, 1, 1, 3], bootstrap=100,
    ...                    rng=np.random.default_rng(0))
    >>> result.converged, round(result.scale, 2), result.coverage
    (True, 0.85, 0.92)
    """
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
