"""Weights of logged reinforcement-learning steps: returns, advantages, AWR and importance ratios."""

from __future__ import annotations

import numpy as np

from models._validate import check_positive, check_values
from models.errors import InputError

__all__ = ["advantages", "awr", "check_codes", "check_episode_ends", "check_states", "importance_ratios",
           "returns_to_go", "self_normalised_ratios"]

# Logged steps t = 0..n-1 of one or more episodes, in order. Every function returns one number per
# step, ready to be used (or turned into) weights of ``models.policy``.






def check_codes(codes, n: int, *, name: str = "codes") -> np.ndarray:
    """``codes`` (states, actions) as an int64 array of integer codes 0 .. n-1.

    Parameters
    ----------
    codes : array_like
        Integer codes, one-dimensional and not empty. Whole numbers stored as floats (2.0) are
        accepted.
    n : int
        The number of codes, a positive integer.
    name : str, default "codes"
        The argument's name, as error messages show it.

    Returns
    -------
    numpy.ndarray
        The codes as int64.

    Raises
    ------
    InputError
        Naming ``name``, for fractions, booleans, strings, codes outside 0 .. n-1 and empty or
        multi-dimensional arrays; or for ``n`` not a positive integer.

    Examples
    --------
    >>> check_codes([0, 2.0, 1], 3)
    array([0, 2, 1])
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise InputError(f"n must be a positive integer, got {n!r}")
    try:
        c = np.asarray(codes)
    except (TypeError, ValueError) as err:
        raise InputError(f"{name} must be an array of integer codes: {err}") from None
    if c.ndim != 1 or c.size == 0:
        raise InputError(f"{name} must be a non-empty one-dimensional array, got shape {c.shape}")
    if c.dtype == bool or not (np.issubdtype(c.dtype, np.integer) or np.issubdtype(c.dtype, np.floating)):
        raise InputError(f"{name} must be integer codes 0 .. {n - 1}, got dtype {c.dtype}")
    fraction = ~np.isfinite(c) | (c != np.round(c))
    if fraction.any():
        first = int(np.argmax(fraction))
        raise InputError(f"{name} must be integer codes, got {c[first]:g} at index {first}")
    outside = (c < 0) | (c >= n)
    if outside.any():
        first = int(np.argmax(outside))
        raise InputError(f"{name} must be codes 0 .. {n - 1}, got {outside.sum()} outside, "
                         f"first {c[first]:g} at index {first}")
    return c.astype(np.int64)


def check_states(states, n_states, size: int, per_step: str) -> np.ndarray:
    """``states`` as codes 0..n_states-1, one per step of ``per_step`` (of length ``size``).

    Parameters
    ----------
    states : array_like
        Integer state codes, one per logged step (:func:`check_codes`).
    n_states : int
        The number of states, a positive integer.
    size : int
        The number of steps: the length of ``per_step``.
    per_step : str
        The name of the argument ``states`` must match in length, as error messages show it.

    Returns
    -------
    numpy.ndarray
        The state codes as int64.

    Raises
    ------
    InputError
        When ``n_states`` is not a positive integer, ``states`` are not codes 0..n_states-1, or their
        length is not ``size``.

    Examples
    --------
    >>> check_states([0, 1, 1], 2, 3, "actions")
    array([0, 1, 1])
    """
    if isinstance(n_states, bool) or not isinstance(n_states, (int, np.integer)) or n_states < 1:
        raise InputError(f"n_states must be a positive integer, got {n_states!r}")
    s = check_codes(states, n_states, name="states")
    if s.size != size:
        raise InputError(f"states has length {s.size} but {per_step} has length {size}: one each per step")
    return s


def check_episode_ends(episode_ends, size: int, per: str) -> np.ndarray:
    """``episode_ends`` as ``size`` booleans, True at the last step of each episode.

    Parameters
    ----------
    episode_ends : array_like
        Booleans (or 0 and 1), one per step, True at the last step of each episode; the last step
        must end one.
    size : int
        The number of steps.
    per : str
        What one entry belongs to ("reward", "ratio"), as error messages show it.

    Returns
    -------
    numpy.ndarray
        ``size`` booleans.

    Raises
    ------
    InputError
        When ``episode_ends`` is not ``size`` booleans, or its last entry is False (the last episode
        has no end).

    Examples
    --------
    >>> check_episode_ends([0, 1, 0, 1], 4, "step")
    array([False,  True, False,  True])
    """
    try:
        ends = np.asarray(episode_ends)
        valid = ends.shape == (size,) and (ends.dtype == bool or np.isin(ends, (0, 1)).all())
    except (TypeError, ValueError):  # ragged
        valid = False
    if not valid:
        raise InputError(f"episode_ends must be {size} booleans, one per {per} (True where an episode ends)")
    if not ends[-1]:
        raise InputError("episode_ends: the last episode has no end (the last step must end an episode)")
    return ends.astype(bool)


def returns_to_go(rewards, episode_ends, gamma) -> np.ndarray:
    """Discounted returns ``G_t = r_t + gamma G_{t+1}`` of logged steps.

    The sum restarts after every step that ends an episode.

    Parameters
    ----------
    rewards : array_like
        The reward r_t of every logged step, finite, in order.
    episode_ends : array_like
        ``episode_ends[t]`` is True when step t is the last of its episode (then ``G_t = r_t``); the
        last step must end an episode.
    gamma : float
        The discount factor in [0, 1].

    Returns
    -------
    numpy.ndarray
        The return G_t of every step.

    Raises
    ------
    InputError
        For rewards that are not finite numbers, ``episode_ends`` that are not one boolean per reward
        ending in True, or ``gamma`` outside [0, 1].

    Examples
    --------
    >>> returns_to_go([1.0, 0.0, 1.0, 1.0], [False, True, False, True], 0.9)
    array([1. , 0. , 1.9, 1. ])
    """
    r = check_values(rewards, "rewards")
    ends = check_episode_ends(episode_ends, r.size, "reward")
    if isinstance(gamma, bool) or not isinstance(gamma, (int, float, np.integer, np.floating)) \
            or not 0 <= gamma <= 1:
        raise InputError(f"gamma must be a number in [0, 1], got {gamma!r}")
    returns = np.empty_like(r)
    following = 0.0
    for t in range(r.size - 1, -1, -1):
        following = r[t] + (0.0 if ends[t] else gamma * following)
        returns[t] = following
    return returns


def advantages(returns, states, *, n_states) -> np.ndarray:
    """Returns minus a state baseline: ``A_t = G_t - mean{G_u : s_u = s_t}``.

    The baseline is the mean return of each state over the log (the step's own return included, a
    bias of order 1 / n_s); a baseline that depends on the state only leaves the expected policy
    gradient at the behaviour policy unchanged and lowers its variance. Away from the behaviour
    policy, A-weighted log-likelihoods are a surrogate, not the gradient of the return.

    Parameters
    ----------
    returns : array_like
        The return G_t of every logged step (e.g. :func:`returns_to_go`), finite.
    states : array_like
        The state code s_t of every step, 0 .. n_states - 1.
    n_states : int
        The number of states.

    Returns
    -------
    numpy.ndarray
        The advantage A_t of every step. Advantages are signed: use them as policy weights with
        ``allow_negative=True``, or turn them into positive weights with :func:`awr`.

    Raises
    ------
    InputError
        For returns that are not finite numbers, or states that are not one code per return.

    Examples
    --------
    >>> advantages([1.0, 0.0, 1.9, 1.0], [0, 1, 0, 1], n_states=2)
    array([-0.45, -0.5 ,  0.45,  0.5 ])
    """
    g = check_values(returns, "returns")
    s = check_states(states, n_states, g.size, "returns")
    visits = np.bincount(s, minlength=n_states)
    baseline = np.bincount(s, weights=g, minlength=n_states) / np.maximum(visits, 1)
    return g - baseline[s]


def awr(advantages, *, temperature=1.0, max_weight=20.0) -> np.ndarray:
    """Advantage-weighted regression (AWR) weights (Peng et al. 2019).

    The weight of a step with advantage A is ``min(exp(A / temperature), max_weight)``. Positive, so the
    weighted MLE exists wherever every action of a visited state was taken; a low temperature approaches the
    greedy policy, a high one behaviour cloning. Computed as ``exp(min(A / temperature, log max_weight))``,
    which cannot overflow.

    Parameters
    ----------
    advantages : array_like
        The advantage A of every logged step (e.g. :func:`advantages`), finite.
    temperature : float, default 1.0
        A finite positive number.
    max_weight : float, default 20.0
        The cap, a finite positive number.

    Returns
    -------
    numpy.ndarray
        One positive weight per step.

    Raises
    ------
    InputError
        For advantages that are not finite numbers, or a temperature or cap that is not finite and
        positive.

    Examples
    --------
    >>> awr([-1.0, 0.0, 2.0, 10.0])
    array([ 0.36787944,  1.        ,  7.3890561 , 20.        ])
    """
    a = check_values(advantages, "advantages")
    temperature = check_positive(temperature, "temperature")
    max_weight = check_positive(max_weight, "max_weight")
    with np.errstate(over="ignore"):  # A / temperature = inf is capped below
        return np.exp(np.minimum(a / temperature, np.log(max_weight)))


def importance_ratios(target_prob, behavior_prob, *, clip=None, truncate=None) -> np.ndarray:
    """Off-policy importance ratios of the logged actions.

    ``rho_t = pi(a_t | s_t) / beta(a_t | s_t)``: ordinary ratios by default (unbiased, possibly heavy-tailed:
    see :func:`~models.weights.psis_khat`). Self-normalised ratios, which sum to n, are
    ``normalize(importance_ratios(...), "n")``.

    Parameters
    ----------
    target_prob : array_like
        pi's probabilities of the logged actions, in [0, 1].
    behavior_prob : array_like
        The probabilities of the logged actions under the policy that logged them, in (0, 1]: a
        logged action had positive probability. One per entry of ``target_prob``.
    clip : float, optional
        ``clip=eps`` clips the ratios to [1 - eps, 1 + eps] (PPO, eps in (0, 1)).
    truncate : float, optional
        ``truncate=rho_bar`` caps the ratios at ``min(rho, rho_bar)`` (V-trace, rho_bar > 0). Not
        together with ``clip``.

    Returns
    -------
    numpy.ndarray
        One ratio per logged action.

    Raises
    ------
    InputError
        For probabilities that are not finite numbers, of different lengths or outside their ranges,
        for both ``clip`` and ``truncate``, for ``clip`` outside (0, 1) or a ``truncate`` that is not
        finite and positive.

    Examples
    --------
    >>> importance_ratios([0.5, 0.9, 0.1], [0.25, 0.5, 0.5])
    array([2. , 1.8, 0.2])
    >>> importance_ratios([0.5, 0.9, 0.1], [0.25, 0.5, 0.5], clip=0.2)
    array([1.2, 1.2, 0.8])
    >>> importance_ratios([0.5, 0.9, 0.1], [0.25, 0.5, 0.5], truncate=1.0)
    array([1. , 1. , 0.2])
    """
    target = check_values(target_prob, "target_prob")
    behavior = check_values(behavior_prob, "behavior_prob")
    if target.size != behavior.size:
        raise InputError(f"target_prob has length {target.size} but behavior_prob has length "
                         f"{behavior.size}: one each per logged action")
    outside = (target < 0) | (target > 1)
    if outside.any():
        first = int(np.argmax(outside))
        raise InputError(f"target_prob must be probabilities in [0, 1], "
                         f"got {target[first]:g} at index {first}")
    outside = (behavior <= 0) | (behavior > 1)
    if outside.any():
        first = int(np.argmax(outside))
        raise InputError(f"behavior_prob must be in (0, 1] (a logged action had positive probability), "
                         f"got {behavior[first]:g} at index {first}")
    if clip is not None and truncate is not None:
        raise InputError("pass clip (PPO) or truncate (V-trace), not both")
    ratios = target / behavior
    if clip is not None:
        if isinstance(clip, bool) or not isinstance(clip, (int, float, np.floating)) or not 0 < clip < 1:
            raise InputError(f"clip must be a number in (0, 1), got {clip!r}")
        return np.clip(ratios, 1 - clip, 1 + clip)
    if truncate is not None:
        return np.minimum(ratios, check_positive(truncate, "truncate"))
    return ratios


def self_normalised_ratios(ratios, states, *, n_states) -> np.ndarray:
    """Importance ratios self-normalised per state: ``rho_i / mean{rho_j : s_j = s_i}``.

    Each state's ratios then average 1 over its logged steps, whatever the behaviour policy's visits
    did: weighted importance sampling per state, which trades the ordinary ratios' unbiasedness for
    lower variance. (Rescaling all ratios by one constant would change nothing but the posterior's
    temperature.)

    Parameters
    ----------
    ratios : array_like
        Non-negative importance ratios, one per logged step (:func:`importance_ratios`).
    states : array_like
        The state code of every step, 0 .. n_states - 1.
    n_states : int
        The number of states.

    Returns
    -------
    numpy.ndarray
        The self-normalised ratios, averaging 1 in every visited state.

    Raises
    ------
    InputError
        For ratios that are not finite, non-negative numbers, states that are not one code per ratio,
        or a state whose ratios are all zero.

    Examples
    --------
    >>> self_normalised_ratios([2.0, 1.8, 0.2, 1.0], [0, 0, 1, 1], n_states=2)
    array([1.05263158, 0.94736842, 0.33333333, 1.66666667])
    """
    rho = check_values(ratios, "ratios")
    s = check_states(states, n_states, rho.size, "ratios")
    if np.any(rho < 0):
        raise InputError("ratios must be non-negative")
    visits = np.bincount(s, minlength=n_states)
    mean = np.bincount(s, weights=rho, minlength=n_states) / np.maximum(visits, 1)
    if np.any(mean[s] == 0):
        raise InputError("a state's ratios are all zero: they cannot be normalised to mean 1")
    return rho / mean[s]
