"""Generalised posterior calibration (models/calibrate/posterior_calibration.py) on the coin, where the
answer is known.

With 60 tosses of weight 1 the posterior is the exact Bayesian one, whose credible intervals cover the
WMLE of bootstrap resamples at about their nominal rate (Bernstein-von Mises): GPC should keep
omega near 1. Multiplying every weight by 10 changes nothing but the scale, so GPC must find omega
near 1/10: the same effective sample size, omega x sum w, about 60.
"""

import numpy as np
import pymc as pm
import pytest
from scipy import special, stats

from models import calibrate, classes, coin
from models.calibrate import posterior_calibration as gpc
from models.calibrate.posterior_calibration import covers
from models.errors import InputError
from models.sampling import dispatch

needs_jax = pytest.mark.skipif(not dispatch.batched_available(),
                               reason="GPC's bootstrap fits run batched here")

FLIPS = np.random.default_rng(11).binomial(1, 0.35, 60)
SETTINGS = {"bootstrap": 60, "draws": 300, "tune": 200, "chains": 2}   # "auto": the bootstrap batched


def test_covers_is_the_draws_own_credible_ellipsoid():
    rng = np.random.default_rng(0)
    draws = rng.normal(size=(20000, 2)) * [1.0, 3.0]
    # The 90% ellipsoid of a Gaussian: Mahalanobis distance^2 below the chi-square(2) 0.9 quantile, 4.61.
    assert covers(draws, np.array([2.0, 0.0]), 0.9) and not covers(draws, np.array([2.3, 0.0]), 0.9)
    assert covers(draws, np.array([0.0, 6.3]), 0.9) and not covers(draws, np.array([0.0, 6.6]), 0.9)


def _overlap(first, second) -> bool:
    return first[0] <= second[1] and second[0] <= first[1]


@needs_jax
def test_gpc_seeds_and_a_common_weight_factor_agree_within_the_stated_interval():
    """Two seeds at weights 1 and one at weights x10 give omega x sum w with 95% Monte Carlo intervals
    (order statistics of the 60 resamples' thresholds) that overlap pairwise: the two seeds' runs are
    independent, and their intervals miss each other with probability below 1% when the estimates are
    within their error; the x10 run shares seed 1's resamples, so against it the check is that the
    factor is undone (uncorrected, its size would be near 600, far outside). Each run settles within
    4 iterations (two or three on a near-Gaussian posterior)."""
    runs, model = [], coin.build_model(FLIPS)   # one model, its weights swapped: compiled once
    for seed, factor in ((1, 1.0), (2, 1.0), (1, 10.0)):
        pm.set_data({"weights": np.full(FLIPS.size, factor)}, model=model)
        result = calibrate.gpc(model, level=0.9, random_seed=seed, iterations=4, **SETTINGS)
        low, high = result.effective_sample_size_interval
        assert result.converged and low <= result.effective_sample_size <= high
        assert result.path[0]["scale"] == 1.0 and result.path[-1]["scale"] == result.scale
        assert all(r["low"] <= r["estimate"] <= r["high"] for r in result.path)
        np.testing.assert_allclose(result.idata.constant_data["weights"], result.scale * factor)
        attrs = result.idata.attrs
        assert (attrs["gpc_scale_low"], attrs["gpc_scale_high"]) == result.scale_interval
        np.testing.assert_allclose(model["weights"].get_value(), factor)   # the model keeps its own weights
        runs.append(result.effective_sample_size_interval)
    assert _overlap(runs[0], runs[1]) and _overlap(runs[0], runs[2]) and _overlap(runs[1], runs[2])
    assert runs[2][1] < 300   # not the uncorrected 600


