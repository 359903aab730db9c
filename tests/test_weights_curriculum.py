"""Tier 1: curriculum weights and the difficulty helpers against their formulas and stated properties."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from models import weights

difficulties = arrays(float, st.integers(2, 60), elements=st.floats(0.0, 1.0))
progresses = st.floats(0.0, 1.0)
sharpnesses = st.floats(0.01, weights.MAX_SHARPNESS)
schedules = st.sampled_from(weights.CURRICULUM_SCHEDULES)
FAST = settings(max_examples=200, deadline=None)


@FAST
@given(difficulties, progresses, schedules, sharpnesses)
def test_weights_are_positive_finite_and_have_mean_one(d, t, schedule, s):
    w = weights.curriculum(d, t, schedule=schedule, sharpness=s)
    assert w.shape == d.shape
    assert np.all(np.isfinite(w)) and np.all(w > 0)
    assert w.mean() == pytest.approx(1.0, rel=1e-12)


@FAST
@given(difficulties, sharpnesses)
def test_easy_to_hard_falls_with_difficulty_at_the_start_and_rises_at_the_end(d, s):
    order = np.argsort(d)
    start = weights.curriculum(d, 0.0, sharpness=s)[order]
    end = weights.curriculum(d, 1.0, sharpness=s)[order]
    assert np.all(np.diff(start) <= 0) and np.all(np.diff(end) >= 0)


def test_easy_to_hard_is_the_exponential_tilt_of_its_formula():
    d = np.array([0.0, 0.25, 0.5, 1.0])
    for t in (0.0, 0.3, 1.0):
        expected = np.exp(4.0 * (2 * t - 1) * d)
        np.testing.assert_allclose(weights.curriculum(d, t, sharpness=4.0), expected / expected.mean(),
                                   rtol=1e-12)
    # Strictly monotone at the ends: the easiest sample weighs e^s times the hardest.
    w = weights.curriculum(d, 0.0, sharpness=4.0)
    assert w[0] / w[-1] == pytest.approx(np.exp(4.0), rel=1e-12)
    np.testing.assert_allclose(weights.curriculum(d, 0.5), np.ones(4), rtol=1e-12)  # flat halfway


@FAST
@given(difficulties, progresses, sharpnesses)
def test_hard_to_easy_mirrors_easy_to_hard(d, t, s):
    mirrored = weights.curriculum(d, t, schedule="hard_to_easy", sharpness=s)
    np.testing.assert_allclose(mirrored, weights.curriculum(d, 1 - t, sharpness=s), rtol=1e-9)
    np.testing.assert_allclose(mirrored, weights.curriculum(1 - d, t, sharpness=s), rtol=1e-9)


@FAST
@given(difficulties, progresses, sharpnesses)
def test_self_paced_never_favours_harder_samples(d, t, s):
    order = np.argsort(d)
    w = weights.curriculum(d, t, schedule="self_paced", sharpness=s)[order]
    assert np.all(np.diff(w) <= 1e-12)


def test_self_paced_threshold_grows_with_progress():
    d = np.linspace(0, 1, 1001)
    floor = weights.SELF_PACED_FLOOR
    admitted = []
    for t in np.linspace(0, 1, 11):
        w = weights.curriculum(d, t, schedule="self_paced", sharpness=20.0)
        full = floor + (1 - floor) / (1 + np.exp(-20.0 * (t - d)))  # before the mean-1 scaling
        np.testing.assert_allclose(w, full / full.mean(), rtol=1e-12)
        # A sample counts as admitted at above half the full weight: the share is about t.
        admitted.append(np.mean(full > (1 + floor) / 2))
    assert np.all(np.diff(admitted) > 0)
    np.testing.assert_allclose(admitted, np.linspace(0, 1, 11), atol=0.002)
    # The hardest sample never falls below the floor: its weight relative to the easiest one.
    w = weights.curriculum(d, 0.0, schedule="self_paced", sharpness=weights.MAX_SHARPNESS)
    assert w[-1] / w[0] >= floor / 1.0


def test_margin_difficulty_is_one_minus_the_rank_of_the_distance():
    margin = np.array([-2.0, 0.1, 3.0, -0.5, 1.0])
    np.testing.assert_allclose(weights.margin_difficulty(margin), [0.25, 1.0, 0.0, 0.75, 0.5])
    # Ties share their mean rank: |-1| = |1|.
    np.testing.assert_allclose(weights.margin_difficulty([-1.0, 1.0, 0.0]), [0.25, 0.25, 1.0])


def test_loss_difficulty_is_the_rank_of_the_loss():
    np.testing.assert_allclose(weights.loss_difficulty([0.7, 0.1, 2.0, 0.7]), [0.5, 0.0, 1.0, 0.5])
    np.testing.assert_array_equal(weights.loss_difficulty([3.0]), [0.0])


@given(arrays(float, st.integers(2, 50), elements=st.floats(0.0, 1e3), unique=True))
def test_distinct_values_give_difficulties_evenly_spread_over_the_unit_interval(values):
    n = values.size
    np.testing.assert_allclose(np.sort(weights.loss_difficulty(values)), np.linspace(0, 1, n), atol=1e-12)
    signs = np.where(np.arange(n) % 2 == 0, 1.0, -1.0)  # the margin's sign does not matter
    np.testing.assert_allclose(weights.margin_difficulty(signs * values), 1 - weights.loss_difficulty(values),
                               atol=1e-12)


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        ({"difficulty": [0.2, 1.5], "progress": 0.5}, "difficulty"),
        ({"difficulty": [0.2, -0.1], "progress": 0.5}, "difficulty"),
        ({"difficulty": [0.2, np.nan], "progress": 0.5}, "difficulty"),
        ({"difficulty": [[0.2, 0.3]], "progress": 0.5}, "difficulty"),
        ({"difficulty": [], "progress": 0.5}, "difficulty"),
        ({"difficulty": ["easy"], "progress": 0.5}, "difficulty"),
        ({"difficulty": [0.2], "progress": -0.01}, "progress"),
        ({"difficulty": [0.2], "progress": 1.01}, "progress"),
        ({"difficulty": [0.2], "progress": np.nan}, "progress"),
        ({"difficulty": [0.2], "progress": np.inf}, "progress"),
        ({"difficulty": [0.2], "progress": True}, "progress"),
        ({"difficulty": [0.2], "progress": "0.5"}, "progress"),
        ({"difficulty": [0.2], "progress": [0.5]}, "progress"),
        ({"difficulty": [0.2], "progress": 0.5, "schedule": "random"}, "schedule"),
        ({"difficulty": [0.2], "progress": 0.5, "sharpness": 0.0}, "sharpness"),
        ({"difficulty": [0.2], "progress": 0.5, "sharpness": -1.0}, "sharpness"),
        ({"difficulty": [0.2], "progress": 0.5, "sharpness": np.inf}, "sharpness"),
        ({"difficulty": [0.2], "progress": 0.5, "sharpness": np.nan}, "sharpness"),
        ({"difficulty": [0.2], "progress": 0.5, "sharpness": 51.0}, "sharpness"),
        ({"difficulty": [0.2], "progress": 0.5, "sharpness": True}, "sharpness"),
    ],
)
def test_curriculum_refuses_bad_input_naming_the_argument(kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        weights.curriculum(**kwargs)


@pytest.mark.parametrize("helper", [weights.margin_difficulty, weights.loss_difficulty])
@pytest.mark.parametrize("bad", [[1.0, np.nan], [np.inf, 1.0], [], [[1.0, 2.0]]])
def test_difficulty_helpers_refuse_bad_input(helper, bad):
    with pytest.raises(ValueError, match="margin|loss"):
        helper(bad)
