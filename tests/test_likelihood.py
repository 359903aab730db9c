"""The shared weighted term on other distributions: Normal location and Categorical (signature)."""

import numpy as np
import pymc as pm
import pytest
from scipy import stats

from models.likelihood import weighted_likelihood

pytestmark = pytest.mark.python_mode


def test_weighted_normal_term_equals_scipy_and_predicts_unweighted():
    y = np.array([0.3, -1.2, 2.5, 0.8])
    w = np.array([0.5, 2.0, 1.0, 3.0])
    with pm.Model(coords={"obs_id": range(4)}) as model:
        mu = pm.Normal("mu", 0.0, 10.0)
        weighted_likelihood("y", pm.Normal, pm.Data("weights", w, dims="obs_id"), observed=y,
                            dims="obs_id", mu=mu, sigma=np.float64(1.5))  # float32 if a bare 1.5
    logp = model.compile_logp(vars=model.observed_RVs)
    for m in (-1.0, 0.4, 2.0):
        assert logp({"mu": m}) == pytest.approx(np.sum(w * stats.norm(m, 1.5).logpdf(y)), rel=1e-12)
    # Predictive draws come from Normal(mu, 1.5), whatever the weights: their sd is 1.5.
    draws = pm.draw(model["y"], draws=4000, random_seed=1, givens={model["mu"]: 0.0})
    # sd of a sample sd of N = 16000 normals is about 1.5 / sqrt(2 N) = 0.0084: 4 of them.
    assert draws.std() == pytest.approx(1.5, abs=4 * 1.5 / np.sqrt(2 * draws.size))


def test_weighted_categorical_with_core_dimension():
    rng = np.random.default_rng(7)
    n, k = 12, 4
    actions = rng.integers(0, k, n)
    w = rng.uniform(0.2, 3.0, n)
    with pm.Model(coords={"obs_id": range(n), "action": range(k)}) as model:
        preference = pm.Normal("preference", 0.0, 1.0, dims="action")
        p = pm.math.softmax(preference)[None, :].repeat(n, axis=0)
        weighted_likelihood("action_taken", pm.Categorical, pm.Data("weights", w, dims="obs_id"),
                            observed=actions, dims="obs_id", signature="(k),()->()", p=p)
    preference = np.array([0.3, -0.7, 1.1, 0.0])
    probabilities = np.exp(preference) / np.exp(preference).sum()
    logp = model.compile_logp(vars=model.observed_RVs)({"preference": preference})
    assert logp == pytest.approx(np.sum(w * np.log(probabilities[actions])), rel=1e-12)


def test_a_zero_weight_drops_an_impossible_observation_exactly():
    # y = 3 is impossible under Bernoulli (log density -inf); weighted by zero it must vanish, not NaN.
    with pm.Model(coords={"obs_id": range(3)}) as model:
        p = pm.Beta("p", np.float64(2.0), np.float64(2.0))
        weighted_likelihood("y", pm.Bernoulli, pm.Data("weights", np.array([1.0, 1.0, 0.0]), dims="obs_id"),
                            observed=np.array([1, 0, 3]), dims="obs_id", p=p)
    logp = model.compile_logp(vars=model.observed_RVs)({"p_logodds__": np.array(0.0)})
    assert logp == pytest.approx(2 * np.log(0.5), rel=1e-12)


def test_softmax_term_has_finite_gradients_at_extreme_logits():
    # PyMC's Bernoulli/Categorical with logit_p give NaN gradients past logit ~40; the suite's term
    # must not (the MLE's existence check and separated data drive logits far out).
    import pytensor
    import pytensor.tensor as pt

    from models.likelihood import weighted_softmax

    with pm.Model(coords={"obs_id": range(2)}) as model:
        eta = pm.Flat("eta")
        logits = pt.stack([pt.zeros(2), pt.stack([eta, -eta])], axis=-1)
        weighted_softmax("y", logits, pm.Data("weights", np.array([1.0, 2.0]), dims="obs_id"),
                         observed=np.array([0, 1]), dims="obs_id")
    total = model.logp()
    f = pytensor.function(model.value_vars, [total, pytensor.grad(total, model.value_vars[0])])
    for value in (-800.0, -42.0, 0.0, 42.0, 800.0):
        log_density, gradient = f(np.float64(value))
        expected = -np.logaddexp(0, value) + 2 * -np.logaddexp(0, value)  # y = 0 at eta; y = 1 at -eta
        assert log_density == pytest.approx(expected, rel=1e-12) and np.isfinite(gradient)
