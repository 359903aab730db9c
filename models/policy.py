"""Reward-weighted action preferences: a tabular softmax policy fitted to logged (state, action) steps.

Each state s has one preference theta_sa per action a, centred over the actions, and the policy
is their softmax::

    theta_s ~ ZeroSumNormal(sd)   for every state s: theta_s = u_s - mean(u_s), u_sa ~ Normal(0, sd)
    pi(a | s) = exp(theta_sa) / sum_b exp(theta_sb)
    log p(theta | D, w) = sum_s log ZSN(theta_s | sd) + sum_i w_i log pi(a_i | s_i) + const

for logged steps i = 1..n with state s_i, action a_i and weight w_i (``prior_mean`` m centres the prior
at m instead: theta_s = m_s + step_s, step_s ~ ZeroSumNormal(sd); centred at the current policy, the
MAP is a proximal policy-gradient step, :func:`advantage_map`). The weights say what the fit is:

* w_i = 1: behaviour cloning. The MLE is the empirical action frequencies of every state.
* w_i = A_i, an advantage (``weights.returns_to_go`` minus a baseline, ``weights.advantages``): the
  policy-gradient objective. Its gradient with respect to theta_s is
  ``sum_{i: s_i = s} w_i (e_{a_i} - pi(. | s))``, the REINFORCE estimator.
* w_i = min(exp(A_i / T), cap): advantage-weighted regression (``weights.awr``).
* w_i = pi(a_i | s_i) / beta(a_i | s_i): off-policy importance ratios (``weights.importance_ratios``).

Only the weighted counts ``W_sa = sum_{i: s_i = s, a_i = a} w_i`` enter the likelihood, so with
``collapse=True`` the model has one row per (state, action) cell, weighted W_sa: the same log
density at a cost independent of the number of logged steps (n_states n_actions rows of
n_actions preferences each).

Identification. Adding a constant to every preference of a state leaves pi, and so the likelihood,
unchanged: only the centred preferences are identified, and they are the model's parameters. Their
prior is the one that i.i.d. Normal(0, sd) preferences imply for their centred part (each element
has prior sd ``sd sqrt(1 - 1 / n_actions)``), so the policy's posterior, the MAP and the posterior
mean of the preferences are exactly those of the i.i.d. Normal model. What is gone is each state's
common shift, pinned by the prior alone: with it, NUTS had to cross a ridge that grows narrower as
the data grow (mean leapfrog steps per draw 30 at 1e3 logged steps, the cap of 1023 at 1e7).
The estimand to compare across estimators is ``policy``.

Existence, in closed form (carried by the model, :mod:`models.estimation.existence`). Per state the weighted
log-likelihood is ``sum_a W_sa log pi(a | s)``. When every W_sa of a state is positive it is maximised
at ``pi(a | s) = W_sa / sum_b W_sb``, the normalised weighted counts (unchanged when all weights are
multiplied by c > 0). When some cell has net negative weight, W_sa < 0, it is unbounded above
(pi(a | s) -> 0 sends it to +infinity); when a cell of a state with data has zero net weight (an action
never taken there), its supremum has pi(a | s) = 0, on the boundary, at preference -infinity: no
finite maximiser. A state whose cells all weigh nothing leaves its row of the likelihood flat: every
policy there is a maximiser (the uniform one is reported). :func:`mle_existence` names the cells; the
MAP always exists: the prior's log density falls quadratically in the preferences while the weighted
log-likelihood changes at most linearly, whatever the weights' signs. The log posterior separates over
the states, so :func:`map_preference` finds it state by state in NumPy (the highest of each state's
modes, :func:`state_modes`), and ``inference.map_estimate`` returns that, with nothing to compile.
"""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pymc as pm
from scipy import linalg, optimize, special

from models import weights as weights_lib
from models.errors import InputError
from models.estimation import existence
from models.likelihood import weighted_softmax

__all__ = ["advantage_map", "advantage_posterior_policies", "build_model", "cell_weights", "map_preference",
           "mle_existence", "prepare", "state_modes"]


