"""Sampler back ends: the "auto" rule, the same InferenceData groups and weighted log-likelihood from
every back end, seeds, refusals, and the benchmark script's bookkeeping."""

import json

import numpy as np
import pymc as pm
import pytest

from analyses import cli
from benchmarks import samplers as bench
from models import classes, coin, inference
from models.errors import InputError
from models.sampling import dispatch

SETTINGS = {"draws": 60, "tune": 60, "chains": 2, "random_seed": 11}


@pytest.fixture(scope="module")
def coin_model():
    return coin.build_model([1, 0, 1, 1, 0, 1, 1, 0, 1, 1], [1, 1, 10, 1, 1, 1, 1, 1, 1, 1], prior=(2, 2))


@pytest.fixture(scope="module")
def fits(coin_model):
    """``fits(backend)``: one coin fit per back end (with posterior predictive), made once."""
    done = {}

    def fit(backend):
        if backend != "pymc":
            pytest.importorskip(backend)
        if backend not in done:
            done[backend] = inference.sample(coin_model, sampler=backend, posterior_predictive=True,
                                             **SETTINGS)
        return done[backend]

    return fit


def test_small_models_stay_on_pymc_and_large_ones_go_to_numpyro(coin_model, monkeypatch):
    large = coin.build_model(np.tile([0, 1], dispatch.AUTO_MIN_DATA_SIZE // 2))
    assert dispatch.data_size(coin_model) == 22  # flips (observed pm.Data), weights, the prior's a and b
    assert dispatch.data_size(large) == 2 * dispatch.AUTO_MIN_DATA_SIZE + 2
    monkeypatch.setattr(dispatch, "is_installed", lambda backend: True)
    assert dispatch.resolve("auto", coin_model) == "pymc"
    assert dispatch.resolve("auto", large) == "numpyro"
    monkeypatch.setattr(dispatch, "is_installed", lambda backend: backend == "pymc")  # no JAX here
    assert dispatch.resolve("auto", large) == "pymc"


def test_bad_or_missing_back_ends_are_refused(coin_model, monkeypatch):
    with pytest.raises(InputError, match=r"sampler must be one of \('auto', 'pymc', 'numpyro', 'nutpie'\)"):
        inference.sample(coin_model, sampler="stan")
    with pytest.raises(InputError, match="sampler must be one of"):
        inference.sample(coin_model, sampler=None)
    with pytest.raises(InputError, match="log_likelihood must be None, True or False"):
        inference.sample(coin_model, log_likelihood="yes")
    monkeypatch.setattr(dispatch, "is_installed", lambda backend: backend == "pymc")
    with pytest.raises(InputError, match=r"'numpyro' needs numpyro and jax: pip install -e \"\.\[jax\]\""):
        inference.sample(coin_model, sampler="numpyro")


@pytest.mark.parametrize("backend", ["numpyro", "nutpie"])
def test_every_back_end_gives_the_groups_and_weighted_log_likelihood_of_pymc(fits, coin_model, backend):
    reference, idata = fits("pymc"), fits(backend)
    assert set(idata.groups()) == set(reference.groups())
    assert set(idata.posterior.data_vars) == set(reference.posterior.data_vars) == {"p"}
    assert {"diverging", "energy"} <= set(idata.sample_stats.data_vars)
    assert idata.attrs["sampler"] == backend and idata.attrs["log_likelihood"] == "stored"
    np.testing.assert_array_equal(idata.constant_data["weights"], reference.constant_data["weights"])
    # The stored pointwise log-likelihood is the model's weighted term at the same draws.
    expected = pm.compute_log_likelihood(idata.copy(), model=coin_model, extend_inferencedata=False,
                                         progressbar=False)["heads"].values
    np.testing.assert_allclose(idata.log_likelihood["heads"].values, expected, rtol=1e-10, atol=0)
    # And it is w_i log p(y_i | p) (the 10-fold toss 10 times the plain one's).
    p = idata.posterior["p"].values[..., None]
    flips, weights = reference.observed_data["heads"].values, reference.constant_data["weights"].values
    np.testing.assert_allclose(idata.log_likelihood["heads"].values,
                               weights * np.where(flips == 1, np.log(p), np.log1p(-p)), rtol=1e-10)
    # Posterior predictive tosses come from the unweighted Bernoulli: 0/1 only.
    assert set(np.unique(idata.posterior_predictive["heads"].values)) <= {0, 1}
    assert inference.diagnose(idata).divergences == 0


def test_numpyro_log_likelihood_of_the_classes_model_is_the_weighted_logistic_term():
    pytest.importorskip("numpyro")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 2))
    y = (rng.random(40) < 1 / (1 + np.exp(-X[:, 0]))).astype(int)
    w = rng.uniform(0.2, 3.0, 40)
    idata = inference.sample(classes.build_model(X, y, w), sampler="numpyro", draws=30, tune=30, chains=2,
                             random_seed=2)
    assert idata.attrs["chain_method"] == "parallel"  # one JAX host device per chain
    posterior = idata.posterior
    eta = posterior["intercept"].values[..., None] + np.einsum("cdf,of->cdo", posterior["coef"].values, X)
    expected = w * (y * eta - np.logaddexp(0, eta))
    assert idata.log_likelihood["label"].dtype == np.float64
    np.testing.assert_allclose(idata.log_likelihood["label"].values, expected, rtol=1e-10, atol=0)


