"""models.weighted on a Bambi model: the same log density as the model written by hand, agreement
with Bambi's own ``weighted()`` where it works, and the suite's estimators where it does not.

Bambi centres the predictors of a model with an intercept, so its ``Intercept`` is the intercept of
``x - mean(x)``: the hand-written models below centre ``x`` the same way. Priors are given explicitly
so that both sides use the same ones (Bambi's defaults are scaled by the data).
"""

import numpy as np
import pandas as pd
import pymc as pm
import pytest
import statsmodels.api as sm

import models
import models.sampling.dispatch
from models.errors import InputError
from models.estimation.estimators import mle_verdict

bmb = pytest.importorskip("bambi")   # the optional extra "bambi" (make setup installs it)

pytestmark = pytest.mark.python_mode

N = 40
RNG = np.random.default_rng(20261208)
X = RNG.normal(size=N)
WEIGHTS = RNG.uniform(0.3, 3.0, N)
FRAME = pd.DataFrame({"x": X, "w": WEIGHTS,
                      "clicked": RNG.binomial(1, 1 / (1 + np.exp(-(0.3 + X)))),
                      "count": RNG.poisson(np.exp(0.2 + 0.5 * X)),
                      "height": RNG.normal(1.0 + 0.8 * X, 1.3)})
PRIORS = {"Intercept": bmb.Prior("Normal", mu=0, sigma=2.0), "x": bmb.Prior("Normal", mu=0, sigma=1.5),
          "sigma": bmb.Prior("HalfNormal", sigma=2.0)}
FAMILIES = {"clicked": "bernoulli", "count": "poisson", "height": "gaussian"}


def _bambi(formula: str, frame=FRAME):
    response = formula.split("~")[0].strip()
    name = response[len("weighted("):].split(",")[0] if response.startswith("weighted(") else response
    priors = {k: v for k, v in PRIORS.items() if k != "sigma" or FAMILIES[name] == "gaussian"}
    return bmb.Model(formula, frame, family=FAMILIES[name], priors=priors)


def _random_points(model: pm.Model, count: int = 5):
    """Points on the unconstrained space, keyed by value-variable name."""
    rng = np.random.default_rng(7)
    return [{v.name: rng.normal(size=model.initial_point()[v.name].shape) for v in model.value_vars}
            for _ in range(count)]


def _by_hand(response: str):
    """The weighted model written with models.weighted_likelihood, centred as Bambi centres."""
    centred = X - X.mean()
    with pm.Model(coords={"__obs__": range(N)}) as model:
        # float64 scales, as Bambi passes them (PyMC stores a Python 2.0 as float32, whose log
        # differs from float64's by 1e-8)
        intercept = pm.Normal("Intercept", 0, np.float64(2.0))
        slope = pm.Normal("x", 0, np.float64(1.5))
        eta = intercept + slope * centred
        weights = pm.Data("weights", WEIGHTS, dims="__obs__")
        if response == "clicked":
            models.weighted_likelihood(response, pm.Bernoulli, weights, observed=FRAME[response].to_numpy(),
                                       dims="__obs__", p=pm.math.sigmoid(eta))
        elif response == "count":
            models.weighted_likelihood(response, pm.Poisson, weights, observed=FRAME[response].to_numpy(),
                                       dims="__obs__", mu=pm.math.exp(eta))
        else:
            sigma = pm.HalfNormal("sigma", np.float64(2.0))
            models.weighted_likelihood(response, pm.Normal, weights, observed=FRAME[response].to_numpy(),
                                       dims="__obs__", mu=eta, sigma=sigma)
    return model


@pytest.mark.parametrize("response", ["clicked", "count", "height"])
def test_a_weighted_bambi_model_is_the_model_written_by_hand(response):
    weighted = models.weighted(_bambi(f"{response} ~ x"), WEIGHTS)
    by_hand = _by_hand(response)
    assert {v.name for v in weighted.value_vars} == {v.name for v in by_hand.value_vars}
    for point in _random_points(by_hand):
        assert weighted.compile_logp()(point) == pytest.approx(by_hand.compile_logp()(point), rel=1e-10)
    assert models.estimator_name(weighted) == "wmle"


