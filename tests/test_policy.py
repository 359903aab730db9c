"""The tabular softmax policy: exact log densities and the REINFORCE gradient (tier 1), weighted MLE
and its existence, structure (tier 2), NUTS recovery by quadrature (tier 3), and properties."""

import dataclasses

import arviz as az
import numpy as np
import pymc as pm
import pytensor
import pytensor.tensor as pt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from pytensor.graph.replace import graph_replace
from scipy import integrate, linalg, special, stats

from models import inference, policy
from models.estimation import maximise

pytestmark = pytest.mark.python_mode

N_STATES, N_ACTIONS = 3, 3
SD = 1.5
# 24 logged steps: every action taken in every state (so the unweighted MLE exists).
STATES = np.array([0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 2, 2, 0, 1, 2, 0, 1, 2, 1, 0, 2, 1, 0, 2])
ACTIONS = np.array([0, 1, 2, 1, 0, 1, 2, 0, 1, 2, 2, 2, 1, 1, 0, 0, 2, 1, 1, 1, 0, 0, 2, 1])
POSITIVE = np.random.default_rng(5).uniform(0.1, 3.0, STATES.size)  # AWR-type weights
SIGNED = np.random.default_rng(6).normal(0.3, 1.0, STATES.size)     # advantage-type weights
PREFERENCES = [np.zeros((N_STATES, N_ACTIONS)),
               *np.random.default_rng(7).normal(0.0, 2.0, (2, N_STATES, N_ACTIONS))]
# L-BFGS stops at a relative gradient of 1e-12 (see tests/test_inference.py): 1e-6 is ample.
OPTIMISER_TOLERANCE = 1e-6


def log_policy(preference):
    return preference - special.logsumexp(preference, axis=1, keepdims=True)


def weighted_sum(preference, states, actions, weights):
    """sum_i w_i log pi(a_i | s_i) in numpy."""
    return np.sum(weights * log_policy(preference)[states, actions])


def normalised_counts(weights, states=STATES, actions=ACTIONS):
    cells = np.zeros((N_STATES, N_ACTIONS))
    np.add.at(cells, (states, actions), weights)
    return cells / cells.sum(axis=1, keepdims=True)


def centred(preference):
    return preference - preference.mean(axis=-1, keepdims=True)


def zero_sum_prior(preference, sd=SD):
    """log ZeroSumNormal(sd) of the centred preferences in scipy: i.i.d. Normal(0, sd) coordinates in
    an orthonormal basis of each state's zero-sum subspace (the Helmert rows)."""
    return np.sum(stats.norm(0.0, sd).logpdf(centred(preference) @ linalg.helmert(N_ACTIONS).T))


def compiled(model):
    """(weighted term, full log density, gradient of the weighted term) as functions of a preference
    matrix, evaluated at its centred version, the model's zero-sum parameter. They only compare the
    graph's arithmetic with numpy, so they run PyTensor's Python implementations (FAST_COMPILE):
    no C module is compiled for these one-off graphs."""
    rv = model["preference"]
    preference = pt.matrix("preference_matrix")
    unconstrained = model.rvs_to_transforms[rv].forward(
        preference - preference.mean(axis=-1, keepdims=True), *rv.owner.inputs)
    value = {model.rvs_to_values[rv]: unconstrained}
    term = graph_replace(model.logp(vars=model.observed_RVs), value)
    total = graph_replace(model.logp(), value)
    return [model.compile_fn(f, inputs=[preference], point_fn=False, mode="FAST_COMPILE")
            for f in (term, total, pytensor.grad(term, preference))]


@pytest.fixture(scope="module")
def steps():
    model = policy.build_model(STATES, ACTIONS, SIGNED, n_states=N_STATES, n_actions=N_ACTIONS,
                               preference_sd=SD, allow_negative=True)
    return model, *compiled(model)


@pytest.fixture(scope="module")
def cells():
    model = policy.build_model(STATES, ACTIONS, SIGNED, n_states=N_STATES, n_actions=N_ACTIONS,
                               preference_sd=SD, allow_negative=True, collapse=True)
    return model, *compiled(model)


