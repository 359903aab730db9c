"""Tier 1: the reinforcement-learning weights (returns, advantages, AWR, importance ratios, PSIS k-hat)
against hand-computed values and their formulas, and their refusals of bad input."""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from models import weights
from models.errors import InputError

# Two episodes: steps 0-2 and 3-4.
REWARDS = np.array([1.0, 0.0, 2.0, 1.0, 1.0])
ENDS = np.array([False, False, True, False, True])


# --------------------------------------------------------------------------- returns and advantages


@pytest.mark.parametrize("gamma, expected", [
    (0.5, [1 + 0.5 * (0 + 0.5 * 2), 0 + 0.5 * 2, 2, 1 + 0.5 * 1, 1]),
    (0.0, REWARDS),
    (1.0, [3, 2, 2, 2, 1]),
])
def test_returns_to_go_restart_after_every_episode_end(gamma, expected):
    np.testing.assert_allclose(weights.returns_to_go(REWARDS, ENDS, gamma), expected, rtol=1e-15)


def test_returns_to_go_accept_zero_one_episode_ends():
    np.testing.assert_array_equal(weights.returns_to_go(REWARDS, ENDS.astype(int), 0.5),
                                  weights.returns_to_go(REWARDS, ENDS, 0.5))


@pytest.mark.parametrize("rewards, ends, gamma, message", [
    (REWARDS, [0, 0, 1, 0, 0], 0.9, "the last episode has no end"),
    (REWARDS, ENDS, 1.5, r"gamma must be a number in \[0, 1\]"),
    (REWARDS, ENDS, -0.1, "gamma"),
    (REWARDS, ENDS, np.nan, "gamma"),
    (REWARDS, ENDS, True, "gamma"),
    (REWARDS, ENDS[:4], 0.9, "episode_ends must be 5 booleans"),
    (REWARDS, [0, 0, 2, 0, 1], 0.9, "episode_ends must be 5 booleans"),
    ([1.0, np.nan], [0, 1], 0.9, "rewards has 1 NaN"),
    ([], [], 0.9, "rewards must be a non-empty"),
])
def test_returns_to_go_refuse_bad_input(rewards, ends, gamma, message):
    with pytest.raises(ValueError, match=message):
        weights.returns_to_go(rewards, ends, gamma)


def test_advantages_subtract_the_mean_return_of_each_state():
    returns = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    states = np.array([0, 1, 0, 1, 2])
    # Baselines: state 0 mean(1, 3) = 2, state 1 mean(2, 4) = 3, state 2 5; state 3 unvisited.
    advantage = weights.advantages(returns, states, n_states=4)
    np.testing.assert_allclose(advantage, [-1.0, -1.0, 1.0, 1.0, 0.0], rtol=1e-15)
    assert np.bincount(states, weights=advantage) == pytest.approx(np.zeros(3), abs=1e-15)


@pytest.mark.parametrize("returns, states, n_states, message", [
    ([1.0, 2.0], [0, 2], 2, "states must be codes 0 .. 1"),
    ([1.0, 2.0], [0, 0.5], 2, "states must be integer codes"),
    ([1.0, 2.0], [0], 2, "states has length 1 but returns has length 2"),
    ([1.0, 2.0], [0, 1], 0, "n_states must be a positive integer"),
    ([1.0, np.inf], [0, 1], 2, "returns has 1 NaN or infinite"),
])
def test_advantages_refuse_bad_input(returns, states, n_states, message):
    with pytest.raises(ValueError, match=message):
        weights.advantages(returns, states, n_states=n_states)


def test_check_codes_accepts_whole_floats_and_refuses_bools():
    np.testing.assert_array_equal(weights.check_codes([2.0, 0.0], 3, name="states"), [2, 0])
    assert weights.check_codes([2.0, 0.0], 3).dtype == np.int64
    with pytest.raises(ValueError, match="actions must be integer codes 0 .. 1, got dtype bool"):
        weights.check_codes([True, False], 2, name="actions")


# --------------------------------------------------------------------------- AWR


def test_awr_is_exp_of_advantage_over_temperature_capped():
    advantage = np.array([-2.0, 0.0, 0.5, 1.0, 3.0])
    np.testing.assert_allclose(weights.awr(advantage, temperature=0.5, max_weight=20.0),
                               np.minimum(np.exp(advantage / 0.5), 20.0), rtol=1e-15)
    np.testing.assert_allclose(weights.awr(advantage), np.minimum(np.exp(advantage), 20.0), rtol=1e-15)
    assert weights.awr([10.0], max_weight=5.0)[0] == pytest.approx(5.0, rel=1e-15)


