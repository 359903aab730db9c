"""Weighted logistic / softmax regression (models.classes) and the class-weight schemes.

Tiers: exact log densities against numpy/scipy (rel 1e-12), structure, weight schemes against their
formulas, WMLE scale invariance and separation (optimiser tolerance), a posterior against 2-D
quadrature (MCSE), and bad input.
"""

import numpy as np
import pymc as pm
import pytest
from scipy import special, stats

from models import classes, inference, weights
from models.inference import UnboundedLikelihoodError, compile_log_likelihood

pytestmark = pytest.mark.python_mode


def binary_data(n=40, seed=3):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 2))
    y = (rng.uniform(size=n) < special.expit(-0.5 + X @ np.array([1.2, -0.7]))).astype(int)
    return X, y, rng.uniform(0.2, 3.0, n)


def multiclass_data(n=45, k=3, seed=4):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 2))
    y = np.r_[np.arange(k), rng.integers(0, k, n - k)]
    return X, y, rng.uniform(0.2, 3.0, n)


def log_softmax(logits):
    return logits - special.logsumexp(logits, axis=-1, keepdims=True)


def focal_numpy(logits, y, w, gamma, alpha):
    log_p = log_softmax(logits)[np.arange(y.size), y]
    return np.sum(w * alpha[y] * (-np.expm1(log_p)) ** gamma * log_p)


THETA_BINARY = {"intercept": np.float64(-0.3), "coef": np.array([0.8, -1.1])}
THETA_MULTI = {"intercept": np.array([0.4, -0.1, -0.3]),
               "coef": np.array([[0.5, -0.2, -0.3], [-0.6, 0.9, -0.3]])}  # rows sum to zero


# --------------------------------------------------------------------------- exact log densities


def test_binary_log_density_equals_scipy():
    X, y, w = binary_data()
    model = classes.build_model(X, y, w, coef_sd=2.5, intercept_sd=5.0)
    eta = THETA_BINARY["intercept"] + X @ THETA_BINARY["coef"]
    likelihood = np.sum(w * stats.bernoulli(special.expit(eta)).logpmf(y))
    prior = stats.norm(0, 5).logpdf(-0.3) + stats.norm(0, 2.5).logpdf(THETA_BINARY["coef"]).sum()
    assert model.compile_logp()(THETA_BINARY) == pytest.approx(prior + likelihood, rel=1e-12)
    assert compile_log_likelihood(model)(**THETA_BINARY) == pytest.approx(likelihood, rel=1e-12)


def test_multiclass_log_likelihood_equals_numpy_softmax():
    X, y, w = multiclass_data()
    model = classes.build_model(X, y, w)
    logits = THETA_MULTI["intercept"] + X @ THETA_MULTI["coef"]
    expected = np.sum(w * log_softmax(logits)[np.arange(y.size), y])
    assert compile_log_likelihood(model)(**THETA_MULTI) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("gamma, alpha", [(0.0, None), (1.0, None), (2.5, 0.25), (5.0, 0.9)])
def test_binary_focal_term_equals_numpy(gamma, alpha):
    X, y, w = binary_data()
    model = classes.build_model(X, y, w, likelihood="focal", focal_gamma=gamma, focal_alpha=alpha)
    eta = THETA_BINARY["intercept"] + X @ THETA_BINARY["coef"]
    logits = np.stack([np.zeros_like(eta), eta], axis=-1)
    alphas = np.ones(2) if alpha is None else np.array([1 - alpha, alpha])
    expected = focal_numpy(logits, y, w, gamma, alphas)
    assert compile_log_likelihood(model)(**THETA_BINARY) == pytest.approx(expected, rel=1e-12)


def test_multiclass_focal_term_equals_numpy():
    X, y, w = multiclass_data()
    alpha = np.array([0.5, 2.0, 1.0])
    model = classes.build_model(X, y, w, likelihood="focal", focal_gamma=2.0, focal_alpha=alpha)
    logits = THETA_MULTI["intercept"] + X @ THETA_MULTI["coef"]
    expected = focal_numpy(logits, y, w, 2.0, alpha)
    assert compile_log_likelihood(model)(**THETA_MULTI) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("data, theta", [(binary_data, THETA_BINARY), (multiclass_data, THETA_MULTI)])
def test_focal_with_gamma_zero_and_no_alpha_is_the_log_likelihood(data, theta):
    X, y, w = data()
    focal = classes.build_model(X, y, w, likelihood="focal", focal_gamma=0.0)
    plain = classes.build_model(X, y, w)
    assert compile_log_likelihood(focal)(**theta) == pytest.approx(
        compile_log_likelihood(plain)(**theta), rel=1e-12)


# --------------------------------------------------------------------------- structure


def test_binary_structure_names_dims_and_finite_gradient():
    X, y, w = binary_data()
    model = classes.build_model(X, y, w, feature_names=["size", "ears"], class_names=["dog", "cat"])
    assert [rv.name for rv in model.free_RVs] == ["intercept", "coef"]
    assert model.named_vars_to_dims["coef"] == ("feature",)
    assert model.coords["feature"] == ("size", "ears") and model.coords["class"] == ("dog", "cat")
    assert model.named_vars_to_dims["label"] == ("obs_id",)
    np.testing.assert_array_equal(model["weights"].get_value(), w)
    start = model.initial_point()
    assert np.isfinite(model.compile_logp()(start))
    assert np.all(np.isfinite(model.compile_dlogp()(start)))


