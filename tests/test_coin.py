"""The weighted coin model: exact log densities (tier 1), structure (tier 2), NUTS recovery (tier 3)."""

import cloudpickle
import numpy as np
import pytest
from scipy import special, stats

from models import coin, inference

pytestmark = pytest.mark.python_mode

PRIOR = (2.0, 2.0)
LOGIT_GRID = (-2.0, -0.3, 0.0, 0.9, 3.5)


def likelihood_at(model, p):
    """The model's compiled weighted-likelihood term at p (value variable on the log-odds scale)."""
    logp = model.compile_logp(vars=model.observed_RVs, jacobian=False)
    return logp({"p_logodds__": special.logit(p)})


def scipy_weighted(flips, weights, p):
    return np.sum(weights * stats.bernoulli(p).logpmf(flips))


# --------------------------------------------------------------------------- tier 1: log densities


@pytest.mark.parametrize("z", LOGIT_GRID)
def test_weighted_term_equals_scipy_sum(flips, key_weights, z):
    model = coin.build_model(flips, key_weights, prior=PRIOR)
    p = special.expit(z)
    # Same arithmetic up to rounding: relative 1e-12.
    assert likelihood_at(model, p) == pytest.approx(scipy_weighted(flips, key_weights, p), rel=1e-12)


@pytest.mark.parametrize("z", LOGIT_GRID)
def test_total_logp_is_prior_plus_weighted_sum(flips, key_weights, z):
    model = coin.build_model(flips, key_weights, prior=PRIOR)
    p = special.expit(z)
    expected = stats.beta(*PRIOR).logpdf(p) + scipy_weighted(flips, key_weights, p)
    total = model.compile_logp(jacobian=False)({"p_logodds__": z})
    assert total == pytest.approx(expected, rel=1e-12)


def test_exact_posterior_is_the_conjugate_beta(flips, key_weights):
    scaled = {"none": 1.0, "n": 10 / 19, "ess": (361 / 109) / 19}  # sum 19 -> 10 or Kish ESS 361/109
    for how, factor in scaled.items():
        w = key_weights * factor
        posterior = coin.exact_posterior(flips, key_weights, prior=PRIOR, normalize=how)
        a, b = posterior.args
        assert a == pytest.approx(PRIOR[0] + np.sum(w * flips), rel=1e-12)
        assert b == pytest.approx(PRIOR[1] + np.sum(w * (1 - flips)), rel=1e-12)


def test_posterior_sd_shrinks_like_one_over_sqrt_of_total_weight(flips):
    # Multiplying every weight by c multiplies the Beta pseudo-counts by c; once they dwarf the
    # prior's, sd * sqrt(c n) -> sqrt(p_hat (1 - p_hat)) = sqrt(0.21). At c = 100 the prior's share is
    # 4 / 1004 of the counts, so 1% relative is ample; at c = 1 it is not (the prior still matters).
    for c in (100.0, 10_000.0):
        sd = coin.exact_posterior(flips, np.full(10, c), prior=PRIOR).std()
        assert sd * np.sqrt(c * flips.size) == pytest.approx(np.sqrt(0.21), rel=0.01)


# --------------------------------------------------------------------------- tier 2: structure


def test_names_dims_and_data(flips, key_weights):
    model = coin.build_model(flips, key_weights, prior=PRIOR, normalize="n")
    assert [rv.name for rv in model.free_RVs] == ["p"]
    assert [rv.name for rv in model.observed_RVs] == ["heads"]
    assert model.named_vars_to_dims["heads"] == ("toss",)
    assert list(model.coords["toss"]) == list(range(10))
    np.testing.assert_allclose(model["weights"].get_value(), key_weights * 10 / 19)
    np.testing.assert_array_equal(model["flips"].get_value(), flips)
    point = model.initial_point()
    assert np.isfinite(model.compile_logp()(point))
    assert np.all(np.isfinite(model.compile_dlogp()(point)))


@pytest.mark.parametrize(
    "flips, weights, prior, message",
    [
        ([1, 0, 2], None, PRIOR, "only 0 .tails. and 1"),
        ([], None, PRIOR, "non-empty"),
        ([[1, 0]], None, PRIOR, "one-dimensional"),
        ([1, 0, 1], [1.0, np.nan, 1.0], PRIOR, "weights has 1 NaN"),
        ([1, 0, 1], [1.0, -1.0, 1.0], PRIOR, "weights has 1 negative"),
        ([1, 0, 1], [1.0, 1.0], PRIOR, "weights has length 2"),
        ([1, 0, 1], None, (0.0, 1.0), "a > 0 and b > 0"),
        ([1, 0, 1], None, (1.0,), "pair"),
    ],
)
def test_bad_input_refused(flips, weights, prior, message):
    with pytest.raises(ValueError, match=message):
        coin.build_model(flips, weights, prior=prior)
    with pytest.raises(ValueError, match=message):
        coin.exact_posterior(flips, weights, prior=prior)