def test_one_gpc_step_records_its_path_and_leaves_the_model_its_weights():
    """The MCMC driver for one step (10 bootstrap fits on PyMC at omega_1 = 1 only): the coverage is
    the share of the 10 fits whose credible region covers the WMLE, the estimate is the 0.1 quantile
    of their thresholds with its order-statistic interval, and the final fit, at the scale fitted, is
    stamped with it; the model gets its own weights back."""
    weights = np.full(FLIPS.size, 2.0)
    model = coin.build_model(FLIPS, weights)
    records = []
    result = calibrate.gpc(model, level=0.9, random_seed=3, bootstrap=10, iterations=1, draws=100, tune=100,
                           chains=1, sampler="pymc", progress=records.append)
    assert len(result.path) == 1 and result.path[0]["scale"] == result.scale == 1.0   # omega_1 = 1
    assert records == result.path and result.coverage == result.path[0]["coverage"]
    assert 10 * result.coverage == pytest.approx(round(10 * result.coverage), abs=1e-12)   # k of 10 fits
    step = result.path[0]
    # With 10 thresholds the interval of their 0.1 quantile starts below the smallest: unbounded
    # below, so the run cannot have settled.
    assert step["low"] == -np.inf and step["estimate"] <= step["high"] and not result.converged
    assert result.effective_sample_size == pytest.approx(result.scale * weights.sum())
    np.testing.assert_allclose(result.idata.constant_data["weights"], result.scale * weights)
    assert result.idata.attrs["gpc_scale"] == result.scale and result.idata.attrs["gpc_bootstrap"] == 10
    np.testing.assert_allclose(model["weights"].get_value(), weights)


def test_gpc_refuses_what_it_cannot_calibrate():
    with pytest.raises(InputError, match="level"):
        calibrate.gpc(coin.build_model(FLIPS), level=1.5, random_seed=1)
    with pytest.raises(InputError, match="bootstrap"):
        calibrate.gpc(coin.build_model(FLIPS), random_seed=1, bootstrap=3)
    with pytest.raises(InputError, match="precision"):
        calibrate.gpc(coin.build_model(FLIPS), random_seed=1, precision=0.0)


def test_quantile_interval_covers_the_population_quantile_at_its_stated_rate():
    """For 200 draws and the 0.1 quantile the interval runs from the 12th to the 30th order statistic,
    which holds the population quantile with probability P(12 <= K <= 29) = 0.967 (K ~ Binomial(200,
    0.1)). Over 4000 samples of uniforms the observed rate is within 4 Monte Carlo sd (0.0028 each) of
    that: a rank off by one moves it by about 0.01."""
    rng = np.random.default_rng(5)
    sample = rng.uniform(size=200)
    ordered = np.sort(sample)
    assert gpc.quantile_interval(sample, 0.1)[1:] == (ordered[11], ordered[29])
    exact = stats.binom.cdf(29, 200, 0.1) - stats.binom.cdf(11, 200, 0.1)
    held = [low <= 0.1 <= high for _, low, high in
            (gpc.quantile_interval(rng.uniform(size=200), 0.1) for _ in range(4000))]
    assert abs(np.mean(held) - exact) < 4 * np.sqrt(exact * (1 - exact) / 4000)


# --------------------------------------------------------------------------- GPC without MCMC


def test_robbins_monro_finds_the_level_of_a_known_coverage_curve():
    # c(omega) = exp(-omega / 5) falls through 0.9 at omega = -5 log 0.9 = 0.527.
    result = gpc.robbins_monro(lambda omega: np.exp(-omega / 5), level=0.9, tolerance=0.002,
                               iterations=200)
    assert result.converged and abs(result.coverage - 0.9) <= 0.002
    # Coverage within 0.002 of the level puts omega within 0.002 / |c'| = 0.002 / 0.18 of the root.
    assert abs(result.scale + 5 * np.log(0.9)) <= 0.002 / 0.18 * 1.01
    assert result.path[0]["scale"] == 1.0 and len(result.path) < 200


def test_coin_region_rule_is_the_draws_credible_interval():
    # coin_scale covers theta_hat when P(|p - mean| <= |theta_hat - mean|) <= level: the same verdict as
    # `covers` on many exact Beta draws, except where the point sits within Monte Carlo error of the
    # region's edge (none of these does: |P - level| > 0.02, about 6 Monte Carlo sds at 20000 draws).
    rng = np.random.default_rng(4)
    cases = [(8.0, 15.0, 0.45), (8.0, 15.0, 0.55), (30.0, 5.0, 0.7), (2.0, 3.0, 0.05), (2.0, 3.0, 0.6)]
    for a, b, point in cases:
        posterior = stats.beta(a, b)
        gap = abs(point - posterior.mean())
        inside = posterior.cdf(posterior.mean() + gap) - posterior.cdf(posterior.mean() - gap)
        assert abs(inside - 0.9) > 0.02
        draws = posterior.rvs(20000, random_state=rng)[:, None]
        assert covers(draws, np.array([point]), 0.9) == (inside <= 0.9)


