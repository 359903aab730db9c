"""MLE, MAP, existence of the MLE, sampling arguments and diagnostics on small exact cases."""

import arviz as az
import numpy as np
import pymc as pm
import pytest
from scipy import optimize, stats

from models import coin, inference
from models.errors import InputError
from models.estimation import maximise
from models.likelihood import weighted_likelihood
from models.sampling import backends, dispatch

pytestmark = pytest.mark.python_mode

# L-BFGS stops at a relative gradient of 1e-12 (objective divided by |f(z0)|, coordinates scaled to
# unit curvature at z0): on these O(1)-curvature problems estimates are good to ~1e-10; test at 1e-7.
OPTIMISER_TOLERANCE = 1e-7


def test_mle_and_wmle_of_the_seed(flips, key_weights):
    assert inference.mle(coin.build_model(flips))["p"] == pytest.approx(0.7, abs=OPTIMISER_TOLERANCE)
    wmle = inference.mle(coin.build_model(flips, key_weights))["p"]
    assert wmle == pytest.approx(16 / 19, abs=OPTIMISER_TOLERANCE)


@pytest.mark.parametrize("prior", [(2.0, 2.0), (0.5, 3.0), (7.0, 1.5)])
def test_map_is_the_mode_of_the_exact_posterior(flips, key_weights, prior):
    model = coin.build_model(flips, key_weights, prior=prior)
    a, b = coin.exact_posterior(flips, key_weights, prior=prior).args
    assert inference.map_estimate(model)["p"] == pytest.approx((a - 1) / (a + b - 2), abs=OPTIMISER_TOLERANCE)


def test_all_heads_puts_the_mle_on_the_boundary():
    model = coin.build_model(np.ones(6, dtype=int))
    assert inference.mle(model)["p"] == pytest.approx(1.0, abs=1e-12)
    assert inference.mle(coin.build_model(np.zeros(6, dtype=int)))["p"] == pytest.approx(0.0, abs=1e-12)
    assert inference.map_estimate(model)["p"] == pytest.approx(1.0, abs=1e-12)  # flat Beta(1, 1)


def test_mle_reports_deterministics(flips):
    model = coin.build_model(flips)
    with model:
        pm.Deterministic("odds", model["p"] / (1 - model["p"]))
    estimate = inference.mle(model)
    assert estimate["odds"] == pytest.approx(0.7 / 0.3, abs=1e-6)
    assert set(estimate) == {"p", "odds"}


def logit_coin(weights, flips):
    """Bernoulli on the log-odds scale with a Normal prior: proper whatever the weights' signs."""
    with pm.Model(coords={"toss": range(len(flips))}) as model:
        log_odds = pm.Normal("log_odds", 0.0, 1.5)
        weighted_likelihood("heads", pm.Bernoulli, pm.Data("weights", weights, dims="toss"),
                            observed=flips, dims="toss", logit_p=log_odds, allow_negative=True)
    return model


def test_net_negative_weight_has_no_mle_but_a_map():
    # Heads weighted -3, two tails +1: loglik = -3 log p + 2 log(1 - p) -> +inf as p -> 0.
    model = logit_coin(np.array([-3.0, 1.0, 1.0]), np.array([1, 0, 0]))
    with pytest.raises(inference.UnboundedLikelihoodError, match="no upper bound"):
        inference.mle(model)
    # Prior N(0, 1.5^2) against a likelihood linear (slope 3) in the log-odds: mode near -3 * 1.5^2.
    map_log_odds = inference.map_estimate(model)["log_odds"]
    objective = lambda x: -(stats.norm(0, 1.5).logpdf(x) - 3 * np.log(1 / (1 + np.exp(-x)))  # noqa: E731
                            + 2 * np.log(1 - 1 / (1 + np.exp(-x))))
    assert map_log_odds == pytest.approx(optimize.minimize_scalar(objective).x, abs=1e-5)


