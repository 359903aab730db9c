"""The curriculum analysis: a compiled model reused through ``pm.set_data`` fits exactly as a fresh
build with the same weights, and a `--quick` run writes its figures, posteriors and table."""

import arviz as az
import numpy as np
import pytest

from analyses import curriculum as analysis
from models import classes, inference
from models import weights as weights_lib

pytestmark = pytest.mark.analysis_run(seconds=20)   # cold, for the order (tests/conftest.py)

FIGURES = {"coefficient_paths.png", "weight_profiles.png", "decision_boundaries.png", "metrics.png"}
QUICK_PHASES = ("0.00", "0.50", "1.00")
DRAWS, TUNE, CHAINS, SEED = 150, 150, 2, 11


@pytest.fixture(scope="module")
def data():
    return analysis.simulate(np.random.default_rng(5), n=200, n_test=100)


def test_reused_compiled_model_fits_as_a_fresh_build(data):
    difficulty = weights_lib.margin_difficulty(data.eta)
    easy_first = weights_lib.curriculum(difficulty, 0.0)
    hard_last = weights_lib.curriculum(difficulty, 1.0)
    sampling = {"draws": DRAWS, "tune": TUNE, "chains": CHAINS}
    # One compiled model, the weights swapped in by pm.set_data, both posteriors in one batch:
    weightings = [{"weights": easy_first}, {"weights": hard_last}]
    before, after = inference.compare_many(analysis.build(data), weightings, random_seeds=[SEED, SEED],
                                           **sampling)
    # A fresh build holding the second weights from the start, in the same batch shape:
    fresh_model = classes.build_model(data.X, data.y, hard_last, feature_names=analysis.FEATURES,
                                      class_names=analysis.CLASS_NAMES)
    _, fresh = inference.compare_many(fresh_model, [{"weights": easy_first}, {}], random_seeds=[SEED, SEED],
                                      **sampling)

    # The two weightings really give different fits (> 0.05 in some coefficient), so a stale weight
    # vector in the compiled model could not pass the comparisons below.
    vector = classes.parameter_vector
    assert np.max(np.abs(vector(before.point) - vector(after.point))) > 0.05
    # L-BFGS runs to a gradient tolerance of 1e-12 from the model's fixed initial point
    # (models/estimation/maximise.py): the same objective gives the same maximiser far within 1e-7 relative.
    for estimator in ("point", "map"):
        np.testing.assert_allclose(vector(getattr(after, estimator)), vector(getattr(fresh, estimator)),
                                   rtol=1e-7)
    # NUTS with the same seed in the same program: the same draws up to floating-point rounding (a
    # looser within-MCSE check would hide stale weights).
    for name in ("intercept", "coef"):
        np.testing.assert_allclose(after.idata.posterior[name].values,
                                   fresh.idata.posterior[name].values, rtol=1e-9, atol=1e-12)
    # The stored weights and the pointwise weighted log-likelihood are those of the second fit.
    np.testing.assert_array_equal(after.idata.constant_data["weights"].values, hard_last)
    first_draw = after.idata.posterior.isel(chain=0, draw=0)
    p = classes.predict_proba(data.X, first_draw["intercept"].values, first_draw["coef"].values)
    expected = hard_last * np.where(data.y == 1, np.log(p), np.log1p(-p))
    np.testing.assert_allclose(after.idata.log_likelihood["label"].isel(chain=0, draw=0).values,
                               expected, rtol=1e-9)


@pytest.fixture(scope="module")
def quick_run(run_quick):
    out, _, rows = run_quick("curriculum")
    return out, {(r["model"], r["estimator"], r["quantity"]): r for r in rows}


def test_quick_run_writes_figures_posteriors_and_table(quick_run):
    out, _ = quick_run
    assert {p.name for p in (out / "figures" / "curriculum").iterdir()} == FIGURES
    expected = {f"{s}_progress_{t}.nc" for s in analysis.SCHEDULES for t in QUICK_PHASES} | {"summary.csv"}
    assert {p.name for p in (out / "results" / "curriculum").iterdir()} == expected
    idata = az.from_netcdf(out / "results" / "curriculum" / "self_paced_progress_1.00.nc")
    assert {"posterior", "log_likelihood", "constant_data", "sample_stats"} <= set(idata.groups())
    assert float(idata.constant_data["weights"].sum()) == pytest.approx(analysis.N_TRAIN, rel=1e-9)
    assert idata.attrs["schedule"] == "self_paced"


def test_quick_run_summary_is_consistent(quick_run):
    _, rows = quick_run
    value = lambda *key: float(rows[key]["value"])  # noqa: E731
    for schedule in analysis.SCHEDULES:
        for t in QUICK_PHASES:
            label = f"{schedule}_progress_{t}"
            # Flat weights halfway through a tilt are all ones: the point estimate is the MLE.
            point = "mle" if schedule != "self_paced" and t == "0.50" else "wmle"
            assert value(label, "weights", "sum") == pytest.approx(analysis.N_TRAIN, rel=1e-9)
            assert value(label, point, "exists") == 1
            for quantity in (*analysis.PARAMETERS, *analysis.METRICS):
                row = rows[label, "posterior", quantity]
                assert float(row["lower"]) <= float(row["value"]) <= float(row["upper"])
                assert (label, point, quantity) in rows and (label, "map", quantity) in rows
            assert 0 <= value(label, point, "minority_recall") <= 1
            assert 0 < value(label, point, "brier") < 0.25
    # ... and it equals the unweighted MLE of the reference fit (optimiser tolerance).
    for quantity in analysis.PARAMETERS:
        assert value("easy_to_hard_progress_0.50", "mle", quantity) == pytest.approx(
            value("unweighted", "mle", quantity), rel=1e-6)
        # The anti-curriculum at t is the curriculum at 1 - t: the same weights, the same fit.
        assert value("hard_to_easy_progress_0.00", "posterior", quantity) == value(
            "easy_to_hard_progress_1.00", "posterior", quantity)
    assert value("easy_to_hard_progress_0.00", "weights", "kish_ess") < analysis.N_TRAIN
    assert value("self_paced_progress_1.00", "weights", "kish_ess") > value(
        "self_paced_progress_0.00", "weights", "kish_ess")  # the threshold admits more samples
    assert ("truth", "truth", "coef[x1]") in rows and ("data", "data", "minority_share") in rows
