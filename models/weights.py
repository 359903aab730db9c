"""Observation weights: validate, rescale and diagnose them (pure numpy; no PyMC here).

Every model in the suite has the log density

    log p(theta | y, w) = log p(theta) + sum_i w_i log p(y_i | theta) + const,

so the weights ``w`` are the one thing that distinguishes MLE (w = 1, no prior) from the weighted
MLE, and the posterior from a weighted pseudo-posterior. Multiplying every ``w_i`` by ``c > 0``
leaves the weighted MLE where it is but scales the log-likelihood's curvature by ``c``, so the
posterior narrows by about ``1 / sqrt(c)``. :func:`normalize` picks that scale explicitly.
"""

from __future__ import annotations

import warnings

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
    if isinstance(beta, bool) or not (isinstance(beta, (int, float, np.floating)) and 0 <= beta < 1):
        raise InputError(f"beta must be a number in [0, 1), got {beta!r}")
    class_weight = (1 - beta) / -np.expm1(counts * np.log(beta)) if beta > 0 else np.ones(counts.size)
    class_weight *= counts.size / class_weight.sum()
    return class_weight[labels]


# --------------------------------------------------------------------------- curriculum
#
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
    """Difficulty from the distance to a decision boundary, for data whose boundary is known.

    ``margin`` is the signed (or unsigned) distance of each sample to the boundary, or anything
    monotone in its absolute value, e.g. the true log-odds ``eta_i`` of a simulated logistic model
    (distance ``|eta_i| / ||coef||``). The sample nearest the boundary is the hardest:

        difficulty_i = 1 - rank(|margin_i|) / (n - 1),

    1 on the boundary, 0 for the sample farthest from it; ties share their mean rank.
    """
    return 1.0 - _rank_share(np.abs(_check_values(margin, "margin")))


def loss_difficulty(loss) -> np.ndarray:
    """Difficulty from per-sample losses of a reference fit, for real data whose boundary is unknown.

    ``loss`` is each sample's loss under a fitted model, e.g. its negative log-likelihood
    ``-log p(y_i | x_i, theta_hat)`` at an unweighted fit (or at the current fit, for the
    ``self_paced`` schedule of :func:`curriculum`). The worst-fitted sample is the hardest:

        difficulty_i = rank(loss_i) / (n - 1),

    0 for the best-fitted sample, 1 for the worst; ties share their mean rank.
    """
    return _rank_share(_check_values(loss, "loss"))