@pytest.mark.parametrize("response", ["count", "height"])
def test_where_bambis_own_weighted_works_the_two_log_densities_agree(response):
    ours = models.weighted(_bambi(f"{response} ~ x"), WEIGHTS)
    theirs = _bambi(f"weighted({response}, w) ~ x")
    theirs.build()
    for point in _random_points(ours):
        expected = theirs.backend.model.compile_logp()(point)
        assert ours.compile_logp()(point) == pytest.approx(expected, rel=1e-10)


def test_bambis_weighted_bernoulli_fails_where_the_transform_gives_the_suites_comparison():
    with pytest.raises(ValueError, match="truth value of an array"):   # Bambi 0.17.2, its issue #898
        _bambi("weighted(clicked, w) ~ x").build()
    weighted = models.weighted(_bambi("clicked ~ x"), WEIGHTS)
    result = models.compare(weighted, draws=100, tune=200, chains=2, random_seed=11)
    assert result.point_name == "wmle" and result.point is not None
    # The WMLE is statsmodels' GLM with frequency weights on the centred predictor. L-BFGS stops at a
    # relative gradient of 1e-12 (models.estimation.maximise), IRLS at 1e-12: agreement well within 1e-6.
    design = sm.add_constant(X - X.mean())
    glm = sm.GLM(FRAME["clicked"], design, family=sm.families.Binomial(), freq_weights=WEIGHTS).fit(tol=1e-12)
    np.testing.assert_allclose([result.point["Intercept"], result.point["x"]], glm.params, atol=1e-6)
    np.testing.assert_allclose(result.idata.log_likelihood["clicked"].values,
                               WEIGHTS * result.idata.unweighted_log_likelihood["clicked"].values, rtol=1e-12)
    assert np.isfinite(models.loo(result.idata, weights="population").elpd)
    assert result.idata.attrs["point_name"] == "wmle"


def test_a_separable_bambi_logistic_regression_gets_the_linear_programs_verdict():
    frame = FRAME.assign(clicked=(X > 0).astype(int))
    verdict = mle_verdict(models.weighted(_bambi("clicked ~ x", frame), WEIGHTS))
    assert verdict is not None and not verdict.exists and verdict.method == "linear program"
    assert "x -> +inf" in verdict.diverging
    mixed = mle_verdict(models.weighted(_bambi("clicked ~ x"), WEIGHTS))
    assert mixed is not None and mixed.exists


def test_a_bambi_model_weighted_already_or_unbuilt_is_handled():
    with pytest.raises(InputError, match=r"'weighted\(count, w\)' is weighted already"):
        models.weighted(_bambi("weighted(count, w) ~ x"), WEIGHTS)
    unbuilt = _bambi("count ~ x")
    assert not unbuilt.built
    models.weighted(unbuilt, WEIGHTS)
    assert unbuilt.built
    with pytest.raises(InputError, match="the weights of 'count'"):
        models.weighted(unbuilt, WEIGHTS[:-1])
    with pytest.raises(InputError, match="a pymc.Model or a bambi.Model, got str"):
        models.weighted("count ~ x", WEIGHTS)


def test_a_varying_intercept_bambi_model_samples_singly_and_batched():
    """Bambi names group terms ``1|g``, which PyTensor once read as a dtype in the suite's compiled
    log-likelihood and the batched engine's inputs: both run, and store one term per row."""
    frame = FRAME.assign(g=pd.Categorical(np.repeat(list("abcd"), N // 4)))
    weighted = models.weighted(_bambi("clicked ~ x + (1|g)", frame), WEIGHTS)
    idata = models.sample(weighted, draws=20, tune=20, chains=1, random_seed=3, sampler="pymc")
    assert idata.log_likelihood["clicked"].shape == (1, 20, N)
    assert "1|g_sigma" in idata.posterior
    if models.sampling.dispatch.batched_available():
        fits = models.sample_many(weighted, [{"weights": WEIGHTS}, {"weights": np.ones(N)}],
                                  random_seeds=[1, 2], draws=20, tune=20, chains=1, sampler="numpyro")
        assert fits.posterior["1|g_offset"].shape == (2, 1, 20, 4)