def _check_size(value, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InputError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_steps(states, actions, n_states, n_actions) -> tuple[np.ndarray, np.ndarray]:
    n_states = _check_size(n_states, "n_states", 1)
    n_actions = _check_size(n_actions, "n_actions", 2)
    s = weights_lib.check_codes(states, n_states, name="states")
    a = weights_lib.check_codes(actions, n_actions, name="actions")
    if s.size != a.size:
        raise InputError(f"states has length {s.size} but actions has length {a.size}: one each per step")
    return s, a


def _sum_cells(s, a, w, n_states: int, n_actions: int) -> np.ndarray:
    cells = np.zeros((n_states, n_actions))
    np.add.at(cells, (s, a), w)
    return cells


def cell_weights(states, actions, weights=None, *, n_states, n_actions) -> np.ndarray:
    """The net weight ``W_sa`` of every (state, action) cell.

    ``W_sa = sum_{i: s_i = s, a_i = a} w_i``, shape (n_states, n_actions). The weighted MLE policy, where it
    exists, is ``W / W.sum(axis=1, keepdims=True)`` for the states with data.

    Parameters
    ----------
    states, actions : array_like
        Integer codes of the logged steps, 0 .. n_states - 1 and 0 .. n_actions - 1, one each per step.
    weights : array_like, optional
        One per step; default ones (then W holds the counts). Negative weights are allowed.
    n_states : int
        The number of states, at least 1.
    n_actions : int
        The number of actions, at least 2.

    Returns
    -------
    numpy.ndarray
        W, shape (n_states, n_actions).

    Raises
    ------
    InputError
        For sizes or codes out of range, states and actions of different lengths, or weights that
        :func:`models.weights.check` refuses (other than negative ones).

    Examples
    --------
    >>> cell_weights([0, 0, 0, 1], [0, 1, 1, 0], n_states=2, n_actions=2)
    array([[1., 2.],
           [1., 0.]])
    """
    s, a = _check_steps(states, actions, n_states, n_actions)
    w = weights_lib.check(weights, s.size, allow_negative=True)
    return _sum_cells(s, a, w, n_states, n_actions)


def mle_existence(cells) -> existence.Existence:
    """The weighted MLE's verdict for cell weights ``W``, in closed form (module docstring).

    Parameters
    ----------
    cells : array_like
        W, finite, shape (n_states, n_actions) with n_actions >= 2 (:func:`cell_weights`).

    Returns
    -------
    models.estimation.existence.Existence
        The verdict (method ``"closed form"``), with the maximiser ``preference`` (centred
        log W_s / sum_a W_sa; zeros in states without weight, which are reported as ``aliased``) when
        it exists, and the cells whose preferences run off (``diverging``) when it does not.

    Raises
    ------
    InputError
        When ``cells`` is not a finite (n_states, n_actions >= 2) array.

    Examples
    --------
    >>> verdict = mle_existence([[1.0, 2.0], [0.0, 0.0]])
    >>> verdict.exists, verdict.maximiser["preference"].round(4)
    (True, array([[-0.3466,  0.3466],
           [ 0.    ,  0.    ]]))
    >>> mle_existence([[1.0, -0.5], [0.0, 2.0]]).diverging
    ('preference[state=0, action=1] -> -inf',)
    """
    W = np.asarray(cells, dtype=float)
    if W.ndim != 2 or W.shape[1] < 2 or not np.all(np.isfinite(W)):
        raise InputError(f"cells must be a finite (n_states, n_actions >= 2) array, got shape {W.shape}")
    visited = np.any(W != 0, axis=1, keepdims=True)
    for bad, what in ((W < 0, "net negative weight: the weighted log-likelihood is unbounded above"),
                      (W == 0, "zero net weight in a state with data: the supremum is at pi(a | s) = 0")):
        found = np.argwhere(bad & visited)
        if found.size:
            named = ", ".join(f"(s{s}, a{a}) {W[s, a]:+.3g}" for s, a in found[:4])
            more = f" and {len(found) - 4} more" if len(found) > 4 else ""
            return existence.Existence(
                False, "closed form", f"{len(found)} cell(s) with {what} ({named}{more})",
                diverging=tuple(f"preference[state={s}, action={a}] -> -inf" for s, a in found))
    log_policy = np.log(np.where(visited, W, 1.0) / np.where(visited, W, 1.0).sum(axis=1, keepdims=True))
    flat = tuple(f"preference[state={s}, action={a}]" for s in np.flatnonzero(~visited[:, 0])
                 for a in range(W.shape[1]))
    return existence.Existence(
        True, "closed form", "every cell of every state with data has positive net weight: "
        "pi(a | s) = W_sa / sum_b W_sb", aliased=flat,
        maximiser={"preference": log_policy - log_policy.mean(axis=1, keepdims=True)})


def _model_cells(model: pm.Model) -> np.ndarray:
    """The net weight of every cell of a model :func:`build_model` made, from its current data."""
    return _sum_cells(model["state_idx"].get_value(), model["action_idx"].get_value(),
                      model["weights"].get_value(), len(model.coords["state"]), len(model.coords["action"]))


def _model_prior_mean(model: pm.Model) -> np.ndarray | None:
    return _centred(model["prior_mean"].get_value()) if "prior_mean" in model.named_vars else None


def _free_values(model: pm.Model, preference: np.ndarray) -> dict:
    """Centred preferences as the model's free variable: ``preference``, or the ``step`` from the
    prior mean when the model has one."""
    centre = _model_prior_mean(model)
    return {"preference": preference} if centre is None else {"step": preference - centre}


def _model_mle_existence(model: pm.Model) -> existence.Existence:
    verdict = mle_existence(_model_cells(model))
    if verdict.maximiser is None:
        return verdict
    return dataclasses.replace(verdict, maximiser=_free_values(model, verdict.maximiser["preference"]))


def _model_map_existence(model: pm.Model) -> existence.Existence:
    preference = map_preference(_model_cells(model), preference_sd=float(model["preference_sd"].get_value()),
                                prior_mean=_model_prior_mean(model))
    return existence.Existence(
        True, "analytic", "the ZeroSumNormal prior falls quadratically in the preferences, the weighted "
        "log-likelihood changes at most linearly; per state, the highest mode of its log density",
        maximiser=_free_values(model, preference))


def _centred(values: np.ndarray) -> np.ndarray:
    return values - values.mean(axis=-1, keepdims=True)


def _check_centre(centre, shape: tuple[int, int]) -> np.ndarray:
    """Prior-mean preferences (n_states, n_actions), finite, centred over the actions."""
    if centre is None:
        return np.zeros(shape)
    m = np.asarray(centre, dtype=float)
    if m.shape != shape or not np.all(np.isfinite(m)):
        raise InputError(f"prior_mean must be a finite array of shape {shape}, got shape {m.shape}")
    return _centred(m)


def _zero_total_cells(cells) -> np.ndarray:
    W = np.asarray(cells, dtype=float)
    if W.ndim != 2 or not np.all(np.isfinite(W)):
        raise InputError(f"cells must be a finite (n_states, n_actions) array, got shape {W.shape}")
    totals = W.sum(axis=1)
    if not np.allclose(totals, 0.0, atol=1e-9 * (1 + np.abs(W).max())):
        raise InputError(f"the posterior is Gaussian only where every state's weights sum to zero; "
                         f"state totals {totals.round(6).tolist()}")
    return W


def advantage_map(cells, preference_sd: float, prior_mean=None) -> np.ndarray:
    """The MAP preferences when every state's cell weights sum to zero.

    Such as advantages with a state baseline. Under the prior centred at ``prior_mean`` the MAP is
    ``prior_mean + sd^2 W``, centred over the actions. With a zero total the log-normaliser drops out and the
    log density of state s is ``-|theta_s - m_s|^2 / (2 sd^2) + W_s . theta_s``: a Gaussian in the centred
    preferences, whose mode is one gradient step of size sd^2 from m_s along the policy gradient W_s. This is
    the proximal (trust-region) policy-gradient step: the prior's sd is its step size.

    Parameters
    ----------
    cells : array_like
        W, finite, shape (n_states, n_actions), every row summing to zero.
    preference_sd : float
        The prior's sd.
    prior_mean : array_like, optional
        m, shape (n_states, n_actions), finite; only its centred part counts. Default 0
        (:func:`build_model`'s ``prior_mean``).

    Returns
    -------
    numpy.ndarray
        The MAP preferences, shape (n_states, n_actions).

    Raises
    ------
    InputError
        When ``cells`` is not a finite two-dimensional array whose rows sum to zero, or ``prior_mean``
        is not finite and of its shape.

    Examples
    --------
    >>> advantage_map([[0.5, -0.5], [1.0, -1.0]], 0.5, prior_mean=[[0.0, 0.0], [1.0, 0.0]])
    array([[ 0.125, -0.125],
           [ 0.75 , -0.75 ]])
    """
    W = _zero_total_cells(cells)
    return _check_centre(prior_mean, W.shape) + preference_sd**2 * _centred(W)


def advantage_posterior_policies(cells, preference_sd: float, rng, draws: int, prior_mean=None) -> np.ndarray:
    """Policies drawn from the exact posterior when every state's cell weights sum to zero.

    With a zero total in every state (advantages with a state baseline),
    ``sum_a W_sa log pi(a | s) = sum_a W_sa theta_sa`` (the log-normaliser's coefficient, the state's
    total weight, is 0), so the log posterior is Gaussian: the centred part of independent
    Normal(m_sa + sd^2 W_sa, sd) cells (m the ``prior_mean``, default 0; :func:`advantage_map` is its
    mode), whose softmax is the policy (the centring does not change it). Direct draws, no MCMC.

    Parameters
    ----------
    cells : array_like
        W, finite, shape (n_states, n_actions), every row summing to zero.
    preference_sd : float
        The prior's sd.
    rng : numpy.random.Generator
        Draws the preferences.
    draws : int
        The number of draws.
    prior_mean : array_like, optional
        m, shape (n_states, n_actions); default 0.

    Returns
    -------
    numpy.ndarray
        Policies, shape (draws, n_states, n_actions).

    Raises
    ------
    InputError
        As :func:`advantage_map`.

    Examples
    --------
    >>> import numpy as np
    >>> policies = advantage_posterior_policies([[0.5, -0.5]], 1.0, np.random.default_rng(0), draws=1000)
    >>> policies.shape, policies.mean(axis=0).round(2)
    ((1000, 1, 2), array([[0.67, 0.33]]))
    """
    mean = advantage_map(cells, preference_sd, prior_mean)
    preference = rng.normal(mean, preference_sd, size=(draws, *mean.shape))
    return special.softmax(preference, axis=-1)


_ALL_SUBSETS_UP_TO = 10  # state_modes: 2^10 - 1 starts per state at most


def state_modes(cells, *, preference_sd=1.0, prior_mean=None) -> list[np.ndarray]:
    """The local maxima of each state's log posterior density, highest first.

    The log posterior separates over states. In state s, with cell weights W_s and their total
    T_s = sum_a W_sa, it is, on the zero-sum subspace of the centred preferences theta_s (prior mean
    m_s, 0 unless ``build_model``'s ``prior_mean`` is given)::

        g_s(theta_s) = -|theta_s - m_s|^2 / (2 sd^2) + W_s . theta_s - T_s logsumexp(theta_s).

    The Hessian of logsumexp has eigenvalues in [0, 1/2], so g_s is strictly concave, one mode, when
    T_s > -2 / sd^2. Below that (signed weights: advantages, ratios times advantages) the convex term
    ``|T_s| logsumexp`` can give g_s a mode for each action that may dominate, and one near the uniform
    policy. Every critical point solves theta = m_s + sd^2 (W_s - T_s pi(theta)), centred, so the
    search starts from that fixed point with pi uniform over each non-empty set of actions (each single
    action when there are more than 10 actions) and from m_s; a point counts as a mode when the
    gradient there vanishes and the Hessian is negative definite. The gap between a state's first
    two values, in nats, says how high the next mode's peak is: e^-gap times the highest's. NUTS
    chains that settle in different modes show it in r-hat.

    Parameters
    ----------
    cells : array_like
        W, finite, (n_states, n_actions) with n_actions >= 2, e.g. from :func:`cell_weights`.
    preference_sd : float, default 1.0
        The prior's sd, finite and positive.
    prior_mean : array_like, optional
        m, shape (n_states, n_actions), finite; default 0.

    Returns
    -------
    list of numpy.ndarray
        One array per state: the values of g_s at its modes, highest first (nats, up to a constant).

    Raises
    ------
    InputError
        When ``cells``, ``preference_sd`` or ``prior_mean`` is not as above.

    Examples
    --------
    >>> [values.round(3) for values in state_modes([[1.0, 2.0], [-3.0, -3.0]])]
    [array([-1.979]), array([9.015, 9.015])]

    The second state's total weight, -6, is below -2 / sd^2: it has two equally high modes.
    """
    return [np.array([value for value, _ in modes]) for modes in _modes(cells, preference_sd, prior_mean)]


def map_preference(cells, *, preference_sd=1.0, prior_mean=None) -> np.ndarray:
    """The MAP preferences (n_states, n_actions), centred, of cell weights ``W``.

    Under the prior centred at ``prior_mean`` (default 0; :func:`build_model`'s): in every state the
    highest of the modes :func:`state_modes` finds, found by Newton's method (trust region, exact
    Hessian) to a gradient of ``1e-10 (1 + max |W_s|)``. Unique in the states with T_s > -2 / sd^2,
    where g_s is concave; where two modes of a state are equally high, the MAP is not unique and one
    is returned. What ``inference.map_estimate`` returns for the models :func:`build_model` makes.

    Parameters
    ----------
    cells : array_like
        W, finite, (n_states, n_actions) with n_actions >= 2 (:func:`cell_weights`).
    preference_sd : float, default 1.0
        The prior's sd, finite and positive.
    prior_mean : array_like, optional
        The prior's centre, shape (n_states, n_actions), finite; default 0.

    Returns
    -------
    numpy.ndarray
        The MAP preferences, shape (n_states, n_actions), centred over the actions.

    Raises
    ------
    InputError
        When ``cells``, ``preference_sd`` or ``prior_mean`` is not as above.
    RuntimeError
        When the search finds no mode in some state (not expected of a smooth function bounded above).

    Examples
    --------
    >>> map_preference([[1.0, 2.0], [0.0, 0.0]]).round(4)
    array([[-0.2016,  0.2016],
           [ 0.    ,  0.    ]])
    """
    modes = _modes(cells, preference_sd, prior_mean)
    lost = [s for s, state in enumerate(modes) if not state]
    if lost:   # a search that stalls everywhere: not expected of a smooth function bounded above
        raise RuntimeError(f"no mode found in state(s) {lost}: please report the cells and sd")
    return np.array([state[0][1] for state in modes])


def _modes(cells, preference_sd, prior_mean) -> list[list[tuple[float, np.ndarray]]]:
    """Per state, ``(g_s, theta_s)`` at each local maximum, highest first."""
    W = np.asarray(cells, dtype=float)
    if W.ndim != 2 or W.shape[1] < 2 or not np.all(np.isfinite(W)):
        raise InputError(f"cells must be a finite (n_states, n_actions >= 2) array, got shape {W.shape}")
    sd = float(preference_sd)
    if not (np.isfinite(sd) and sd > 0):
        raise InputError(f"preference_sd must be finite and positive, got {preference_sd!r}")
    centre = _check_centre(prior_mean, W.shape)
    n_actions = W.shape[1]
    basis = linalg.helmert(n_actions)  # orthonormal rows spanning the zero-sum subspace
    sizes = range(1, n_actions + 1) if n_actions <= _ALL_SUBSETS_UP_TO else (1,)
    subsets = np.array([np.isin(np.arange(n_actions), chosen) for size in sizes
                        for chosen in itertools.combinations(range(n_actions), size)], dtype=float)
    uniform_over = subsets / subsets.sum(axis=1, keepdims=True)
    return [_modes_of_one_state(w, m, sd, basis, uniform_over) for w, m in zip(W, centre)]


def _modes_of_one_state(w: np.ndarray, m: np.ndarray, sd: float, basis: np.ndarray,
                        uniform_over: np.ndarray) -> list[tuple[float, np.ndarray]]:
    total = w.sum()

    def negative(u):
        theta = basis.T @ u
        value = -(theta - m) @ (theta - m) / (2 * sd**2) + w @ theta - total * special.logsumexp(theta)
        gradient = -(theta - m) / sd**2 + w - total * special.softmax(theta)
        return -value, -(basis @ gradient)

    def hessian(theta):
        pi = special.softmax(theta)
        return basis @ (-np.eye(w.size) / sd**2 - total * (np.diag(pi) - np.outer(pi, pi))) @ basis.T

    starts = m[None, :]
    if total <= -2 / sd**2:  # otherwise concave: the prior mean leads to the one mode
        starts = np.vstack([starts, m + sd**2 * (w[None, :] - total * uniform_over)])
    gradient_tolerance = 1e-10 * (1 + np.abs(w).max())
    modes: list[tuple[float, np.ndarray]] = []
    for start in starts @ basis.T:
        found = optimize.minimize(negative, start, jac=True, hess=lambda u: -hessian(basis.T @ u),
                                  method="trust-exact", options={"gtol": gradient_tolerance})
        theta = basis.T @ found.x
        stationary = np.linalg.norm(found.jac) <= 1e-6 * (1 + np.abs(w).max())
        if not stationary or np.max(np.linalg.eigvalsh(hessian(theta))) >= 0:
            continue  # the search stalled, or stopped at a saddle
        if not any(np.allclose(theta, other, atol=1e-5 * (1 + np.abs(other).max())) for _, other in modes):
            modes.append((-found.fun, theta))
    return sorted(modes, key=lambda mode: -mode[0])


def prepare(states, actions, weights=None, *, n_states, n_actions, preference_sd=1.0,
            allow_negative=False, normalize="none"):
    """Validated ``(states, actions, weights, preference_sd)`` exactly as the model uses them.

    Parameters
    ----------
    states, actions, weights, n_states, n_actions, preference_sd, allow_negative, normalize
        As for :func:`build_model`.

    Returns
    -------
    states, actions : numpy.ndarray
        The codes as int64.
    weights : numpy.ndarray
        The checked weights, rescaled by ``normalize``.
    preference_sd : float
        The prior's sd.

    Raises
    ------
    InputError
        As :func:`build_model`.

    Examples
    --------
    >>> prepare([0, 1], [1, 0], [1.0, 3.0], n_states=2, n_actions=2, normalize="n")
    (array([0, 1]), array([1, 0]), array([0.5, 1.5]), 1.0)
    """
    s, a = _check_steps(states, actions, n_states, n_actions)
    try:
        if isinstance(preference_sd, bool):
            raise TypeError
        sd = float(preference_sd)
    except (TypeError, ValueError):
        raise InputError(f"preference_sd must be a number, got {preference_sd!r}") from None
    if not (np.isfinite(sd) and sd > 0):
        raise InputError(f"preference_sd must be finite and positive, got {sd:g}")
    w = weights_lib.check(weights, s.size, allow_negative=allow_negative)
    if normalize in ("n", "ess") and np.any(w < 0):
        # Both rescalings measure information by sum(w) (or Kish's ESS), which signed weights lack:
        # advantages with a baseline sum to about zero, and the rescaling factor would be arbitrary.
        raise InputError(f"normalize={normalize!r} is defined for non-negative weights; with negative "
                         "weights (advantages) use normalize='none' and scale them yourself")
    return s, a, weights_lib.normalize(w, normalize), sd


def build_model(states, actions, weights=None, *, n_states, n_actions, preference_sd=1.0,
                allow_negative=False, normalize="none", collapse=False, prior_mean=None) -> pm.Model:
    """The weighted tabular softmax policy; free variable ``preference``.

    ``preference`` has dims ``state`` and ``action`` and sums to zero over ``action`` in every state. For
    logged steps i with state s_i, action a_i and weight w_i::

        theta_s ~ ZeroSumNormal(sd)   for every state s
        pi(a | s) = exp(theta_sa) / sum_b exp(theta_sb)
        log p(theta | D, w) = sum_s log ZSN(theta_s | sd) + sum_i w_i log pi(a_i | s_i) + const

    ``prior_mean`` (n_states, n_actions; only its centred part counts) centres the prior there instead
    of at 0: ``preference = prior_mean + step`` with ``step ~ ZeroSumNormal(preference_sd)``, the free
    variable ``step`` and ``prior_mean`` a ``pm.Data`` (swap it with ``pm.set_data``). Centred at the
    current policy's preferences, the MAP is a proximal policy-gradient step whose size is the prior's
    sd (:func:`advantage_map`) and the posterior a Thompson-sampling draw's distribution.

    The deterministic ``policy`` is the softmax of ``preference`` over ``action``; the observed term
    is ``action``.

    Data: ``pm.Data`` ``state_idx``, ``action_idx`` and ``weights`` along ``obs_id`` (one row per
    step), or with ``collapse=True`` along ``cell`` (one row per (state, action), state-major, weight
    W_sa; every cell is a row, so any weights can be swapped in with ``pm.set_data``). The model
    carries the closed-form verdict of :func:`mle_existence` and the MAP of :func:`map_preference`.

    Parameters
    ----------
    states, actions : array_like
        Integer codes of the logged steps (0 .. n_states - 1 and 0 .. n_actions - 1), one each per
        step.
    weights : array_like, optional
        One per step (default ones), checked (negative ones refused unless ``allow_negative``) and
        rescaled by ``normalize``.
    n_states : int
        The number of states, at least 1.
    n_actions : int
        The number of actions, at least 2.
    preference_sd : float, default 1.0
        sd, the prior's scale, finite and positive.
    allow_negative : bool, default False
        Accept negative weights (advantages).
    normalize : {"none", "n", "ess"}, default "none"
        How the weights are rescaled, see :func:`models.weights.normalize`; "n" and "ess" need
        non-negative weights.
    collapse : bool, default False
        One row per (state, action) cell instead of one per step.
    prior_mean : array_like, optional
        The prior's centre m, (n_states, n_actions), finite; only its centred part counts. Default 0.

    Returns
    -------
    pymc.Model
        The model, with coords ``state``, ``action`` and ``obs_id`` (or ``cell``).

    Raises
    ------
    InputError
        For sizes, codes or ``preference_sd`` out of range, states and actions of different lengths,
        weights that :func:`models.weights.check` refuses, ``normalize="n"`` or ``"ess"`` with negative
        weights, a ``collapse`` that is not a boolean, or a ``prior_mean`` that is not finite and of
        shape (n_states, n_actions).

    Examples
    --------
    >>> model = build_model([0, 0, 1], [0, 1, 1], n_states=2, n_actions=2)
    >>> model.free_RVs, model.deterministics, model.observed_RVs
    ([preference], [policy], [action])
    >>> collapsed = build_model([0, 0, 1], [0, 1, 1], [1.0, 2.0, 1.0], n_states=2, n_actions=3,
    ...                         collapse=True)
    >>> collapsed["weights"].get_value()  # W_sa, state-major
    array([1., 2., 0., 0., 1., 0.])
    """
    s, a, w, sd = prepare(states, actions, weights, n_states=n_states, n_actions=n_actions,
                          preference_sd=preference_sd, allow_negative=allow_negative, normalize=normalize)
    if not isinstance(collapse, (bool, np.bool_)):
        raise InputError(f"collapse must be True or False, got {collapse!r}")
    if collapse:
        dim = "cell"
        w = _sum_cells(s, a, w, n_states, n_actions).ravel()
        s, a = np.repeat(np.arange(n_states), n_actions), np.tile(np.arange(n_actions), n_states)
    else:
        dim = "obs_id"
    coords = {"state": np.arange(n_states), "action": np.arange(n_actions), dim: np.arange(s.size)}
    with pm.Model(coords=coords) as model:
        state_idx = pm.Data("state_idx", s, dims=dim)
        action_idx = pm.Data("action_idx", a, dims=dim)
        weights_data = pm.Data("weights", w, dims=dim)
        # Data, not a constant: a constant would be compiled into the C code, once per prior sd.
        sd_data = pm.Data("preference_sd", np.float64(sd))
        if prior_mean is None:
            preference = pm.ZeroSumNormal("preference", sigma=sd_data, dims=("state", "action"))
        else:
            centre = pm.Data("prior_mean", _check_centre(prior_mean, (n_states, n_actions)),
                             dims=("state", "action"))
            step = pm.ZeroSumNormal("step", sigma=sd_data, dims=("state", "action"))
            centred = centre - centre.mean(axis=-1, keepdims=True)   # also for values swapped in uncentred
            preference = pm.Deterministic("preference", centred + step, dims=("state", "action"))
        pm.Deterministic("policy", pm.math.softmax(preference, axis=-1), dims=("state", "action"))
        # Row i is preference[state_idx[i]], gathered from the flattened matrix: its gradient is then a
        # one-dimensional AdvancedIncSubtensor1, which has C code. (Two index arrays run in Python, ~10%
        # of a NUTS gradient; and PyTensor 2.38's gradient of preference[state_idx] refuses a single row
        # as a "runtime broadcast".)
        cells_of_rows = (state_idx[:, None] * n_actions + np.arange(n_actions)).ravel()
        logit_p = preference.ravel()[cells_of_rows].reshape((state_idx.shape[0], n_actions))
        weighted_softmax("action", logit_p, weights_data, observed=action_idx, dims=dim,
                         allow_negative=allow_negative)
    return existence.attach(model, "policy", _model_mle_existence, _model_map_existence)