def _check_unit_interval(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InputError(f"{name} must be a number in [0, 1], got {value!r}")
    if not 0 <= value <= 1:  # NaN fails this too
        raise InputError(f"{name} must be a number in [0, 1], got {value!r}")
    return float(value)


def curriculum(difficulty, progress, *, schedule: str = "easy_to_hard", sharpness: float = 4.0) -> np.ndarray:
    """Curriculum weights of samples with the given ``difficulty`` (each in [0, 1]) at training
    ``progress`` in [0, 1], normalised to mean 1.

    With d_i the difficulty, t the progress and s the sharpness:

    ``easy_to_hard`` (curriculum learning): an exponential tilt whose direction turns with progress,

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
    soft edge of width about 1 / s and a floor f = 0.01 that keeps every weight positive:

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
    information: Kish's effective sample size, :func:`kish_ess`, is below n whenever they are uneven.)

    ``sharpness`` s is a finite number in (0, 50]: the log of the largest weight ratio of the tilts at
    t = 0 and t = 1 (s = 4: about 55); beyond 50 the lightest samples would stop counting in double
    precision. Raises ``InputError`` (a ``ValueError``) naming the argument for difficulty outside
    [0, 1], NaN or not one-dimensional, progress outside [0, 1], NaN or not a number, an unknown
    schedule, or a sharpness outside (0, 50].
    """
    d = _check_values(difficulty, "difficulty")
    outside = (d < 0) | (d > 1)
    if outside.any():
        first = int(np.argmax(outside))
        raise InputError(f"difficulty must lie in [0, 1], got {outside.sum()} value(s) outside, "
                         f"first {d[first]:g} at index {first}")
    t = _check_unit_interval(progress, "progress")
    if schedule not in CURRICULUM_SCHEDULES:
        raise InputError(f"schedule must be one of {CURRICULUM_SCHEDULES}, got {schedule!r}")
    s = _check_positive(sharpness, "sharpness")
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
# Logged steps t = 0..n-1 of one or more episodes, in order. Every function returns one number per
# step, ready to be used (or turned into) weights of ``models.policy``.


def _check_values(values, name: str, *, allow_minus_inf: bool = False) -> np.ndarray:
    """``values`` as a non-empty one-dimensional float array of finite numbers (or -inf, where
    allowed: the log of a zero weight)."""
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


def _check_positive(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not (np.isfinite(value) and value > 0):
        raise InputError(f"{name} must be a finite positive number, got {value!r}")
    return float(value)


def check_codes(codes, n: int, *, name: str = "codes") -> np.ndarray:
    """``codes`` (states, actions) as an int64 array of integer codes 0 .. n-1.

    Whole numbers stored as floats (2.0) are accepted; fractions, booleans, strings, codes outside
    0 .. n-1 and empty or multi-dimensional arrays are refused with an ``InputError`` naming ``name``.
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


def _check_states(states, n_states, size: int, per_step: str) -> np.ndarray:
    """``states`` as codes 0..n_states-1, one per step of ``per_step`` (of length ``size``)."""
    if isinstance(n_states, bool) or not isinstance(n_states, (int, np.integer)) or n_states < 1:
        raise InputError(f"n_states must be a positive integer, got {n_states!r}")
    s = check_codes(states, n_states, name="states")
    if s.size != size:
        raise InputError(f"states has length {s.size} but {per_step} has length {size}: one each per step")
    return s


def _check_episode_ends(episode_ends, size: int, per: str) -> np.ndarray:
    """``episode_ends`` as ``size`` booleans, True at the last step of each episode (the last step
    must end one)."""
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
    """Discounted returns ``G_t = r_t + gamma G_{t+1}``, restarting after every step that ends an episode.

    ``episode_ends[t]`` is True when step t is the last of its episode (then ``G_t = r_t``); the last
    step must end an episode. ``gamma`` is the discount factor in [0, 1].
    """
    r = _check_values(rewards, "rewards")
    ends = _check_episode_ends(episode_ends, r.size, "reward")
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
    """Returns minus a state baseline: ``A_t = G_t - mean{G_u : s_u = s_t}`` over the logged steps.

    The baseline is the mean return of each state over the log (the step's own return included, a
    bias of order 1 / n_s); a baseline that depends on the state only leaves the expected policy
    gradient at the behaviour policy unchanged and lowers its variance. Away from the behaviour
    policy, A-weighted log-likelihoods are a surrogate, not the gradient of the return. Advantages
    are signed: use them as policy weights with ``allow_negative=True``, or turn them into positive
    weights with :func:`awr`.
    """
    g = _check_values(returns, "returns")
    s = _check_states(states, n_states, g.size, "returns")
    visits = np.bincount(s, minlength=n_states)
    baseline = np.bincount(s, weights=g, minlength=n_states) / np.maximum(visits, 1)
    return g - baseline[s]


def awr(advantages, *, temperature=1.0, max_weight=20.0) -> np.ndarray:
    """Advantage-weighted regression weights ``min(exp(A / temperature), max_weight)`` (Peng et al. 2019).

    Positive, so the weighted MLE exists wherever every action of a visited state was taken; a low
    temperature approaches the greedy policy, a high one behaviour cloning. Computed as
    ``exp(min(A / temperature, log max_weight))``, which cannot overflow.
    """
    a = _check_values(advantages, "advantages")
    temperature = _check_positive(temperature, "temperature")
    max_weight = _check_positive(max_weight, "max_weight")
    with np.errstate(over="ignore"):  # A / temperature = inf is capped below
        return np.exp(np.minimum(a / temperature, np.log(max_weight)))


def importance_ratios(target_prob, behavior_prob, *, clip=None, truncate=None) -> np.ndarray:
    """Off-policy importance ratios ``rho_t = pi(a_t | s_t) / beta(a_t | s_t)`` of the logged actions.

    ``target_prob`` holds pi's probabilities of the logged actions (in [0, 1]), ``behavior_prob``
    those of the policy that logged them (in (0, 1]: a logged action had positive probability).
    Ordinary ratios by default (unbiased, possibly heavy-tailed: see :func:`psis_khat`);
    ``clip=eps`` clips them to [1 - eps, 1 + eps] (PPO, eps in (0, 1)); ``truncate=rho_bar`` caps them
    at ``min(rho, rho_bar)`` (V-trace, rho_bar > 0); not both. Self-normalised ratios, which sum to n,
    are ``normalize(importance_ratios(...), "n")``.
    """
    target = _check_values(target_prob, "target_prob")
    behavior = _check_values(behavior_prob, "behavior_prob")
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
        return np.minimum(ratios, _check_positive(truncate, "truncate"))
    return ratios


def self_normalised_ratios(ratios, states, *, n_states) -> np.ndarray:
    """Importance ratios self-normalised per state: ``rho_i / mean{rho_j : s_j = s_i}``.

    Each state's ratios then average 1 over its logged steps, whatever the behaviour policy's visits
    did: weighted importance sampling per state, which trades the ordinary ratios' unbiasedness for
    lower variance. (Rescaling all ratios by one constant would change nothing but the posterior's
    temperature.)
    """
    rho = _check_values(ratios, "ratios")
    s = _check_states(states, n_states, rho.size, "ratios")
    if np.any(rho < 0):
        raise InputError("ratios must be non-negative")
    visits = np.bincount(s, minlength=n_states)
    mean = np.bincount(s, weights=rho, minlength=n_states) / np.maximum(visits, 1)
    if np.any(mean[s] == 0):
        raise InputError("a state's ratios are all zero: they cannot be normalised to mean 1")
    return rho / mean[s]


def psis_khat(log_weights) -> float:
    """Pareto k-hat of importance weights, from ArviZ's Pareto-smoothed importance sampling
    (``az.psislw``, Vehtari et al. 2024): the estimated shape of the weights' right tail.

    Below 0.7 a weighted average over these weights is reliable (below 0.5 good); above 0.7 the
    weights' variance is so large (infinite for k >= 0.5 in theory) that a few draws dominate, and
    the weighted MLE or posterior rests on them. ``log_weights`` are log importance ratios (any
    additive constant; -inf for a zero weight). Give the raw, uncapped ratios: capped or clipped
    weights tie at the cap and leave no tail to fit. ArviZ returns inf when the tail is too short to
    fit: fewer than about 21 weights, or ties at the top.
    """
    lw = _check_values(log_weights, "log_weights", allow_minus_inf=True)
    if np.all(lw == -np.inf):
        raise InputError("log_weights are all -inf: every weight is zero")
    import arviz as az  # here, not at the top: arviz is slow to import and only this needs it

    _, khat = az.psislw(lw)
    return float(khat)


def finite_psis_khat(log_weights) -> float:
    """:func:`psis_khat`, or NaN where ArviZ cannot fit a tail (too short, or ties at the top: it
    returns inf and warns; NaN says "undefined" in a table without the warning)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        khat = psis_khat(log_weights)
    return khat if np.isfinite(khat) else float("nan")


def magnitude_diagnostics(weights) -> dict[str, float]:
    """Kish ESS and PSIS k-hat of |w|: how many rows inform a weighted fit, and whether a few dominate it.

    Signed weights (advantages) pull as hard as their magnitude; for non-negative weights |w| = w.
    Zero weights are left out of k-hat; equal weights have no tail (NaN).
    """
    magnitude = np.abs(_check_values(weights, "weights"))
    if not np.any(magnitude > 0):
        raise InputError("weights are all zero: there is nothing to diagnose")
    return {"kish_ess": kish_ess(magnitude), "psis_khat": finite_psis_khat(np.log(magnitude[magnitude > 0]))}


def ratio_diagnostics(ratios, episode_ends) -> dict[str, float]:
    """Kish ESS of per-step importance ratios, and Kish ESS and PSIS k-hat of their per-episode products.

    ``episode_ends`` marks the last step of each episode, as in :func:`returns_to_go`. The product of
    an episode's ratios is the weight an unbiased off-policy estimate of its return needs; with
    one-step episodes (a bandit) the two coincide. Per-step ratios of a tabular policy take one value
    per (state, action) cell, and clipped or truncated ones tie at the cap, so their own k-hat is
    undefined; the products' is not.
    """
    rho = _check_values(ratios, "ratios")
    if np.any(rho <= 0):
        raise InputError("ratios must be positive: a logged action has positive target and behaviour "
                         "probability")
    ends = _check_episode_ends(episode_ends, rho.size, "ratio")
    episode = np.concatenate([[0], np.cumsum(ends)[:-1]])
    log_products = np.bincount(episode, weights=np.log(rho))
    return {"ratio_kish_ess": kish_ess(rho),
            # Kish ESS ignores the scale: shifting the logs keeps exp() finite for long episodes.
            "episode_ratio_kish_ess": kish_ess(np.exp(log_products - log_products.max())),
            "episode_ratio_psis_khat": finite_psis_khat(log_products)}