def test_multiclass_structure_is_zero_sum_over_classes():
    X, y, _ = multiclass_data(k=4)
    model = classes.build_model(X, y)
    assert model.named_vars_to_dims["coef"] == ("feature", "class")
    assert model.named_vars_to_dims["intercept"] == ("class",)
    draws = pm.draw([model["intercept"], model["coef"]], draws=5, random_seed=1)
    np.testing.assert_allclose(draws[0].sum(axis=-1), 0.0, atol=1e-12)
    np.testing.assert_allclose(draws[1].sum(axis=-1), 0.0, atol=1e-12)
    flat = classes.build_model(X, y, intercept_sd=None)
    assert flat.initial_point()["intercept_zerosum__"].shape == (3,)  # K - 1 free directions
    assert np.all(np.isfinite(flat.compile_dlogp()(flat.initial_point())))


def test_flat_intercept_has_no_prior_term():
    X, y, _ = binary_data()
    flat = classes.build_model(X, y, intercept_sd=None)
    assert flat.compile_logp(vars=flat.free_RVs[:1])(THETA_BINARY) == 0.0


def test_predict_proba_matches_the_model_and_handles_draws():
    X, _, _ = multiclass_data()
    p = classes.predict_proba(X, THETA_MULTI["intercept"], THETA_MULTI["coef"], n_classes=3)
    np.testing.assert_allclose(np.log(p), log_softmax(THETA_MULTI["intercept"] + X @ THETA_MULTI["coef"]))
    draws = np.stack([THETA_BINARY["coef"], 2 * THETA_BINARY["coef"]])
    p = classes.predict_proba(X, np.array([-0.3, 0.1]), draws)
    assert p.shape == (2, X.shape[0])
    np.testing.assert_allclose(p[1], special.expit(0.1 + X @ draws[1]))
    with pytest.raises(ValueError, match="do not fit X"):
        classes.predict_proba(X, 0.0, np.zeros(3))


def test_prior_correction_formula():
    assert classes.prior_correction(0.3, 0.3) == 0.0
    shift = classes.prior_correction(10 / 1010, 0.5)
    assert shift == pytest.approx(np.log(1000 / 10))  # back to even odds: + log(n_dog / n_cat)
    with pytest.raises(ValueError, match="population_rate"):
        classes.prior_correction(0.1, 1.0)


# --------------------------------------------------------------------------- weight schemes


def test_balanced_weights_match_scikit_learn_formula():
    y = np.array([0, 0, 0, 0, 1, 2, 2, 0])
    counts = np.array([5, 1, 2])
    expected = (8 / (3 * counts))[y]
    np.testing.assert_allclose(weights.balanced(y), expected, rtol=1e-15)
    from sklearn.utils.class_weight import compute_sample_weight
    np.testing.assert_allclose(weights.balanced(y), compute_sample_weight("balanced", y), rtol=1e-15)


def test_effective_number_weights_match_cui_et_al():
    y = np.array([0] * 1000 + [1] * 10)
    beta = 0.999
    raw = (1 - beta) / (1 - beta ** np.array([1000, 10]))
    per_class = raw * 2 / raw.sum()
    np.testing.assert_allclose(weights.effective_number(y, beta), per_class[y], rtol=1e-12)
    # beta -> 1 tends to inverse frequency; beta = 0 is no reweighting at all.
    near_one = weights.effective_number(y, 1 - 1e-9)
    assert near_one[-1] / near_one[0] == pytest.approx(100, rel=1e-5)
    np.testing.assert_array_equal(weights.effective_number(y, 0.0), np.ones(y.size))


@pytest.mark.parametrize("y, message", [
    ([0, 0, 0], "one class only"),
    ([0, 2, 2], r"no sample of class\(es\) \[1\]"),
    ([0, 1, -1], "integer class codes"),
    ([0, 1, 0.5], "integer class codes"),
    ([], "non-empty"),
    ([[0, 1]], "one-dimensional"),
])
def test_schemes_refuse_bad_labels(y, message):
    for scheme in (weights.balanced, weights.effective_number):
        with pytest.raises(ValueError, match=message):
            scheme(y)


def test_effective_number_refuses_bad_beta():
    for beta in (1.0, -0.1, float("nan"), "0.9"):
        with pytest.raises(ValueError, match="beta"):
            weights.effective_number([0, 1], beta)


# --------------------------------------------------------------------------- estimators


