"""Classes: what class weights, focal loss and a prior correction do to the fit when cats are rare.

Question. 1000 dogs and 10 cats (and 285 benign, 15 malignant aspirates): which weighting moves the
decision boundary how, what does it do to recall and calibration, and how sure is the posterior?

Model (``models.classes``, features standardised; focal loss: each term (1 - p_i)^gamma log p_i):
    coef_j ~ Normal(0, 2.5),  intercept ~ Normal(0, 5)
    log p(theta | y, w) = log p(theta) + sum_i w_i log Bernoulli(y_i | sigmoid(intercept + x_i . coef))

Design. Data: simulated dogs N(0, I) and cats N((2, 1), I) (truth known; 100,000 test animals) and
scikit-learn's breast-cancer data, malignant subsampled to 5%. Schemes, class weights summing to n:
none, balanced, balanced_sum_ess (the same summing to Kish's ESS), effective_number (beta 0.99),
focal gamma 0, 1, 2, 5, and King & Zeng's prior_correction of the unweighted fit. Each by (W)MLE, MAP
and NUTS, scored on the test set (recall, balanced accuracy, Brier, ECE). LOO: ``az.compare`` of the
unweighted two- against a one-feature model; the schemes ranked for two stated populations.

Outputs: ``figures/classes/{decision_boundaries,coefficients_forest,metrics,calibration,focal_sweep}.png``;
``results/classes/``: one NetCDF per (data set, scheme), summary.csv, loo_compare.csv, population_loo.csv.
Details and results: docs/analyses/classes.md
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import arviz as az
import numpy as np
from scipy import special

from analyses.figures import classes as figures
from analyses.figures import style as plotting
from analyses.output import Output
from analyses.study import Report, Settings, pooled, progress, progress_bar, rng_for, seed_for, thin
from models import classes, inference, summary
from models import weights as weights_lib
from models.elpd import COMPARE_COLUMNS
from models.estimation.maximise import Estimate

THRESHOLD = 0.5
TARGET_RATE = 0.5  # the prior correction's population: equal class rates
EFFECTIVE_NUMBER_BETA = 0.99
FOCAL_GAMMAS = (0.0, 1.0, 2.0, 5.0)
FOCAL_TARGET_ACCEPT = 0.95
METRIC_DRAWS = 400
TEST_ROWS = 100_000   # rows of the simulated test set (about 990 cats at 10 cats per 1010 animals)
QUICK_TEST_ROWS = 10_000   # --quick: the same training data, a tenth of the test set
CALIBRATION_BINS = np.linspace(0.0, 1.0, 11)
SIMULATED_CAT_MEAN = np.array([2.0, 1.0])
LOO_COLUMNS = ("model", "rank", "elpd_loo", "p_loo", "elpd_diff", "weight", "se", "dse", "warning")
METRICS = ("minority_recall", "balanced_accuracy", "brier", "ece")


@dataclass(frozen=True)
class Dataset:
    name: str
    X: np.ndarray
    y: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    test_weights: np.ndarray  # reweight the test set to the population's class rates
    feature_names: list[str]
    class_names: list[str]
    truth: dict | None  # true intercept and coef on the standardised scale


def _standardise(X, X_test):
    mean, sd = X.mean(axis=0), X.std(axis=0)
    return (X - mean) / sd, (X_test - mean) / sd, mean, sd


def simulated(rng, n_dogs: int = 1000, n_cats: int = 10, n_test: int = TEST_ROWS) -> Dataset:
    """Dogs N(0, I), cats N(mu, I): true log-odds log(n_cats/n_dogs) + mu . x - |mu|^2 / 2."""
    rate = n_cats / (n_dogs + n_cats)

    def animals(n_0, n_1):
        X = np.r_[rng.normal(size=(n_0, 2)), SIMULATED_CAT_MEAN + rng.normal(size=(n_1, 2))]
        return X, np.r_[np.zeros(n_0, int), np.ones(n_1, int)]

    X, y = animals(n_dogs, n_cats)
    n_test_cats = rng.binomial(n_test, rate)
    X_test, y_test = animals(n_test - n_test_cats, n_test_cats)
    X, X_test, mean, sd = _standardise(X, X_test)
    intercept = np.log(rate / (1 - rate)) - SIMULATED_CAT_MEAN @ SIMULATED_CAT_MEAN / 2
    # x = mean + sd z: the same log-odds in standardised z.
    truth = {"intercept": intercept + SIMULATED_CAT_MEAN @ mean, "coef": SIMULATED_CAT_MEAN * sd}
    return Dataset("simulated", X, y, X_test, y_test, np.ones(y_test.size),
                   ["ear_pointiness", "whisker_length"], ["dog", "cat"], truth)


def breast_cancer(rng, n_benign: int = 285, n_malignant: int = 15) -> Dataset:
    """scikit-learn's copy of the Wisconsin diagnostic breast-cancer data, malignant made rare."""
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    features = ["mean radius", "mean texture", "mean smoothness"]
    columns = [list(data.feature_names).index(name) for name in features]
    malignant = (data.target == 0).astype(int)  # scikit-learn codes malignant as 0
    benign_rows = rng.permutation(np.flatnonzero(malignant == 0))
    malignant_rows = rng.permutation(np.flatnonzero(malignant == 1))
    train = np.r_[benign_rows[:n_benign], malignant_rows[:n_malignant]]
    test = np.r_[benign_rows[n_benign:], malignant_rows[n_malignant:]]
    X, X_test, _, _ = _standardise(data.data[train][:, columns], data.data[test][:, columns])
    y, y_test = malignant[train], malignant[test]
    rate = n_malignant / (n_benign + n_malignant)
    test_weights = np.where(y_test == 1, rate / y_test.mean(), (1 - rate) / (1 - y_test.mean()))
    return Dataset("breast_cancer", X, y, X_test, y_test, test_weights,
                   [name.replace(" ", "_") for name in features], ["benign", "malignant"], None)