def logistic(x, y, weights=None, prior_sd=(5.0, 2.5)):
    """Weighted logistic regression with one feature, built on the shared weighted term."""
    weights = np.ones(len(y)) if weights is None else weights
    with pm.Model(coords={"obs_id": range(len(y))}) as model:
        intercept = pm.Normal("intercept", 0.0, np.float64(prior_sd[0]))
        coef = pm.Normal("coef", 0.0, np.float64(prior_sd[1]))
        weighted_likelihood("y", pm.Bernoulli, pm.Data("weights", weights, dims="obs_id"),
                            observed=y, dims="obs_id", logit_p=intercept + coef * x)
    return model


def logistic_score(x, y, weights, intercept, coef):
    """Gradient of the weighted log-likelihood, in numpy."""
    residual = weights * (y - 1 / (1 + np.exp(-(intercept + coef * x))))
    return np.array([residual.sum(), (residual * x).sum()])


SEPARABLE_X = np.array([-2.0, -1.0, -0.5, 0.5, 1.0, 2.0])


@pytest.mark.parametrize("units", [1e-5, 1.0, 1e5])
def test_separation_has_no_mle_but_a_map_in_any_units(units):
    # x in other units, and the slope's prior in the matching units: the same model, reparametrised.
    model = logistic(units * SEPARABLE_X, (SEPARABLE_X > 0).astype(int), prior_sd=(5.0, 2.5 / units))
    # Outside the families the MLE's verdict is the linear program's (a logit link on a linear
    # predictor), and the ridge path, an independent numerical oracle, agrees; the MAP's verdict is exact
    # by structure: both priors are proper Normals and the Bernoulli terms are at most 0.
    with pytest.raises(inference.UnboundedLikelihoodError, match=r"linear program.*coef -> \+inf"):
        inference.mle(model)
    terms = [*model.observed_RVs, *model.potentials]
    verdict, _ = maximise.ridge_path(maximise.compiled_objective(model, terms, separate_likelihood=True),
                                     "weighted log-likelihood")
    assert not verdict.exists and "coef -> +inf" in verdict.diverging
    estimate = inference.map_estimate(model)
    assert estimate.existence.method == "structure"
    slope = estimate["coef"] * units
    reference = inference.map_estimate(logistic(SEPARABLE_X, (SEPARABLE_X > 0).astype(int)))["coef"]
    assert 0 < slope < 10 and slope == pytest.approx(reference, rel=1e-6)


def test_quasi_complete_separation_has_no_mle():
    # Two points at x = 0 with both labels: the slope still runs off, the intercept stays at 0.
    model = logistic(np.array([-1.0, 0.0, 0.0, 1.0]), np.array([0, 0, 1, 1]))
    with pytest.raises(inference.UnboundedLikelihoodError, match="coef"):
        inference.mle(model)


@pytest.mark.parametrize("n", [200, 2000])
def test_a_steep_but_finite_mle_is_found_not_refused(n):
    rng = np.random.default_rng(0)
    x = rng.normal(size=n)
    y = (rng.random(n) < 1 / (1 + np.exp(-25 * x))).astype(int)  # overlapping, slope ~ 25
    estimate = inference.mle(logistic(x, y))
    score = logistic_score(x, y, np.ones(n), estimate["intercept"], estimate["coef"])
    assert 15 < estimate["coef"] < 35
    # Optimality: the score vanishes (1e-6 against terms of size up to n * max|x| ~ 1e4).
    np.testing.assert_allclose(score, 0.0, atol=1e-6)
    wide_prior_map = inference.map_estimate(logistic(x, y, prior_sd=(100.0, 100.0)))
    assert wide_prior_map["coef"] == pytest.approx(estimate["coef"], rel=0.02)