@pytest.mark.parametrize("backend", ["pymc", "numpyro", "nutpie"])
def test_a_seed_repeats_the_draws_of_each_back_end(fits, coin_model, backend):
    first = fits(backend)
    again = inference.sample(coin_model, sampler=backend, **SETTINGS)
    np.testing.assert_array_equal(first.posterior["p"].values, again.posterior["p"].values)


def test_pymc_back_end_draws_what_pm_sample_draws_seed_for_seed():
    """The PyMC back end runs pm.sample with pieces compiled once per model (models.compiled: the NUTS
    step, the jittered starts, the chains' recorder); its draws must be pm.sample()'s own, bit for
    bit, on the first fit of a new model and on a later one that reuses the pieces."""
    coin_model = coin.build_model([1, 0, 1, 1, 0], [1, 1, 10, 1, 1], prior=(2, 2))
    settings = {"draws": 30, "tune": 30, "chains": 2, "cores": 1}
    for seed in (4, 5):
        ours = inference.sample(coin_model, sampler="pymc", random_seed=seed, log_likelihood=False,
                                **settings)
        theirs = pm.sample(model=coin_model, random_seed=seed, init="jitter+adapt_diag", progressbar=False,
                           compute_convergence_checks=False, **settings)
        for name in theirs.posterior.data_vars:
            np.testing.assert_array_equal(ours.posterior[name], theirs.posterior[name])
        for name in ("energy", "step_size", "tree_depth", "diverging"):
            np.testing.assert_array_equal(ours.sample_stats[name], theirs.sample_stats[name])


def test_log_likelihood_is_left_out_with_a_warning_when_too_large(coin_model, monkeypatch):
    monkeypatch.setattr(dispatch, "LOG_LIKELIHOOD_MAX_GIB", 1e-9)
    with pytest.warns(UserWarning, match="log_likelihood left out"):
        idata = inference.sample(coin_model, sampler="pymc", draws=20, tune=20, chains=1, random_seed=1)
    assert "log_likelihood" not in idata.groups() and idata.attrs["log_likelihood"] == "left out"


def test_log_likelihood_size_follows_the_data_on_a_shape_function_compiled_once():
    """The coin's observed value is a cast of its ``pm.Data`` (not the data itself): its size comes from
    a function of the shapes, compiled on the first call and read again after ``pm.set_data``."""
    from models import compiled

    model = coin.build_model([1, 0, 1], [1.0, 1.0, 2.0])
    assert dispatch.log_likelihood_bytes(model, chains=2, draws=10) == 2 * 3 * 2 * 10 * 8
    functions = dict(compiled._CACHE[model])   # the build's weight check compiled the observed shape too
    assert sorted(key[0] for key in functions) == ["observed_shape", "observed_sizes"]
    with model:
        pm.set_data({"flips": [1, 0, 1, 1, 0], "weights": np.ones(5)}, coords={"toss": np.arange(5)})
    assert dispatch.log_likelihood_bytes(model, chains=2, draws=10) == 2 * 5 * 2 * 10 * 8
    assert compiled._CACHE[model] == functions


