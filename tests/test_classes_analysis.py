"""The imbalanced-classes analysis: its metrics on hand-made cases, its data, and a `--quick` run."""


import csv

import numpy as np
import pytest
from scipy import special

from analyses import classes as analysis

pytestmark = pytest.mark.analysis_run(seconds=32)   # cold, for the order (tests/conftest.py)

FIGURES = {"decision_boundaries.png", "coefficients_forest.png", "metrics.png", "calibration.png",
           "focal_sweep.png"}


def test_metrics_on_a_hand_made_case():
    y = np.array([0, 0, 0, 1, 1])
    p = np.array([[0.1, 0.6, 0.2, 0.9, 0.4]])
    scores = analysis.metrics(p, y, np.ones(5))
    assert scores["minority_recall"][0] == 0.5  # one of two positives above 0.5
    assert scores["balanced_accuracy"][0] == pytest.approx((0.5 + 2 / 3) / 2)
    assert scores["brier"][0] == pytest.approx(np.mean((p[0] - y) ** 2))
    # bins [0.1, 0.2), [0.2, 0.3), [0.4, 0.5), [0.6, 0.7), [0.9, 1]: |p - y| per bin, each 1/5 of the mass
    assert scores["ece"][0] == pytest.approx(np.mean(np.abs(p[0] - y)))
    weighted = analysis.metrics(p, y, np.array([1, 1, 1, 3, 3]))
    assert weighted["minority_recall"][0] == 0.5  # rate-free
    assert weighted["brier"][0] == pytest.approx(np.average((p[0] - y) ** 2, weights=[1, 1, 1, 3, 3]))


def test_simulated_truth_is_the_bayes_log_odds():
    data = analysis.simulated(np.random.default_rng(0), n_test=200_000)
    assert (np.bincount(data.y) == [1000, 10]).all()
    # The true P(cat | x) must be calibrated on fresh data: mean predicted = observed rate (4 s.e.).
    p = special.expit(data.truth["intercept"] + data.X_test @ data.truth["coef"])
    assert abs(p.mean() - data.y_test.mean()) < 4 * np.sqrt(p.mean() / data.y_test.size)


def test_breast_cancer_subsample_is_imbalanced_and_disjoint():
    data = analysis.breast_cancer(np.random.default_rng(0))
    assert (np.bincount(data.y) == [285, 15]).all()
    assert data.y.size + data.y_test.size == 569
    # Test weights make malignant 5% of the test mass, as in training.
    share = data.test_weights[data.y_test == 1].sum() / data.test_weights.sum()
    assert share == pytest.approx(15 / 300)


@pytest.fixture(scope="module")
def quick_run(run_quick):
    out, _, rows = run_quick("classes")
    return out, {(r["model"], r["estimator"], r["quantity"]): r for r in rows}


def test_quick_run_writes_figures_posteriors_and_tables(quick_run):
    out, rows = quick_run
    assert {p.name for p in (out / "figures" / "classes").iterdir()} == FIGURES
    results = {p.name for p in (out / "results" / "classes").iterdir()}
    for dataset in ("simulated", "breast_cancer"):
        assert {f"{dataset}_{s}.nc" for s in ("none", "balanced", "focal_g2")} <= results
    assert {"summary.csv", "loo_compare.csv", "population_loo.csv"} <= results


def test_quick_run_summary_is_consistent(quick_run):
    _, rows = quick_run
    value = lambda *key: float(rows[key]["value"])  # noqa: E731
    for dataset, n in (("simulated", 1010), ("breast_cancer", 300)):
        # Balanced weights sum to n; the prior correction shifts the plain MLE by logit(0.5) - logit(ybar).
        assert value(f"{dataset}_balanced", "weights", "sum") == pytest.approx(n, rel=1e-6)
        rate = 10 / 1010 if dataset == "simulated" else 15 / 300
        exists = value(f"{dataset}_none", "mle", "exists")
        # Positive weights do not change whether the rows separate (with seed 3 the 300 aspirates do).
        assert value(f"{dataset}_balanced", "wmle", "exists") == exists
        point = ("mle", "wmle") if exists else ("map", "map")
        if exists:
            assert value(f"{dataset}_prior_correction", "mle", "intercept") == pytest.approx(
                value(f"{dataset}_none", "mle", "intercept") - special.logit(rate), rel=1e-5)
        # Weighting the rare class raises its recall over the unweighted fit's ((W)MLE, else MAP).
        assert value(f"{dataset}_balanced", point[1], "minority_recall") > value(
            f"{dataset}_none", point[0], "minority_recall")
        for metric in analysis.METRICS:
            row = rows[f"{dataset}_balanced", "posterior", metric]
            assert 0 <= float(row["lower"]) <= float(row["value"]) <= float(row["upper"]) <= 1
    assert ("simulated_truth", "truth", "coef[ear_pointiness]") in rows
    assert ("simulated_ear_pointiness_only", "posterior", "elpd_loo_se") in rows
    # The README's point: weights summing to n make 10 cats look like 505; the prior correction's
    # posterior (the unweighted one, shifted) is several times wider. A 2x margin on a 5x effect.
    width = lambda model: float(rows[model, "posterior", "intercept"]["upper"]) - float(  # noqa: E731
        rows[model, "posterior", "intercept"]["lower"])
    assert width("simulated_prior_correction") > 2 * width("simulated_balanced")


def test_quick_run_ranks_the_schemes_by_loo_for_a_stated_population(quick_run):
    out, _ = quick_run
    with open(out / "results" / "classes" / "population_loo.csv", newline="") as handle:
        table = list(csv.DictReader(handle))
    ranked = {}
    for row in table:
        ranked.setdefault((row["dataset"], row["population"]), []).append(row)
    assert set(ranked) == {(d, p) for d in ("simulated", "breast_cancer") for p in ("sample", "equal_rates")}
    for rows in ranked.values():
        assert {row["model"] for row in rows} == {"none", "balanced"}   # focal has no log density
        best = rows[0]
        assert [int(row["rank"]) for row in rows] == [0, 1] and float(best["elpd_diff"]) == 0.0
        for row in rows[1:]:   # the table keeps 6 significant digits of each number
            elpds = float(best["elpd"]), float(row["elpd"])
            rounding = 1e-5 * (abs(elpds[0]) + abs(elpds[1]) + abs(float(row["elpd_diff"])))
            assert float(row["elpd_diff"]) == pytest.approx(elpds[0] - elpds[1], abs=rounding)
    # 1010 simulated animals: each fit predicts best the population it was weighted for (with seed 3
    # the margins are 15 and 3 paired standard errors).
    for population, winner in (("sample", "none"), ("equal_rates", "balanced")):
        best, other = ranked["simulated", population]
        assert best["model"] == winner
        assert float(other["elpd_diff"]) > 2 * float(other["dse"])