def test_weighted_logistic_mle_matches_scipy():
    rng = np.random.default_rng(3)
    x = rng.normal(size=300)
    y = (rng.random(300) < 1 / (1 + np.exp(-(0.5 + 1.5 * x)))).astype(int)
    w = rng.uniform(0.2, 2.0, 300)
    model = logistic(x, y, w)

    def negative(theta):
        eta = theta[0] + theta[1] * x
        return -np.sum(w * (y * eta - np.logaddexp(0, eta)))

    reference = optimize.minimize(negative, [0.0, 0.0], method="BFGS", options={"gtol": 1e-10}).x
    estimate = inference.mle(model)
    assert [estimate["intercept"], estimate["coef"]] == pytest.approx(reference, abs=1e-6)


def test_estimators_compile_once_per_model_and_follow_new_weights(flips, key_weights):
    """After ``pm.set_data`` the cached objective reads the new weights: same answer as a fresh build,
    and the cache does not keep a model alive once the caller drops it."""
    import gc
    import weakref

    from models.estimation import maximise

    model = coin.build_model(flips, prior=(2.0, 2.0))
    assert inference.mle(model)["p"] == pytest.approx(0.7, abs=OPTIMISER_TOLERANCE)
    compiled = maximise.compiled_objective(model, [*model.observed_RVs, *model.potentials])
    pm.set_data({"weights": key_weights}, model=model)
    fresh = coin.build_model(flips, key_weights, prior=(2.0, 2.0))
    for estimator in (inference.mle, inference.map_estimate):
        assert estimator(model)["p"] == pytest.approx(estimator(fresh)["p"], abs=OPTIMISER_TOLERANCE)
    again = maximise.compiled_objective(model, [*model.observed_RVs, *model.potentials])
    assert again._compiled is compiled._compiled   # one compilation for the MLE and the MAP
    reference = weakref.ref(model)
    del model, compiled
    gc.collect()
    assert reference() is None


def test_an_untransformed_model_estimates_on_the_nuts_log_density_minus_its_prior():
    """Without transformed variables NUTS's log density is the likelihood plus the priors: the MLE and
    MAP objectives use it (compiled once per model, shared with sampling) less the prior, and agree with
    the likelihood compiled on its own (the ridge path's) in value, gradient and maximiser."""
    from models import classes, compiled
    from models.estimation import maximise

    rng = np.random.default_rng(2)
    X = rng.normal(size=(60, 2))
    y = (X[:, 0] + rng.logistic(size=60) > 0).astype(int)
    model = classes.build_model(X, y, rng.uniform(0.5, 2.0, 60))
    likelihood = [*model.observed_RVs, *model.potentials]
    for terms in (likelihood, [*model.free_RVs, *likelihood]):
        shared = maximise.compiled_objective(model, terms)
        separate = maximise.compiled_objective(model, terms, separate_likelihood=True)
        assert shared._compiled._total is compiled.logp_dlogp(model) and separate._compiled._total is None
        assert compiled.logp_dlogp(model)._pytensor_function.trust_input   # no per-call input checks
        for z in (shared.x0, shared.x0 + rng.normal(0.0, 2.0, shared.x0.size)):
            value, gradient = shared.value_and_grad(z)
            expected, expected_gradient = separate.value_and_grad(z)
            # The difference carries the rounding of the prior's size (a few units here).
            assert value == pytest.approx(expected, rel=1e-13, abs=1e-12)
            np.testing.assert_allclose(gradient, expected_gradient, rtol=1e-12, atol=1e-12)
    found = inference.mle(model)
    separate = maximise.compiled_objective(model, likelihood, separate_likelihood=True)
    expected = maximise._optimum(separate, "weighted log-likelihood")
    np.testing.assert_allclose(found["coef"], expected["coef"], atol=OPTIMISER_TOLERANCE)


