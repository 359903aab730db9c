"""Leave-one-out of weighted posteriors (models/elpd.py) against brute force.

The brute-force answers are exact: the coin's leave-one-unit-out predictive is a Beta-Bernoulli in
closed form, and a two-parameter logistic regression's posterior without a row (a refit) is computed
by quadrature on a grid. The importance-sampling estimates they are compared with carry Monte Carlo
error; each test bounds it by 5 times the delta-method MCSE of every row's estimate (the rows' errors
added up, as they share the draws), computed from the same Pareto-smoothed ratios.
"""

import warnings

import arviz as az
import numpy as np
import pymc as pm
import pytest
import xarray as xr
from scipy import special, stats

from models import coin, inference
from models.errors import InputError
from models.likelihood import weighted_likelihood
from models.sampling import idata as idata_builder
from models.sampling.idata import UNWEIGHTED_GROUP

FLIPS = np.array([1, 0, 1, 1, 0, 1, 1, 0, 1, 1])
COUNTS = np.array([1, 2, 10, 1, 3, 1, 1, 1, 2, 1])   # integer frequency weights
PRIOR = (2.0, 2.0)


def _mcse(idata, exponent, var_name):
    """The delta-method Monte Carlo standard error of each row's elpd estimate, summed with weights."""
    log_p = idata[UNWEIGHTED_GROUP][var_name].values.reshape(-1, exponent.size).T
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        log_ratios, _ = az.psislw(-exponent[:, None] * log_p, 1.0)
    ratios = np.exp(np.asarray(log_ratios))
    p = np.exp(log_p)
    mean = np.sum(ratios * p, axis=1)
    return np.sqrt(np.sum(ratios**2 * (p - mean[:, None]) ** 2, axis=1)) / mean