@pytest.mark.default_mode
def test_separation_is_detected_while_map_and_posterior_stay_finite():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(30, 2))
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(int)  # a line splits the classes exactly
    model = classes.build_model(X, y, weights.balanced(y))
    runaway = r"linear program.*separation.*coef\[feature=x0\] -> \+inf"
    with pytest.raises(UnboundedLikelihoodError, match=runaway):
        inference.mle(model)
    map_point = inference.map_estimate(model)
    assert np.all(np.isfinite(map_point["coef"])) and np.abs(map_point["coef"]).max() < 20
    idata = inference.sample(model, draws=300, tune=300, chains=2, random_seed=1)
    draws = idata.posterior["coef"].values
    # Under coef ~ N(0, 2.5) no draw can plausibly pass 10 sd.
    assert np.all(np.isfinite(draws)) and np.abs(draws).max() < 25


def test_focal_wmle_moves_towards_hard_samples():
    # With gamma > 0 confident samples count less; on imbalanced data the rare class is the hard one,
    # so the intercept (log-odds of the rare class at x = 0) rises compared with the plain MLE.
    rng = np.random.default_rng(6)
    X = np.r_[rng.normal(0, 1, (300, 1)), rng.normal(1.5, 1, (15, 1))]
    y = np.r_[np.zeros(300, int), np.ones(15, int)]
    plain = inference.mle(classes.build_model(X, y))
    focal = inference.mle(classes.build_model(X, y, likelihood="focal", focal_gamma=2.0))
    # Optimiser tolerance is ~1e-6; the shift itself is 2.5 units here (-4.03 to -1.50 on
    # this seed), so a 0.5 margin asserts a substantial move, not rounding.
    assert focal["intercept"] > plain["intercept"] + 0.5


@pytest.mark.default_mode
def test_posterior_matches_quadrature():
    """One feature: the exact posterior on a fine 2-D grid against NUTS, within 4 MCSE."""
    rng = np.random.default_rng(8)
    X = rng.normal(size=(25, 1))
    y = (rng.uniform(size=25) < special.expit(0.3 + 1.0 * X[:, 0])).astype(int)
    w = rng.uniform(0.5, 2.0, 25)
    model = classes.build_model(X, y, w, coef_sd=1.0, intercept_sd=1.0)
    a, b = np.meshgrid(np.linspace(-4, 4, 801), np.linspace(-4, 4, 801), indexing="ij")
    eta = a[..., None] + b[..., None] * X[:, 0]
    log_post = (stats.norm.logpdf(a) + stats.norm.logpdf(b)
                + np.sum(w * (y * special.log_expit(eta) + (1 - y) * special.log_expit(-eta)), axis=-1))
    density = np.exp(log_post - log_post.max())
    density /= density.sum()
    exact = {"intercept": np.sum(a * density), "coef": np.sum(b * density)}
    import arviz as az
    idata = inference.sample(model, draws=1000, tune=1000, chains=2, random_seed=11)
    mcse = az.mcse(idata, var_names=["intercept", "coef"])
    for name, value in exact.items():
        drawn = float(idata.posterior[name].mean())
        assert abs(drawn - value) < 4 * float(mcse[name].max()), (name, drawn, value)


# --------------------------------------------------------------------------- bad input


X_OK, Y_OK, _ = binary_data(n=10)


@pytest.mark.parametrize("kwargs, message", [
    ({"X": np.where(np.eye(10, 2) > 0, np.nan, X_OK)}, "X has 2 NaN or infinite"),
    ({"X": np.where(np.eye(10, 2) > 0, np.inf, X_OK)}, "X has 2 NaN or infinite"),
    ({"X": X_OK[:, 0]}, "X must be a non-empty two-dimensional"),
    ({"X": X_OK[:0]}, "X must be a non-empty two-dimensional"),
    ({"X": [["a", "b"]] * 10}, "X must be a numeric"),
    ({"y": Y_OK[:-1]}, "y has length 9 but X has 10 rows"),
    ({"y": np.zeros(10, int)}, "y has one class only"),
    ({"y": np.r_[Y_OK[:-1], 3]}, "y has no sample of class"),
    ({"y": np.r_[Y_OK[:-1], -1]}, "y must hold integer class codes"),
    ({"weights": np.r_[np.ones(9), np.nan]}, "weights has 1 NaN"),
    ({"weights": np.ones(9)}, "weights has length 9"),
    ({"feature_names": ["a"]}, "feature_names has 1 name"),
    ({"feature_names": ["a", "a"]}, "feature_names has duplicate"),
    ({"class_names": ["dog", "cat", "cow"]}, "class_names has 3 name"),
    ({"coef_sd": 0.0}, "coef_sd must be a finite positive"),
    ({"intercept_sd": float("inf")}, "intercept_sd must be a finite positive"),
    ({"likelihood": "hinge"}, "likelihood must be one of"),
    ({"likelihood": "focal", "focal_gamma": -1.0}, "focal_gamma must be"),
    ({"likelihood": "focal", "focal_alpha": 1.5}, "focal_alpha as one number"),
    ({"likelihood": "focal", "focal_alpha": [1.0, 0.0]}, "focal_alpha must be"),
    ({"normalize": "sum"}, "normalize must be one of"),
])
def test_bad_input_is_refused_naming_the_argument(kwargs, message):
    arguments = {"X": X_OK, "y": Y_OK, **kwargs}
    with pytest.raises(ValueError, match=message):
        classes.build_model(arguments.pop("X"), arguments.pop("y"), **arguments)