def test_the_cached_initial_point_follows_the_data_and_the_initial_values(flips):
    """``compiled.initial_point`` is ``model.initial_point()`` with its function compiled once: it
    reads ``pm.Data`` at each call and a new initial value (``set_initval``) gets a new function."""
    from scipy import special

    from models import compiled

    model = coin.build_model(flips, prior=(2.0, 2.0))
    assert compiled.initial_point(model)["p_logodds__"] == pytest.approx(0.0, abs=1e-12)   # Beta(2, 2)
    pm.set_data({"prior_a": 6.0}, model=model)   # the Beta's support point is its mean, 6 / 8
    assert compiled.initial_point(model)["p_logodds__"] == pytest.approx(special.logit(0.75), rel=1e-12)
    model.set_initval(model["p"], 0.9)
    assert compiled.initial_point(model)["p_logodds__"] == pytest.approx(special.logit(0.9), rel=1e-12)
    assert compiled.initial_point(model).keys() == model.initial_point().keys() == {"p_logodds__"}


def test_mle_needs_a_likelihood():
    with pm.Model() as model:
        pm.Normal("mu", 0.0, 1.0)
    with pytest.raises(ValueError, match="no observed variables"):
        inference.mle(model)


def test_compile_log_likelihood_equals_scipy(flips, key_weights):
    log_likelihood = inference.compile_log_likelihood(coin.build_model(flips, key_weights))
    for p in (0.1, 0.5, 0.842):
        expected = np.sum(key_weights * stats.bernoulli(p).logpmf(flips))
        assert log_likelihood(p=p) == pytest.approx(expected, rel=1e-12)
    with pytest.raises(ValueError, match="values needed"):
        log_likelihood()


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({"draws": 0}, "draws must be an integer >= 1"),
        ({"tune": -1}, "tune must be"),
        ({"chains": 1.5}, "chains must be"),
        ({"random_seed": -3}, "random_seed must be"),
        ({"sampler": "stan"}, "sampler must be one of"),
        ({"target_accept": 1.0}, "target_accept must be a number in"),
    ],
)
def test_sample_refuses_bad_arguments(flips, arguments, message):
    with pytest.raises(ValueError, match=message):
        inference.sample(coin.build_model(flips), **arguments)


class _CoresAskedFor(Exception):
    pass


def _record_cores(model, backend, *, cores, **settings):
    raise _CoresAskedFor(cores)


@pytest.mark.parametrize("tune_and_draws, cores, expected", [
    (1000, None, 1),   # 2 chains x 2000 iterations x the coin's iteration cost (about 1.02) < 5000
    (2000, None, 2),   # 2 x 4000 x 1.02 > 5000
    (1000, 2, 2),      # cores given: as asked
])
def test_a_short_fit_keeps_its_chains_in_this_process_unless_told(flips, monkeypatch, tune_and_draws, cores,
                                                                  expected):
    """By default a fit whose work (chains x (tune + draws) x iteration cost) is under
    IN_PROCESS_ITERATIONS runs its chains in turn here, a longer one one per core (4 available here)."""
    monkeypatch.setattr(backends, "draw", _record_cores)
    monkeypatch.setattr(dispatch, "available_cores", lambda: 4)
    with pytest.raises(_CoresAskedFor) as asked:
        inference.sample(coin.build_model(flips), draws=tune_and_draws, tune=tune_and_draws, chains=2,
                         sampler="pymc", cores=cores)
    assert asked.value.args == (expected,)


def test_sample_records_its_settings(flips):
    idata = inference.sample(coin.build_model(flips), draws=30, tune=30, chains=2, random_seed=5,
                             target_accept=0.9)
    keys = ("sampler", "draws", "tune", "chains", "random_seed", "target_accept")
    assert {k: idata.attrs[k] for k in keys} == {
        "sampler": "pymc", "draws": 30, "tune": 30, "chains": 2, "random_seed": 5, "target_accept": 0.9}
    assert "log_likelihood" in idata.groups()