def _coin_idata(weights, draws=8000, seed=0):
    """Exact Beta posterior draws of the weighted coin (4 chains), with both log-likelihood groups."""
    model = coin.build_model(FLIPS, weights, prior=PRIOR)
    exact = coin.exact_posterior(FLIPS, weights, prior=PRIOR)
    idata = az.from_dict(posterior={"p": exact.rvs((4, draws // 4), random_state=seed)},
                         constant_data={"weights": np.asarray(weights, dtype=float)},
                         dims={"weights": ["toss"]}, coords={"toss": np.arange(FLIPS.size)})
    return idata_builder.add_log_likelihood(idata, model)


def test_frequency_loo_of_the_coin_is_the_exact_leave_one_toss_out_predictive():
    idata = _coin_idata(COUNTS)
    result = inference.loo(idata, weights="frequency")
    a, b = PRIOR
    heads, units = np.sum(COUNTS * FLIPS), COUNTS.sum()
    # Without one toss of row i: Beta(a + H - y_i, b + T - (1 - y_i)); its predictive of y_i.
    predictive = np.where(FLIPS == 1, (a + heads - 1) / (a + b + units - 1),
                          (b + units - heads - 1) / (a + b + units - 1))
    exact = np.sum(COUNTS * np.log(predictive))
    row_mcse = _mcse(idata, np.ones(FLIPS.size), "heads")
    assert abs(result.elpd - exact) < 5 * np.sum(COUNTS * row_mcse), (result.elpd, exact)
    assert np.all(np.abs(result.pointwise - np.log(predictive)) < 5 * row_mcse)
    assert result.units == units and result.target == "frequency"


def test_frequency_loo_is_az_loo_on_the_data_expanded_to_one_row_per_unit():
    idata = _coin_idata(COUNTS)
    result = inference.loo(idata, weights="frequency")
    unit_terms = np.repeat(idata[UNWEIGHTED_GROUP]["heads"].values, COUNTS, axis=-1)
    expanded = az.InferenceData(posterior=idata.posterior,
                                log_likelihood=xr.Dataset({"heads": (("chain", "draw", "unit"), unit_terms)}))
    reference = az.loo(expanded)
    # Same draws, same ratios per unit, same reff: equal to rounding.
    assert result.elpd == pytest.approx(reference.elpd_loo, rel=1e-10)
    assert result.se == pytest.approx(reference.se, rel=1e-8)
    assert result.p_loo == pytest.approx(reference.p_loo, rel=1e-8)
    # az.loo on the stored weighted terms leaves the whole weight-10 row out: another number, and a
    # Pareto k far above the one-unit ratio's.
    weighted = az.loo(idata)
    assert abs(weighted.elpd_loo - result.elpd) > 1.0
    assert weighted.pareto_k.values[2] > result.pareto_k[2] + 0.2


def _logistic_case(seed=4, n=14):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    y = (rng.random(n) < special.expit(0.3 + 1.2 * x)).astype(int)
    return x, y


def _logistic_model(x, y, weights):
    with pm.Model(coords={"obs_id": np.arange(x.size)}) as model:
        intercept = pm.Normal("intercept", 0, 1.5)
        slope = pm.Normal("slope", 0, 1.5)
        weighted_likelihood("y", pm.Bernoulli, pm.Data("weights", weights, dims="obs_id"), observed=y,
                            dims="obs_id", logit_p=intercept + slope * x)
    return model


def _quadrature_loo(x, y, weights, target):
    """Exact elpd_i by refitting without row i (frequency: one unit; population: the row) on a grid."""
    grid = np.linspace(-7, 7, 561)
    a, b = np.meshgrid(grid, grid, indexing="ij")
    log_prior = stats.norm.logpdf(a, 0, 1.5) + stats.norm.logpdf(b, 0, 1.5)
    eta = a[..., None] + b[..., None] * x
    log_p = np.where(y == 1, -np.logaddexp(0, -eta), -np.logaddexp(0, eta))     # (grid, grid, rows)
    log_post = log_prior + np.sum(weights * log_p, axis=-1)
    removed = np.ones_like(weights) if target == "frequency" else weights
    elpd = np.empty(x.size)
    for i in range(x.size):
        left_out = log_post - removed[i] * log_p[..., i]
        elpd[i] = special.logsumexp(left_out + log_p[..., i]) - special.logsumexp(left_out)
    return elpd


@pytest.mark.parametrize("target", ["frequency", "population"])
def test_logistic_loo_matches_refits_by_quadrature(target):
    x, y = _logistic_case()
    rng = np.random.default_rng(5)
    if target == "frequency":
        weights = rng.integers(1, 4, x.size).astype(float)
    else:
        weights = rng.uniform(0.3, 3, x.size)
    idata = inference.sample(_logistic_model(x, y, weights), draws=2000, tune=1000, chains=2, random_seed=6)
    result = inference.loo(idata, weights=target)
    exact_rows = _quadrature_loo(x, y, weights, target)
    exponent = np.ones_like(weights) if target == "frequency" else weights
    # NUTS draws are autocorrelated: the independent-draw MCSE scaled by the worst relative ESS.
    ess = az.ess(idata.posterior, method="mean")
    relative = min(float(ess[v]) for v in ess.data_vars) / (idata.posterior.sizes["chain"] * 2000)
    row_mcse = _mcse(idata, exponent, "y") / np.sqrt(min(relative, 1.0))
    np.testing.assert_allclose(result.pointwise, exact_rows, atol=5 * row_mcse.max())
    counted = weights if target == "frequency" else x.size * weights / weights.sum()
    assert abs(result.elpd - np.sum(counted * exact_rows)) < 5 * np.sum(counted * row_mcse)
    assert np.all(result.pareto_k < result.good_k)


@pytest.mark.filterwarnings("ignore:Estimated shape parameter")
def test_with_unit_weights_both_targets_are_az_loo():
    x, y = _logistic_case()
    idata = inference.sample(_logistic_model(x, y, np.ones(x.size)), draws=500, tune=500, chains=2,
                             random_seed=7)
    reference = az.loo(idata)
    for target in ("frequency", "population"):
        result = inference.loo(idata, weights=target)
        assert result.elpd == pytest.approx(reference.elpd_loo, rel=1e-10)
        assert result.se == pytest.approx(reference.se, rel=1e-8)


def test_loo_refuses_what_it_cannot_estimate():
    idata = _coin_idata(COUNTS * 0.5 + 0.25)
    with pytest.raises(InputError, match="must be integers"):
        inference.loo(idata, weights="frequency")
    assert np.isfinite(inference.loo(idata, weights="population").elpd)
    with pytest.raises(InputError, match="one of"):
        inference.loo(idata, weights="survey")
    bare = az.from_dict(posterior={"p": np.full((2, 10), 0.5)})
    with pytest.raises(InputError, match=UNWEIGHTED_GROUP):
        inference.loo(bare)


@pytest.mark.filterwarnings("ignore:The inplace keyword")   # inside az.compare, with pandas 3
def test_compare_of_frequency_weighted_fits_is_az_compare_on_the_expanded_data():
    # Two posteriors of the same counted tosses (different priors): the paired difference over units.
    results, expanded = {}, {}
    for name, prior in (("beta22", (2.0, 2.0)), ("beta81", (8.0, 1.0))):
        model = coin.build_model(FLIPS, COUNTS, prior=prior)
        exact = coin.exact_posterior(FLIPS, COUNTS, prior=prior)
        idata = idata_builder.add_log_likelihood(az.from_dict(
            posterior={"p": exact.rvs((4, 2000), random_state=1)},
            constant_data={"weights": COUNTS.astype(float)}, dims={"weights": ["toss"]},
            coords={"toss": np.arange(FLIPS.size)}), model)
        results[name] = inference.loo(idata, weights="frequency")
        unit_terms = np.repeat(idata[UNWEIGHTED_GROUP]["heads"].values, COUNTS, axis=-1)
        expanded[name] = az.InferenceData(posterior=idata.posterior, log_likelihood=xr.Dataset(
            {"heads": (("chain", "draw", "unit"), unit_terms)}))
    rows = {row["model"]: row for row in inference.loo_compare(results)}
    reference = az.compare(expanded)
    for name in results:
        assert rows[name]["rank"] == reference.loc[name, "rank"]
        assert rows[name]["elpd_diff"] == pytest.approx(reference.loc[name, "elpd_diff"], rel=1e-9, abs=1e-12)
        assert rows[name]["dse"] == pytest.approx(reference.loc[name, "dse"], rel=1e-8, abs=1e-12)
        assert rows[name]["se"] == pytest.approx(reference.loc[name, "se"], rel=1e-8)


def test_a_stated_population_makes_differently_weighted_fits_comparable():
    unit = _coin_idata(np.ones(FLIPS.size))
    weighted = _coin_idata(COUNTS * 0.5)
    population = np.where(FLIPS == 1, 1.0, 3.0)   # a population with three tails per head
    default = inference.loo(weighted, weights="population")
    assert inference.loo(weighted, weights="population", population=COUNTS * 0.5).elpd == pytest.approx(
        default.elpd, rel=1e-12)
    results = {name: inference.loo(idata, weights="population", population=population)
               for name, idata in (("unit", unit), ("weighted", weighted))}
    for result in results.values():
        v = FLIPS.size * population / population.sum()
        assert result.elpd == pytest.approx(np.sum(v * result.pointwise), rel=1e-12)
    # The population only counts the rows: each is still left out of the fit as the fit holds it.
    stated = results["weighted"]
    np.testing.assert_array_equal(stated.pointwise, default.pointwise)
    np.testing.assert_array_equal(stated.pareto_k, default.pareto_k)
    rows = inference.loo_compare(results)
    assert rows[0]["elpd_diff"] == 0.0 and rows[1]["elpd_diff"] > 0
    assert rows[1]["elpd_diff"] == pytest.approx(rows[0]["elpd"] - rows[1]["elpd"], rel=1e-9)
    # With every u_i = 1 the paired standard error is az.compare's, sqrt(n var(d)).
    same = {name: inference.loo(idata, weights="population", population=np.ones(FLIPS.size))
            for name, idata in (("unit", unit), ("weighted", weighted))}
    rows = {row["model"]: row for row in inference.loo_compare(same)}
    d = same["unit"].pointwise - same["weighted"].pointwise
    assert max(row["dse"] for row in rows.values()) == pytest.approx(np.sqrt(d.size * np.var(d)), rel=1e-12)
    # The scale of the population cancels: fits under their own weights c u and u compare.
    scaled = inference.loo(weighted, weights="population", population=7.0 * population)
    assert len(inference.loo_compare({"u": results["unit"], "7u": scaled})) == 2
    # Each fit under its own (different) weights is another population: refused, as is bad input.
    with pytest.raises(InputError, match="counts other units"):
        inference.loo_compare({"unit": inference.loo(unit, weights="population"), "weighted": default})
    with pytest.raises(InputError, match="target"):
        inference.loo_compare({"frequency": inference.loo(unit), "population": results["unit"]})
    with pytest.raises(InputError, match="at least two"):
        inference.loo_compare({"unit": results["unit"]})
    for bad, message in ((np.ones(3), "one per row"), (-population, "non-negative"),
                         (np.r_[np.nan, population[1:]], "finite"), (0 * population, "positive sum")):
        with pytest.raises(InputError, match=message):
            inference.loo(unit, weights="population", population=bad)
    with pytest.raises(InputError, match="weights='population'"):
        inference.loo(unit, weights="frequency", population=population)


def test_a_row_outside_the_fit_has_no_pareto_k_but_a_predictive_elpd():
    weights = COUNTS.astype(float).copy()
    weights[4] = 0.0   # a tails row left out of the fit
    result = inference.loo(_coin_idata(weights), weights="frequency")
    assert np.isnan(result.pareto_k[4]) and np.all(np.isfinite(np.delete(result.pareto_k, 4)))
    a, b = PRIOR
    heads, units = np.sum(weights * FLIPS), weights.sum()
    exact = np.log((b + units - heads) / (a + b + units))   # the posterior predictive of a tail
    assert result.pointwise[4] == pytest.approx(exact, abs=0.01)   # 8000 exact draws: MCSE ~ 1e-3