def set_weights(model, weights):
    """Swap the step weights into either flavour of the model (cells get their net weights)."""
    if "cell" in model.coords:
        weights = policy.cell_weights(STATES, ACTIONS, weights, n_states=N_STATES, n_actions=N_ACTIONS)
        weights = weights.ravel()
    pm.set_data({"weights": weights}, model=model)


# --------------------------------------------------------------------------- tier 1: log densities


@pytest.mark.parametrize("weights", [POSITIVE, SIGNED], ids=["positive", "signed"])
@pytest.mark.parametrize("which", ["steps", "cells"])
@pytest.mark.parametrize("preference", PREFERENCES)
def test_logp_equals_numpy_weighted_sum(request, which, weights, preference):
    model, term, total, _ = request.getfixturevalue(which)
    set_weights(model, weights)
    expected = weighted_sum(preference, STATES, ACTIONS, weights)
    # Same arithmetic up to rounding (cells sum the weights first): relative 1e-12.
    assert term(preference) == pytest.approx(expected, rel=1e-12)
    assert total(preference) == pytest.approx(zero_sum_prior(preference) + expected, rel=1e-12)


@pytest.mark.parametrize("weights", [POSITIVE, SIGNED], ids=["positive", "signed"])
def test_collapsed_model_has_the_same_log_density(steps, cells, weights):
    for model in (steps[0], cells[0]):
        set_weights(model, weights)
    for preference in PREFERENCES:
        assert cells[2](preference) == pytest.approx(steps[2](preference), rel=1e-12)


def test_collapse_builds_the_net_weight_of_every_cell():
    model = policy.build_model(STATES, ACTIONS, SIGNED, n_states=N_STATES, n_actions=N_ACTIONS,
                               allow_negative=True, collapse=True)
    expected = np.zeros((N_STATES, N_ACTIONS))
    for s, a, w in zip(STATES, ACTIONS, SIGNED):
        expected[s, a] += w
    np.testing.assert_allclose(model["weights"].get_value(), expected.ravel(), rtol=1e-12)
    np.testing.assert_array_equal(model["state_idx"].get_value(), np.repeat(np.arange(N_STATES), N_ACTIONS))
    np.testing.assert_array_equal(model["action_idx"].get_value(), np.tile(np.arange(N_ACTIONS), N_STATES))


@pytest.mark.parametrize("weights", [POSITIVE, SIGNED], ids=["positive", "signed"])
@pytest.mark.parametrize("which", ["steps", "cells"])
def test_gradient_is_the_reinforce_estimator(request, which, weights):
    model, _, _, gradient = request.getfixturevalue(which)
    set_weights(model, weights)
    for preference in PREFERENCES:
        pi = np.exp(log_policy(preference))
        reinforce = np.zeros((N_STATES, N_ACTIONS))  # sum_i w_i (e_{a_i} - pi(. | s_i)), step by step
        for s, a, w in zip(STATES, ACTIONS, weights):
            reinforce[s] += w * (np.eye(N_ACTIONS)[a] - pi[s])
        np.testing.assert_allclose(gradient(preference), reinforce, rtol=1e-10, atol=1e-12)


def test_a_single_logged_step_has_the_reinforce_gradient():
    # Regression: PyTensor 2.38's gradient of preference[state_idx] fails for one row (see policy.py).
    model = policy.build_model([1], [2], [0.5], n_states=N_STATES, n_actions=N_ACTIONS)
    gradient = compiled(model)[2](PREFERENCES[1])
    expected = np.zeros((N_STATES, N_ACTIONS))
    expected[1] = 0.5 * (np.eye(N_ACTIONS)[2] - np.exp(log_policy(PREFERENCES[1]))[1])
    np.testing.assert_allclose(gradient, expected, rtol=1e-10, atol=1e-12)


def test_normalize_rescales_the_stored_weights():
    for how, total in (("n", STATES.size), ("ess", np.sum(POSITIVE) ** 2 / np.sum(POSITIVE**2))):
        model = policy.build_model(STATES, ACTIONS, POSITIVE, n_states=N_STATES, n_actions=N_ACTIONS,
                                   normalize=how)
        expected = POSITIVE * total / POSITIVE.sum()
        np.testing.assert_allclose(model["weights"].get_value(), expected, rtol=1e-12)


