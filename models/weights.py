"""Observation weights: validate, rescale and diagnose them (pure numpy; no PyMC here).

Every model in the suite has the log density

    log p(theta | y, w) = log p(theta) + sum_i w_i log p(y_i | theta) + const,

so the weights ``w`` are the one thing that distinguishes MLE (w = 1, no prior) from the weighted
MLE, and the posterior from a weighted pseudo-posterior. Multiplying every ``w_i`` by ``c > 0``
leaves the weighted MLE where it is but scales the log-likelihood's curvature by ``c``, so the
posterior narrows by about ``1 / sqrt(c)``. :func:`normalize` picks that scale explicitly.
"""

from __future__ import annotations

import numpy as np

from models.errors import InputError

NORMALIZATIONS = ("none", "n", "ess")


def check(weights, n: int, *, allow_negative: bool = False, name: str = "weights") -> np.ndarray:
    """Return ``weights`` as a float array of length ``n``; ``None`` means all ones.

    Raises ``ValueError`` naming ``name`` and the problem: not one-dimensional, wrong length,
    NaN or infinite values, negative values (unless ``allow_negative``), or all zero.
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
    for bad, what in ((np.isnan(w), "NaN"), (np.isinf(w), "infinite")):
        if bad.any():
            raise InputError(f"{name} has {bad.sum()} {what} value(s), first at index {np.argmax(bad)}")
    negative = w < 0
    if negative.any() and not allow_negative:
        first = int(np.argmax(negative))
        raise InputError(
            f"{name} has {negative.sum()} negative value(s), first {w[first]:g} at index {first}; "
            "pass allow_negative=True if they are meant (e.g. advantages)"
        )
    if not np.any(w != 0):
        raise InputError(f"{name} are all zero: no observation would inform the fit")
    return w


def kish_ess(weights) -> float:
    """Kish's effective sample size ``(sum w)^2 / sum w^2``: n for equal weights, 1 for one."""
    w = np.asarray(weights, dtype=float)
    total_square = np.sum(w**2)
    if w.ndim != 1 or w.size == 0 or not np.all(np.isfinite(w)) or total_square == 0:
        raise InputError("weights must be a non-empty, finite, not-all-zero one-dimensional array")
    return float(np.sum(w) ** 2 / total_square)


def normalize(weights, how: str = "none") -> np.ndarray:
    """Rescale weights by one positive constant; the direction of ``w`` never changes.

    ``"none"``: as given (frequency weights: w_i copies of observation i).
    ``"n"``: sum to the number of observations n, so the weighted likelihood carries as much
    information as n equal observations.
    ``"ess"``: sum to Kish's effective sample size ``(sum w)^2 / sum w^2``, so uneven weights
    carry as much information as the equally weighted sample they are worth.
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


def class_labels(y, name: str = "y") -> tuple[np.ndarray, np.ndarray]:
    """``(labels, counts)``: ``y`` as integer codes 0..K-1, every class present, K >= 2."""
    labels = np.asarray(y)
    if labels.ndim != 1 or labels.size == 0:
        raise InputError(f"{name} must be a non-empty one-dimensional array of class codes, "
                         f"got shape {labels.shape}")
    if labels.dtype == bool:
        labels = labels.astype(np.int64)
    if not np.issubdtype(labels.dtype, np.number) or not np.all(np.isfinite(labels)) \
            or np.any(labels != np.round(labels)) or np.any(labels < 0):
        raise InputError(f"{name} must hold integer class codes 0, 1, ..., K-1")
    labels = labels.astype(np.int64)
    counts = np.bincount(labels)
    if counts.size < 2:
        raise InputError(f"{name} has one class only: there is nothing to classify")
    if np.any(counts == 0):
        missing = np.flatnonzero(counts == 0).tolist()
        raise InputError(f"{name} has no sample of class(es) {missing}: codes must run 0..K-1 "
                         f"without gaps (K = {counts.size})")
    return labels, counts


def balanced(y) -> np.ndarray:
    """Per-sample inverse-frequency weights ``n / (K n_k)`` for a sample of class k (scikit-learn's
    ``class_weight="balanced"``): every class then carries total weight n / K, and the weights sum to n.
    """
    labels, counts = class_labels(y)
    return (labels.size / (counts.size * counts))[labels]


def effective_number(y, beta: float = 0.999) -> np.ndarray:
    """Per-sample class-balanced weights of Cui et al. (2019), "effective number of samples".

    A class with ``n_k`` samples is worth ``E_k = (1 - beta^n_k) / (1 - beta)`` distinct ones; its
    weight ``(1 - beta) / (1 - beta^n_k) = 1 / E_k`` is normalised so that the K class weights sum to K.
    ``beta -> 0`` gives equal weights, ``beta -> 1`` inverse frequencies (as :func:`balanced`).
    """
    labels, counts = class_labels(y)
    if not (isinstance(beta, (int, float, np.floating)) and 0 <= beta < 1):
        raise InputError(f"beta must be a number in [0, 1), got {beta!r}")
    class_weight = (1 - beta) / -np.expm1(counts * np.log(beta)) if beta > 0 else np.ones(counts.size)
    class_weight *= counts.size / class_weight.sum()
    return class_weight[labels]
