"""Property-based tests (hypothesis) of the coin: random valid input gives finite, exact log
densities; random invalid input is refused with ValueError. (The weight invariants every family
shares are checked once, in test_invariants.py.)"""

import functools

import numpy as np
import pymc as pm
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import special, stats

from models import coin, weights

pytestmark = pytest.mark.python_mode

FAST = settings(max_examples=200, deadline=None)  # no compilation: 200 examples take ~1 s
COMPILING = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@functools.cache
def compiled_coin():
    """One coin model compiled once (log density without Jacobian and its gradient): every example's
    model is built by ``coin.build_model`` (which checks it) and its data, weights and prior are
    swapped into this one, whatever their length."""
    model = coin.build_model([0, 1])
    return model, model.compile_logp(jacobian=False), model.compile_dlogp()


def on_compiled_coin(built):
    """The compiled coin model holding ``built``'s data, prior and weights."""
    model, *functions = compiled_coin()
    names = ("flips", "weights", "prior_a", "prior_b")
    pm.set_data({name: built[name].get_value() for name in names}, model=model,
                coords={"toss": np.arange(built["flips"].get_value().size)})
    return functions


sizes = st.integers(1, 25)
flip_arrays = sizes.flatmap(lambda n: arrays(np.int64, n, elements=st.integers(0, 1)))
priors = st.tuples(st.floats(0.1, 20.0), st.floats(0.1, 20.0))


def positive_weights(n):
    return arrays(float, n, elements=st.floats(0.0, 50.0)).filter(lambda w: w.sum() > 0)


@st.composite
def invalid_weights(draw):
    """A weight vector for n observations with exactly one kind of defect, and that defect's word."""
    n = draw(st.integers(1, 20))
    w = draw(arrays(float, n, elements=st.floats(0.1, 10.0)))
    defect = draw(st.sampled_from(["NaN", "infinite", "negative", "all zero", "length"]))
    index = draw(st.integers(0, n - 1))
    if defect == "NaN":
        w[index] = np.nan
    elif defect == "infinite":
        w[index] = draw(st.sampled_from([np.inf, -np.inf]))
    elif defect == "negative":
        w[index] = -draw(st.floats(1e-9, 1e6))
    elif defect == "all zero":
        w[:] = 0.0
    else:
        w = np.append(w, draw(arrays(float, draw(st.integers(1, 3)), elements=st.floats(0.1, 10.0))))
    return n, w, defect


@FAST
@given(invalid_weights())
def test_invalid_weights_are_refused_naming_the_defect(case):
    n, w, defect = case
    with pytest.raises(ValueError, match="weights") as raised:
        weights.check(w, n)
    assert defect in str(raised.value)


@FAST
@given(sizes.flatmap(lambda n: arrays(np.int64, n, elements=st.integers(-5, 5))))
def test_flips_outside_zero_one_are_refused(flips):
    assume(not np.isin(flips, (0, 1)).all())
    with pytest.raises(ValueError, match="flips must hold only 0"):
        coin.build_model(flips)


@FAST
@given(st.tuples(st.floats(-10.0, 0.0) | st.just(np.nan) | st.just(np.inf), st.floats(0.1, 5.0)))
def test_improper_beta_priors_are_refused(prior):
    with pytest.raises(ValueError, match="prior Beta"):
        coin.build_model([1, 0], prior=prior)


@COMPILING
@given(flip_arrays.flatmap(lambda y: st.tuples(st.just(y), positive_weights(y.size))), priors,
       st.floats(-4.0, 4.0))
def test_random_valid_coins_have_finite_exact_logp_and_gradient(data, prior, log_odds):
    flips, w = data
    logp, dlogp = on_compiled_coin(coin.build_model(flips, w, prior=prior))
    point = {"p_logodds__": np.array(log_odds)}
    p = special.expit(log_odds)
    expected = stats.beta(*prior).logpdf(p) + np.sum(w * stats.bernoulli(p).logpmf(flips))
    assert logp(point) == pytest.approx(expected, rel=1e-9, abs=1e-9)
    assert np.all(np.isfinite(dlogp(point)))


