"""Class weights for imbalanced classes: inverse frequency and Cui et al.'s effective number."""

from __future__ import annotations

import numpy as np

from models.errors import InputError

__all__ = ["balanced", "class_labels", "effective_number"]


def class_labels(y, name: str = "y") -> tuple[np.ndarray, np.ndarray]:
    """``(labels, counts)``: ``y`` as integer codes 0..K-1, every class present, K >= 2.

    Parameters
    ----------
    y : array_like
        Class codes 0, 1, ..., K-1, one per sample (booleans count as 0 and 1; whole numbers stored as
        floats are accepted).
    name : str, default "y"
        The argument's name, as error messages show it.

    Returns
    -------
    labels : numpy.ndarray
        ``y`` as int64 codes.
    counts : numpy.ndarray
        The number of samples of each class, length K.

    Raises
    ------
    InputError
        When ``y`` is empty or not one-dimensional, holds anything but non-negative integer codes, has
        one class only, or leaves a code of 0..K-1 without a sample.

    Examples
    --------
    >>> labels, counts = class_labels([0, 1, 1, 2])
    >>> labels, counts
    (array([0, 1, 1, 2]), array([1, 2, 1]))
    """
    try:
        labels = np.asarray(y)
    except (TypeError, ValueError) as err:  # ragged
        raise InputError(f"{name} must be a one-dimensional array of class codes: {err}") from None
    if labels.ndim != 1 or labels.size == 0:
        raise InputError(f"{name} must be a non-empty one-dimensional array of class codes, "
                         f"got shape {labels.shape}")
    if labels.dtype == bool:
        labels = labels.astype(np.int64)
    if not np.issubdtype(labels.dtype, np.number) or not np.all(np.isfinite(labels)) \
            or np.any(labels != np.round(labels)) or np.any(labels < 0):
        raise InputError(f"{name} must hold integer class codes 0, 1, ..., K-1")
    if np.unique(labels).size < 2:
        raise InputError(f"{name} has one class only ({labels[0]:g}): there is nothing to classify")
    if labels.max() >= labels.size:  # K codes need at least K samples when every class is present
        raise InputError(f"{name} has code {labels.max():g} with only {labels.size} samples: codes must "
                         "run 0..K-1 with every class present")
    labels = labels.astype(np.int64)
    counts = np.bincount(labels)
    if np.any(counts == 0):
        missing = np.flatnonzero(counts == 0).tolist()
        raise InputError(f"{name} has no sample of class(es) {missing}: codes must run 0..K-1 "
                         f"without gaps (K = {counts.size})")
    return labels, counts


def balanced(y) -> np.ndarray:
    """Per-sample inverse-frequency weights ``n / (K n_k)``, as scikit-learn's "balanced".

    A sample of class k weighs ``n / (K n_k)`` (scikit-learn's ``class_weight="balanced"``): every
    class then carries total weight n / K, and the weights sum to n.

    Parameters
    ----------
    y : array_like
        Class codes 0..K-1, every class present, K >= 2 (:func:`class_labels`).

    Returns
    -------
    numpy.ndarray
        One weight per sample.

    Raises
    ------
    InputError
        When ``y`` is not valid class codes (:func:`class_labels`).

    Examples
    --------
    >>> balanced([0, 1, 1, 1])
    array([2.        , 0.66666667, 0.66666667, 0.66666667])
    """
    labels, counts = class_labels(y)
    return (labels.size / (counts.size * counts))[labels]


def effective_number(y, beta: float = 0.999) -> np.ndarray:
    """Per-sample class-balanced weights of Cui et al. (2019), "effective number of samples".

    A class with ``n_k`` samples is worth ``E_k = (1 - beta^n_k) / (1 - beta)`` distinct ones; its
    weight ``(1 - beta) / (1 - beta^n_k) = 1 / E_k`` is normalised so that the K class weights sum to K.
    ``beta -> 0`` gives equal weights, ``beta -> 1`` inverse frequencies (as :func:`balanced`).

    Parameters
    ----------
    y : array_like
        Class codes 0..K-1, every class present, K >= 2 (:func:`class_labels`).
    beta : float, default 0.999
        A number in [0, 1); 0 gives equal weights.

    Returns
    -------
    numpy.ndarray
        One weight per sample: its class's weight.

    Raises
    ------
    InputError
        When ``y`` is not valid class codes, or ``beta`` is not a number in [0, 1).

    Examples
    --------
    >>> effective_number([0, 1, 1, 1], beta=0.5)
    array([1.27272727, 0.72727273, 0.72727273, 0.72727273])
    >>> effective_number([0, 1, 1, 1], beta=0.0)
    array([1., 1., 1., 1.])
    """
    labels, counts = class_labels(y)
    if isinstance(beta, bool) or not (isinstance(beta, (int, float, np.floating)) and 0 <= beta < 1):
        raise InputError(f"beta must be a number in [0, 1), got {beta!r}")
    class_weight = (1 - beta) / -np.expm1(counts * np.log(beta)) if beta > 0 else np.ones(counts.size)
    class_weight *= counts.size / class_weight.sum()
    return class_weight[labels]


# --------------------------------------------------------------------------- curriculum
#