@pytest.mark.parametrize("scale", [1.0, 10.0])
def test_exact_coin_gpc_undoes_the_weights_scale(scale):
    # The same bootstrap resamples (same stream) at weights x10 make c(omega / 10) = c(omega): the
    # effective sample size omega x sum w is 60 within the iteration's tolerance (about 0.12 in
    # log omega, see above); an uncorrected scale would be off by a factor of 10.
    result = coin.gpc_scale(FLIPS, np.full(FLIPS.size, scale), rng=np.random.default_rng(3))
    assert result.converged
    assert result.scale * scale * FLIPS.size == pytest.approx(FLIPS.size, rel=0.35)


@pytest.mark.python_mode
def test_laplace_modes_are_the_models_map_and_wmle():
    from models import inference

    rng = np.random.default_rng(8)
    x = rng.normal(size=120)
    y = (rng.uniform(size=120) < special.expit(-0.4 + 1.2 * x)).astype(float)
    weights = rng.lognormal(-0.5, 1.0, 120)
    design = np.column_stack([np.ones(120), x])
    model = classes.build_model(x[:, None], y.astype(int), weights, coef_sd=2.5, intercept_sd=5.0)
    # Newton stops at steps below 1e-10 on a smooth concave objective, L-BFGS at gradient 1e-12:
    # 1e-7 is ample.
    for precision, estimate in ((np.array([1 / 25, 1 / 6.25]), inference.map_estimate(model)),
                                (np.zeros(2), inference.mle(model))):
        mode, hessian = classes.laplace_logistic(design, y, weights, precision)
        np.testing.assert_allclose(mode[0], [estimate["intercept"], estimate["coef"][0]], atol=1e-7)
        p = special.expit(design @ mode[0])
        expected = design.T @ ((weights * p * (1 - p))[:, None] * design) + np.diag(precision)
        np.testing.assert_allclose(hessian[0], expected, rtol=1e-12)
    # Separation without a prior: no mode, said so.
    with pytest.raises(RuntimeError, match="no finite mode"):
        classes.laplace_logistic(design, (x > 0).astype(float), weights, np.zeros(2))


@pytest.mark.parametrize("focal_gamma", [0.0, 2.0])
def test_laplace_logistic_gpc_undoes_the_weights_scale(focal_gamma):
    rng = np.random.default_rng(12)
    x = rng.normal(size=300)
    y = (rng.uniform(size=300) < special.expit(-0.5 + x)).astype(float)
    design = np.column_stack([np.ones(300), x])
    precision = np.array([1 / 25, 1 / 6.25])
    sizes = []
    for scale in (1.0, 10.0):
        result, _ = classes.gpc_scale(design, y, np.full(300, scale), precision,
                                       rng=np.random.default_rng(5), focal_gamma=focal_gamma)
        assert result.converged
        sizes.append(result.scale * scale * 300)
    # The same omega x sum w either way (tolerance as above); for the log-likelihood, unit weights are
    # frequency weights: about 300 effective units. The focal loss's scale is its own (not 300).
    assert sizes[1] == pytest.approx(sizes[0], rel=0.35)
    if focal_gamma == 0:
        assert sizes[0] == pytest.approx(300, rel=0.35)


# --------------------------------------------------------------------------- the focal loss


def _focal_data(seed: int = 9, n: int = 150):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    y = (rng.uniform(size=n) < special.expit(-1.5 + x)).astype(float)
    return x, y, np.column_stack([np.ones(n), x])