# --------------------------------------------------------------------------- weighted MLE


def test_behaviour_cloning_mle_is_the_empirical_action_frequencies():
    model = policy.build_model(STATES, ACTIONS, n_states=N_STATES, n_actions=N_ACTIONS, collapse=True)
    estimate = inference.mle(model)["policy"]
    np.testing.assert_allclose(estimate, normalised_counts(np.ones(STATES.size)), atol=OPTIMISER_TOLERANCE)


def test_state_without_data_keeps_the_uniform_starting_policy():
    # Its row of the likelihood is flat: every policy there is a maximiser; mle() does not move it.
    model = policy.build_model(STATES, ACTIONS, n_states=N_STATES + 1, n_actions=N_ACTIONS, collapse=True)
    estimate = inference.mle(model)["policy"]
    np.testing.assert_allclose(estimate[:N_STATES], normalised_counts(np.ones(STATES.size)),
                               atol=OPTIMISER_TOLERANCE)
    np.testing.assert_allclose(estimate[N_STATES], 1 / N_ACTIONS, rtol=1e-12)


def test_net_negative_cell_makes_the_likelihood_unbounded_but_the_map_finite():
    weights = np.ones(STATES.size)
    weights[(STATES == 1) & (ACTIONS == 2)] = -1.0  # two steps: net weight -2
    model = policy.build_model(STATES, ACTIONS, weights, n_states=N_STATES, n_actions=N_ACTIONS,
                               allow_negative=True, collapse=True)
    assert policy.cell_weights(STATES, ACTIONS, weights, n_states=N_STATES, n_actions=N_ACTIONS)[1, 2] < 0
    runaway = r"closed form.*unbounded above.*preference\[state=1, action=2\] -> -inf"
    with pytest.raises(inference.UnboundedLikelihoodError, match=runaway):
        inference.mle(model)
    estimate = inference.map_estimate(model)
    assert np.all(np.isfinite(estimate["preference"]))
    np.testing.assert_allclose(estimate["policy"].sum(axis=1), 1.0, rtol=1e-12)
    assert estimate["policy"][1, 2] < 1 / N_ACTIONS  # the prior stops it short of zero


def test_prior_centred_elsewhere_moves_the_map_not_the_mle():
    # prior_mean: preference = m + step, step ~ ZSN(sd). The MLE ignores the prior (closed form,
    # keyed by the free variable ``step``); the MAP is pulled towards m instead of 0.
    centre = np.random.default_rng(3).normal(0.0, 2.0, (N_STATES, N_ACTIONS))
    model = policy.build_model(STATES, ACTIONS, POSITIVE, n_states=N_STATES, n_actions=N_ACTIONS,
                               preference_sd=SD, collapse=True, prior_mean=centre)
    assert [rv.name for rv in model.free_RVs] == ["step"]
    np.testing.assert_allclose(inference.mle(model)["policy"], normalised_counts(POSITIVE), rtol=1e-12)
    centred = centre - centre.mean(axis=1, keepdims=True)
    np.testing.assert_allclose(model["prior_mean"].get_value(), centred, rtol=1e-12)
    at_zero = policy.build_model(STATES, ACTIONS, POSITIVE, n_states=N_STATES, n_actions=N_ACTIONS,
                                 preference_sd=SD, collapse=True)
    map_point = inference.map_estimate(model)["preference"]
    moved = map_point - inference.map_estimate(at_zero)["preference"]
    assert np.all(np.sum(moved * centred, axis=1) > 0)   # every state's MAP moves towards its centre
    pm.set_data({"prior_mean": centre + 5.0}, model=model)   # swapped in uncentred: centred in the model
    np.testing.assert_allclose(inference.map_estimate(model)["preference"], map_point,
                               atol=OPTIMISER_TOLERANCE)
    with pytest.raises(policy.InputError, match=r"prior_mean must be a finite array of shape \(3, 3\)"):
        policy.build_model(STATES, ACTIONS, n_states=N_STATES, n_actions=N_ACTIONS, prior_mean=np.zeros(3))


