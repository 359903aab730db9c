"""models.weighted: an existing PyMC model turned into its weighted version.

Exact log densities against scipy for every kind of observed variable, the invariants of weights
(all ones, integer weights as repeated rows, the input model untouched), the weighted MLE against
statsmodels' GLMs with frequency weights, the refusals, and the suite's estimators on the result.
"""

import cloudpickle
import numpy as np
import pymc as pm
import pytensor.tensor as pt
import pytest
from scipy import special, stats

import models
import models.estimation.estimators
import models.sampling.dispatch
from models.errors import InputError
from models.estimation import maximise

pytestmark = pytest.mark.python_mode

N = 12
RNG = np.random.default_rng(20261208)
X = RNG.normal(size=N)
WEIGHTS = RNG.uniform(0.3, 3.0, N)
POINT = {"a": 0.4, "b": -0.7}   # constrained values of the free variables every model below has


def _model(kind: str):
    """A model with free variables a (Normal) and b (Normal), one observed variable ``y`` of ``kind``
    with dims ``obs``, and the scipy log density of each row at ``POINT``."""
    a, b = POINT["a"], POINT["b"]
    eta = a + b * X
    with pm.Model(coords={"obs": range(N), "k": range(3)}) as model:
        a_rv, b_rv = pm.Normal("a", 0, 1), pm.Normal("b", 0, 1)
        mean = a_rv + b_rv * X
        if kind == "normal":
            y = RNG.normal(eta, 1.5)
            pm.Normal("y", mean, 1.5, observed=y, dims="obs")
            logpdf = stats.norm(eta, 1.5).logpdf(y)
        elif kind == "studentt":
            y = RNG.standard_t(4, N) + eta
            pm.StudentT("y", nu=4, mu=mean, sigma=1.0, observed=y, dims="obs")
            logpdf = stats.t(4, eta, 1.0).logpdf(y)
        elif kind == "bernoulli_logit":
            y = RNG.integers(0, 2, N)
            pm.Bernoulli("y", logit_p=mean, observed=y, dims="obs")
            logpdf = stats.bernoulli(special.expit(eta)).logpmf(y)
        elif kind == "binomial":
            y = RNG.integers(0, 6, N)
            pm.Binomial("y", n=5, p=pm.math.sigmoid(mean), observed=y, dims="obs")
            logpdf = stats.binom(5, special.expit(eta)).logpmf(y)
        elif kind == "poisson":
            y = RNG.poisson(2.0, N)
            pm.Poisson("y", mu=pm.math.exp(mean), observed=y, dims="obs")
            logpdf = stats.poisson(np.exp(eta)).logpmf(y)
        elif kind == "negative_binomial":
            y = RNG.poisson(2.0, N)
            pm.NegativeBinomial("y", mu=pm.math.exp(mean), alpha=3.0, observed=y, dims="obs")
            mu = np.exp(eta)
            logpdf = stats.nbinom(3.0, 3.0 / (3.0 + mu)).logpmf(y)
        elif kind == "gamma":
            y = RNG.gamma(2.0, 1.0, N)
            pm.Gamma("y", alpha=2.0, beta=2.0 / pm.math.exp(mean), observed=y, dims="obs")
            logpdf = stats.gamma(2.0, scale=np.exp(eta) / 2.0).logpdf(y)
        elif kind == "beta":
            y = RNG.uniform(0.05, 0.95, N)
            pm.Beta("y", alpha=pm.math.exp(mean), beta=2.0, observed=y, dims="obs")
            logpdf = stats.beta(np.exp(eta), 2.0).logpdf(y)
        elif kind == "categorical":
            y = RNG.integers(0, 3, N)
            logits = pt.stack([pt.zeros(N), mean, -mean], axis=-1)
            pm.Categorical("y", logit_p=logits, observed=y, dims="obs")
            p = special.softmax(np.stack([np.zeros(N), eta, -eta], axis=-1), axis=-1)
            logpdf = np.log(p[np.arange(N), y])
        elif kind == "multinomial":
            y = RNG.multinomial(4, [0.2, 0.3, 0.5], N)
            p = pm.math.softmax(pt.stack([pt.zeros(N), mean, -mean], axis=-1), axis=-1)
            pm.Multinomial("y", n=4, p=p, observed=y, dims=("obs", "k"))
            probabilities = special.softmax(np.stack([np.zeros(N), eta, -eta], axis=-1), axis=-1)
            logpdf = np.array([stats.multinomial(4, row).logpmf(count)
                               for row, count in zip(probabilities, y)])
        elif kind == "mvnormal":
            cov = np.array([[1.0, 0.3, 0.0], [0.3, 2.0, 0.2], [0.0, 0.2, 0.5]])
            y = RNG.normal(size=(N, 3))
            mu = pt.stack([mean, -mean, pt.zeros(N)], axis=-1)
            pm.MvNormal("y", mu=mu, cov=cov, observed=y, dims=("obs", "k"))
            centre = np.stack([eta, -eta, np.zeros(N)], axis=-1)
            logpdf = np.array([stats.multivariate_normal(c, cov).logpdf(row) for c, row in zip(centre, y)])
        elif kind == "censored":
            y = np.clip(RNG.normal(eta, 1.0), -0.5, 1.0)
            pm.Censored("y", pm.Normal.dist(mean, 1.0), lower=-0.5, upper=1.0, observed=y, dims="obs")
            inside = stats.norm(eta, 1.0)
            logpdf = np.where(y <= -0.5, inside.logcdf(-0.5),
                              np.where(y >= 1.0, inside.logsf(1.0), inside.logpdf(y)))
        elif kind == "truncated":
            y = RNG.uniform(-0.4, 0.9, N)
            pm.Truncated("y", pm.Normal.dist(mean, 1.0), lower=-0.5, upper=1.0, observed=y, dims="obs")
            logpdf = stats.truncnorm((-0.5 - eta), (1.0 - eta), loc=eta, scale=1.0).logpdf(y)
    return model, logpdf


