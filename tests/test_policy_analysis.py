"""The reward-weighted policy analysis: exact solutions on hand-solved problems, the FrozenLake
simulator against gymnasium's own env.step, the weights, exact posteriors, and a `--quick` run."""


import arviz as az
import gymnasium as gym
import numpy as np
import pytest
from gymnasium.envs.toy_text.utils import categorical_sample

from analyses import policy as analysis
from analyses.environments import rl_problems as problems
from models import inference
from models import policy as policy_model

pytestmark = pytest.mark.analysis_run(seconds=45)   # cold, for the order (tests/conftest.py)

FIGURES = {"policy_heatmaps.png", "expected_return.png", "weight_diagnostics.png", "unbounded_mle.png"}


# --------------------------------------------------------------------------- exact answers


def two_state_problem():
    """State 0: action 0 pays 1 and stays with probability 1/2 (else the episode ends); action 1 pays
    0 and moves to state 1, which pays 2 for either action and ends. gamma = 0.9."""
    continuation = np.zeros((2, 2, 2))
    continuation[0, 0, 0] = 0.5
    continuation[0, 1, 1] = 1.0
    return problems.Dynamics(np.array([1.0, 0.0]), np.array([[1.0, 0.0], [2.0, 2.0]]), continuation, 0.9)


def test_policy_evaluation_solves_a_hand_made_mdp():
    dynamics = two_state_problem()
    p = np.array([0.0, 0.3, 1.0])   # pi(action 0 | state 0)
    pi = np.stack([np.stack([np.stack([q, 1 - q]), np.array([0.5, 0.5])]) for q in p])
    # V1 = 2;  V0 = p (1 + 0.45 V0) + (1 - p) 0.9 V1  =>  V0 = (1.8 - 0.8 p) / (1 - 0.45 p)
    np.testing.assert_allclose(problems.expected_return(dynamics, pi), (1.8 - 0.8 * p) / (1 - 0.45 * p),
                               rtol=1e-12)
    values, q = problems.value_iteration(dynamics)
    np.testing.assert_allclose(values, [1 / 0.55, 2.0], rtol=1e-10)
    np.testing.assert_array_equal(problems.greedy(q)[0], [1.0, 0.0])


def test_bandit_expected_return_is_the_average_reward_of_the_policy():
    problem = problems.bandit(np.random.default_rng(0))
    means = problems.BANDIT_MEANS
    pi = np.random.default_rng(1).dirichlet(np.ones(means.shape[1]), size=means.shape[0])
    dynamics = problem.dynamics
    assert problems.expected_return(dynamics, pi) == pytest.approx(np.mean(np.sum(pi * means, axis=1)))
    optimal = problems.greedy(problems.value_iteration(dynamics)[1])
    assert problems.expected_return(dynamics, optimal) == pytest.approx(np.mean(means.max(axis=1)))
    # The behaviour policy: 0.6 on the guess, 0.1 elsewhere; the guess is never the best action.
    np.testing.assert_allclose(problem.behavior.sum(axis=1), 1.0)
    assert set(np.round(problem.behavior.ravel(), 12)) == {0.6, 0.1}
    assert not np.any(np.argmax(means, axis=1) == problems.BANDIT_GUESS)


@pytest.fixture(scope="module")
def table():
    return problems.FrozenLakeTable()


def test_frozenlake_table_matches_gymnasium(table):
    env = gym.make("FrozenLake-v1", map_name="4x4", is_slippery=True).unwrapped
    for s in range(16):
        for a in range(4):
            expected_reward = sum(p * r for p, _, r, _ in env.P[s][a])
            assert table.reward[s, a] == pytest.approx(expected_reward)
            going_on = sum(p for p, _, _, terminated in env.P[s][a] if not terminated)
            assert table.continuation[s, a].sum() == pytest.approx(going_on)


def test_frozenlake_optimum_is_its_greedy_policys_exact_return(table):
    dynamics = problems.Dynamics(table.initial, table.reward, table.continuation, problems.GAMMA)
    values, q = problems.value_iteration(dynamics)
    optimal = problems.greedy(q)
    assert values @ table.initial == pytest.approx(0.5420259, abs=1e-6)  # V*(start), gamma = 0.99
    assert problems.expected_return(dynamics, optimal) == pytest.approx(values @ table.initial, abs=1e-9)
    # No policy does better: random stochastic policies, evaluated exactly in one batch.
    random_policies = np.random.default_rng(2).dirichlet(np.full(4, 0.3), size=(500, 16))
    assert np.all(problems.expected_return(dynamics, random_policies) <= values @ table.initial + 1e-12)
    # Undiscounted (gamma = 1), the optimum is the success probability gymnasium quotes (0.74 within
    # its 100-step limit; 14/17 = 0.8235 without a limit).
    undiscounted = problems.Dynamics(table.initial, table.reward, table.continuation, 1.0)
    assert problems.value_iteration(undiscounted, tolerance=1e-12)[0] @ table.initial == pytest.approx(
        14 / 17, abs=1e-6)