def fake_idata(offsets, diverging=0):
    rng = np.random.default_rng(0)
    chains = len(offsets)
    posterior = {"theta": rng.normal(size=(chains, 1000)) + np.asarray(offsets)[:, None],
                 "fixed": np.zeros((chains, 1000))}
    divergences = np.zeros((chains, 1000), dtype=bool)
    divergences[0, :diverging] = True
    energy = rng.normal(size=(chains, 1000)).cumsum(axis=1) * 0.1 + rng.normal(size=(chains, 1000))
    return az.from_dict(posterior=posterior, sample_stats={"diverging": divergences, "energy": energy})


def test_diagnose_passes_well_mixed_independent_draws():
    diagnostics = inference.diagnose(fake_idata([0.0, 0.0, 0.0, 0.0]))
    assert diagnostics.ok, diagnostics.problems
    assert diagnostics.max_r_hat < 1.01 and diagnostics.min_ess_bulk > 3000
    assert diagnostics.chains == 4 and diagnostics.draws == 1000


def test_diagnose_flags_chains_that_disagree_and_divergences():
    diagnostics = inference.diagnose(fake_idata([0.0, 0.0, 0.0, 3.0], diverging=5))
    assert not diagnostics.ok
    assert diagnostics.divergences == 5
    assert any(problem.startswith("r_hat") for problem in diagnostics.problems)
    assert "5 divergent transition(s)" in diagnostics.problems


def test_diagnose_counts_nan_draws_and_undefined_statistics_as_failures():
    idata = fake_idata([0.0, 0.0, 0.0, 0.0])
    idata.posterior["theta"][0, 5] = np.nan
    diagnostics = inference.diagnose(idata)
    assert diagnostics.nonfinite_draws == 1 and not diagnostics.ok
    assert "1 non-finite draw(s)" in diagnostics.problems


def test_diagnose_flags_low_ess_and_low_bfmi():
    rng = np.random.default_rng(1)
    sticky = np.cumsum(rng.normal(size=(4, 1000)), axis=1)  # random walks: ESS of a few dozen
    energy = np.cumsum(rng.normal(size=(4, 1000)), axis=1)  # energy that barely moves: BFMI ~ 0
    diagnostics = inference.diagnose(az.from_dict(posterior={"theta": sticky},
                                                  sample_stats={"energy": energy}))
    assert diagnostics.min_ess_bulk < 100 and diagnostics.min_bfmi < 0.3
    assert any("bulk ESS" in p for p in diagnostics.problems)
    assert any("BFMI" in p for p in diagnostics.problems)


def test_diagnose_needs_two_chains_for_r_hat():
    diagnostics = inference.diagnose(fake_idata([0.0]))
    assert np.isnan(diagnostics.max_r_hat)
    assert "r_hat needs at least 2 chains" in diagnostics.problems


@pytest.mark.parametrize("estimator", [inference.mle, inference.map_estimate, inference.sample,
                                       inference.compile_log_likelihood])
def test_estimators_refuse_what_is_not_a_model(estimator):
    with pytest.raises(ValueError, match="model must be a pymc.Model, got dict"):
        estimator({"p": 0.5})


def test_diagnose_refuses_what_has_no_posterior():
    with pytest.raises(ValueError, match="posterior group"):
        inference.diagnose(az.from_dict(prior={"p": np.zeros((1, 10))}))
    with pytest.raises(ValueError, match="posterior group"):
        inference.diagnose(np.zeros(3))


# --------------------------------------------------------------------------- compare


def weighted_poisson(x, counts, weights):
    """A model from outside the suite: a weighted Poisson regression on the shared weighted term."""
    with pm.Model(coords={"obs_id": range(len(counts))}) as model:
        intercept = pm.Normal("intercept", 0.0, 2.0)
        slope = pm.Normal("slope", 0.0, 1.0)
        pm.Deterministic("rate_at_zero", pm.math.exp(intercept))
        weighted_likelihood("count", pm.Poisson, pm.Data("weights", weights, dims="obs_id"),
                            observed=counts, dims="obs_id", mu=pm.math.exp(intercept + slope * x))
    return model