@pytest.mark.parametrize("weights, centre", [(POSITIVE, None), (SIGNED, None), (SIGNED, "random"),
                                             (SIGNED - 2.0, None)])
def test_the_family_map_is_the_models_mode_found_by_lbfgs(weights, centre):
    """``map_estimate`` returns ``policy.map_preference`` (Newton's method state by state, nothing
    compiled); L-BFGS on the model's own compiled log density, from its initial point, is the oracle.
    SIGNED - 2 gives every state a total T_s < -2 / sd^2: each has several modes, and the family's
    MAP is the highest, so the oracle's mode is never above it."""
    prior_mean = None if centre is None else np.random.default_rng(8).normal(0.0, 1.0, (N_STATES, N_ACTIONS))
    model = policy.build_model(STATES, ACTIONS, weights, n_states=N_STATES, n_actions=N_ACTIONS,
                               preference_sd=SD, allow_negative=True, collapse=True, prior_mean=prior_mean)
    estimate = inference.map_estimate(model)
    assert estimate.existence.method == "analytic" and estimate.existence.maximiser is not None
    terms = [*model.free_RVs, *model.observed_RVs]
    oracle = maximise.maximise(model, terms, "log posterior density",
                               dataclasses.replace(estimate.existence, maximiser=None))
    cells = policy.cell_weights(STATES, ACTIONS, weights, n_states=N_STATES, n_actions=N_ACTIONS)
    modes = policy.state_modes(cells, preference_sd=SD, prior_mean=prior_mean)
    if min(cells.sum(axis=1)) > -2 / SD**2:   # concave: one mode, found by both
        assert [m.size for m in modes] == [1] * N_STATES
        np.testing.assert_allclose(estimate["preference"], oracle["preference"], atol=OPTIMISER_TOLERANCE)
    else:
        assert all(m.size > 1 for m in modes)
        centred_mean = 0.0 if prior_mean is None else centred(prior_mean)

        def log_density(preference):   # the log posterior up to a constant (policy.state_modes)
            return (np.sum(-(preference - centred_mean) ** 2) / (2 * SD**2) + np.sum(cells * preference)
                    - cells.sum(axis=1) @ special.logsumexp(preference, axis=1))

        assert log_density(estimate["preference"]) >= log_density(oracle["preference"]) - 1e-9
        np.testing.assert_allclose(log_density(estimate["preference"]), sum(m[0] for m in modes), rtol=1e-12)
    np.testing.assert_allclose(estimate["policy"], special.softmax(estimate["preference"], axis=1),
                               rtol=1e-12)


def test_advantage_map_needs_zero_state_totals():
    cells = np.array([[1.0, -1.0, 0.0], [0.5, 0.5, -1.0]])
    np.testing.assert_allclose(policy.advantage_map(cells, 2.0, np.ones((2, 3))), 4.0 * cells, rtol=1e-12)
    with pytest.raises(policy.InputError, match="sum to zero"):
        policy.advantage_map(cells + 0.1, 2.0)


def test_action_never_taken_in_a_visited_state_has_no_finite_mle():
    # State 0 never sees action 2: its MLE probability is 0, at preference -infinity.
    unseen = (STATES == 0) & (ACTIONS == 2)
    model = policy.build_model(STATES[~unseen], ACTIONS[~unseen], n_states=N_STATES, n_actions=N_ACTIONS)
    runaway = r"no finite maximiser.*zero net weight.*preference\[state=0, action=2\] -> -inf"
    with pytest.raises(inference.UnboundedLikelihoodError, match=runaway):
        inference.mle(model)


# --------------------------------------------------------------------------- posterior modes


def grid_modes(cells, sd=1.0):
    """Two actions: theta = (-x, x) / sqrt(2); the local maxima of g(x) on a grid of step 1e-4."""
    x = np.linspace(-40.0, 40.0, 800_001)
    theta = np.stack([-x, x], axis=1) / np.sqrt(2)
    g = -x**2 / (2 * sd**2) + theta @ cells - np.sum(cells) * special.logsumexp(theta, axis=1)
    peak = (g[1:-1] > g[:-2]) & (g[1:-1] >= g[2:])
    return np.sort(g[1:-1][peak])[::-1]