def test_logged_episodes_are_what_gymnasium_env_step_produces(table):
    """Same generator, same draws: the simulator replays env.reset / env.step exactly."""
    behavior = np.random.default_rng(3).dirichlet(np.ones(4), size=16)
    log = problems.log_episodes(table, behavior, 25, np.random.default_rng(11))
    env = gym.make("FrozenLake-v1", map_name="4x4", is_slippery=True).unwrapped
    env.np_random = np.random.default_rng(11)
    replay = {"states": [], "actions": [], "rewards": [], "episode_ends": []}
    for _ in range(25):
        state, _ = env.reset()
        terminated = False
        while not terminated:
            action = int(categorical_sample(behavior[state], env.np_random))
            following, reward, terminated, truncated, _ = env.step(action)
            assert not truncated
            for key, value in zip(replay, (state, action, reward, terminated)):
                replay[key].append(value)
            state = following
    for key, values in replay.items():
        np.testing.assert_array_equal(log[key], values)
    assert log["episode_ends"][-1] and log["episode_ends"].sum() == 25


def test_frozenlake_behaviour_mixes_uniform_and_the_ice_free_shortest_path(table):
    behavior = problems.frozenlake(np.random.default_rng(0), episodes=5).behavior
    planner = problems.naive_planner(table)
    np.testing.assert_allclose(behavior, 0.125 + 0.5 * planner)
    assert planner[0].argmax() == 1 and planner[14].argmax() == 2   # start: down; next to the goal: right


# --------------------------------------------------------------------------- weights and estimators


@pytest.fixture(scope="module")
def bandit():
    return problems.bandit(np.random.default_rng(4))


def test_offpolicy_weights_are_ratios_to_the_uniform_target_times_advantages(bandit):
    advantage = problems.advantages(bandit)
    rho = 0.2 / bandit.behavior[bandit.states, bandit.actions]
    expected = {"offpolicy_ordinary": rho, "offpolicy_clipped": np.clip(rho, 0.8, 1.2),
                "offpolicy_truncated": np.minimum(rho, 1.0),
                "offpolicy_self_normalised": rho / np.array([rho[bandit.states == s].mean()
                                                             for s in bandit.states])}
    for scheme, ratio in expected.items():
        weights, signed = problems.scheme_weights(bandit, scheme)
        assert signed
        np.testing.assert_allclose(weights, ratio * advantage)
    # The state baseline makes every state's advantages sum to zero.
    cells = policy_model.cell_weights(bandit.states, bandit.actions, advantage, n_states=3, n_actions=5)
    np.testing.assert_allclose(cells.sum(axis=1), 0.0, atol=1e-10)


def test_behaviour_cloning_mle_is_the_empirical_frequencies(bandit):
    model = analysis.build(bandit)
    counts = policy_model.cell_weights(bandit.states, bandit.actions, n_states=3, n_actions=5)
    assert counts.min() > 0   # every action logged in every state: the MLE exists
    np.testing.assert_allclose(inference.mle(model)["policy"], counts / counts.sum(axis=1, keepdims=True),
                               atol=1e-6)


@pytest.mark.python_mode   # a MAP of 15 cells: no C module needed
def test_advantage_map_is_exactly_the_weight_of_each_cell(bandit):
    """Zero-sum cells make the log-likelihood linear, sum W_sa preference_sa: the centred preferences'
    posterior is Gaussian about sd^2 W, its mode; the WMLE does not exist."""
    weights, _ = problems.scheme_weights(bandit, "advantage")
    model = policy_model.build_model(bandit.states, bandit.actions, weights, n_states=3, n_actions=5,
                                     preference_sd=2.0, allow_negative=True, collapse=True)
    cells = model["weights"].get_value().reshape(3, 5)
    np.testing.assert_allclose(inference.map_estimate(model)["preference"], 4.0 * cells, atol=1e-5)
    assert "net negative" in policy_model.mle_existence(cells).reason


def test_inference_mle_detects_the_unbounded_advantage_likelihood(bandit):
    weights, _ = problems.scheme_weights(bandit, "advantage")
    model = policy_model.build_model(bandit.states, bandit.actions, weights, n_states=3, n_actions=5,
                                     allow_negative=True, collapse=True)
    # Each state's advantages sum to zero: the weighted log-likelihood is linear, 0 at the start.
    with pytest.raises(inference.UnboundedLikelihoodError, match=r"unbounded above.*preference\[state="):
        inference.mle(model)


# --------------------------------------------------------------------------- the command line


@pytest.fixture(scope="module")
def quick_run(run_quick):
    out, done, rows = run_quick("policy")
    return out, rows, done


def test_quick_run_writes_figures_posteriors_and_summary(quick_run):
    out, rows, done = quick_run
    assert {p.name for p in (out / "figures" / "policy").iterdir()} == FIGURES
    posteriors = {f"{problem}_{scheme}.nc"
                  for problem in analysis.PROBLEMS for scheme in analysis.QUICK_SCHEMES}
    assert {p.name for p in (out / "results" / "policy").iterdir()} == posteriors | {"summary.csv"}
    assert list(rows[0]) == ["model", "estimator", "quantity", "value", "lower", "upper"]
    assert "frozenlake_advantage" in done.stdout   # the table is printed