def test_awr_does_not_overflow():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow warning either
        capped = weights.awr([1e4, -1e4, 1e300], temperature=1e-3)
    np.testing.assert_allclose(capped, [20.0, 0.0, 20.0], rtol=1e-15)


@pytest.mark.parametrize("arguments, message", [
    ({"temperature": 0.0}, "temperature must be a finite positive number"),
    ({"temperature": np.inf}, "temperature"),
    ({"max_weight": -1.0}, "max_weight must be a finite positive number"),
    ({"max_weight": "big"}, "max_weight"),
])
def test_awr_refuses_bad_settings(arguments, message):
    with pytest.raises(ValueError, match=message):
        weights.awr([0.0, 1.0], **arguments)
    with pytest.raises(ValueError, match="advantages has 1 NaN"):
        weights.awr([0.0, np.nan])


# --------------------------------------------------------------------------- importance ratios

TARGET = np.array([0.9, 0.1, 0.5, 0.0, 1.0])
BEHAVIOR = np.array([0.3, 0.5, 0.5, 0.2, 0.25])
RATIOS = TARGET / BEHAVIOR  # 3, 0.2, 1, 0, 4


def test_importance_ratios_ordinary_clipped_truncated():
    np.testing.assert_allclose(weights.importance_ratios(TARGET, BEHAVIOR), RATIOS, rtol=1e-15)
    np.testing.assert_allclose(weights.importance_ratios(TARGET, BEHAVIOR, clip=0.2),
                               [1.2, 0.8, 1.0, 0.8, 1.2], rtol=1e-15)
    np.testing.assert_allclose(weights.importance_ratios(TARGET, BEHAVIOR, truncate=1.0),
                               np.minimum(RATIOS, 1.0), rtol=1e-15)


def test_self_normalised_ratios_sum_to_n():
    normalised = weights.normalize(weights.importance_ratios(TARGET, BEHAVIOR), "n")
    assert normalised.sum() == pytest.approx(TARGET.size, rel=1e-15)
    np.testing.assert_allclose(normalised / normalised[0], RATIOS / RATIOS[0], rtol=1e-15)


@pytest.mark.parametrize("target, behavior, arguments, message", [
    (TARGET, [0.3, 0.5, 0.0, 0.2, 0.25], {}, r"behavior_prob must be in \(0, 1\].*got 0 at index 2"),
    (TARGET, [0.3, 0.5, 1.5, 0.2, 0.25], {}, "behavior_prob must be in"),
    ([0.9, 1.2, 0.5, 0.0, 1.0], BEHAVIOR, {}, r"target_prob must be .*in \[0, 1\], got 1.2 at index 1"),
    (TARGET, BEHAVIOR[:3], {}, "target_prob has length 5 but behavior_prob has length 3"),
    (TARGET, BEHAVIOR, {"clip": 0.2, "truncate": 1.0}, "not both"),
    (TARGET, BEHAVIOR, {"clip": 1.0}, r"clip must be a number in \(0, 1\)"),
    (TARGET, BEHAVIOR, {"truncate": 0.0}, "truncate must be a finite positive number"),
    ([np.nan] * 5, BEHAVIOR, {}, "target_prob has 5 NaN"),
])
def test_importance_ratios_refuse_bad_input(target, behavior, arguments, message):
    with pytest.raises(ValueError, match=message):
        weights.importance_ratios(target, behavior, **arguments)


@st.composite
def invalid_probabilities(draw):
    """Valid (target_prob, behavior_prob) but for one defect in one of them, and that one's name."""
    n = draw(st.integers(1, 20))
    probabilities = {"target_prob": draw(arrays(float, n, elements=st.floats(0.0, 1.0))),
                     "behavior_prob": draw(arrays(float, n, elements=st.floats(0.01, 1.0)))}
    name = draw(st.sampled_from(sorted(probabilities)))
    bad = st.floats(1.0, 1e6, exclude_min=True) | st.floats(-1e6, 0.0, exclude_max=True) | st.just(np.nan)
    if name == "behavior_prob":
        bad |= st.just(0.0)  # an action cannot have been logged with probability 0
    probabilities[name][draw(st.integers(0, n - 1))] = draw(bad)
    return probabilities, name


