"""The weighted likelihood bootstrap and the sandwich adjustment (models.calibrate)."""

import arviz as az
import numpy as np
import pymc as pm
import pytest
from scipy import stats

from models import calibrate, classes, coin, inference, policy
from models.errors import InputError
from models.estimation.existence import UnboundedLikelihoodError

pytestmark = pytest.mark.python_mode

FLIPS_20 = np.array([1, 0, 0, 1, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 1, 0, 0, 0])  # 7 heads of 20


def test_inference_re_exports_the_calibration_functions():
    assert inference.weighted_likelihood_bootstrap is calibrate.weighted_likelihood_bootstrap
    assert inference.sandwich_adjust is calibrate.sandwich_adjust


@pytest.mark.default_mode   # 500 optimisations: 1.2 s compiled, 5.5 s in Python mode
def test_wlb_of_the_unweighted_coin_is_the_bayesian_bootstrap():
    """With w = 1 the WLB draw is sum_heads e / sum e, e ~ Exp(1): exactly Beta(h, n - h), whose mean
    is ybar and variance ybar (1 - ybar) / (n + 1). Tolerances: 4 Monte Carlo standard errors of 500
    independent draws (mean: sd / sqrt(500); variance: var sqrt(2 / 499), the near-normal case)."""
    draws = 500
    idata = inference.weighted_likelihood_bootstrap(coin.build_model(FLIPS_20), draws, 11)
    p = idata.posterior["p"].values.ravel()
    n, ybar = FLIPS_20.size, FLIPS_20.mean()
    variance = ybar * (1 - ybar) / (n + 1)
    assert p.mean() == pytest.approx(ybar, abs=4 * np.sqrt(variance / draws))
    assert p.var(ddof=1) == pytest.approx(variance, rel=4 * np.sqrt(2 / (draws - 1)))
    heads = int(FLIPS_20.sum())
    assert stats.kstest(p, stats.beta(heads, n - heads).cdf).pvalue > 0.001
    assert idata.attrs["failed_draws"] == 0


def test_wlb_returns_inference_data_with_the_models_names_dims_and_coords():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(60, 2))
    y = (rng.uniform(size=60) < 1 / (1 + np.exp(-X[:, 0]))).astype(int)
    weights = rng.lognormal(0, 0.5, 60)
    model = classes.build_model(X, y, weights, feature_names=["a", "b"])
    idata = calibrate.weighted_likelihood_bootstrap(model, draws=15, random_seed=4)
    # The groups every InferenceData of the suite has (models.sampling.idata), less the sampler's.
    assert set(idata.groups()) == {"posterior", "observed_data", "constant_data"}
    np.testing.assert_array_equal(idata.observed_data["label"].values, y)
    assert idata.posterior["coef"].dims == ("chain", "draw", "feature")
    assert list(idata.posterior["feature"].values) == ["a", "b"]
    assert idata.posterior.sizes["chain"] == 1 and idata.posterior.sizes["draw"] == 15
    np.testing.assert_array_equal(idata.constant_data["weights"].values, weights)
    np.testing.assert_array_equal(model["weights"].get_value(), weights)  # restored after the draws
    assert idata.attrs["method"] == "weighted_likelihood_bootstrap" and idata.attrs["random_seed"] == 4
    assert az.summary(idata, kind="stats").shape[0] == 3
    again = calibrate.weighted_likelihood_bootstrap(model, draws=15, random_seed=4)
    np.testing.assert_array_equal(again.posterior["coef"].values, idata.posterior["coef"].values)


def test_wlb_keeps_deterministics():
    states, actions = np.array([0, 0, 0, 0, 1, 1, 1, 1]), np.array([0, 1, 2, 1, 0, 1, 2, 2])
    model = policy.build_model(states, actions, n_states=2, n_actions=3)  # every action taken: an MLE
    idata = calibrate.weighted_likelihood_bootstrap(model, draws=5, random_seed=1)
    assert idata.posterior["policy"].dims == ("chain", "draw", "state", "action")
    np.testing.assert_allclose(idata.posterior["policy"].sum("action").values, 1.0)