@pytest.mark.python_mode
def test_binary_terms_are_the_models_focal_terms_and_their_derivatives():
    """The Newton step's terms equal classes' focal ``log_likelihood`` terms (pseudo-log-likelihoods)
    at a point; their first and second derivatives equal central differences (step 1e-5: error about
    1e-10 for these smooth terms, well below 1e-7). gamma = 2 has rows of negative curvature."""

    x, y, design = _focal_data()
    model = classes.build_model(x[:, None], y.astype(int), likelihood="focal", focal_gamma=2.0)
    terms = model.compile_fn(model.logp(vars=model.observed_RVs, sum=False)[0])
    theta = np.array([-0.7, 1.3])
    eta = design @ theta
    point = {"intercept": theta[0], "coef": theta[1:]}
    for gamma in (2.0, 0.0):
        pm.set_data({"focal_gamma": gamma}, model=model)
        np.testing.assert_allclose(classes.binary_terms(eta, y, gamma)[0], terms(point), rtol=1e-12,
                                   atol=1e-15)
        grid = np.linspace(-12, 12, 241)
        for label in (0.0, 1.0):
            labels = np.full(grid.size, label)
            _, slope, curvature = classes.binary_terms(grid, labels, gamma)
            up, down = (classes.binary_terms(grid + step, labels, gamma) for step in (1e-5, -1e-5))
            np.testing.assert_allclose(slope, (up[0] - down[0]) / 2e-5, atol=1e-7)
            np.testing.assert_allclose(curvature, -(up[1] - down[1]) / 2e-5, atol=1e-7)
            assert (curvature.min() < -0.04) == (gamma == 2.0)
    # Far out (where 1 - q underflows and the ratio log q / (1 - q) is taken as its limit -1): finite.
    far = np.array([-800.0, -40.0, 40.0, 800.0])
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        for label in (0.0, 1.0):
            assert np.all(np.isfinite(classes.binary_terms(far, np.full(4, label), 2.0)))


@pytest.mark.python_mode
def test_laplace_focal_modes_are_the_models_map_and_loss_minimiser(symbolic_hessian):
    from models import inference

    x, y, design = _focal_data()
    weights = np.random.default_rng(3).lognormal(-0.5, 1.0, y.size)
    model = classes.build_model(x[:, None], y.astype(int), weights, likelihood="focal", focal_gamma=2.0)
    assert inference.estimator_name(model) == "pseudo_mle"
    minimiser = inference.mle(model)
    # Newton stops at steps below 1e-10, L-BFGS at gradient 1e-12 of a smooth objective: 1e-6 is ample.
    # H against the model's own Hessian (PyTensor's symbolic second derivatives, priors included; the
    # loss minimiser's H has no prior, so the prior precision is added): equal to rounding, 1e-9.
    model_hessian = symbolic_hessian(model, jacobian=False)
    prior_precision = np.array([1 / 25, 1 / 6.25])
    for precision, estimate in ((prior_precision, inference.map_estimate(model)), (np.zeros(2), minimiser)):
        mode, hessian = classes.laplace_logistic(design, y, weights, precision, focal_gamma=2.0)
        np.testing.assert_allclose(mode[0], [estimate["intercept"], estimate["coef"][0]], atol=1e-6)
        at_mode = -model_hessian(mode[0])
        np.testing.assert_allclose(hessian[0] + np.diag(prior_precision - precision), at_mode, rtol=1e-9)


def test_laplace_focal_newton_crosses_a_region_where_the_hessian_is_indefinite():
    """From a start where the focal posterior's Hessian is not negative definite (the loss is not
    concave there), the safeguarded Newton steps reach the same mode as from zero (1e-8: both stop at
    steps below 1e-10)."""
    x, y, design = _focal_data()
    precision = np.array([1 / 25, 1 / 6.25])
    start = np.array([3.0, -3.0])
    _, _, curvature = classes.binary_terms(design @ start, y, 2.0)
    at_start = design.T @ (curvature[:, None] * design) + np.diag(precision)
    assert np.linalg.eigvalsh(at_start)[0] < 0
    from_start, _ = classes.laplace_logistic(design, y, np.ones(y.size), precision, start=start,
                                             focal_gamma=2.0)
    from_zero, _ = classes.laplace_logistic(design, y, np.ones(y.size), precision, focal_gamma=2.0)
    np.testing.assert_allclose(from_start, from_zero, atol=1e-8)
    with pytest.raises(InputError, match="focal_gamma"):
        classes.laplace_logistic(design, y, np.ones(y.size), precision, focal_gamma=-1.0)