@settings(max_examples=200, deadline=None)
@given(invalid_probabilities())
def test_invalid_probabilities_are_refused_naming_the_argument(case):
    probabilities, name = case
    with pytest.raises(ValueError, match=f"^{name} "):
        weights.importance_ratios(**probabilities)


# --------------------------------------------------------------------------- PSIS k-hat


def test_psis_khat_small_for_light_and_large_for_heavy_tails():
    rng = np.random.default_rng(0)
    # log weights N(0, 0.1^2): lognormal weights, all moments finite; k-hat was 0.03 with this seed.
    assert weights.psis_khat(rng.normal(0.0, 0.1, 1000)) < 0.5
    # log weights E ~ Exp(1): weights exp(E) are Pareto with P(w > x) = 1 / x, tail shape k = 1
    # (infinite mean); k-hat was 0.96 with this seed, and 0.88 to 1.32 over seeds 0-4.
    assert weights.psis_khat(rng.exponential(1.0, 1000)) > 0.7


def test_psis_khat_ignores_an_additive_constant_and_allows_zero_weights():
    log_weights = np.random.default_rng(1).normal(0.0, 0.5, 500)
    assert weights.psis_khat(log_weights + 100.0) == pytest.approx(weights.psis_khat(log_weights), abs=1e-9)
    log_weights[:3] = -np.inf
    assert np.isfinite(weights.psis_khat(log_weights))


@pytest.mark.parametrize("log_weights, message", [
    ([0.0, np.nan, 1.0], "log_weights has 1 NaN or \\+inf"),
    ([0.0, np.inf, 1.0], "log_weights has 1 NaN or \\+inf"),
    ([-np.inf, -np.inf], "all -inf"),
    ([[0.0, 1.0]], "one-dimensional"),
    ([], "non-empty"),
    (["a", "b"], "log_weights must be numbers"),
])
def test_psis_khat_refuses_bad_input(log_weights, message):
    with pytest.raises(ValueError, match=message):
        weights.psis_khat(log_weights)


def test_magnitude_diagnostics_use_the_size_of_signed_weights():
    signed = np.array([2.0, -2.0, 1.0, -1.0])
    diagnostics = weights.magnitude_diagnostics(signed)
    # Kish ESS of |w| = (sum |w|)^2 / sum w^2 = 36 / 10
    assert diagnostics["kish_ess"] == pytest.approx(3.6)
    assert diagnostics == pytest.approx(weights.magnitude_diagnostics(np.abs(signed)), nan_ok=True)
    assert np.isnan(diagnostics["psis_khat"])   # four weights: too short a tail for ArviZ
    rng = np.random.default_rng(1)
    heavy = rng.pareto(1.0, 2000) * np.where(rng.random(2000) < 0.5, -1, 1)   # tail index 1: k-hat ~ 1
    assert weights.magnitude_diagnostics(heavy)["psis_khat"] > 0.7
    with pytest.raises(InputError, match="all zero"):
        weights.magnitude_diagnostics(np.zeros(3))


def test_ratio_diagnostics_multiply_the_ratios_of_each_episode():
    rho = np.array([2.0, 0.5, 4.0, 1.0, 1.0])
    ends = np.array([False, True, False, False, True])   # episodes: steps 0-1 and 2-4
    diagnostics = weights.ratio_diagnostics(rho, ends)
    assert diagnostics["ratio_kish_ess"] == pytest.approx(weights.kish_ess(rho))
    # products 1 and 4: Kish ESS (1 + 4)^2 / (1 + 16)
    assert diagnostics["episode_ratio_kish_ess"] == pytest.approx(25 / 17)
    assert np.isnan(diagnostics["episode_ratio_psis_khat"])   # two episodes: no tail to fit
    one_step = weights.ratio_diagnostics(rho, np.ones(5, dtype=bool))   # a bandit: products = ratios
    assert one_step["episode_ratio_kish_ess"] == pytest.approx(one_step["ratio_kish_ess"])
    with pytest.raises(InputError, match="positive"):
        weights.ratio_diagnostics(np.array([1.0, 0.0]), np.array([True, True]))
    with pytest.raises(InputError, match="episode_ends must be 2 booleans"):
        weights.ratio_diagnostics(np.array([1.0, 2.0]), np.array([True]))