KINDS = ["normal", "studentt", "bernoulli_logit", "binomial", "poisson", "negative_binomial", "gamma", "beta",
         "categorical", "multinomial", "mvnormal", "censored", "truncated"]


def _pointwise(model, point=POINT):
    return np.asarray(model.compile_logp(vars=model.observed_RVs, sum=False)(point)[0])


@pytest.mark.parametrize("kind", KINDS)
def test_each_row_is_its_weight_times_scipys_log_density(kind):
    model, logpdf = _model(kind)
    weighted = models.weighted(model, WEIGHTS)
    # The weighted rows are the model's own rows times the weights, to rounding; the model's rows are
    # scipy's to 1e-7 (PyMC keeps some normalising constants, such as log(2 pi) / 2, in float32).
    np.testing.assert_allclose(_pointwise(weighted), WEIGHTS * _pointwise(model), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(_pointwise(weighted), WEIGHTS * logpdf, rtol=1e-7, atol=1e-9)
    prior = stats.norm(0, 1).logpdf([POINT["a"], POINT["b"]]).sum()
    assert weighted.compile_logp()(POINT) == pytest.approx(prior + np.sum(WEIGHTS * logpdf), rel=1e-7)
    assert models.estimator_name(weighted) == "wmle"
    np.testing.assert_array_equal(weighted["weights"].get_value(), WEIGHTS)
    assert tuple(weighted.named_vars_to_dims["weights"]) == ("obs",)


@pytest.mark.parametrize("kind", ["poisson", "multinomial", "censored"])
def test_weights_of_one_are_the_model_and_the_input_model_is_untouched(kind):
    model, _ = _model(kind)
    before = model.compile_logp()(POINT)
    weighted = models.weighted(model, np.ones(N))
    assert weighted.compile_logp()(POINT) == pytest.approx(before, rel=1e-13)
    assert models.estimator_name(weighted) == "mle"
    assert model.compile_logp()(POINT) == before and "weights" not in model.named_vars
    assert getattr(model["y"].tag, "weighted_term", None) is None


def test_integer_weights_are_repeated_rows():
    counts = RNG.poisson(2.0, N)
    repeat = RNG.integers(0, 4, N)
    repeat[0] = 2

    def poisson(x, y):
        with pm.Model() as model:
            a, b = pm.Normal("a", 0, 1), pm.Normal("b", 0, 1)
            pm.Poisson("y", mu=pm.math.exp(a + b * x), observed=y)
        return model

    weighted = models.weighted(poisson(X, counts), repeat.astype(float))
    expanded = poisson(np.repeat(X, repeat), np.repeat(counts, repeat))
    assert weighted.compile_logp()(POINT) == pytest.approx(expanded.compile_logp()(POINT), rel=1e-12)


def test_a_hierarchical_model_with_two_observed_variables_weights_only_what_is_named():
    groups = RNG.integers(0, 3, N)
    with pm.Model(coords={"obs": range(N), "group": range(3)}) as model:
        mu = pm.Normal("mu", 0, 1)
        tau = pm.HalfNormal("tau", 1)
        offset = pm.Normal("offset", 0, 1, dims="group")
        intercept = pm.Deterministic("intercept", mu + tau * offset, dims="group")
        pm.Bernoulli("y", logit_p=intercept[groups] + X, observed=RNG.integers(0, 2, N), dims="obs")
        pm.Normal("z", intercept[groups], 1.0, observed=RNG.normal(size=N), dims="obs")
        pm.Potential("penalty", -0.1 * mu**2)
    point = {"mu": 0.2, "tau_log__": np.log(0.7), "offset": np.array([0.1, -0.3, 0.5])}
    weighted = models.weighted(model, {"y": WEIGHTS})
    y_model = model.compile_logp(vars=[model["y"]], sum=False)(point)[0]
    # Rounding only: each row is one product more than the model's.
    rows = weighted.compile_logp(vars=[weighted["y"]], sum=False)(point)[0]
    np.testing.assert_allclose(rows, WEIGHTS * y_model, rtol=1e-12)
    # z is left as it was
    assert weighted.compile_logp(vars=[weighted["z"]])(point) == model.compile_logp(vars=[model["z"]])(point)
    assert [p.name for p in weighted.potentials] == ["penalty"]
    assert [d.name for d in weighted.deterministics] == ["intercept"]
    assert weighted.compile_logp()(point) == pytest.approx(
        model.compile_logp()(point) + np.sum((WEIGHTS - 1) * y_model), rel=1e-12)
    both = models.weighted(model, {"y": WEIGHTS, "z": 2.0})   # a scalar weighs every row alike
    assert sorted(d.name for d in both.data_vars) == ["y_weights", "z_weights"]
    np.testing.assert_array_equal(both["z_weights"].get_value(), np.full(N, 2.0))


def test_normalize_rescales_the_weights_as_the_builders_do():
    model, _ = _model("poisson")
    for how in ("n", "ess"):
        weighted = models.weighted(model, WEIGHTS, normalize=how)
        np.testing.assert_allclose(weighted["weights"].get_value(), models.weights.normalize(WEIGHTS, how))


def _refusal(model, weights, match, **options):
    with pytest.raises(InputError, match=match):
        models.weighted(model, weights, **options)


def test_what_cannot_be_weighted_is_refused_naming_the_variable():
    model, _ = _model("normal")
    _refusal(model, {"q": WEIGHTS}, r"no observed variable 'q'")
    _refusal(model, WEIGHTS[:5], r"weights of 'y' have shape \(5,\)")
    _refusal(model, -WEIGHTS, r"weights of 'y' has 12 negative")
    _refusal(model, np.zeros(N), r"weights of 'y' are all zero")
    _refusal(model, np.where(np.arange(N) == 3, np.nan, 1.0), r"weights of 'y' has 1 NaN")
    _refusal("model", WEIGHTS, r"model must be a pymc.Model")
    _refusal(models.weighted(model, WEIGHTS), WEIGHTS, r"'y' is weighted already")
    with pm.Model() as imputed, pytest.warns(UserWarning, match="missing values"):
        mu = pm.Normal("mu")
        pm.Normal("y", mu, 1.0, observed=np.array([0.1, np.nan, 0.3]))
        pm.Deterministic("double", 2 * mu)
        pm.Potential("penalty", -mu**2)
    _refusal(imputed, {"y": np.ones(3)}, r"'y' has missing values that PyMC imputes")
    _refusal(imputed, {"double": np.ones(3)}, r"'double' is a deterministic")
    _refusal(imputed, {"penalty": np.ones(3)}, r"'penalty' is a potential")
    data = RNG.normal(size=100)
    with pm.Model() as minibatched:
        mu = pm.Normal("mu")
        batch = pm.Minibatch(data, batch_size=10)
        pm.Normal("y", mu, 1.0, observed=batch, total_size=100)
    _refusal(minibatched, np.ones(10), r"'y' is minibatched")
    with pm.Model() as initialised:
        mu = pm.Normal("mu", initval=0.5)
        pm.Normal("y", mu, 1.0, observed=np.zeros(3))
    _refusal(initialised, np.ones(3), r"cannot rewrite this model's graph.*initial_values")
    signed = models.weighted(model, WEIGHTS - 1.0, allow_negative=True)
    assert np.any(signed["weights"].get_value() < 0)


# ------------------------------------------------------------------------- the WMLE against statsmodels


@pytest.mark.parametrize("family", ["binomial", "poisson", "gaussian", "gamma"])
def test_the_wmle_equals_statsmodels_glm_with_frequency_weights(family):
    sm = pytest.importorskip("statsmodels.api")
    rng = np.random.default_rng(7)
    n = 60
    x = rng.normal(size=n)
    weights = rng.integers(1, 5, n).astype(float)
    eta = 0.3 + 0.5 * x
    design = np.column_stack([np.ones(n), x])
    with pm.Model() as model:
        a, b = pm.Normal("a", 0, 10), pm.Normal("b", 0, 10)
        mean = a + b * x
        if family == "binomial":
            y = rng.binomial(6, special.expit(eta))
            pm.Binomial("y", n=6, p=pm.math.sigmoid(mean), observed=y)
            glm = sm.GLM(np.column_stack([y, 6 - y]), design, family=sm.families.Binomial(),
                         freq_weights=weights)
        elif family == "poisson":
            y = rng.poisson(np.exp(eta))
            pm.Poisson("y", mu=pm.math.exp(mean), observed=y)
            glm = sm.GLM(y, design, family=sm.families.Poisson(), freq_weights=weights)
        elif family == "gaussian":
            y = rng.normal(eta, 0.7)
            sigma = pm.HalfNormal("sigma", 5)
            pm.Normal("y", mean, sigma, observed=y)
            glm = sm.GLM(y, design, family=sm.families.Gaussian(), freq_weights=weights)
        else:
            y = rng.gamma(3.0, np.exp(eta) / 3.0)
            shape = pm.HalfNormal("shape", 10)
            pm.Gamma("y", alpha=shape, beta=shape / pm.math.exp(mean), observed=y)
            glm = sm.GLM(y, design, family=sm.families.Gamma(sm.families.links.Log()), freq_weights=weights)
    reference = glm.fit(tol=1e-12).params
    estimate = models.mle(models.weighted(model, weights))
    # L-BFGS stops at a relative gradient of 1e-12 (models.estimation.maximise); IRLS at 1e-12: the
    # coefficients agree to well within 1e-6.
    np.testing.assert_allclose([estimate["a"], estimate["b"]], reference, atol=1e-6)


# ------------------------------------------------------------------------- the suite's estimators on it


@pytest.mark.default_mode
def test_compare_loo_and_the_predictive_work_on_a_weighted_model_and_pickle(tmp_path):
    model, _ = _model("censored")
    weighted = models.weighted(model, WEIGHTS)
    result = models.compare(weighted, draws=200, tune=200, chains=2, random_seed=5, posterior_predictive=True)
    assert result.point_name == "wmle" and result.point is not None
    assert {"log_likelihood", "unweighted_log_likelihood", "posterior_predictive", "constant_data"} <= set(
        result.idata.groups())
    np.testing.assert_allclose(result.idata.log_likelihood["y"].values,
                               WEIGHTS * result.idata.unweighted_log_likelihood["y"].values, rtol=1e-12)
    predictive = result.idata.posterior_predictive["y"].values   # the unweighted censored normal
    assert predictive.shape == (2, 200, N) and predictive.min() >= -0.5 and predictive.max() <= 1.0
    assert np.isfinite(models.loo(result.idata, weights="population").elpd)
    path = tmp_path / "weighted.nc"
    result.idata.to_netcdf(path)
    assert result.idata.attrs["point_name"] == "wmle"
    clone = cloudpickle.loads(cloudpickle.dumps(weighted))
    assert clone.compile_logp()(POINT) == pytest.approx(weighted.compile_logp()(POINT), rel=1e-13)


@pytest.mark.default_mode
def test_sample_many_and_the_calibration_methods_run_on_a_weighted_model():
    model, _ = _model("bernoulli_logit")
    weighted = models.weighted(model, WEIGHTS)
    fits = models.sample_many(weighted, [{"weights": WEIGHTS}, {"weights": np.ones(N)}], random_seeds=[1, 2],
                              draws=100, tune=100, chains=2, sampler="pymc")
    assert fits.posterior["a"].shape == (2, 2, 100)
    fits.idata_of(1)
    np.testing.assert_allclose(weighted["weights"].get_value(), WEIGHTS)   # a sweep leaves the model's data
    models.weighted_likelihood_bootstrap_many(weighted, [{"weights": np.ones(N)}], draws=5, random_seeds=[1])
    np.testing.assert_allclose(weighted["weights"].get_value(), WEIGHTS)
    results = models.compare_many(weighted, [{"weights": np.ones(N)}, {}], random_seeds=[1, 2], draws=50,
                                  tune=50, chains=1, sampler="pymc", posterior_predictive=True)
    assert [result.point_name for result in results] == ["mle", "wmle"]
    np.testing.assert_allclose(results[0].idata.constant_data["weights"], 1.0)
    np.testing.assert_allclose(results[1].idata.constant_data["weights"], WEIGHTS)
    np.testing.assert_allclose(weighted["weights"].get_value(), WEIGHTS)
    wlb = models.weighted_likelihood_bootstrap(weighted, draws=20, random_seed=3)
    assert wlb.posterior["b"].shape == (1, 20) and wlb.attrs["failed_draws"] == 0
    adjusted = models.sandwich_adjust(weighted, models.sample(weighted, draws=100, tune=100, chains=2,
                                                              random_seed=4))
    assert adjusted.attrs["method"] == "sandwich_adjusted"
    calibrated = models.gpc(weighted, random_seed=6, bootstrap=10, iterations=1, draws=100, tune=100,
                            chains=1, sampler="pymc")
    assert len(calibrated.path) == 1 and 0 <= calibrated.coverage <= 1
    np.testing.assert_allclose(calibrated.idata.constant_data["weights"], WEIGHTS)   # omega_1 = 1
    np.testing.assert_allclose(weighted["weights"].get_value(), WEIGHTS)   # the model keeps its weights


# ------------------------------------------------------------------------- weights checked where they enter


def _hand_written(weights, **options):
    with pm.Model(coords={"obs": range(N)}) as model:
        a = pm.Normal("a", 0, 1)
        models.weighted_likelihood("y", pm.Poisson, weights, observed=RNG.poisson(2.0, N), dims="obs",
                                   mu=pm.math.exp(a), **options)
    return model


def test_the_weighted_term_refuses_bad_weights_when_it_is_built():
    for weights, match in ((np.zeros(N), "all zero"), (-np.ones(N), "negative"), (np.full(N, np.nan), "NaN"),
                           (np.ones(N - 1), r"shape \(11,\)"), (["x"] * N, "numbers")):
        with pytest.raises(InputError, match=match):
            _hand_written(weights)
    assert np.all(_hand_written(-np.ones(N), allow_negative=True)["y"].tag.weighted_term.allow_negative)


def test_weights_set_later_are_checked_before_any_fit():
    with pm.Model(coords={"obs": range(N)}) as model:
        a = pm.Normal("a", 0, 1)
        weights = pm.Data("weights", np.ones(N), dims="obs")
        models.weighted_likelihood("y", pm.Poisson, weights, observed=RNG.poisson(2.0, N), dims="obs",
                                   mu=pm.math.exp(a))
    pm.set_data({"weights": np.where(np.arange(N) == 2, np.nan, 1.0)}, model=model)
    for estimator in (models.mle, models.map_estimate, models.sample, models.compare):
        with pytest.raises(InputError, match=r"the weights of 'y' has 1 NaN value\(s\), first at index 2"):
            estimator(model)
    pm.set_data({"weights": np.ones(N)}, model=model)
    with pytest.raises(InputError, match=r"data set 1: the weights of 'y' are all zero"):
        models.sample_many(model, [{}, {"weights": np.zeros(N)}], random_seeds=[1, 2], draws=10, tune=10)


@pytest.mark.default_mode
def test_plain_numpy_weights_sample_and_store_the_log_likelihood():
    model = _hand_written(WEIGHTS)
    idata = models.sample(model, draws=50, tune=50, chains=2, random_seed=1)
    np.testing.assert_allclose(idata.log_likelihood["y"].values,
                               WEIGHTS * idata.unweighted_log_likelihood["y"].values, rtol=1e-12)
    assert models.estimator_name(model) == "wmle" and models.weights_summary(model)["sum"] == pytest.approx(
        WEIGHTS.sum())


# ------------------------------------------------------------------------- exact verdicts of GLM-like models


def _glm(kind, y, x=np.array([-2.0, -1.0, 1.0, 2.0, 0.5]), weights=None):
    with pm.Model() as model:
        a, b = pm.Normal("a", 0, 5), pm.Normal("b", 0, 5)
        eta = a + b * x
        if kind == "bernoulli":
            pm.Bernoulli("y", logit_p=eta, observed=y)
        elif kind == "binomial":
            pm.Binomial("y", n=3, p=pm.math.sigmoid(eta), observed=y)
        else:
            pm.Poisson("y", mu=pm.math.exp(eta), observed=y)
    return model if weights is None else models.weighted(model, weights)


@pytest.mark.parametrize("kind, y, exists, diverging", [
    ("bernoulli", [0, 0, 1, 1, 1], False, ("b -> +inf",)),              # complete separation at x = 0
    ("bernoulli", [0, 1, 1, 0, 1], True, ()),                          # overlap
    ("binomial", [0, 0, 3, 3, 3], False, ("b -> +inf",)),
    ("binomial", [0, 1, 3, 3, 3], False, ("a -> +inf", "b -> +inf")),  # quasi-complete: 1 of 3 at x = -1
    ("binomial", [1, 0, 3, 2, 3], True, ()),
])
def test_a_logit_link_on_a_linear_predictor_gets_the_linear_programs_verdict(kind, y, exists, diverging):
    for model in (_glm(kind, y), _glm(kind, y, weights=np.array([1.0, 2.0, 0.5, 1.0, 3.0]))):
        verdict = models.estimation.estimators.mle_verdict(model)
        assert (verdict.method, verdict.exists, verdict.diverging) == ("linear program", exists, diverging)
        if not exists:   # the ridge path, an independent numerical oracle, agrees that it runs off
            objective = maximise.compiled_objective(model, [*model.observed_RVs], separate_likelihood=True)
            ridge, _ = maximise.ridge_path(objective, "weighted log-likelihood")
            assert not ridge.exists and set(ridge.diverging) >= set(diverging)


def test_a_log_link_with_a_group_of_zero_counts_has_no_mle_and_a_zero_weight_restores_it():
    group = np.array([0.0, 0.0, 1.0, 1.0, 1.0])
    zeros = _glm("poisson", [0, 0, 3, 1, 2], x=group)
    verdict = models.estimation.estimators.mle_verdict(zeros)
    assert not verdict.exists and verdict.diverging == ("a -> -inf", "b -> +inf")
    assert models.estimation.estimators.mle_verdict(_glm("poisson", [1, 0, 3, 1, 2], x=group)).exists
    # Rows of weight 0 are outside the fit: the row at x = -2 that keeps the data from separating
    # stops doing so once it weighs nothing, and a separating row that weighs nothing stops separating.
    assert models.estimation.estimators.mle_verdict(_glm("bernoulli", [1, 0, 1, 1, 1])).exists
    dropped = _glm("bernoulli", [1, 0, 1, 1, 1], weights=np.array([0.0, 1.0, 1.0, 1.0, 1.0]))
    assert not models.estimation.estimators.mle_verdict(dropped).exists
    kept = _glm("bernoulli", [1, 0, 0, 1, 1], weights=np.array([1.0, 1.0, 1.0, 1.0, 0.0]))
    assert models.estimation.estimators.mle_verdict(kept).exists


def test_what_the_linear_program_cannot_decide_is_left_to_the_ridge_path():
    x = np.array([-2.0, -1.0, 1.0, 2.0])
    with pm.Model() as squared:   # a predictor that is not linear in the free variables
        a, b = pm.Normal("a", 0, 5), pm.Normal("b", 0, 5)
        pm.Bernoulli("y", logit_p=a + b**3 * x, observed=[0, 0, 1, 1])
    with pm.Model() as scaled:    # a free variable with a transform (bounded support)
        scale = pm.HalfNormal("scale", 1)
        pm.Bernoulli("y", logit_p=scale * x, observed=[0, 0, 1, 1])
    with pm.Model() as probit:    # another link
        b = pm.Normal("b", 0, 5)
        pm.Bernoulli("y", p=pm.math.invprobit(b * x), observed=[0, 0, 1, 1])
    signed = models.weighted(_glm("bernoulli", [0, 0, 1, 1, 1]), np.array([1.0, -1.0, 1.0, 1.0, 1.0]),
                             allow_negative=True)   # signed weights: the likelihood may be unbounded above
    for model in (squared, scaled, probit, signed):
        assert models.estimation.estimators.mle_verdict(model) is None


def test_an_intercept_only_predictor_and_two_observed_terms_are_decided_row_by_row():
    with pm.Model() as intercept_only:   # one predictor broadcast over three rows that overlap
        a = pm.Normal("a", 0, 5)
        pm.Bernoulli("y", logit_p=a, observed=[0, 1, 1])
    assert models.estimation.estimators.mle_verdict(intercept_only).exists
    with pm.Model() as zeros:            # a Poisson with one count of 0 among others: finite
        a = pm.Normal("a", 0, 5)
        pm.Poisson("y", mu=pm.math.exp(a), observed=[0, 2, 1])
    assert models.estimation.estimators.mle_verdict(zeros).exists
    x = np.array([-1.0, 1.0])
    with pm.Model() as two:              # each term alone separates; together they overlap
        a, b = pm.Normal("a", 0, 5), pm.Normal("b", 0, 5)
        pm.Bernoulli("y", logit_p=a + b * x, observed=[0, 1])
        pm.Bernoulli("z", logit_p=a + b * x, observed=[1, 0])
    assert models.estimation.estimators.mle_verdict(two).exists
    with pm.Model() as both_separate:
        a, b = pm.Normal("a", 0, 5), pm.Normal("b", 0, 5)
        pm.Bernoulli("y", logit_p=a + b * x, observed=[0, 1])
        pm.Poisson("z", mu=pm.math.exp(a + b * x), observed=[0, 3])
    verdict = models.estimation.estimators.mle_verdict(both_separate)
    assert not verdict.exists and verdict.diverging == ("a -> -inf", "b -> +inf")


@pytest.mark.default_mode
def test_weighting_a_second_variable_keeps_the_first_terms_weights_and_loo_reads_each_terms_own():
    with pm.Model(coords={"obs": range(N)}) as model:
        a = pm.Normal("a", 0, 1)
        models.weighted_likelihood("y", pm.Poisson, pm.Data("weights", WEIGHTS, dims="obs"),
                                   observed=RNG.poisson(2.0, N), dims="obs", mu=pm.math.exp(a))
        pm.Normal("z", a, 1.0, observed=RNG.normal(size=N), dims="obs")
    both = models.weighted(model, {"z": 2.0 * np.ones(N)})
    marker = both["y"].tag.weighted_term
    assert marker.weights is both["weights"] and marker.weights is not model["weights"]
    assert sorted(d.name for d in both.data_vars) == ["weights", "z_weights"]
    pm.set_data({"weights": np.where(np.arange(N) == 0, np.nan, 1.0)}, model=both)
    with pytest.raises(InputError, match="the weights of 'y' has 1 NaN"):   # the new model's weights
        models.mle(both)
    pm.set_data({"weights": WEIGHTS}, model=both)
    idata = models.sample(both, draws=50, tune=50, chains=2, random_seed=2)
    for name, weights in (("y", WEIGHTS), ("z", np.full(N, 2.0))):
        np.testing.assert_allclose(idata.log_likelihood[name].values,
                                   weights * idata.unweighted_log_likelihood[name].values, rtol=1e-12)
    assert idata.attrs["weights_of_y"] == "weights" and idata.attrs["weights_of_z"] == "z_weights"
    assert models.loo(idata, var_name="z").units == 2 * N   # z's own weights, 2 per row
    with pytest.raises(InputError, match="2 weighted terms"):
        models.weighted_likelihood_bootstrap(both, draws=5, random_seed=1)


@pytest.mark.default_mode
def test_a_multivariate_weighted_term_samples_with_one_log_density_per_row():
    model, _ = _model("mvnormal")
    idata = models.sample(models.weighted(model, WEIGHTS), draws=50, tune=50, chains=2, random_seed=3)
    assert idata.log_likelihood["y"].dims == ("chain", "draw", "obs")
    np.testing.assert_allclose(idata.log_likelihood["y"].values,
                               WEIGHTS * idata.unweighted_log_likelihood["y"].values, rtol=1e-12)
    assert np.isfinite(models.loo(idata, weights="population").elpd)


@pytest.mark.default_mode
@pytest.mark.skipif(not models.sampling.dispatch.batched_available(), reason="needs the jax extra")
def test_the_batched_engine_fits_a_weighted_model_or_says_why_it_cannot():
    rng = np.random.default_rng(4)
    with pm.Model(coords={"obs": range(N)}) as model:
        a, b = pm.Normal("a", 0, 2), pm.Normal("b", 0, 2)
        pm.Poisson("y", mu=pm.math.exp(a + b * X), observed=rng.poisson(np.exp(0.3 + 0.5 * X)), dims="obs")
    weighted = models.weighted(model, WEIGHTS)
    datasets = [{"weights": WEIGHTS}, {"weights": 3.0 * WEIGHTS}]
    fits = models.sample_many(weighted, datasets, random_seeds=[1, 2], draws=100, tune=100, chains=2,
                              sampler="numpyro")
    assert fits.sampler == "numpyro (batched)" and fits.posterior["b"].shape == (2, 2, 100)
    second = fits.idata_of(1)
    np.testing.assert_allclose(second.log_likelihood["y"].values,
                               3.0 * WEIGHTS * second.unweighted_log_likelihood["y"].values, rtol=1e-12)
    censored, _ = _model("censored")   # its log density needs erfcx, which JAX lacks here
    with pytest.raises(InputError, match="cannot run this model in JAX"):
        models.sample_many(models.weighted(censored, WEIGHTS), [{}], random_seeds=[1], draws=10, tune=10,
                           sampler="numpyro")
