"""Simulation-based calibration machinery (fast) and the SBC verdicts (slow)."""

import csv

import numpy as np
import pytest

from analyses import cli, sbc
from analyses.study import Settings
from models.inference import Diagnostics

pytestmark = pytest.mark.analysis_run(seconds=22)   # cold, for the order (tests/conftest.py)


def test_rank_counts_bins_ranks_0_to_99_in_20_bins_of_5():
    counts = sbc.rank_counts(np.arange(100))
    np.testing.assert_array_equal(counts, np.full(20, 5))
    np.testing.assert_array_equal(sbc.rank_counts([0, 4, 5, 99])[[0, 1, 19]], [2, 1, 1])


def scenario(name):
    return next(s for s in sbc.SCENARIOS if s.name == name)


def test_scenarios_simulate_what_they_say():
    rng = np.random.default_rng(1)
    truth, data, weights = scenario("frequency_weights").simulate(rng)
    assert 0 < truth["p"] < 1 and list(data["flips"]) == [1, 0] and weights.sum() == sbc.FREQUENCY_TOSSES
    truth, data, weights = scenario("key_toss_x10_as_given").simulate(rng)
    assert set(data["flips"]) <= {0, 1} and data["flips"].size == 10 and weights[2] == 10
    assert weights.sum() == 19
    # Classes: 60 samples on 9 covariate patterns, stored as 18 (pattern, label) rows with counts.
    truth, data, weights = scenario("classes_frequency_weights").simulate(rng)
    assert data["X"].shape == (18, 2) and weights.sum() == sbc.CLASSES_SAMPLES and truth["coef"].shape == (2,)
    truth, data, weights = scenario("classes_balanced_sum_n").simulate(rng)
    assert weights.sum() == pytest.approx(sbc.CLASSES_SAMPLES) and len(np.unique(weights)) == 2
    # Policy: cell weights of 40 steps; counts for frequency weights, lognormal summing to n otherwise.
    truth, data, weights = scenario("policy_frequency_weights").simulate(rng)
    assert weights.shape == (sbc.POLICY_STATES * sbc.POLICY_ACTIONS,) and weights.sum() == sbc.POLICY_STEPS
    assert np.all(weights == np.round(weights))
    truth, data, weights = scenario("policy_lognormal_weights_as_given").simulate(rng)
    assert np.all(weights >= 0) and truth["preference"].shape == (2, 3)


def test_frequency_weighted_classes_rows_equal_the_samples_they_count():
    """The 18 weighted rows must have the log-likelihood of the 60 samples they summarise."""
    from models import classes
    from models.inference import compile_log_likelihood

    rng = np.random.default_rng([3, 4])
    counted = scenario("classes_frequency_weights")
    truth, data, counts = counted.simulate(np.random.default_rng([3, 4]))
    truth_b, raw, _ = scenario("classes_balanced_sum_n").simulate(rng)  # same draws, one row each
    assert truth_b["intercept"] == truth["intercept"]
    theta = {"intercept": np.float64(0.2), "coef": np.array([0.5, -0.4])}
    rows = compile_log_likelihood(classes.build_model(data["X"], data["y"], counts))(**theta)
    samples = compile_log_likelihood(classes.build_model(raw["X"], raw["y"]))(**theta)
    assert rows == pytest.approx(samples, rel=1e-12)


def test_a_simulation_gives_the_same_rank_however_many_simulations_run_and_on_a_shared_model():
    settings = Settings(draws=100, tune=100, chains=1, seed=5, sampler="auto", quick=True)
    coin_scenario, models = scenario("key_toss_x10_as_given"), {}
    together = sbc.fit_scenario(coin_scenario, 3, settings, models)
    alone = sbc.fit_scenario(coin_scenario, 1, settings)
    # Another scenario of the same family and data shapes fits the model built for the first.
    shared = sbc.fit_scenario(scenario("key_toss_x10_sum_n"), 1, settings, models)
    own = sbc.fit_scenario(scenario("key_toss_x10_sum_n"), 1, settings)
    assert len(models) == 1
    fields = ("scenario", "simulation", "parameter", "true_value", "rank", "covered_50", "covered_90")
    assert [[r[f] for f in fields] for r in shared] == [[r[f] for f in fields] for r in own]
    ranked = sbc.fit_scenario(scenario("policy_frequency_weights"), 1, settings)
    assert [r["parameter"] for r in ranked] == [f"preference[{s},{a}]" for s in range(2) for a in range(3)]
    assert together[0]["rank"] == alone[0]["rank"] and together[0]["true_value"] == alone[0]["true_value"]
    assert [r["simulation"] for r in together] == [0, 1, 2]
    assert all(0 <= r["rank"] <= sbc.RANK_DRAWS for r in together)