def test_model_round_trips_through_cloudpickle(flips, key_weights):
    # PyMC ships the model to its worker processes with cloudpickle.
    model = coin.build_model(flips, key_weights)
    restored = cloudpickle.loads(cloudpickle.dumps(model))
    point = model.initial_point()
    assert restored.compile_logp()(point) == pytest.approx(model.compile_logp()(point), rel=1e-15)


# --------------------------------------------------------------------------- tier 3: NUTS recovery


@pytest.fixture(scope="module")
def seed_fit():
    flips = np.array([1, 0, 1, 1, 0, 1, 1, 0, 1, 1])
    weights = np.array([1, 1, 10, 1, 1, 1, 1, 1, 1, 1], dtype=float)
    model = coin.build_model(flips, weights, prior=PRIOR)
    idata = inference.sample(model, draws=1000, tune=1000, chains=2, random_seed=11,
                             posterior_predictive=True)
    return flips, weights, idata


def test_nuts_matches_exact_posterior_within_mcse(seed_fit):
    import arviz as az

    flips, weights, idata = seed_fit
    exact = coin.exact_posterior(flips, weights, prior=PRIOR)
    summary = az.summary(idata, var_names=["p"], kind="all", round_to="none")
    # 4 Monte Carlo standard errors: a correct sampler fails this about once in 16,000 runs.
    assert abs(summary.loc["p", "mean"] - exact.mean()) < 4 * summary.loc["p", "mcse_mean"]
    assert abs(summary.loc["p", "sd"] - exact.std()) < 4 * summary.loc["p", "mcse_sd"]
    assert summary.loc["p", "r_hat"] < 1.01
    assert inference.diagnose(idata).ok


def test_log_likelihood_is_pointwise_weighted(seed_fit):
    flips, weights, idata = seed_fit
    p = idata.posterior["p"].values[..., None]
    expected = weights * stats.bernoulli(p).logpmf(flips)
    np.testing.assert_allclose(idata.log_likelihood["heads"].values, expected, rtol=1e-10)
    np.testing.assert_array_equal(idata.constant_data["weights"].values, weights)


def test_posterior_predictive_is_unweighted(seed_fit):
    flips, weights, idata = seed_fit
    replicated = idata.posterior_predictive["heads"].values  # (chain, draw, toss)
    p = idata.posterior["p"].values
    assert set(np.unique(replicated)) <= {0, 1}
    # Unweighted Bernoulli(p): replicated heads of every toss, the 3rd included, average to p.
    # 4 standard errors of the mean of n Bernoulli residuals.
    for toss in (2, 5):
        residual = replicated[..., toss] - p
        assert abs(residual.mean()) < 4 * np.sqrt(np.mean(p * (1 - p)) / residual.size)


def test_model_is_reusable_after_posterior_predictive_sampling(flips, key_weights):
    model = coin.build_model(flips, key_weights)
    before = model.compile_logp()(model.initial_point())
    inference.sample(model, draws=20, tune=20, chains=1, random_seed=2, posterior_predictive=True)
    assert [rv.name for rv in model.observed_RVs] == ["heads"]
    assert model.compile_logp()(model.initial_point()) == pytest.approx(before, rel=1e-15)
    assert inference.mle(model)["p"] == pytest.approx(16 / 19, abs=1e-7)


@pytest.mark.slow
@pytest.mark.default_mode
def test_nuts_matches_exact_posterior_across_random_weightings():
    """20 random data sets and weightings (0.1-20 per toss, all three normalisations)."""
    import arviz as az

    rng = np.random.default_rng(2024)
    for case in range(20):
        n = int(rng.integers(3, 30))
        flips = rng.integers(0, 2, n)
        weights = rng.uniform(0.1, 20.0, n)
        how = ("none", "n", "ess")[case % 3]
        model = coin.build_model(flips, weights, prior=PRIOR, normalize=how)
        exact = coin.exact_posterior(flips, weights, prior=PRIOR, normalize=how)
        idata = inference.sample(model, draws=1000, tune=1000, chains=2, random_seed=case)
        summary = az.summary(idata, var_names=["p"], kind="all", round_to="none").loc["p"]
        # 4 MCSE per check; 40 checks: a correct sampler fails one about once in 400 runs.
        assert abs(summary["mean"] - exact.mean()) < 4 * summary["mcse_mean"], (case, how)
        assert abs(summary["sd"] - exact.std()) < 4 * summary["mcse_sd"], (case, how)
