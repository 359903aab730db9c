"""Tier 1: weight validation, normalisation and Kish's effective sample size against their formulas."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from models import weights

positive_weights = arrays(float, st.integers(1, 40), elements=st.floats(1e-3, 1e3))


def test_check_none_means_ones():
    np.testing.assert_array_equal(weights.check(None, 4), np.ones(4))


def test_check_returns_a_float_copy():
    given = np.array([1.0, 2.0, 3.0])
    w = weights.check(given, 3)
    assert w.dtype == float and w is not given
    w[0] = 99.0
    assert given[0] == 1.0
    np.testing.assert_array_equal(weights.check([1, 2, 3], 3), [1.0, 2.0, 3.0])


@pytest.mark.parametrize(
    "bad, n, problem",
    [
        ([1.0, np.nan, 1.0], 3, "NaN"),
        ([1.0, np.inf, 1.0], 3, "infinite"),
        ([1.0, 1.0], 3, "length 2, expected 3"),
        ([[1.0, 1.0, 1.0]], 3, "one-dimensional"),
        ([1.0, -0.5, 1.0], 3, "negative"),
        ([0.0, 0.0, 0.0], 3, "all zero"),
        (["a", "b", "c"], 3, "must be numbers"),
    ],
)
def test_check_refuses_bad_weights_naming_them(bad, n, problem):
    with pytest.raises(ValueError, match="weights") as raised:
        weights.check(bad, n)
    assert problem in str(raised.value)


def test_check_names_the_argument_it_is_given():
    with pytest.raises(ValueError, match="^advantages has 1 NaN"):
        weights.check([np.nan, 1.0], 2, name="advantages")


def test_negative_weights_pass_when_allowed():
    np.testing.assert_array_equal(weights.check([1.0, -2.0], 2, allow_negative=True), [1.0, -2.0])


def test_check_refuses_bad_n():
    with pytest.raises(ValueError, match="n must be a positive integer"):
        weights.check(None, 0)


def test_kish_ess_known_values(key_weights):
    assert weights.kish_ess(np.ones(7)) == pytest.approx(7.0, rel=1e-15)
    assert weights.kish_ess([0.0, 5.0, 0.0]) == pytest.approx(1.0, rel=1e-15)
    assert weights.kish_ess(key_weights) == pytest.approx(19.0**2 / 109.0, rel=1e-15)


def test_kish_ess_refuses_all_zero():
    with pytest.raises(ValueError):
        weights.kish_ess([0.0, 0.0])


@pytest.mark.parametrize("how, target", [("none", 19.0), ("n", 10.0), ("ess", 19.0**2 / 109.0)])
def test_normalize_sums_and_keeps_ratios(key_weights, how, target):
    w = weights.normalize(key_weights, how)
    assert w.sum() == pytest.approx(target, rel=1e-12)
    np.testing.assert_allclose(w / w[0], key_weights / key_weights[0], rtol=1e-12)


def test_normalize_none_is_a_copy(key_weights):
    w = weights.normalize(key_weights, "none")
    w[0] = 99.0
    assert key_weights[0] == 1.0


def test_normalize_refuses_unknown_scheme_and_non_positive_sum():
    with pytest.raises(ValueError, match="normalize must be one of"):
        weights.normalize([1.0, 2.0], "max")
    with pytest.raises(ValueError, match="sum is -1"):
        weights.normalize([1.0, -2.0], "n")


@settings(max_examples=60, deadline=None)
@given(positive_weights, st.floats(1e-2, 1e2))
def test_normalize_n_and_ess_ignore_the_scale_of_the_weights(w, scale):
    for how in ("n", "ess"):
        np.testing.assert_allclose(weights.normalize(scale * w, how), weights.normalize(w, how), rtol=1e-9)
    assert weights.kish_ess(scale * w) == pytest.approx(weights.kish_ess(w), rel=1e-9)
    assert 1.0 - 1e-9 <= weights.kish_ess(w) <= w.size + 1e-9