@pytest.mark.parametrize("cells, sd", [([3.0, 1.0], 1.0), ([-3.0, -1.0], 1.0), ([-2.0, -2.0], 1.5),
                                       ([-0.2, -0.1], 1.0), ([0.5, -4.0], 2.0)])
def test_state_modes_match_a_grid_search_for_two_actions(cells, sd):
    found = policy.state_modes([cells], preference_sd=sd)[0]
    expected = grid_modes(np.array(cells), sd)
    assert found.size == expected.size
    # Grid step 1e-4 at curvature below 1 / sd^2 + |T| / 2 misses the peak by at most ~1e-8 nats.
    np.testing.assert_allclose(found, expected, atol=1e-6)


def test_state_modes_one_per_concave_state_and_one_per_action_when_symmetric():
    # Concave for totals above -2 / sd^2; equal negative cells: a mode per action, mirror images, and
    # for a moderate total also one at the uniform policy, lower than theirs.
    modes = policy.state_modes([[2.0, 0.5, 1.0], [-1.0, 1.0, -1.5], [-5.0, -5.0, -5.0], [-1.0, -1.0, -1.0]],
                               preference_sd=1.0)
    assert [m.size for m in modes] == [1, 1, 3, 4]
    np.testing.assert_allclose(modes[2], modes[2][0], rtol=1e-10)
    np.testing.assert_allclose(modes[3][:3], modes[3][0], rtol=1e-10)
    uniform = -3.0 * np.log(3.0)  # g at theta = 0: -T logsumexp(0) with T = -3
    assert modes[3][3] == pytest.approx(-uniform, rel=1e-10) and modes[3][3] < modes[3][0]


@pytest.mark.parametrize("cells, preference_sd, message", [
    ([1.0, 2.0], 1.0, "cells must be a finite"), ([[1.0], [2.0]], 1.0, "cells must be a finite"),
    ([[1.0, np.nan]], 1.0, "cells must be a finite"), ([[1.0, 2.0]], 0.0, "preference_sd must be")])
def test_state_modes_refuses_bad_input(cells, preference_sd, message):
    with pytest.raises(ValueError, match=message):
        policy.state_modes(cells, preference_sd=preference_sd)


# --------------------------------------------------------------------------- tier 2: structure


@pytest.mark.parametrize("collapse, dim, rows", [(False, "obs_id", STATES.size), (True, "cell", 9)])
def test_names_dims_coords_and_initial_point(collapse, dim, rows):
    model = policy.build_model(STATES, ACTIONS, POSITIVE, n_states=N_STATES, n_actions=N_ACTIONS,
                               collapse=collapse)
    assert [rv.name for rv in model.free_RVs] == ["preference"]
    assert [rv.name for rv in model.observed_RVs] == ["action"]
    assert [v.name for v in model.deterministics] == ["policy"]
    assert model.named_vars_to_dims["preference"] == ("state", "action")
    assert model.named_vars_to_dims["policy"] == ("state", "action")
    assert model.named_vars_to_dims["action"] == (dim,)
    for name in ("state_idx", "action_idx", "weights"):
        assert model.named_vars_to_dims[name] == (dim,)
    assert list(model.coords["state"]) == [0, 1, 2]
    assert list(model.coords["action"]) == [0, 1, 2]
    assert len(model.coords[dim]) == rows
    point = model.initial_point()
    assert np.isfinite(model.compile_logp()(point))
    assert np.all(np.isfinite(model.compile_dlogp()(point)))


