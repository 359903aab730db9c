"""Checks of plain arguments shared by every layer (pure NumPy: no PyMC here).

Each returns the value in the form the caller needs, or raises :class:`models.errors.InputError`
naming the argument and the problem.
"""

from __future__ import annotations

import numpy as np

from models.errors import InputError

__all__ = ["check_count", "check_open_unit", "check_positive", "check_unit_interval", "check_values"]


def check_count(value, name: str, minimum: int) -> int:
    """``value`` as an ``int`` of at least ``minimum`` (booleans and floats are refused).

    Parameters
    ----------
    value : int
    name : str
        The argument's name, for the message.
    minimum : int

    Returns
    -------
    int

    Raises
    ------
    InputError
        When ``value`` is not an integer (a ``bool`` is not) or is below ``minimum``.

    Examples
    --------
    >>> from models._validate import check_count
    >>> check_count(200, "draws", 1)
    200
    >>> check_count(0, "draws", 1)
    Traceback (most recent call last):
        ...
    models.errors.InputError: draws must be an integer >= 1, got 0
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InputError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_open_unit(value, name: str) -> float:
    """``value`` as a ``float`` strictly between 0 and 1 (a probability such as ``target_accept``).

    Parameters
    ----------
    value : float
    name : str
        The argument's name, for the message.

    Returns
    -------
    float

    Raises
    ------
    InputError
        When ``value`` is not a number (a ``bool`` is not) in (0, 1).

    Examples
    --------
    >>> from models._validate import check_open_unit
    >>> check_open_unit(0.9, "target_accept")
    0.9
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not 0 < value < 1:
        raise InputError(f"{name} must be a number in (0, 1), got {value!r}")
    return float(value)


def check_unit_interval(value, name: str) -> float:
    """``value`` as a ``float`` in [0, 1] (NaN refused).

    Parameters
    ----------
    value : float
    name : str
        The argument's name, for the message.

    Returns
    -------
    float

    Raises
    ------
    InputError
        When ``value`` is not a number (a ``bool`` is not) in [0, 1].

    Examples
    --------
    >>> from models._validate import check_unit_interval
    >>> check_unit_interval(1, "progress")
    1.0
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InputError(f"{name} must be a number in [0, 1], got {value!r}")
    if not 0 <= value <= 1:  # NaN fails this too
        raise InputError(f"{name} must be a number in [0, 1], got {value!r}")
    return float(value)


def check_positive(value, name: str) -> float:
    """``value`` as a finite positive ``float``.

    Parameters
    ----------
    value : float
    name : str
        The argument's name, for the message.

    Returns
    -------
    float

    Raises
    ------
    InputError
        When ``value`` is not a number (a ``bool`` is not), not finite, or not positive.

    Examples
    --------
    >>> from models._validate import check_positive
    >>> check_positive(2, "temperature")
    2.0
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not (np.isfinite(value) and value > 0):
        raise InputError(f"{name} must be a finite positive number, got {value!r}")
    return float(value)


def check_values(values, name: str, *, allow_minus_inf: bool = False) -> np.ndarray:
    """``values`` as a non-empty one-dimensional float array of finite numbers.

    Parameters
    ----------
    values : array_like
    name : str
        The argument's name, for the message.
    allow_minus_inf : bool, default False
        Allow -inf too (the log of a zero weight).

    Returns
    -------
    numpy.ndarray

    Raises
    ------
    InputError
        When ``values`` are not numbers, not a non-empty one-dimensional array, or hold NaN or
        infinite values (NaN or +inf with ``allow_minus_inf``), naming the first.

    Examples
    --------
    >>> import numpy as np
    >>> from models._validate import check_values
    >>> check_values([1, 2.5], "rewards")
    array([1. , 2.5])
    >>> check_values([0.0, -np.inf], "log_weights", allow_minus_inf=True)
    array([  0., -inf])
    """
    try:
        x = np.array(values, dtype=float)
    except (TypeError, ValueError) as err:
        raise InputError(f"{name} must be numbers, got {type(values).__name__}: {err}") from None
    if x.ndim != 1 or x.size == 0:
        raise InputError(f"{name} must be a non-empty one-dimensional array, got shape {x.shape}")
    bad = np.isnan(x) | (x == np.inf) if allow_minus_inf else ~np.isfinite(x)
    if bad.any():
        what = "NaN or +inf" if allow_minus_inf else "NaN or infinite"
        raise InputError(f"{name} has {bad.sum()} {what} value(s), first at index {np.argmax(bad)}")
    return x