def schemes(quick: bool) -> dict[str, dict]:
    """Scheme name -> how to weight and which likelihood (``prior_correction`` reuses ``none``)."""
    gammas = (2.0,) if quick else FOCAL_GAMMAS
    chosen = {"none": {"weights": None}, "balanced": {"weights": weights_lib.balanced}}
    if not quick:
        chosen["balanced_sum_ess"] = {"weights": weights_lib.balanced, "normalize": "ess"}
        chosen["effective_number"] = {
            "weights": lambda y: weights_lib.effective_number(y, EFFECTIVE_NUMBER_BETA)}
    for gamma in gammas:
        chosen[f"focal_g{gamma:g}"] = {"weights": None, "likelihood": "focal", "focal_gamma": gamma}
    return chosen


@dataclass(frozen=True)
class SchemeFit:
    """One weighting scheme of one data set: its weights and its estimators."""

    scheme: str
    weights: np.ndarray
    comparison: inference.Comparison


def fit_dataset(dataset: Dataset, chosen: dict, settings: Settings, output: Output) -> dict[str, SchemeFit]:
    """(W)MLE, MAP and NUTS of every scheme on one data set: one compiled model per likelihood, the
    schemes that share it swapping their weights (and focal gamma) in, their posteriors in one batch."""
    fits = {}
    likelihood_of = {name: scheme.get("likelihood", "categorical") for name, scheme in chosen.items()}
    for likelihood in sorted(set(likelihood_of.values())):
        names = [name for name in chosen if likelihood_of[name] == likelihood]
        model = classes.build_model(dataset.X, dataset.y, likelihood=likelihood,
                                    feature_names=dataset.feature_names, class_names=dataset.class_names)
        data, normalizations = [], {}
        for name in names:
            scheme = chosen[name]
            weights = scheme["weights"](dataset.y) if scheme["weights"] else None
            normalizations[name] = "none" if weights is None else scheme.get("normalize", "n")
            _, _, w, _ = classes.prepare(dataset.X, dataset.y, weights, normalize=normalizations[name])
            focal = {"focal_gamma": scheme["focal_gamma"]} if likelihood == "focal" else {}
            data.append({"weights": w, **focal})
        progress("classes", f"{dataset.name}, {', '.join(names)}: (W)MLE, MAP, NUTS {settings.chains} x "
                            f"{settings.draws}")
        # The focal Gibbs posterior is not log-concave; smaller NUTS steps avoid its rare divergences.
        target_accept = FOCAL_TARGET_ACCEPT if likelihood == "focal" else 0.8
        seeds = [seed_for(settings.seed, dataset.name, name) for name in names]
        with progress_bar("classes", dataset.name, len(data)) as update:
            comparisons = inference.compare_many(model, data, **settings.sampling(),
                                                 target_accept=target_accept, random_seeds=seeds,
                                                 progress=update)
        for name, values, comparison in zip(names, data, comparisons):
            if comparison.point is None:
                progress("classes", f"  {name}: no (W)MLE: {comparison.point_failure}")
            label = f"{dataset.name}_{name}"
            output.posterior(comparison.idata, f"{label}.nc", model=label, scheme=name,
                             normalize=normalizations[name], likelihood=likelihood,
                             focal_gamma=chosen[name].get("focal_gamma", "none"))
            fits[name] = SchemeFit(name, values["weights"], comparison)
    return {name: fits[name] for name in chosen}