BAD_INPUT = [
    ({"states": [0, 1.5, 2]}, "states must be integer codes, got 1.5 at index 1"),
    ({"states": [True, False, True]}, "states must be integer codes 0 .. 2, got dtype bool"),
    ({"states": ["a", "b", "c"]}, "states must be integer codes"),
    ({"states": [0, 3, 1]}, r"states must be codes 0 .. 2, got 1 outside, first 3 at index 1"),
    ({"actions": [0, -1, 1]}, "actions must be codes 0 .. 2"),
    ({"actions": [0, 1]}, "states has length 3 but actions has length 2"),
    ({"states": [], "actions": []}, "states must be a non-empty one-dimensional"),
    ({"states": [[0, 1, 2]]}, "states must be a non-empty one-dimensional"),
    ({"n_states": 0}, "n_states must be an integer >= 1"),
    ({"n_states": 3.0}, "n_states must be an integer"),
    ({"n_actions": 1}, "n_actions must be an integer >= 2"),
    ({"preference_sd": 0.0}, "preference_sd must be finite and positive"),
    ({"preference_sd": np.inf}, "preference_sd must be finite and positive"),
    ({"preference_sd": "wide"}, "preference_sd must be a number"),
    ({"weights": [1.0, -1.0, 1.0]}, "weights has 1 negative.*allow_negative=True"),
    ({"weights": [1.0, 1.0]}, "weights has length 2, expected 3"),
    ({"weights": [1.0, np.nan, 1.0]}, "weights has 1 NaN"),
    ({"weights": [1.0, -0.5, 1.0], "allow_negative": True, "normalize": "n"},
     "normalize='n' is defined for non-negative weights"),
    ({"normalize": "sum"}, "normalize must be one of"),
    ({"collapse": "yes"}, "collapse must be True or False"),
]


@pytest.mark.parametrize("change, message", BAD_INPUT)
def test_bad_input_refused_naming_the_argument(change, message):
    arguments = {"states": [0, 1, 2], "actions": [2, 1, 0], "weights": None, "n_states": 3, "n_actions": 3,
                 **change}
    with pytest.raises(ValueError, match=message):
        policy.build_model(**arguments)


def test_cell_weights_counts_and_refuses_bad_steps():
    counts = policy.cell_weights(STATES, ACTIONS, n_states=N_STATES, n_actions=N_ACTIONS)
    assert counts.shape == (N_STATES, N_ACTIONS) and counts.sum() == STATES.size
    assert counts[2, 2] == np.sum((STATES == 2) & (ACTIONS == 2))
    with pytest.raises(ValueError, match="actions must be codes 0 .. 1"):
        policy.cell_weights([0, 1], [0, 2], n_states=2, n_actions=2)


# --------------------------------------------------------------------------- tier 3: NUTS recovery

RECOVERY_ACTIONS = np.array([1, 0, 1, 1, 1, 0, 1, 1, 0, 1, 1, 1, 0, 1,
                             1, 1, 1, 0, 1, 1, 0, 1, 1, 0, 1, 1, 1, 0])  # one state, 28 steps
RECOVERY_WEIGHTS = np.random.default_rng(8).uniform(0.2, 2.0, RECOVERY_ACTIONS.size)


def exact_mean_of_second_action(actions, weights, sd):
    """E[pi(1 | 0)] for one state and two actions, by quadrature over d = theta_1 - theta_0.

    The likelihood depends on theta only through d, and d ~ N(0, 2 sd^2) a priori, independent of
    theta_0 + theta_1: the posterior of d is prop. to N(d | 0, 2 sd^2) sigma(d)^W1 sigma(-d)^W0.
    """
    w1, w0 = np.sum(weights[actions == 1]), np.sum(weights[actions == 0])

    def log_density(d):
        prior = stats.norm(0.0, np.sqrt(2) * sd).logpdf(d)
        return prior + w1 * special.log_expit(d) + w0 * special.log_expit(-d)

    peak = log_density(0.0)
    normaliser = integrate.quad(lambda d: np.exp(log_density(d) - peak), -40, 40, epsabs=0, epsrel=1e-12)[0]
    first = integrate.quad(lambda d: special.expit(d) * np.exp(log_density(d) - peak), -40, 40,
                           epsabs=0, epsrel=1e-12)[0]
    return first / normaliser


@pytest.fixture(scope="module")
def recovery_fit():
    model = policy.build_model(np.zeros(RECOVERY_ACTIONS.size, dtype=int), RECOVERY_ACTIONS, RECOVERY_WEIGHTS,
                               n_states=1, n_actions=2, preference_sd=SD)
    return inference.sample(model, draws=1000, tune=1000, chains=2, random_seed=21)