def test_wlb_refuses_bad_input_and_a_likelihood_without_maximiser():
    with pytest.raises(InputError, match="pymc.Model"):
        calibrate.weighted_likelihood_bootstrap("model", 10)
    model = coin.build_model(FLIPS_20)
    with pytest.raises(InputError, match="draws"):
        calibrate.weighted_likelihood_bootstrap(model, 0)
    with pytest.raises(InputError, match="random_seed"):
        calibrate.weighted_likelihood_bootstrap(model, 5, random_seed=-1)
    with pm.Model() as plain:
        pm.Normal("y", pm.Normal("mu"), 1, observed=[0.1, 0.2])
    with pytest.raises(InputError, match="pm.Data\\('weights'\\)"):
        calibrate.weighted_likelihood_bootstrap(plain, 5)
    signed = coin.build_model(FLIPS_20)
    pm.set_data({"weights": np.r_[-1.0, np.ones(19)]}, model=signed)
    with pytest.raises(InputError, match="non-negative"):
        calibrate.weighted_likelihood_bootstrap(signed, 5)
    separated = classes.build_model(np.array([[-2.0], [-1.0], [1.0], [2.0]]), np.array([0, 0, 1, 1]))
    with pytest.raises(UnboundedLikelihoodError, match="no weighted likelihood bootstrap"):
        calibrate.weighted_likelihood_bootstrap(separated, 5)


def _beta_draws(distribution, seed, chains=2, draws=2000):
    return az.from_dict(posterior={"p": distribution.rvs((chains, draws), random_state=seed)})


def test_sandwich_is_about_the_identity_for_unit_weights_and_a_well_specified_model():
    """Unit weights, Bernoulli data: J = n^2 / (n - 1) ybar (1 - ybar) and H = (n + 2) p (1 - p) on the
    logit scale (prior and Jacobian add 2), so V_adj / V = 1 - O(1/n), up to the Monte Carlo error of
    the variance of 4000 independent draws, sqrt(2 / 4000) = 2.2%. Tolerance 10%: 4 such errors plus 1/n."""
    flips = np.random.default_rng(3).binomial(1, 0.3, 400)
    model = coin.build_model(flips)
    posterior = _beta_draws(coin.exact_posterior(flips), seed=5)
    adjusted = calibrate.sandwich_adjust(model, posterior)
    assert adjusted.attrs["variance_ratio"][0] == pytest.approx(1.0, abs=0.1)
    before, after = posterior.posterior["p"].values, adjusted.posterior["p"].values
    assert after.shape == before.shape
    assert np.max(np.abs(after - before)) < 0.1 * before.std()
    assert after.mean() == pytest.approx(before.mean(), abs=0.02 * before.std())


def test_sandwich_hessian_is_the_models_symbolic_hessian(symbolic_hessian):
    """H, central differences of the compiled gradient, against PyTensor's symbolic second derivatives
    of the same log density, away from the mode of a weighted logistic regression with rare events:
    equal within 1e-6 of H's largest entry (the differences' error is about 1e-9 relative,
    ``SandwichAdjustment.matrices``)."""
    rng = np.random.default_rng(8)
    X = rng.normal(size=(300, 2))
    y = (rng.uniform(size=300) < np.where(X[:, 0] > 1, 0.2, 0.03)).astype(int)
    model = classes.build_model(X, y, np.where(y == 1, 5.0, 1.0))
    z = np.array([-2.0, 0.5, -0.3])   # intercept, coef
    hessian, _ = calibrate.SandwichAdjustment(model).matrices(z)
    exact = -symbolic_hessian(model)(z)
    np.testing.assert_allclose(hessian, exact, rtol=0, atol=1e-6 * np.abs(exact).max())


def test_sandwich_undoes_the_narrowing_by_a_common_weight_scale():
    """Weights all 9: the raw posterior is 3 times too narrow; the adjusted one has the spread of the
    unweighted posterior (tolerance 7%: 4 Monte Carlo errors of an sd from 4000 draws, 4.5%, plus
    O(1/n) prior and curvature terms at n = 100)."""
    flips = np.random.default_rng(4).binomial(1, 0.4, 100)
    weighted = coin.build_model(flips, np.full(100, 9.0))
    raw = _beta_draws(coin.exact_posterior(flips, np.full(100, 9.0)), seed=6)
    adjusted = calibrate.sandwich_adjust(weighted, raw)
    plain_sd = coin.exact_posterior(flips).std()
    assert raw.posterior["p"].values.std() == pytest.approx(plain_sd / 3, rel=0.07)
    assert adjusted.posterior["p"].values.std() == pytest.approx(plain_sd, rel=0.07)