def prior_corrected(plain: SchemeFit, y: np.ndarray) -> SchemeFit:
    """The unweighted fit with every intercept (MLE, MAP, each draw) shifted to equal class rates."""
    shift = classes.prior_correction(float(y.mean()), TARGET_RATE)
    comparison = plain.comparison

    def shifted(estimate):
        if estimate is None:
            return None
        return Estimate({**estimate, "intercept": estimate["intercept"] + shift}, estimate.existence)

    idata = az.InferenceData(posterior=comparison.idata.posterior.assign(
        intercept=comparison.idata.posterior["intercept"] + shift))
    return SchemeFit("prior_correction", plain.weights,
                     replace(comparison, point=shifted(comparison.point), map=shifted(comparison.map),
                             idata=idata))


# --------------------------------------------------------------------------- metrics


def metrics(probability: np.ndarray, y: np.ndarray, weights: np.ndarray) -> dict[str, np.ndarray]:
    """Test-set metrics for each row of ``probability`` (draws x samples, P(minority)).

    Recall and balanced accuracy do not depend on the class rates; Brier score and expected
    calibration error are averages over the test set weighted by ``weights`` (population rates).
    """
    probability = np.atleast_2d(probability)
    predicted = probability > THRESHOLD
    recall = predicted[:, y == 1].mean(axis=1)
    specificity = (~predicted[:, y == 0]).mean(axis=1)
    share = weights / weights.sum()
    brier = ((probability - y) ** 2) @ share
    ece = np.empty(len(probability))
    for row, p in enumerate(probability):
        bins = np.clip(np.digitize(p, CALIBRATION_BINS[1:-1]), 0, len(CALIBRATION_BINS) - 2)
        gap = np.bincount(bins, share * (p - y), minlength=len(CALIBRATION_BINS) - 1)
        ece[row] = np.sum(np.abs(gap))  # = sum over bins of mass x |mean p - observed rate|
    return {"minority_recall": recall, "balanced_accuracy": (recall + specificity) / 2,
            "brier": brier, "ece": ece}


def _thinned(idata, name: str, count: int) -> np.ndarray:
    return thin(pooled(idata, name), count)


