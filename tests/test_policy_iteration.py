"""The policy-iteration loop: the toy-text tables and their episodes, the proximal MAP step and the
Thompson posterior against the compiled model, exact policy iteration against value iteration, the
update rules' limits, reproducibility, and a `--quick` run."""

import gymnasium as gym
import numpy as np
import pytensor.tensor as pt
import pytest
from scipy import special

from analyses import policy_iteration as analysis
from analyses.environments import rl_problems as problems
from analyses.environments import toy_text
from models import inference, policy
from models import weights as weights_lib
from models.errors import InputError


@pytest.fixture(scope="module")
def lake():
    return toy_text.load("frozenlake_4x4")


def uniform(environment, lanes=1):
    return np.full((lanes, environment.n_states, environment.n_actions), 1.0 / environment.n_actions)


# --------------------------------------------------------------------------- tables and episodes


@pytest.mark.parametrize("name", toy_text.ENVIRONMENTS)
def test_tables_are_gymnasiums(name):
    environment = toy_text.load(name)
    env_id, kwargs = toy_text.ENVIRONMENTS[name]
    table = gym.make(env_id, **kwargs).unwrapped.P
    np.testing.assert_allclose(environment.outcome.sum(axis=-1), 1.0, rtol=1e-12)
    last = (environment.n_states - 2, environment.n_actions - 1)
    for s, a in [(0, 0), (environment.n_states // 2, 1), last]:
        expected = sum(p * r for p, _, r, _ in table[s][a])
        assert environment.dynamics.reward[s, a] == pytest.approx(expected, rel=1e-12, abs=1e-15)
        for p, following, r, ends in table[s][a]:
            assert environment.outcome[s, a, following] >= p - 1e-15
            assert environment.terminal[s, a, following] == ends and environment.reward[s, a, following] == r


def test_played_returns_and_advantages_are_the_weights_librarys(lake):
    steps = toy_text.play(lake, uniform(lake, 3), 200, np.random.default_rng(4))
    ends = toy_text.episode_ends(steps)
    assert ends.sum() == 3 * 200   # every episode ends once (terminal state or the discount)
    advantages = toy_text.advantages(steps, lake.n_states)
    for lane in range(3):
        mine = steps.lane == lane
        # The discount ends episodes: returns-to-go are undiscounted.
        returns = weights_lib.returns_to_go(steps.rewards[mine], ends[mine], 1.0)
        np.testing.assert_allclose(steps.returns[mine], returns, rtol=1e-12, atol=1e-15)
        expected = weights_lib.advantages(returns, steps.states[mine], n_states=lake.n_states)
        np.testing.assert_allclose(advantages[mine], expected, rtol=1e-12, atol=1e-15)
        cells = toy_text.cell_sums(steps, advantages, lake.n_states, lake.n_actions)[lane]
        np.testing.assert_allclose(cells, policy.cell_weights(steps.states[mine], steps.actions[mine],
                                                              advantages[mine], n_states=lake.n_states,
                                                              n_actions=lake.n_actions), atol=1e-12)
        np.testing.assert_allclose(cells.sum(axis=1), 0.0, atol=1e-12)   # a state's advantages sum to zero


@pytest.mark.parametrize("name, episodes", [("frozenlake_4x4", 20_000), ("cliffwalking", 4_000)])
def test_episodes_have_the_exact_expected_return(name, episodes):
    # The discount played as termination makes the mean first-step return unbiased for the solved
    # V(start) of the discounted problem: within 4 Monte Carlo standard errors. (A 200-step time limit
    # would put CliffWalking's uniform mean at about -950 against the exact -1072.)
    environment = toy_text.load(name)
    steps = toy_text.play(environment, uniform(environment), episodes, np.random.default_rng(9))
    first = np.r_[True, toy_text.episode_ends(steps)[:-1]]
    returns = steps.returns[first]
    exact = problems.expected_return(environment.dynamics, uniform(environment)[0])
    assert abs(returns.mean() - exact) < 4 * returns.std(ddof=1) / np.sqrt(returns.size)


def test_a_deterministic_policy_gives_a_flat_batch():
    # One action per state: each cell's advantages are its state's, which sum to zero exactly; the
    # rounding of thousands of returns of size 10-100 must not turn into a signal.
    cliff = toy_text.load("cliffwalking")
    optimal = problems.greedy(problems.value_iteration(cliff.dynamics)[1])
    steps = toy_text.play(cliff, optimal[None], 200, np.random.default_rng(2))
    advantage, cells = toy_text.advantage_cells(steps, cliff.n_states, cliff.n_actions)
    assert np.all(cells == 0) and np.any(advantage != 0)
    assert analysis._wmle_exists(cells)[0]
    np.testing.assert_array_equal(analysis._signed_limit(cells, optimal[None]), optimal[None])


def test_play_refuses_policies_of_the_wrong_shape(lake):
    with pytest.raises(InputError, match=r"policies must be \(lanes, 16, 4\)"):
        toy_text.play(lake, np.full((16, 4), 0.25), 5, np.random.default_rng(0))


# --------------------------------------------------------------------------- the proximal step


def signed_batch(rng, n_states=3, n_actions=4, steps=80):
    states, actions = rng.integers(0, n_states, steps), rng.integers(0, n_actions, steps)
    advantage = weights_lib.advantages(rng.normal(size=steps), states, n_states=n_states)
    return states, actions, advantage


@pytest.mark.python_mode
def test_map_step_is_the_closed_form_proximal_step():
    rng = np.random.default_rng(21)
    states, actions, advantage = signed_batch(rng)
    centre = rng.normal(size=(3, 4))
    model = policy.build_model(states, actions, advantage, n_states=3, n_actions=4, preference_sd=0.7,
                               allow_negative=True, collapse=True, prior_mean=centre)
    estimate = inference.map_estimate(model)
    cells = policy.cell_weights(states, actions, advantage, n_states=3, n_actions=4)
    closed = policy.advantage_map(cells, 0.7, centre)
    # Newton's method to a gradient norm of 1e-10 (1 + max |W_s|) on a Gaussian with curvature
    # 1 / sd^2 ~ 2: within 1e-9.
    np.testing.assert_allclose(estimate["preference"], closed, atol=1e-9)
    np.testing.assert_allclose(closed.sum(axis=1), 0.0, atol=1e-12)
    # ... and it is a gradient step of size sd^2 from the centred centre.
    np.testing.assert_allclose(closed, centre - centre.mean(axis=1, keepdims=True) + 0.49 * cells, atol=1e-12)


@pytest.mark.python_mode
def test_centred_prior_posterior_is_the_gaussian_thompson_draws_from():
    # The model's log density at random points differs from the Gaussian's by one constant: the
    # posterior Thompson sampling draws from is exactly the model's.
    rng = np.random.default_rng(5)
    states, actions, advantage = signed_batch(rng)
    centre, sd = rng.normal(size=(3, 4)), 0.8
    model = policy.build_model(states, actions, advantage, n_states=3, n_actions=4, preference_sd=sd,
                               allow_negative=True, collapse=True, prior_mean=centre)
    log_density = model.compile_logp(jacobian=False)
    transform = model.rvs_to_transforms[model["step"]]
    mean = policy.advantage_map(policy.cell_weights(states, actions, advantage, n_states=3, n_actions=4),
                                sd, centre)
    differences = []
    for _ in range(5):
        step = rng.normal(size=(3, 4))
        step -= step.mean(axis=1, keepdims=True)
        preference = centre - centre.mean(axis=1, keepdims=True) + step
        gaussian = -np.sum((preference - mean) ** 2) / (2 * sd**2)
        free = transform.forward(pt.as_tensor(step)).eval()   # PyMC's own unconstrained value of the step
        differences.append(log_density({"step_zerosum__": free}) - gaussian)
    np.testing.assert_allclose(differences, differences[0], atol=1e-9)
    # Draws: centred log policies have that mean and sd * sqrt(1 - 1 / A) per element (4 MC SEs).
    draws = policy.advantage_posterior_policies(policy.cell_weights(states, actions, advantage, n_states=3,
                                                                    n_actions=4), sd, rng, 20_000, centre)
    log = np.log(draws)
    centred = log - log.mean(axis=-1, keepdims=True)
    standard_error = sd * np.sqrt(0.75) / np.sqrt(20_000)
    assert np.max(np.abs(centred.mean(axis=0) - mean)) < 4 * standard_error
    np.testing.assert_allclose(centred.std(axis=0), sd * np.sqrt(0.75), rtol=0.03)



# --------------------------------------------------------------------------- the rules


def test_one_step_of_policy_iteration_is_greedy_in_q_found_by_value_iteration_of_the_policy(lake):
    # Policy evaluation by iterating the Bellman expectation operator (no linear solve), then greedy:
    # the same policy as the analysis's first exact step; and the loop ends at value iteration's V*.
    dynamics, pi = lake.dynamics, uniform(lake)[0]
    values = np.zeros(lake.n_states)
    for _ in range(5000):   # a contraction of rate 0.99: 5000 sweeps leave < 1e-20
        values = np.sum(pi * problems.action_values(dynamics, values), axis=1)
    one_step = problems.greedy(problems.action_values(dynamics, values))
    run = analysis.learn(lake, "exact_pi", None, seeds=1, episodes=1, iterations=6,
                         rng=np.random.default_rng(0))
    assert run.returns[0, 1] == pytest.approx(problems.expected_return(dynamics, one_step), rel=1e-12)
    optimum = problems.value_iteration(dynamics)[0] @ dynamics.start
    assert np.all(np.diff(run.returns[0]) >= -1e-12)   # policy improvement never loses
    assert run.returns[0, -1] == pytest.approx(optimum, rel=1e-10)


def test_signed_wmle_has_no_maximiser_and_its_limit_is_greedy_in_the_cells():
    cells = np.array([[[0.5, -0.2, -0.3], [0.0, 0.0, 0.0], [0.4, 0.4, -0.8]]])
    current = np.full((1, 3, 3), 1 / 3)
    current[0, 1] = [0.2, 0.5, 0.3]
    assert not analysis._wmle_exists(cells)[0]
    limit = analysis._signed_limit(cells, current)
    np.testing.assert_allclose(limit[0], [[1, 0, 0], [0.2, 0.5, 0.3], [0.5, 0.5, 0]])
    # Along the ray t W the log-likelihood W . theta rises without bound and softmax(t W) -> the limit.
    np.testing.assert_allclose(special.softmax(200 * cells[0, [0, 2]], axis=-1), limit[0, [0, 2]], atol=1e-20)


def test_positive_weights_give_the_normalised_cells_on_the_boundary():
    cells = np.array([[[2.0, 1.0, 1.0], [0.0, 3.0, 1.0], [0.0, 0.0, 0.0]]])
    current = np.full((1, 3, 3), 1 / 3)
    wmle = analysis._boundary_wmle(cells, current)
    np.testing.assert_allclose(wmle[0], [[0.5, 0.25, 0.25], [0, 0.75, 0.25], [1 / 3, 1 / 3, 1 / 3]])
    assert not analysis._wmle_exists(cells)[0]   # (s1, a0) was never taken: its preference runs off
    assert analysis._wmle_exists(cells[:, [0, 2]])[0]


def test_kish_share_counts_the_steps_that_carry_the_weight():
    steps = toy_text.Steps(2, 1, np.array([0, 0, 0, 0, 1, 1]), np.zeros(6, int), np.zeros(6, int),
                           np.zeros(6, int), np.zeros(6), np.zeros(6))
    share = analysis._kish_share(steps, np.array([1.0, -1.0, 1.0, -1.0, 0.0, 0.0]))
    assert share[0] == pytest.approx(1.0) and np.isnan(share[1])
    share = analysis._kish_share(steps, np.array([3.0, 0.0, 0.0, 0.0, 1.0, 1.0]))
    assert share[0] == pytest.approx(0.25) and share[1] == pytest.approx(1.0)


@pytest.mark.parametrize("rule, setting", [("map", 0.5), ("thompson", 0.5), ("reinforce", 0.5), ("awr", 0.03),
                                           ("wmle_signed", None)])
def test_the_loop_is_reproducible_with_a_seed(lake, rule, setting):
    def run(seed):
        return analysis.learn(lake, rule, setting, seeds=2, episodes=30, iterations=3,
                              rng=np.random.default_rng(seed))

    first, again, other = run(7), run(7), run(8)
    np.testing.assert_array_equal(first.returns, again.returns)
    np.testing.assert_array_equal(first.wmle_exists, again.wmle_exists)
    assert not np.array_equal(first.returns, other.returns)
    optimum = problems.value_iteration(lake.dynamics)[0] @ lake.dynamics.start
    assert np.all(first.returns <= optimum + 1e-12) and np.all(first.returns >= 0)


def test_map_learns_on_the_small_lake(lake):
    # 10 seeds x 30 iterations of 100 episodes at sd 0.5: the MAP step's mean exact return more than
    # doubles the uniform start's 0.012 by far (0.22 with this stream); a loop that did not learn
    # stays near 0.012, a broken update would not reach 0.05.
    run = analysis.learn(lake, "map", 0.5, seeds=10, episodes=100, iterations=30,
                         rng=np.random.default_rng(3))
    assert run.returns[:, -1].mean() > 0.1
    # Signed advantages: the WMLE exists only where the batch was flat (no return varied in a state).
    np.testing.assert_array_equal(run.wmle_exists[:, :-1], run.flat[:, :-1])
    assert run.flat[:, -10:-1].mean() < 0.5


# --------------------------------------------------------------------------- the command line


@pytest.fixture(scope="module")
def quick_run(run_quick):
    out, _, rows = run_quick("policy_iteration")
    return out, {(r["model"], r["estimator"], r["quantity"]): r for r in rows}


@pytest.mark.analysis_run(seconds=18)   # cold, for the order (tests/conftest.py)
def test_quick_run_writes_curves_figures_and_summary(quick_run):
    out, rows = quick_run
    assert {p.name for p in (out / "figures" / "policy_iteration").iterdir()} == {
        "learning_curves.png", "step_size.png", "weights_ess.png"}
    assert {p.name for p in (out / "results" / "policy_iteration").iterdir()} == {"summary.csv", "curves.csv"}
    for name in toy_text.ENVIRONMENTS:
        environment = toy_text.load(name)
        optimum = problems.value_iteration(environment.dynamics)[0] @ environment.start
        assert float(rows[name, "optimal", "expected_return"]["value"]) == pytest.approx(optimum, rel=1e-5)
        # The model's MAP (Newton's method per state, gradient norm 1e-10 (1 + max |W_s|)) equals
        # the closed form.
        assert float(rows[name, "map", "map_step_check"]["value"]) < 1e-6
        for rule in analysis.RULES:
            final = float(rows[name, rule, "final_return"]["value"])
            assert final <= optimum + 1e-5 * abs(optimum)   # the csv keeps 6 significant digits
        assert float(rows[name, "exact_pi", "final_return"]["value"]) == pytest.approx(optimum, rel=1e-5)
        # Signed advantages: a WMLE exists exactly in the flat batches (no return varied in a state).
        for rule in ("map", "thompson", "reinforce", "wmle_signed"):
            share = {q: float(rows[name, rule, q]["value"])
                     for q in ("wmle_exists_share", "flat_batch_share")}
            assert share["wmle_exists_share"] == share["flat_batch_share"]
    # CliffWalking's uniform start never gives a flat batch: -1 a step makes every return differ.
    assert float(rows["cliffwalking", "map", "flat_batch_share"]["value"]) == 0


def test_play_draws_exactly_what_it_drew_before_computing_only_running_episodes():
    """play() computes only the episodes still running but draws three uniforms per episode per step
    for all of them, so its output is the one of the dense implementation it replaced, bit for bit:
    the SHA-256 of its arrays for a fixed seed, recorded from that implementation."""
    import hashlib

    environment = toy_text.load("frozenlake_4x4")
    policies = special.softmax(np.random.default_rng(1).normal(size=(3, environment.n_states,
                                                                       environment.n_actions)), axis=-1)
    steps = toy_text.play(environment, policies, 50, np.random.default_rng(7))
    digest = hashlib.sha256()
    for name in ("lane", "episode", "states", "actions", "rewards", "returns"):
        digest.update(np.ascontiguousarray(getattr(steps, name)).tobytes())
    assert steps.states.size == 1136
    assert digest.hexdigest() == "e602acab1246f26c179b32105c1b821055ea18da17cd5dbb420982c70f5b0443"