def test_compare_puts_every_estimator_of_a_weighted_poisson_regression_side_by_side():
    rng = np.random.default_rng(8)
    x = rng.normal(size=80)
    counts = rng.poisson(np.exp(0.5 + 0.4 * x))
    weights = rng.uniform(0.5, 2.0, 80)
    result = inference.compare(weighted_poisson(x, counts, weights), draws=100, tune=100, chains=2,
                               random_seed=4)

    def negative(theta):
        eta = theta[0] + theta[1] * x
        return -np.sum(weights * (counts * eta - np.exp(eta)))

    reference = optimize.minimize(negative, [0.0, 0.0], method="BFGS", options={"gtol": 1e-10}).x
    assert result.point_name == "wmle" and result.point_failure is None
    assert [result.point["intercept"], result.point["slope"]] == pytest.approx(reference, abs=1e-6)
    assert result.point["rate_at_zero"] == pytest.approx(np.exp(reference[0]), rel=1e-6)
    assert result.point.existence.method == "linear program"   # a log link on a linear predictor
    assert result.map.existence.method == "structure"      # proper priors, weighted pmf terms
    assert result.weights["sum"] == pytest.approx(weights.sum())
    assert result.weights["kish_ess"] == pytest.approx(weights.sum() ** 2 / np.sum(weights**2))
    attrs = result.idata.attrs
    assert attrs["point_name"] == "wmle" and attrs["random_seed"] == 4 and attrs["draws"] == 100
    assert attrs["diagnostics_divergences"] == result.diagnostics.divergences
    assert "structure" in attrs["map_verdict"] and "linear program" in attrs["point_verdict"]
    rows = {(r["estimator"], r["quantity"]): r for r in result.rows("poisson")}
    assert rows["wmle", "exists"]["value"] == 1.0
    assert rows["wmle", "slope"]["value"] == pytest.approx(reference[1], abs=1e-6)
    posterior = rows["posterior", "slope"]
    assert posterior["lower"] < posterior["value"] < posterior["upper"]
    assert {("weights", "sum"), ("map", "intercept"), ("posterior", "r_hat_max")} <= set(rows)
    assert ("wmle", "rate_at_zero") not in rows   # rows list the free variables unless asked


def test_compare_records_a_wmle_that_does_not_exist_instead_of_raising():
    model = logistic(SEPARABLE_X, (SEPARABLE_X > 0).astype(int))
    result = inference.compare(model, draws=100, tune=100, chains=2, random_seed=1)
    assert result.point is None and "coef -> +inf" in result.point_failure
    assert result.point_name == "mle" and np.isfinite(result.map["coef"])
    rows = {(r["estimator"], r["quantity"]): r["value"] for r in result.rows("separable")}
    assert rows["mle", "exists"] == 0.0 and ("mle", "coef") not in rows and ("map", "coef") in rows
    with pytest.raises(ValueError, match="point_name must be"):
        inference.compare(model, point_name="ml")


def test_sample_many_falls_back_to_pymc_without_jax(monkeypatch):
    """Without the jax extra, every job runs one fit after another through PyMC (whatever its size),
    and asking for the batched engine by name is refused with the install command."""
    monkeypatch.setattr(dispatch, "batched_available", lambda: False)
    model = coin.build_model([1, 0, 1])
    assert dispatch.many_route("auto", model, fits=10**9, chains=4, tune=1000, draws=1000) == "pymc"
    with pytest.raises(InputError, match=r"pip install"):
        dispatch.many_route("numpyro", model, fits=1, chains=1, tune=1, draws=1)
    result = inference.sample_many(model, [{"flips": [1, 1, 0]}, {}], random_seeds=[1, 2], draws=50, tune=50,
                                   chains=2)
    assert result.sampler.startswith("pymc") and result.posterior["p"].shape == (2, 2, 50)
    np.testing.assert_array_equal(result.data[1]["flips"], [1, 0, 1])   # {}: the model's data as it was