def test_nuts_policy_mean_matches_quadrature(recovery_fit):
    exact = exact_mean_of_second_action(RECOVERY_ACTIONS, RECOVERY_WEIGHTS, SD)
    draws = recovery_fit.posterior["policy"].sel(state=0, action=1)
    # 4 Monte Carlo standard errors: a correct sampler fails this about once in 16,000 runs.
    assert abs(float(draws.mean()) - exact) < 4 * float(az.mcse(draws.to_dataset())["policy"])
    assert float(az.rhat(draws.to_dataset())["policy"]) < 1.01
    assert inference.diagnose(recovery_fit).divergences == 0


def test_posterior_preferences_sum_to_zero_over_actions(recovery_fit):
    np.testing.assert_allclose(recovery_fit.posterior["preference"].sum("action"), 0.0, atol=1e-12)


def test_log_likelihood_is_pointwise_weighted(recovery_fit):
    pi = recovery_fit.posterior["policy"].values[..., 0, :]  # (chain, draw, action) of the one state
    expected = RECOVERY_WEIGHTS * np.log(pi[..., RECOVERY_ACTIONS])
    np.testing.assert_allclose(recovery_fit.log_likelihood["action"].values, expected, rtol=1e-10)
    np.testing.assert_array_equal(recovery_fit.constant_data["weights"].values, RECOVERY_WEIGHTS)


# --------------------------------------------------------------------------- properties

FAST = settings(max_examples=200, deadline=None)  # no compilation: validation comes first
FED = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])

step_counts = st.integers(1, 30)


@st.composite
def valid_steps(draw, signed=False):
    n = draw(step_counts)
    states = draw(arrays(np.int64, n, elements=st.integers(0, N_STATES - 1)))
    actions = draw(arrays(np.int64, n, elements=st.integers(0, N_ACTIONS - 1)))
    low = -20.0 if signed else 0.0
    weights = draw(arrays(float, n, elements=st.floats(low, 20.0)).filter(lambda w: np.any(w != 0)))
    return states, actions, weights


@pytest.fixture(scope="module")
def resizable():
    """One uncollapsed model, compiled once; new steps are fed in with pm.set_data."""
    model = policy.build_model(STATES, ACTIONS, n_states=N_STATES, n_actions=N_ACTIONS, preference_sd=SD)
    return model, *compiled(model)


def feed(model, states, actions, weights):
    pm.set_data({"state_idx": states, "action_idx": actions, "weights": weights}, model=model,
                coords={"obs_id": np.arange(states.size)})


@FED
@given(valid_steps(signed=True), arrays(float, (N_STATES, N_ACTIONS), elements=st.floats(-6.0, 6.0)))
def test_random_valid_steps_have_finite_exact_logp_and_gradient(resizable, data, preference):
    model, term, total, gradient = resizable
    states, actions, weights = data
    feed(model, *policy.prepare(states, actions, weights, n_states=N_STATES, n_actions=N_ACTIONS,
                                allow_negative=True)[:3])
    expected = weighted_sum(preference, states, actions, weights)
    assert term(preference) == pytest.approx(expected, rel=1e-9, abs=1e-9)
    assert np.isfinite(total(preference))
    assert np.all(np.isfinite(gradient(preference)))


@st.composite
def invalid_codes(draw):
    """Steps whose states or actions hold one defect: out of range or a fraction."""
    n = draw(step_counts)
    codes = {"states": draw(arrays(float, n, elements=st.integers(0, N_STATES - 1).map(float))),
             "actions": draw(arrays(float, n, elements=st.integers(0, N_ACTIONS - 1).map(float)))}
    name = draw(st.sampled_from(["states", "actions"]))
    limit = N_STATES if name == "states" else N_ACTIONS
    codes[name][draw(st.integers(0, n - 1))] = draw(
        st.integers(limit, 10**6) | st.integers(-(10**6), -1)
        | st.floats(-50.0, 50.0).filter(lambda x: x != np.round(x)))
    return codes, name


@FAST
@given(invalid_codes())
def test_invalid_codes_are_refused_naming_the_argument(case):
    codes, name = case
    with pytest.raises(ValueError, match=f"^{name} must be"):
        policy.build_model(codes["states"], codes["actions"], n_states=N_STATES, n_actions=N_ACTIONS)