@pytest.mark.default_mode
def test_sandwich_of_nuts_draws_ignores_the_weights_scale():
    """Logistic model, NUTS: multiplying the weights by 4 narrows the raw posterior (variance / 4) but
    the adjusted variance, H^-1 J H^-1 at the posterior mean, is the same up to the prior's share of
    H (coef ~ N(0, 2.5): 0.16 against a data curvature of ~40) and the Monte Carlo error of the
    posterior mean where it is evaluated: 5%."""
    rng = np.random.default_rng(5)
    X = rng.normal(size=(200, 1))
    y = (rng.uniform(size=200) < 1 / (1 + np.exp(-(0.3 + X[:, 0])))).astype(int)
    weights = rng.lognormal(-0.5, 1.0, 200)
    variances = {}
    model = classes.build_model(X, y, weights)
    adjust = calibrate.SandwichAdjustment(model)   # compiled once: the weights are data
    for scale in (1.0, 4.0):
        pm.set_data({"weights": scale * weights}, model=model)
        idata = inference.sample(model, draws=500, tune=500, chains=2, random_seed=7)
        adjusted = adjust(idata)
        variances[scale] = (idata.posterior["coef"].values.var(), adjusted.posterior["coef"].values.var())
        assert set(adjusted.groups()) >= {"posterior", "constant_data", "observed_data"}
        assert "log_likelihood" not in adjusted.groups() and adjusted.attrs["method"] == "sandwich_adjusted"
    assert variances[4.0][0] / variances[1.0][0] == pytest.approx(0.25, rel=0.3)  # MCMC noise of two fits
    assert variances[4.0][1] / variances[1.0][1] == pytest.approx(1.0, rel=0.05)


def test_sandwich_keeps_dims_and_recomputes_deterministics():
    states, actions = np.array([0, 0, 1, 1, 1, 0]), np.array([0, 1, 1, 2, 1, 2])
    model = policy.build_model(states, actions, n_states=2, n_actions=3)
    draws = np.random.default_rng(1).normal(0, 0.5, size=(2, 300, 2, 3))
    posterior = az.from_dict(posterior={"preference": draws}, dims={"preference": ["state", "action"]},
                             coords={"state": [0, 1], "action": [0, 1, 2]})
    adjusted = calibrate.sandwich_adjust(model, posterior)
    assert adjusted.posterior["preference"].dims == ("chain", "draw", "state", "action")
    np.testing.assert_allclose(adjusted.posterior["policy"].sum("action").values, 1.0)


def test_sandwich_refuses_bad_input():
    flips = FLIPS_20
    model = coin.build_model(flips)
    with pytest.raises(InputError, match="pymc.Model"):
        calibrate.sandwich_adjust(None, _beta_draws(coin.exact_posterior(flips), 1))
    with pytest.raises(InputError, match="posterior group"):
        calibrate.sandwich_adjust(model, {"p": [0.5]})
    with pytest.raises(InputError, match="no draws of \\['p'\\]"):
        calibrate.sandwich_adjust(model, az.from_dict(posterior={"q": np.zeros((1, 10))}))
    other_weights = az.from_dict(posterior={"p": np.full((1, 10), 0.4)},
                                 constant_data={"weights": np.full(20, 2.0)})
    with pytest.raises(InputError, match="other weights"):
        calibrate.sandwich_adjust(model, other_weights)
    with pytest.raises(InputError, match="positive definite"):  # all draws equal: no covariance
        calibrate.sandwich_adjust(model, az.from_dict(posterior={"p": np.full((1, 10), 0.4)}))
    with pm.Model() as potential_model:
        pm.Data("weights", np.ones(2))
        pm.Potential("loss", -pm.Normal("mu") ** 2)
    with pytest.raises(InputError, match="potentials"):
        calibrate.sandwich_adjust(potential_model, az.from_dict(posterior={"mu": np.zeros((1, 10))}))