def test_sbc_refuses_fewer_draws_than_ranks(tmp_path, capsys):
    assert cli.main(["sbc", "--quick", "--draws", "40", "--chains", "2", "--out", str(tmp_path)]) == 2
    assert "sbc needs at least 99 draws" in capsys.readouterr().err


def test_sbc_quick_writes_ranks_summary_and_figure(tmp_path):
    assert cli.main(["sbc", "--quick", "--out", str(tmp_path)]) == 0
    for family in sbc.FAMILIES:
        assert (tmp_path / f"figures/sbc/{family}_ranks.png").stat().st_size > 0
    with open(tmp_path / "results/sbc/ranks.csv", newline="") as handle:
        ranks = np.array([int(row["rank"]) for row in csv.DictReader(handle)])
    parameters = {"coin": 1, "classes": 3, "policy": 6}
    assert ranks.size == sbc.SIMULATIONS_QUICK * sum(parameters[s.family] for s in sbc.SCENARIOS)
    assert ranks.min() >= 0 and ranks.max() <= sbc.RANK_DRAWS
    summary = (tmp_path / "results/sbc/summary.csv").read_text()
    for scenario in sbc.SCENARIOS:
        assert f"{scenario.name},sbc,rank_uniformity_pvalue," in summary


@pytest.mark.slow
def test_frequency_weights_pass_sbc_and_a_toss_weighted_ten_times_fails(tmp_path):
    assert cli.main(["sbc", "--out", str(tmp_path)]) in (0, 1)
    with open(tmp_path / "results/sbc/summary.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    value = {(r["model"], r["quantity"]): float(r["value"]) for r in rows}
    upper = {(r["model"], r["quantity"]): float(r["upper"]) for r in rows if r["upper"]}
    # A calibrated posterior fails a 1% test one time in a hundred; the over-confident one, weighting
    # a single toss as ten, gives p below 1e-300 at 1000 simulations: 1e-6 leaves a wide margin.
    assert value["frequency_weights", "rank_uniformity_pvalue"] > 0.01
    assert value["key_toss_x10_as_given", "rank_uniformity_pvalue"] < 1e-6
    assert value["key_toss_x10_as_given", "coverage_90"] < 0.7
    # Classes and policy: frequency weights pass (Bonferroni p > 0.01); balanced class weights
    # summing to n fail by far (p below 1e-300 here); raw mean-one importance-type weights are
    # over-confident: Bonferroni p ~ 7e-75 over the six centred preferences, 90% intervals covering
    # 0.72 (95% Monte Carlo interval ending at 0.74), here.
    assert value["classes_frequency_weights", "rank_uniformity_pvalue"] > 0.01
    assert value["classes_balanced_sum_n", "rank_uniformity_pvalue"] < 1e-6
    assert value["policy_frequency_weights", "rank_uniformity_pvalue"] > 0.01
    assert value["policy_lognormal_weights_as_given", "rank_uniformity_pvalue"] < 0.01
    assert upper["policy_lognormal_weights_as_given", "coverage_90"] < 0.9


def test_summary_verdict_follows_the_fits_summary_not_the_worst_fit():
    good = Diagnostics(1.001, 900.0, 800.0, 0, 0.9, 2, 1000)
    unlucky = Diagnostics(1.012, 300.0, 950.0, 0, 1.1, 2, 1000)
    results = [{"simulation": r, "parameter": "p", "rank": r, "covered_50": 1, "covered_90": 1,
                "diagnostics": good} for r in range(99)]
    results.append({"simulation": 99, "parameter": "p", "rank": 50, "covered_50": 1, "covered_90": 1,
                    "diagnostics": unlucky})
    rows, fits = sbc._rows(sbc.SCENARIOS[0], results)
    value = {row["quantity"]: row["value"] for row in rows}
    assert fits.ok and value["fits_failing_diagnostics"] == 1
    assert value["diagnostics_ok"] == 1 and value["r_hat_max"] == 1.012  # worst shown, verdict kept
