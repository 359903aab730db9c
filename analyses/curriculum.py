"""Curriculum: easy samples first and hard ones later (or the reverse, or self-paced), phase by phase.

Question. Refitting a weighted logistic regression at each phase of a curriculum schedule, which path
do the WMLE, MAP and posterior take, where do they end against the unweighted MLE and the truth, and
how sure is the posterior at each phase?

Model (``models.classes``, compiled once; each phase's weights swapped in with ``pm.set_data``):
    coef_j ~ Normal(0, 2.5),  intercept ~ Normal(0, 5)
    log p(theta | y, w) = log p(theta) + sum_i w_i log Bernoulli(y_i | sigmoid(intercept + x_i . coef))

Design. 500 simulated samples x ~ N(0, I_2), true log-odds -4 + 3 x_1 - 2 x_2; 10,000 test samples.
Difficulty: rank of closeness to the true boundary (``weights.margin_difficulty``). Schedules
(``weights.curriculum``, sharpness 4, weights of mean 1) at 7 phases t = 0, 1/6, ..., 1:
easy_to_hard (w ~ exp(4 (2t - 1) d)), hard_to_easy (the reverse; shared weight vectors fitted once)
and self_paced (samples whose loss under the previous fit ranks below t admitted, softly). Per
(schedule, phase): WMLE, MAP and NUTS in one batch, scored by minority recall and Brier score.

Outputs: ``figures/curriculum/{coefficient_paths,weight_profiles,decision_boundaries,metrics}.png``;
``results/curriculum/``: one NetCDF posterior per (schedule, phase), ``summary.csv``.
Details and results: docs/analyses/curriculum.md
"""

from __future__ import annotations

from dataclasses import dataclass

import arviz as az
import numpy as np
import pymc as pm
from scipy import special

from analyses.figures import curriculum as figures
from analyses.figures import style as plotting
from analyses.output import Output
from analyses.study import Report, Settings, pooled, progress, progress_bar, rng_for, seed_for, thin
from models import classes, inference, summary
from models import weights as weights_lib

N_TRAIN = 500
N_TEST = 10_000
TRUE_INTERCEPT = -4.0
TRUE_COEF = np.array([3.0, -2.0])
FEATURES = ["x1", "x2"]
CLASS_NAMES = ["majority", "minority"]
SCHEDULES = ("easy_to_hard", "hard_to_easy", "self_paced")
SHARPNESS = 4.0
PHASES, PHASES_QUICK = 7, 3
# A 3-parameter log-concave posterior: 500 tuning steps adapt NUTS (each fit's diagnostics check it).
SAMPLER_DEFAULTS = {"draws": 1000, "tune": 500, "chains": 4}
THRESHOLD = 0.5
METRIC_DRAWS = 400
METRICS = ("minority_recall", "brier")
SAME_WEIGHTS_RTOL = 1e-12  # weights this close give the same fit to every printed digit
PARAMETERS = ("intercept", *(f"coef[{f}]" for f in FEATURES))
TRUTH = {"intercept": TRUE_INTERCEPT, "coef": TRUE_COEF}


@dataclass(frozen=True)
class Data:
    X: np.ndarray
    y: np.ndarray
    eta: np.ndarray  # true log-odds of the training samples
    X_test: np.ndarray
    y_test: np.ndarray


def simulate(rng, n: int = N_TRAIN, n_test: int = N_TEST) -> Data:
    """Logistic labels on x ~ N(0, I_2): the noise is where sigmoid(eta) is near 1/2, at the boundary."""
    def draw(size):
        X = rng.normal(size=(size, len(FEATURES)))
        eta = TRUE_INTERCEPT + X @ TRUE_COEF
        return X, (rng.uniform(size=size) < special.expit(eta)).astype(np.int64), eta

    X, y, eta = draw(n)
    X_test, y_test, _ = draw(n_test)
    return Data(X, y, eta, X_test, y_test)


def _label(schedule: str, progress: float) -> str:
    return f"{schedule}_progress_{progress:.2f}"


def sample_loss(X, y, estimate: dict) -> np.ndarray:
    """Each sample's log loss -log p(y_i | x_i, theta) at a point estimate (self-paced difficulty)."""
    p = classes.predict_proba(X, estimate["intercept"], estimate["coef"])
    return -np.log(np.where(y == 1, p, 1 - p))


