"""Curriculum weights: difficulty from a margin or a loss, and schedules over training progress."""

from __future__ import annotations

import numpy as np

from models._validate import check_positive, check_unit_interval, check_values
from models.errors import InputError

__all__ = ["CURRICULUM_SCHEDULES", "MAX_SHARPNESS", "SELF_PACED_FLOOR", "curriculum", "loss_difficulty",
           "margin_difficulty"]

# Curriculum learning (Bengio et al. 2009) weights samples by how hard they are, and changes the
# weights as training progresses. Difficulty is a number in [0, 1] per sample; the two helpers below
# make one from a margin or from a per-sample loss, by rank, so that a schedule means the same on any
# data set: difficulty q is "harder than a share q of the samples".

CURRICULUM_SCHEDULES = ("easy_to_hard", "hard_to_easy", "self_paced")
MAX_SHARPNESS = 50.0
SELF_PACED_FLOOR = 0.01


def _rank_share(values: np.ndarray) -> np.ndarray:
    """Ranks of ``values`` scaled to [0, 1] (smallest 0, largest 1; ties share their mean rank)."""
    if values.size == 1:
        return np.zeros(1)
    order = np.argsort(values, kind="stable")
    _, first, counts = np.unique(values[order], return_index=True, return_counts=True)
    ranks = np.empty(values.size)
    ranks[order] = np.repeat(first + (counts - 1) / 2, counts)
    return ranks / (values.size - 1)


def margin_difficulty(margin) -> np.ndarray:
    """Difficulty from the distance to a known decision boundary.

    For data whose boundary is known; the sample nearest the boundary is the hardest::

        difficulty_i = 1 - rank(|margin_i|) / (n - 1),

    1 on the boundary, 0 for the sample farthest from it; ties share their mean rank.

    Parameters
    ----------
    margin : array_like
        The signed (or unsigned) distance of each sample to the boundary, or anything monotone in its
        absolute value, e.g. the true log-odds ``eta_i`` of a simulated logistic model (distance
        ``|eta_i| / ||coef||``). Finite numbers, one-dimensional, not empty.

    Returns
    -------
    numpy.ndarray
        One difficulty in [0, 1] per sample.

    Raises
    ------
    InputError
        When ``margin`` is not a non-empty one-dimensional array of finite numbers.

    Examples
    --------
    >>> margin_difficulty([-2.0, 0.1, 1.0, 3.0])
    array([0.33333333, 1.        , 0.66666667, 0.        ])
    """
    return 1.0 - _rank_share(np.abs(check_values(margin, "margin")))


def loss_difficulty(loss) -> np.ndarray:
    """Difficulty from per-sample losses of a reference fit.

    For real data, whose boundary is unknown; the worst-fitted sample is the hardest::

        difficulty_i = rank(loss_i) / (n - 1),

    0 for the best-fitted sample, 1 for the worst; ties share their mean rank.

    Parameters
    ----------
    loss : array_like
        Each sample's loss under a fitted model, e.g. its negative log-likelihood
        ``-log p(y_i | x_i, theta_hat)`` at an unweighted fit (or at the current fit, for the
        ``self_paced`` schedule of :func:`curriculum`). Finite numbers, one-dimensional, not empty.

    Returns
    -------
    numpy.ndarray
        One difficulty in [0, 1] per sample.

    Raises
    ------
    InputError
        When ``loss`` is not a non-empty one-dimensional array of finite numbers.

    Examples
    --------
    >>> loss_difficulty([0.1, 2.3, 0.7])
    array([0. , 1. , 0.5])
    """
    return _rank_share(check_values(loss, "loss"))




