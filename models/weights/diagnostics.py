"""How much a set of weights is worth: Kish's effective sample size and the PSIS tail shape."""

from __future__ import annotations

import warnings

import numpy as np

from models._validate import check_values
from models.errors import InputError
from models.weights.core import kish_ess
from models.weights.rl import check_episode_ends

__all__ = ["finite_psis_khat", "magnitude_diagnostics", "psis_khat", "ratio_diagnostics"]


def psis_khat(log_weights) -> float:
    """Pareto k-hat of importance weights: the estimated shape of the weights' right tail.

    From ArviZ's Pareto-smoothed importance sampling (``az.psislw``, Vehtari et al. 2024). Below 0.7
    a weighted average over these weights is reliable (below 0.5 good); above 0.7 the weights'
    variance is so large (infinite for k >= 0.5 in theory) that a few draws dominate, and the
    weighted MLE or posterior rests on them.

    Parameters
    ----------
    log_weights : array_like
        Log importance ratios (any additive constant; -inf for a zero weight), one-dimensional. Give
        the raw, uncapped ratios: capped or clipped weights tie at the cap and leave no tail to fit.

    Returns
    -------
    float
        k-hat. ArviZ returns inf (and warns) when the tail is too short to fit: fewer than about 21
        weights, or ties at the top (:func:`finite_psis_khat` returns NaN instead).

    Raises
    ------
    InputError
        When ``log_weights`` is not a non-empty one-dimensional array of numbers, holds NaN or +inf,
        or is all -inf (every weight zero).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> round(psis_khat(rng.normal(size=1000)), 2)  # log-normal weights
    0.38
    >>> round(psis_khat(np.log1p(rng.pareto(1.0, size=1000))), 2)  # a Pareto tail of shape 1
    0.96
    """
    lw = check_values(log_weights, "log_weights", allow_minus_inf=True)
    if np.all(lw == -np.inf):
        raise InputError("log_weights are all -inf: every weight is zero")
    import arviz as az  # here, not at the top: arviz is slow to import and only this needs it

    _, khat = az.psislw(lw)
    return float(khat)


def finite_psis_khat(log_weights) -> float:
    """:func:`psis_khat`, or NaN where ArviZ cannot fit a tail.

    Where the tail is too short, or ties at the top, ArviZ returns inf and warns; NaN says
    "undefined" in a table without the warning.

    Parameters
    ----------
    log_weights : array_like
        Log importance ratios, as for :func:`psis_khat`.

    Returns
    -------
    float
        k-hat, or NaN where it is undefined.

    Raises
    ------
    InputError
        As :func:`psis_khat`.

    Examples
    --------
    >>> finite_psis_khat([0.0, 0.0, 0.0])
    nan
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        khat = psis_khat(log_weights)
    return khat if np.isfinite(khat) else float("nan")


def magnitude_diagnostics(weights) -> dict[str, float]:
    """Kish ESS and PSIS k-hat of the weights' magnitudes ``|w|``.

    How many rows inform a weighted fit, and whether a few dominate it. Signed weights (advantages) pull as
    hard as their magnitude; for non-negative weights ``|w| = w``.

    Parameters
    ----------
    weights : array_like
        Finite weights, one-dimensional, of any sign, not all zero.

    Returns
    -------
    dict
        ``kish_ess`` (:func:`~models.weights.kish_ess` of ``|w|``) and ``psis_khat``
        (:func:`finite_psis_khat` of ``log |w|``). Zero weights are left out of k-hat; equal weights
        have no tail (NaN).

    Raises
    ------
    InputError
        When ``weights`` is not a non-empty one-dimensional array of finite numbers, or is all zero.

    Examples
    --------
    >>> magnitude_diagnostics([1.0, -1.0, 2.0, 0.0])
    {'kish_ess': 2.6666666666666665, 'psis_khat': nan}
    """
    magnitude = np.abs(check_values(weights, "weights"))
    if not np.any(magnitude > 0):
        raise InputError("weights are all zero: there is nothing to diagnose")
    return {"kish_ess": kish_ess(magnitude), "psis_khat": finite_psis_khat(np.log(magnitude[magnitude > 0]))}


def ratio_diagnostics(ratios, episode_ends) -> dict[str, float]:
    """Kish ESS of per-step ratios; Kish ESS and PSIS k-hat of their per-episode products.

    The product of an episode's ratios is the weight an unbiased off-policy estimate of its return
    needs; with one-step episodes (a bandit) the two coincide. Per-step ratios of a tabular policy take
    one value per (state, action) cell, and clipped or truncated ones tie at the cap, so their own
    k-hat is undefined; the products' is not.

    Parameters
    ----------
    ratios : array_like
        Positive per-step importance ratios (:func:`~models.weights.importance_ratios`).
    episode_ends : array_like
        Marks the last step of each episode, as in :func:`~models.weights.returns_to_go`.

    Returns
    -------
    dict
        ``ratio_kish_ess`` (of the per-step ratios), ``episode_ratio_kish_ess`` and
        ``episode_ratio_psis_khat`` (of the per-episode products; NaN where the tail cannot be fitted).

    Raises
    ------
    InputError
        For ratios that are not finite positive numbers (a logged action has positive target and
        behaviour probability), or ``episode_ends`` that are not one boolean per ratio ending in True.

    Examples
    --------
    >>> ratio_diagnostics([0.5, 2.0, 1.0, 1.0], [False, True, False, True])
    {'ratio_kish_ess': 3.24, 'episode_ratio_kish_ess': 2.0, 'episode_ratio_psis_khat': nan}
    """
    rho = check_values(ratios, "ratios")
    if np.any(rho <= 0):
        raise InputError("ratios must be positive: a logged action has positive target and behaviour "
                         "probability")
    ends = check_episode_ends(episode_ends, rho.size, "ratio")
    episode = np.concatenate([[0], np.cumsum(ends)[:-1]])
    log_products = np.bincount(episode, weights=np.log(rho))
    return {"ratio_kish_ess": kish_ess(rho),
            # Kish ESS ignores the scale: shifting the logs keeps exp() finite for long episodes.
            "episode_ratio_kish_ess": kish_ess(np.exp(log_products - log_products.max())),
            "episode_ratio_psis_khat": finite_psis_khat(log_products)}