def evaluate(dataset: Dataset, fit: SchemeFit) -> dict:
    """Point metrics of the (W)MLE (key ``mle``) and MAP, per-draw metrics of the posterior, and the
    posterior predictive probability's metrics; also the predictive probabilities themselves."""
    X, y, w = dataset.X_test, dataset.y_test, dataset.test_weights
    comparison = fit.comparison
    out = {}
    for key, estimate in (("mle", comparison.point), ("map", comparison.map)):
        if estimate is not None:
            p = classes.predict_proba(X, estimate["intercept"], estimate["coef"])
            out[key] = {name: float(v[0]) for name, v in metrics(p, y, w).items()}
    p_draws = classes.predict_proba(X, _thinned(comparison.idata, "intercept", METRIC_DRAWS),
                                    _thinned(comparison.idata, "coef", METRIC_DRAWS))
    out["posterior"] = metrics(p_draws, y, w)
    out["predictive_probability"] = p_draws.mean(axis=0)
    out["posterior_predictive"] = {name: float(v[0]) for name, v in
                                   metrics(out["predictive_probability"], y, w).items()}
    return out


# --------------------------------------------------------------------------- tables


def _rows(dataset: Dataset, fit: SchemeFit, scores: dict) -> list[dict]:
    """The comparison's rows (the prior correction's without diagnostics: they are the unweighted
    fit's), then the metrics of each estimator."""
    label, comparison = f"{dataset.name}_{fit.scheme}", fit.comparison
    rows = comparison.rows(label, ["intercept", "coef"], diagnostics=fit.scheme != "prior_correction")
    for key, estimator in ((comparison.point_name, "mle"), ("map", "map")):
        if estimator in scores:
            rows += [summary.point(label, key, metric, scores[estimator][metric]) for metric in METRICS]
    for metric in METRICS:
        draws = scores["posterior"][metric]
        rows.append(summary.interval(label, "posterior", metric, draws.mean(),
                                    *az.hdi(draws, hdi_prob=summary.HDI_PROB)))
        predictive = scores["posterior_predictive"][metric]
        rows.append(summary.point(label, "posterior_predictive", metric, predictive))
    return rows


def _truth_rows(dataset: Dataset) -> list[dict]:
    if dataset.truth is None:
        return []
    label = f"{dataset.name}_truth"
    shift = classes.prior_correction(float(dataset.y.mean()), TARGET_RATE)
    rows = [summary.point(label, "truth", "intercept", dataset.truth["intercept"]),
            # what balanced weights and the prior correction estimate: the intercept at equal class rates
            summary.point(label, "truth", "intercept_equal_rates", dataset.truth["intercept"] + shift)]
    rows += [summary.point(label, "truth", f"coef[{f}]", v) for f, v in zip(dataset.feature_names,
                                                                            dataset.truth["coef"])]
    p = special.expit(dataset.truth["intercept"] + dataset.X_test @ dataset.truth["coef"])
    rows += [summary.point(label, "truth", m, v[0]) for m, v in metrics(p, dataset.y_test,
                                                                        dataset.test_weights).items()]
    return rows


def loo_comparison(dataset: Dataset, full: SchemeFit, settings: Settings, seed: int, output: Output):
    """``az.compare`` of the unweighted two-feature model and a one-feature one (same likelihood)."""
    model = classes.build_model(dataset.X[:, :1], dataset.y, feature_names=dataset.feature_names[:1],
                                class_names=dataset.class_names)
    one_feature = inference.compare(model, **settings.sampling(), random_seed=seed)
    compared = az.compare({"both_features": full.comparison.idata,
                           dataset.feature_names[0] + "_only": one_feature.idata})
    output.table([{"model": name, **{k: float(v) for k, v in row.items() if k not in ("warning", "scale")},
                   "warning": bool(row["warning"])} for name, row in compared.iterrows()],
                 "loo_compare.csv",
                 columns=LOO_COLUMNS)
    rows = []
    for name, row in compared.iterrows():
        label = f"{dataset.name}_none" if name == "both_features" else f"{dataset.name}_{name}"
        rows.append(summary.point(label, "posterior", "elpd_loo", row["elpd_loo"]))
        rows.append(summary.point(label, "posterior", "elpd_loo_se", row["se"]))
    return rows, one_feature.diagnostics