def test_quick_run_reports_every_expected_return_below_the_optimum(quick_run):
    _, rows, _ = quick_run
    returns = {(r["model"], r["estimator"]): r for r in rows if r["quantity"] == "expected_return"}
    for problem in analysis.PROBLEMS:
        optimum = float(returns[problem, "optimal"]["value"])
        known = {"bandit": np.mean([2.0, 2.2, 2.5]), "frozenlake": 0.5420259}[problem]
        assert optimum == pytest.approx(known, abs=1e-5)   # the CSV keeps 6 significant digits
        assert (problem, "behavior") in returns
        for scheme in analysis.QUICK_SCHEMES:
            label = f"{problem}_{scheme}"
            assert {(label, "map"), (label, "posterior")} <= set(returns)
            posterior = returns[label, "posterior"]
            assert float(posterior["lower"]) <= float(posterior["value"]) <= float(posterior["upper"])
        for (model, _), row in returns.items():
            if model.startswith(problem):
                assert float(row["value"]) <= optimum + 1e-9
                if row["upper"]:
                    assert float(row["upper"]) <= optimum + 1e-9


def test_quick_run_advantage_wmle_does_not_exist_but_map_and_posterior_do(quick_run):
    _, rows, _ = quick_run
    value = {(r["model"], r["estimator"], r["quantity"]): r["value"] for r in rows}
    for problem in analysis.PROBLEMS:
        label = f"{problem}_advantage"
        assert value[label, "wmle", "exists"] == "0"
        assert (label, "wmle", "expected_return") not in value
        assert np.isfinite(float(value[label, "map", "expected_return"]))
        assert np.isfinite(float(value[label, "posterior", "expected_return"]))
        # Where every cell has positive weight, the WMLE exists and is reported (bandit: all actions
        # logged in every state; weights 1 and AWR's are positive).
    for scheme in ("behavior_cloning", "awr"):
        estimator = "mle" if scheme == "behavior_cloning" else "wmle"
        assert value[f"bandit_{scheme}", estimator, "exists"] == "1"
        assert (f"bandit_{scheme}", estimator, "expected_return") in value


def test_quick_run_counts_multimodal_states_among_those_with_negative_totals(quick_run):
    _, rows, _ = quick_run
    value = {(r["model"], r["estimator"], r["quantity"]): float(r["value"]) for r in rows if r["value"]}
    for problem in analysis.PROBLEMS:
        # Advantages sum to zero per state: every state's log density is concave, one mode each.
        assert value[f"{problem}_advantage", "weights", "multimodal_states"] == 0
        label = f"{problem}_offpolicy_truncated"
        several = value[label, "weights", "multimodal_states"]
        assert several <= value[label, "weights", "negative_state_totals"]
        if several > 0:
            assert value[label, "weights", "second_mode_gap"] > 0


def test_quick_run_advantage_posterior_matches_its_exact_gaussian(quick_run):
    """sum_a W_sa = 0 per state: the centred preferences are exactly Normal(W_s, I - 11'/n_actions)."""
    out, rows, _ = quick_run
    smallest_ess = {}
    for problem in analysis.PROBLEMS:
        idata = az.from_netcdf(out / "results" / "policy" / f"{problem}_advantage.nc")
        preference = idata.posterior["preference"]
        cells = idata.constant_data["weights"].values.reshape(preference.shape[-2:])
        mean = preference.mean(dim=("chain", "draw")).values
        error = az.mcse(idata, var_names=["preference"])["preference"].values
        assert np.max(np.abs(mean - cells) / error) < 5
        sd = preference.std(dim=("chain", "draw")).values
        # MCSE of the sd by the delta method: the variance is the mean of the squared deviations, whose
        # MCSE is their sd over the square root of their own ESS; sd = sqrt(variance) divides it by 2 sd.
        squared = (preference - preference.mean(dim=("chain", "draw"))) ** 2
        squared_ess = az.ess(squared.to_dataset(name="squared"))["squared"].values
        sd_error = squared.std(dim=("chain", "draw")).values / np.sqrt(squared_ess) / (2 * sd)
        assert np.max(np.abs(sd - np.sqrt(1 - 1 / preference.shape[-1])) / sd_error) < 5
        smallest_ess[problem] = float(az.ess(idata, var_names=["preference"])["preference"].min())
        attrs = idata.attrs
        assert attrs["problem"] == problem and attrs["scheme"] == "advantage" and attrs["point_exists"] == 0
    value = {(r["model"], r["estimator"], r["quantity"]): r for r in rows}
    for problem in analysis.PROBLEMS:
        nuts = value[f"{problem}_advantage", "posterior", "expected_return"]
        exact = value[f"{problem}_advantage", "exact_posterior", "expected_return"]
        width = float(exact["upper"]) - float(exact["lower"])
        # The return is a smooth function of the preferences: its MCSE is about its posterior sd (the
        # 95% interval's width / 3.92) over the square root of the preferences' smallest ESS; 5 MCSE.
        mcse = width / 3.92 / np.sqrt(smallest_ess[problem])
        assert abs(float(nuts["value"]) - float(exact["value"])) < 5 * mcse