def test_the_command_line_offers_every_sampler_and_defaults_to_auto():
    assert cli.parser().parse_args(["coin"]).sampler == "auto"
    assert cli.parser().parse_args(["coin", "--sampler", "nutpie"]).sampler == "nutpie"


# --------------------------------------------------------------------------- the benchmark script


def row(model, rows, sampler, wall, ess, *, collapsed=False, default=False, memory=1.0):
    return {"model": model, "rows": rows, "collapsed": collapsed, "sampler": sampler, "default": default,
            "compile_s": 5.0, "sampling_s": wall - 5.0, "wall_s": wall, "min_ess_bulk": ess,
            "ess_per_s": ess / wall, "peak_rss_gib": memory, "status": "ok"}


def test_benchmark_targets_come_from_the_measured_rows():
    rows = [row("classes", 100_000, "pymc", 90.0, 900.0),
            row("classes", 100_000, "numpyro", 30.0, 600.0, default=True),
            row("policy", 1_000, "pymc", 6.0, 800.0, collapsed=True, default=True),
            row("policy", 1_000_000, "pymc", 9.0, 800.0, collapsed=True, default=True, memory=0.5),
            row("classes", 1_000_000, "numpyro", 300.0, 600.0, default=True, memory=4.5)]
    goals = {g["target"].split(":")[0]: g for g in bench.targets(rows)}
    for name, value in (("classes 1e5 rows", 1.0), ("collapsed policy", 1.5)):
        assert (goals[name]["value"], goals[name]["met"]) == (pytest.approx(value), "yes")
    assert goals["auto"]["value"] == 0 and goals["auto"]["basis"] == "of 1 compared"  # numpyro fastest at 1e5
    memory = [g for g in bench.targets(rows) if g["target"].startswith("peak memory")]
    assert [(g["value"], g["met"]) for g in memory] == [(0.5, "yes"), (4.5, "no")]
    nothing = bench.targets([])
    assert {g["met"] for g in nothing} == {"not measured"}


def test_benchmark_stops_a_series_that_would_exceed_the_limit(monkeypatch):
    measured = []

    def fake(fit, timeout):
        measured.append(fit.rows)
        return row(fit.model, fit.rows, fit.sampler, 5.0 + fit.rows / 1000, 500.0)

    monkeypatch.setattr(bench, "measure_fit", fake)
    fits = [bench.Fit("classes", n, False, "pymc", 10, 10, 2, 1) for n in (1_000, 10_000, 100_000, 1_000_000)]
    rows = bench.run_series(fits, timeout=200.0, log=lambda r: None)
    # 1e4 rows took 15 s (10 s sampling): 1e5 predicted 5 + 100 = 105 s, run; 1e6 predicted 1005 s.
    assert measured == [1_000, 10_000, 100_000]
    assert rows[-1]["status"].startswith("skipped: predicted 1005 s > limit 200 s")
    collapsed = [bench.Fit("policy", n, True, "pymc", 10, 10, 2, 1) for n in (1_000, 1_000_000)]
    statuses = [r["status"] for r in bench.run_series(collapsed, timeout=200.0, log=lambda r: None)]
    assert statuses == ["ok", "ok"]  # the collapsed model's data do not grow with the steps


def test_benchmark_child_measures_a_fit_and_the_outputs_are_written(tmp_path, capsys):
    fit = bench.Fit("coin", 10, False, "pymc", draws=30, tune=30, chains=2, seed=1)
    assert bench.main(["--child", json.dumps(fit.__dict__)]) == 0
    result = json.loads(capsys.readouterr().out.split("RESULT ", 1)[1])
    assert result["default"] is True and result["log_likelihood"] == "stored"
    assert result["wall_s"] > 0 and result["min_ess_bulk"] > 0 and result["peak_rss_gib"] > 0
    rows = [row("classes", n, s, 10.0 * n / 1000, 500.0) for n in (1_000, 10_000)
            for s in ("pymc", "numpyro")]
    bench.write_csv(tmp_path / "samplers.csv", rows, bench.COLUMNS)
    bench.plot(rows, tmp_path / "samplers.png", "test")
    assert (tmp_path / "samplers.csv").read_text().splitlines()[0] == ",".join(bench.COLUMNS)
    assert (tmp_path / "samplers.png").stat().st_size > 10_000
