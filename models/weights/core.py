"""Observation weights: validate, rescale and diagnose them (pure numpy; no PyMC here).

Every model in the suite has the log density::

    log p(theta | y, w) = log p(theta) + sum_i w_i log p(y_i | theta) + const,

so the weights ``w`` are the one thing that distinguishes MLE (w = 1, no prior) from the weighted
MLE, and the posterior from a weighted pseudo-posterior. Multiplying every ``w_i`` by ``c > 0``
leaves the weighted MLE where it is but scales the log-likelihood's curvature by ``c``, so the
posterior narrows by about ``1 / sqrt(c)``. :func:`normalize` picks that scale explicitly."""

from __future__ import annotations

import numpy as np

from models.errors import InputError

__all__ = ["NORMALIZATIONS", "check", "check_shaped", "kish_ess", "normalize"]

NORMALIZATIONS = ("none", "n", "ess")


def check(weights, n: int, *, allow_negative: bool = False, name: str = "weights") -> np.ndarray:
    """Validate observation weights; ``None`` means all ones.

    Parameters
    ----------
    weights : array_like or None
        One number per observation; ``None`` for all ones.
    n : int
        The number of observations, a positive integer.
    allow_negative : bool, default False
        Accept negative weights (e.g. advantages). Otherwise they are refused.
    name : str, default "weights"
        The argument's name, as error messages show it.

    Returns
    -------
    numpy.ndarray
        ``weights`` as a float array of length ``n`` (a copy: the caller's array is never aliased).

    Raises
    ------
    InputError
        A ``ValueError`` naming ``name`` and the problem: not numbers, not one-dimensional, wrong
        length, NaN or infinite values, negative values (unless ``allow_negative``), or all zero; or
        ``n`` not a positive integer.

    Examples
    --------
    >>> check(None, 3)
    array([1., 1., 1.])
    >>> check([1, 2, 0.5], 3)
    array([1. , 2. , 0.5])
    >>> check([1.0, 2.0], 3)
    Traceback (most recent call last):
        ...
    models.errors.InputError: weights has length 2, expected 3 (one per observation)
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise InputError(f"n must be a positive integer, got {n!r}")
    if weights is None:
        return np.ones(n)
    try:
        w = np.array(weights, dtype=float)  # a copy: the caller's array is never aliased
    except (TypeError, ValueError) as err:
        raise InputError(f"{name} must be numbers, got {type(weights).__name__}: {err}") from None
    if w.ndim != 1:
        raise InputError(f"{name} must be one-dimensional, got shape {w.shape}")
    if w.size != n:
        raise InputError(f"{name} has length {w.size}, expected {n} (one per observation)")
    return _checked_values(w, name, allow_negative)


def check_shaped(weights, shape: tuple, *, allow_negative: bool = False, name: str = "weights") -> np.ndarray:
    """Validate weights of observations laid out in ``shape`` (one weight per row of a model's term).

    Parameters
    ----------
    weights : array_like
        Numbers broadcastable to ``shape`` (a scalar weighs every observation alike).
    shape : tuple of int
        The observations' batch shape: one weight per element.
    allow_negative : bool, default False
        Accept negative weights (e.g. advantages). Otherwise they are refused.
    name : str, default "weights"
        What error messages call the weights.

    Returns
    -------
    numpy.ndarray
        ``weights`` as a float array of their own shape (a copy).

    Raises
    ------
    InputError
        Not numbers, a shape that does not broadcast to ``shape``, NaN or infinite values, negative
        values (unless ``allow_negative``), or all zero.

    Examples
    --------
    >>> check_shaped(2.0, (3,))   # one weight for every observation
    array(2.)
    >>> check_shaped([[1.0], [0.5]], (2, 3)).shape   # one weight per row of a 2 x 3 table
    (2, 1)
    """
    try:
        w = np.array(weights, dtype=float)
    except (TypeError, ValueError) as err:
        raise InputError(f"{name} must be numbers, got {type(weights).__name__}: {err}") from None
    try:
        np.broadcast_to(w, tuple(shape))
    except ValueError:
        raise InputError(f"{name} have shape {w.shape}, which does not fit the observations' shape "
                         f"{tuple(shape)} (one weight per observation)") from None
    return _checked_values(w, name, allow_negative)


def _checked_values(w: np.ndarray, name: str, allow_negative: bool) -> np.ndarray:
    """``w`` when it is finite, non-negative (unless allowed) and not all zero; else ``InputError``."""
    flat = np.ravel(w)
    for bad, what in ((np.isnan(flat), "NaN"), (np.isinf(flat), "infinite")):
        if bad.any():
            raise InputError(f"{name} has {bad.sum()} {what} value(s), first at index {np.argmax(bad)}")
    negative = flat < 0
    if negative.any() and not allow_negative:
        first = int(np.argmax(negative))
        raise InputError(
            f"{name} has {negative.sum()} negative value(s), first {flat[first]:g} at index {first}; "
            "pass allow_negative=True if they are meant (e.g. advantages)"
        )
    if not np.any(flat != 0):
        raise InputError(f"{name} are all zero: no observation would inform the fit")
    return w


def kish_ess(weights) -> float:
    """Kish's effective sample size ``(sum w)^2 / sum w^2``: n for equal weights, 1 for one.

    Parameters
    ----------
    weights : array_like
        A non-empty, finite, one-dimensional array, not all zero.

    Returns
    -------
    float
        ``(sum w)^2 / sum w^2``, between 1 and n for non-negative weights.

    Raises
    ------
    InputError
        When ``weights`` is empty, not one-dimensional, not finite or all zero.

    Examples
    --------
    >>> kish_ess([1, 1, 1, 1])
    4.0
    >>> kish_ess([1, 0, 0, 0])
    1.0
    >>> round(kish_ess([1, 2, 3, 4]), 4)
    3.3333
    """
    w = np.asarray(weights, dtype=float)
    total_square = np.sum(w**2)
    if w.ndim != 1 or w.size == 0 or not np.all(np.isfinite(w)) or total_square == 0:
        raise InputError("weights must be a non-empty, finite, not-all-zero one-dimensional array")
    return float(np.sum(w) ** 2 / total_square)


def normalize(weights, how: str = "none") -> np.ndarray:
    """Rescale weights by one positive constant; the direction of ``w`` never changes.

    Parameters
    ----------
    weights : array_like
        The weights (normally checked by :func:`check` first).
    how : {"none", "n", "ess"}, default "none"
        ``"none"``: as given (frequency weights: w_i copies of observation i).
        ``"n"``: sum to the number of observations n, so the weighted likelihood carries as much
        information as n equal observations.
        ``"ess"``: sum to Kish's effective sample size ``(sum w)^2 / sum w^2`` (:func:`kish_ess`), so
        uneven weights carry as much information as the equally weighted sample they are worth.

    Returns
    -------
    numpy.ndarray
        The rescaled weights, a new array (also for ``"none"``).

    Raises
    ------
    InputError
        For an unknown ``how``, or for ``"n"`` and ``"ess"`` when the weights' sum is not positive.

    Examples
    --------
    >>> normalize([1.0, 3.0], "n")
    array([0.5, 1.5])
    >>> normalize([1.0, 3.0], "ess")
    array([0.4, 1.2])
    """
    if how not in NORMALIZATIONS:
        raise InputError(f"normalize must be one of {NORMALIZATIONS}, got {how!r}")
    w = np.asarray(weights, dtype=float)
    if how == "none":
        return w.copy()
    total = np.sum(w)
    if not total > 0:
        raise InputError(f"cannot normalize weights to {how!r}: their sum is {total:g}, not positive")
    target = w.size if how == "n" else kish_ess(w)
    return w * (target / total)