def metrics(probability: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    """Minority recall at P = 0.5 and Brier score for each row of ``probability`` (draws x samples)."""
    probability = np.atleast_2d(probability)
    return {"minority_recall": (probability[:, y == 1] > THRESHOLD).mean(axis=1),
            "brier": ((probability - y) ** 2).mean(axis=1)}


# --------------------------------------------------------------------------- fitting
#
# Every phase is ``inference.compare`` (WMLE, MAP, NUTS) on one compiled model, its weights swapped in
# with ``pm.set_data``; all posteriors in one batch. The self-paced phases depend on each other through
# their point estimates only, so their weights are found first, phase by phase.


@dataclass(frozen=True)
class PhaseFit:
    """The estimators at one weight vector, with the difficulty that made the weights."""

    weights: np.ndarray
    difficulty: np.ndarray
    comparison: inference.Comparison


@dataclass(frozen=True)
class Phase:
    """One (schedule, phase): its fit (shared by schedules with the same weights) and test scores."""

    schedule: str
    phase: int
    progress: float
    fit: PhaseFit
    same_weights_as: tuple
    scores: dict

    @property
    def label(self) -> str:
        return _label(self.schedule, self.progress)

    @property
    def comparison(self) -> inference.Comparison:
        return self.fit.comparison


def build(data: Data):
    return classes.build_model(data.X, data.y, feature_names=FEATURES, class_names=CLASS_NAMES)


def self_paced_weights(model, data: Data, phases: np.ndarray) -> tuple[dict, list]:
    """The self-paced chain's point estimates: the unweighted MLE, then per phase the difficulty from
    the current fit's per-sample loss, its weights, and their WMLE (or MAP where none exists), which
    the next phase's difficulty comes from. Returns the MLE and each phase's (weights, difficulty)."""
    pm.set_data({"weights": np.ones(data.y.size)}, model=model)
    reference = inference.mle(model)
    current, chain = reference, []
    for progress_t in phases:
        difficulty = weights_lib.loss_difficulty(sample_loss(data.X, data.y, current))
        w = weights_lib.curriculum(difficulty, progress_t, schedule="self_paced", sharpness=SHARPNESS)
        chain.append((w, difficulty))
        pm.set_data({"weights": w}, model=model)
        try:
            current = inference.mle(model)
        except inference.UnboundedLikelihoodError:
            current = inference.map_estimate(model)
    return reference, chain


def fit_all(data: Data, phases: np.ndarray, settings: Settings) -> tuple[dict, dict]:
    """``(phases, reference)``: a :class:`Phase` per (schedule, phase index), and the unweighted MLE.

    Tilted schedules: each distinct weight vector is fitted once (``hard_to_easy`` at progress t has
    the weights of ``easy_to_hard`` at 1 - t).
    """
    difficulty = weights_lib.margin_difficulty(data.eta)
    tilted = {(schedule, phase): weights_lib.curriculum(difficulty, progress_t, schedule=schedule,
                                                        sharpness=SHARPNESS)
              for schedule in SCHEDULES if schedule != "self_paced"
              for phase, progress_t in enumerate(phases)}
    distinct, same_as = [], {}
    for key, w in tilted.items():
        same_as[key] = next((first for first in distinct
                             if np.allclose(tilted[first], w, rtol=SAME_WEIGHTS_RTOL, atol=0)), key)
        if same_as[key] == key:
            distinct.append(key)
    model = build(data)
    reference, chain = self_paced_weights(model, data, phases)
    vectors = [(key, tilted[key], difficulty) for key in distinct]
    vectors += [(("self_paced", phase), w, d) for phase, (w, d) in enumerate(chain)]
    progress("curriculum", f"fitting {len(distinct)} distinct tilted weight vectors and {len(phases)} "
                           f"self-paced phases: WMLE, MAP, NUTS {settings.chains} x ({settings.tune} + "
                           f"{settings.draws})")
    seeds = [seed_for(settings.seed, *key) for key, _, _ in vectors]
    with progress_bar("curriculum", "phases", len(vectors)) as update:
        comparisons = inference.compare_many(model, [{"weights": w} for _, w, _ in vectors],
                                             random_seeds=seeds, **settings.sampling(), progress=update)
    fitted = {key: PhaseFit(w, d, comparison) for (key, w, d), comparison in zip(vectors, comparisons)}
    sources = {**same_as, **{("self_paced", phase): ("self_paced", phase) for phase in range(len(phases))}}
    scores = {key: score(data, fit.comparison) for key, fit in fitted.items()}
    result = {(schedule, phase): Phase(schedule, phase, float(phases[phase]), fitted[source], source,
                                       scores[source])
              for (schedule, phase), source in sources.items()}
    return result, reference


def score(data: Data, comparison: inference.Comparison) -> dict:
    """Test-set metrics of the WMLE and MAP (numbers) and of the posterior (one per thinned draw)."""
    scores = {}
    for key, estimate in (("wmle", comparison.point), ("map", comparison.map)):
        if estimate is not None:
            p = classes.predict_proba(data.X_test, estimate["intercept"], estimate["coef"])
            scores[key] = {name: float(v[0]) for name, v in metrics(p, data.y_test).items()}
    intercept, coef = (thin(pooled(comparison.idata, name), METRIC_DRAWS) for name in ("intercept", "coef"))
    scores["posterior"] = metrics(classes.predict_proba(data.X_test, intercept, coef), data.y_test)
    return scores


# --------------------------------------------------------------------------- tables


def _point_rows(label: str, estimator: str, estimate: dict, scores: dict) -> list[dict]:
    rows = [summary.point(label, estimator, name, value)
            for name, value in zip(PARAMETERS, classes.parameter_vector(estimate))]
    return rows + [summary.point(label, estimator, metric, scores[metric]) for metric in METRICS]


def phase_rows(phase: Phase) -> list[dict]:
    label, comparison, weights = phase.label, phase.comparison, phase.fit.weights
    rows = [summary.point(label, "weights", "progress", phase.progress),
            summary.point(label, "weights", "max_over_min", weights.max() / weights.min()),
            *comparison.rows(label, ["intercept", "coef"])]
    for key, estimator in ((comparison.point_name, "wmle"), ("map", "map")):
        if estimator in phase.scores:
            rows += [summary.point(label, key, metric, phase.scores[estimator][metric]) for metric in METRICS]
    for metric in METRICS:
        draws = phase.scores["posterior"][metric]
        rows.append(summary.interval(label, "posterior", metric, draws.mean(),
                                     *az.hdi(draws, hdi_prob=summary.HDI_PROB)))
    return rows


def reference_scores(data: Data, reference: dict) -> dict[str, dict]:
    """Test-set metrics of the ``truth`` and of the ``unweighted`` MLE, the yardsticks."""
    scores = {}
    for label, estimate in (("truth", TRUTH), ("unweighted", reference)):
        p = classes.predict_proba(data.X_test, estimate["intercept"], estimate["coef"])
        scores[label] = {metric: values[0] for metric, values in metrics(p, data.y_test).items()}
    return scores


def reference_rows(data: Data, reference: dict, scores: dict) -> list[dict]:
    rows = []
    for label, estimator, estimate in (("truth", "truth", TRUTH), ("unweighted", "mle", reference)):
        rows += _point_rows(label, estimator, estimate, scores[label])
    rows.append(summary.point("data", "data", "minority_share", data.y.mean()))
    rows.append(summary.point("data", "data", "labels_across_true_boundary",
                              np.mean((data.eta > 0) != (data.y == 1))))
    return rows


# --------------------------------------------------------------------------- main


def main(settings: Settings, output: Output) -> Report:
    plotting.apply_style()
    data = simulate(rng_for(settings.seed, "data"))
    phases = np.linspace(0.0, 1.0, PHASES_QUICK if settings.quick else PHASES)
    progress("curriculum", f"{data.y.size} samples, {data.y.mean():.0%} minority; {len(SCHEDULES)} schedules "
                           f"x {len(phases)} phases")
    fits, reference = fit_all(data, phases, settings)
    scores = reference_scores(data, reference)
    rows, diagnostics = reference_rows(data, reference, scores), {}
    for phase in fits.values():
        comparison = phase.comparison
        if comparison.point is None:
            progress("curriculum", f"{phase.label}: no WMLE: {comparison.point_failure}")
        diagnostics[phase.label] = comparison.diagnostics
        source = phase.same_weights_as
        output.posterior(comparison.idata, f"{phase.label}.nc", model=phase.label, schedule=phase.schedule,
                         progress=phase.progress, sharpness=SHARPNESS,
                         same_weights_as=_label(source[0], phases[source[1]]))
        rows += phase_rows(phase)

    output.figure(figures.plot_paths(fits, phases, reference, truth=TRUTH, schedules=SCHEDULES,
                                     parameters=PARAMETERS), "coefficient_paths.png")
    output.figure(figures.plot_weight_profiles(fits, phases, schedules=SCHEDULES, sharpness=SHARPNESS),
                  "weight_profiles.png")
    output.figure(figures.plot_boundaries(data, fits, phases, reference, truth=TRUTH, schedules=SCHEDULES,
                                          features=FEATURES, class_names=CLASS_NAMES),
                  "decision_boundaries.png")
    output.figure(figures.plot_metrics(data, fits, phases, schedules=SCHEDULES, reference_scores=scores),
                  "metrics.png")
    return Report(rows=rows, fits=diagnostics)