POPULATION_LOO_COLUMNS = ("dataset", "population", *COMPARE_COLUMNS)


def population_loo(dataset: Dataset, fits: dict, names: list[str]) -> list[dict]:
    """LOO of the schemes ``names`` of one data set for the sample's population and for equal class
    rates, ranked within each (``inference.loo_compare``)."""
    populations = {"sample": np.ones(dataset.y.size), "equal_rates": weights_lib.balanced(dataset.y)}
    table = []
    for population, u in populations.items():
        results = {name: inference.loo(fits[dataset.name, name].comparison.idata, weights="population",
                                       population=u) for name in names}
        table += [{"dataset": dataset.name, "population": population, **row}
                  for row in inference.loo_compare(results)]
    return table


# --------------------------------------------------------------------------- main


def main(settings: Settings, output: Output) -> Report:
    plotting.apply_style()
    datasets = [simulated(rng_for(settings.seed, "data", "simulated"),
                          n_test=QUICK_TEST_ROWS if settings.quick else TEST_ROWS),
                breast_cancer(rng_for(settings.seed, "data", "breast_cancer"))]
    chosen = schemes(settings.quick)
    rows, diagnostics, fits, scores = [], {}, {}, {}
    for dataset in datasets:
        rows += _truth_rows(dataset)
        for name, result in fit_dataset(dataset, chosen, settings, output).items():
            fits[dataset.name, name] = result
            diagnostics[f"{dataset.name}_{name}"] = result.comparison.diagnostics
        fits[dataset.name, "prior_correction"] = prior_corrected(fits[dataset.name, "none"], dataset.y)
        for name in [*chosen, "prior_correction"]:
            scores[dataset.name, name] = evaluate(dataset, fits[dataset.name, name])
            rows += _rows(dataset, fits[dataset.name, name], scores[dataset.name, name])
    progress("classes", "LOO: unweighted two-feature model against one feature (simulated data)")
    loo_rows, loo_diagnostics = loo_comparison(datasets[0], fits["simulated", "none"], settings,
                                               seed_for(settings.seed, "simulated", "one_feature"), output)
    rows += loo_rows
    diagnostics["simulated_one_feature"] = loo_diagnostics
    likelihood_schemes = [name for name in chosen if chosen[name].get("likelihood", "categorical") != "focal"]
    progress("classes", "LOO for the sample's population and for equal class rates: "
                        + ", ".join(likelihood_schemes))
    table = [row for dataset in datasets for row in population_loo(dataset, fits, likelihood_schemes)]
    output.table(table, "population_loo.csv", columns=POPULATION_LOO_COLUMNS)
    for row in table:
        label, quantity = f"{row['dataset']}_{row['model']}", f"elpd_loo_{row['population']}"
        rows += [summary.point(label, "posterior", quantity, row["elpd"]),
                 summary.point(label, "posterior", f"{quantity}_se", row["se"])]

    names = [*chosen, "prior_correction"]
    output.figure(figures.plot_boundaries(datasets[0], fits, names, target_rate=TARGET_RATE),
                  "decision_boundaries.png")
    output.figure(figures.plot_forest(datasets, fits, names), "coefficients_forest.png")
    output.figure(figures.plot_metrics(datasets, scores, names, threshold=THRESHOLD), "metrics.png")
    output.figure(figures.plot_calibration(datasets[0], scores, names, bins=CALIBRATION_BINS),
                  "calibration.png")
    output.figure(figures.plot_focal(datasets, fits, scores, [n for n in names if n.startswith("focal")]),
                  "focal_sweep.png")
    return Report(rows=rows, fits=diagnostics)