def curriculum(difficulty, progress, *, schedule: str = "easy_to_hard", sharpness: float = 4.0) -> np.ndarray:
    """Curriculum weights of samples at a training progress, normalised to mean 1.

    Parameters
    ----------
    difficulty : array_like
        One difficulty d_i in [0, 1] per sample (:func:`margin_difficulty`, :func:`loss_difficulty`).
    progress : float
        The training progress t in [0, 1].
    schedule : {"easy_to_hard", "hard_to_easy", "self_paced"}, default "easy_to_hard"
        How the weights change with progress (Notes).
    sharpness : float, default 4.0
        s, a finite number in (0, 50]: the log of the largest weight ratio of the tilts at t = 0 and
        t = 1 (s = 4: about 55); beyond 50 the lightest samples would stop counting in double
        precision.

    Returns
    -------
    numpy.ndarray
        One weight per sample, positive, with mean 1 (they sum to n).

    Raises
    ------
    InputError
        A ``ValueError`` naming the argument, for difficulty outside [0, 1], NaN or not
        one-dimensional, progress outside [0, 1], NaN or not a number, an unknown schedule, or a
        sharpness outside (0, 50].

    Notes
    -----
    With d_i the difficulty, t the progress and s the sharpness:

    ``easy_to_hard`` (curriculum learning): an exponential tilt whose direction turns with progress::

        w_i  proportional to  exp(s (2 t - 1) d_i).

    At t = 0 the weights fall with difficulty (the easiest sample weighs e^s times the hardest), at
    t = 1/2 they are flat (the unweighted fit), at t = 1 they rise with difficulty; at every t the
    log-weights are linear in d, so the weights are monotone in difficulty.

    ``hard_to_easy`` (anti-curriculum, the direction hard-example mining and focal loss take): the same
    tilt run backwards, ``w_i proportional to exp(s (1 - 2 t) d_i)``, i.e. ``easy_to_hard`` at
    progress 1 - t, or equally at difficulty 1 - d.

    ``self_paced`` (Kumar et al. 2010, with soft weights): here ``difficulty`` is the *current fit's*
    per-sample loss mapped to [0, 1] by rank (:func:`loss_difficulty`), recomputed by the caller after
    each phase. Samples easier than a threshold lambda(t) = t are admitted, harder ones are not, with a
    soft edge of width about 1 / s and a floor f = 0.01 that keeps every weight positive::

        w_i  proportional to  f + (1 - f) sigmoid(s (t - d_i)).

    With d a rank, about a share t of the samples is admitted (weight above half the full one): at
    t = 0 the easiest samples dominate; at t = 1 the threshold reaches the hardest sample, which keeps
    half the full weight (with s = 4 the weights then span about 2 : 1). The weights never rise with
    difficulty.

    Scale: every schedule's weights are divided by their mean, so they sum to n at every phase and
    phases differ only in the shape of the weights, not in their total. The (W)MLE does not depend on
    the scale, the posterior does (its width goes roughly as 1 / sqrt(sum w)): with the total fixed, a
    change of posterior width across phases comes from the weights' shape, i.e. from which samples
    count, not from more or less total weight. (Uneven weights summing to n still overstate the
    information: Kish's effective sample size, :func:`~models.weights.kish_ess`, is below n whenever
    they are uneven.)

    Examples
    --------
    >>> difficulty = [0.0, 0.5, 1.0]
    >>> curriculum(difficulty, 0.0).round(3)
    array([2.6  , 0.352, 0.048])
    >>> curriculum(difficulty, 0.5)
    array([1., 1., 1.])
    >>> curriculum(difficulty, 1.0, schedule="self_paced").round(3)
    array([1.244, 1.117, 0.639])
    """
    d = check_values(difficulty, "difficulty")
    outside = (d < 0) | (d > 1)
    if outside.any():
        first = int(np.argmax(outside))
        raise InputError(f"difficulty must lie in [0, 1], got {outside.sum()} value(s) outside, "
                         f"first {d[first]:g} at index {first}")
    t = check_unit_interval(progress, "progress")
    if schedule not in CURRICULUM_SCHEDULES:
        raise InputError(f"schedule must be one of {CURRICULUM_SCHEDULES}, got {schedule!r}")
    s = check_positive(sharpness, "sharpness")
    if s > MAX_SHARPNESS:
        raise InputError(f"sharpness must be at most {MAX_SHARPNESS:g}, got {sharpness!r}")
    if schedule == "self_paced":
        w = SELF_PACED_FLOOR + (1 - SELF_PACED_FLOOR) / (1 + np.exp(-s * (t - d)))
    else:
        tilt = s * (2 * t - 1) if schedule == "easy_to_hard" else s * (1 - 2 * t)
        log_w = tilt * d
        w = np.exp(log_w - log_w.max())  # the largest weight is 1 before normalising: no overflow
    return w / w.mean()


# --------------------------------------------------------------------------- reinforcement learning
#
