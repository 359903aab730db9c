"""Curriculum weighting: easy samples first and hard ones later (or the reverse, or self-paced), and
what the schedule does to the estimate, to the posterior and to the classifier along the way.

Question. Curriculum learning weights samples by how hard they are and shifts the weight from easy
to hard ones as training progresses. Fitting the same weighted logistic regression at each phase of
such a schedule, which path do the WMLE, MAP and posterior take, where do they end compared with
the unweighted MLE and the truth, and how sure is the posterior at each phase?

Model (``models.classes``, built once and compiled once; each phase's weights swapped in with
``pm.set_data``):

    coef_j ~ Normal(0, 2.5),  intercept ~ Normal(0, 5)
    log p(theta | y, w) = log p(theta) + sum_i w_i log Bernoulli(y_i | sigmoid(intercept + x_i . coef))

Data (simulated, so that easy and hard are defined by the truth). n = 500 samples x_i ~ N(0, I_2),
true log-odds eta_i = -4 + 3 x_i1 - 2 x_i2 (17% minority with seed 2026), labels
y_i ~ Bernoulli(sigmoid(eta_i)). The label noise of this model sits at the boundary: a label falls
on the wrong side of eta = 0 with probability sigmoid(-|eta_i|), about a half on the boundary and
under 2% beyond |eta| = 4. The truth is a point of the model. Test set: 10,000 fresh samples of the
same process.

Difficulty (``weights.margin_difficulty``): the distance to the true boundary, |eta_i| / ||coef||,
turned into a rank, ``d_i = 1 - rank(|eta_i|) / (n - 1)``: 1 for the sample nearest the boundary, 0
for the farthest. On real data, where the boundary is unknown, a reference model's per-sample loss
takes its place (``weights.loss_difficulty``), as in the ``self_paced`` schedule here.

Schedules (``weights.curriculum``, sharpness s = 4; weights normalised to mean 1, so every phase
has total weight n and phases differ in shape only), at progress t = 0, 1/6, ..., 1 (7 phases;
``--quick``: 0, 1/2, 1):

* ``easy_to_hard``: w_i proportional to exp(s (2t - 1) d_i): easy samples weigh most at t = 0, flat
  weights at t = 1/2 (exactly the unweighted fit), hard samples most at t = 1.
* ``hard_to_easy``: the same tilt run backwards, exp(s (1 - 2t) d_i). Its weights at progress t are
  those of ``easy_to_hard`` at 1 - t, so each distinct weight vector is fitted once and reused
  (equal to within 1e-12 relative: ``SAME_WEIGHTS_RTOL``).
* ``self_paced``: d_i is the rank of sample i's loss -log p(y_i | x_i, theta_current) under the
  current fit (the unweighted MLE before the first phase, then the previous phase's WMLE, or its MAP
  where no WMLE exists); samples whose rank is below the threshold t are admitted, softly
  (weight floor + (1 - floor) sigmoid(s (t - d_i)), floor 0.01), so the admitted share grows with
  progress. Its phases depend on each other; every other phase is a fit on its own weights alone.

Per (schedule, phase): WMLE, MAP and the NUTS posterior (``inference.compare_many`` on the one model,
4 chains x (500 + 1000) by default, every posterior in one batch), each scored on the test set by
minority recall at P = 0.5 and Brier score (the posterior per draw: mean and 94% HDI over 400 thinned
draws).

Outputs (``figures/curriculum/``): ``coefficient_paths.png``, ``weight_profiles.png``,
``decision_boundaries.png``, ``metrics.png``; (``results/curriculum/``): one NetCDF posterior per
(schedule, phase) with its weights in ``constant_data`` and the pointwise weighted log-likelihood,
``summary.csv``.
"""

from __future__ import annotations

from dataclasses import dataclass

import arviz as az
import matplotlib.pyplot as plt
import numpy as np
import pymc as pm
from scipy import special

from analyses import plotting
from analyses.output import Output
from analyses.study import Report, Settings, pooled, progress, rng_for, seed_for, thin
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
SCHEDULE_COLORS = {"easy_to_hard": "C0", "hard_to_easy": "C3", "self_paced": "C4"}
PARAMETERS = ("intercept", *(f"coef[{f}]" for f in FEATURES))


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


def _vector(estimate: dict) -> np.ndarray:
    """(intercept, coef...) of a point estimate, in the order of ``PARAMETERS``."""
    return np.r_[estimate["intercept"], estimate["coef"]]


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
    comparisons = inference.compare_many(model, [{"weights": w} for _, w, _ in vectors], random_seeds=seeds,
                                         **settings.sampling())
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
            for name, value in zip(PARAMETERS, _vector(estimate))]
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


def reference_rows(data: Data, reference: dict) -> list[dict]:
    truth = {"intercept": TRUE_INTERCEPT, "coef": TRUE_COEF}
    rows = []
    for label, estimator, estimate in (("truth", "truth", truth), ("unweighted", "mle", reference)):
        p = classes.predict_proba(data.X_test, estimate["intercept"], estimate["coef"])
        rows += _point_rows(label, estimator, estimate, {k: v[0] for k, v in metrics(p, data.y_test).items()})
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
    rows, diagnostics = reference_rows(data, reference), {}
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

    output.figure(_plot_paths(fits, phases, reference), "coefficient_paths.png")
    output.figure(_plot_weight_profiles(fits, phases), "weight_profiles.png")
    output.figure(_plot_boundaries(data, fits, phases, reference), "decision_boundaries.png")
    output.figure(_plot_metrics(data, fits, phases, reference), "metrics.png")
    return Report(rows=rows, fits=diagnostics)


# --------------------------------------------------------------------------- figures


def _pretty(schedule: str) -> str:
    return schedule.replace("_", " ")


def _posterior_draws(idata, index: int) -> np.ndarray:
    """Draws of parameter ``PARAMETERS[index]`` (0: intercept, then the coefficients)."""
    posterior = idata.posterior
    values = posterior["intercept"] if index == 0 else posterior["coef"].isel(feature=index - 1)
    return values.values.ravel()


def _plot_paths(fits: dict, phases: np.ndarray, reference: dict):
    truth = np.r_[TRUE_INTERCEPT, TRUE_COEF]
    unweighted = _vector(reference)
    fig, axs = plt.subplots(len(SCHEDULES), len(PARAMETERS), figsize=(13, 3.1 * len(SCHEDULES)),
                            sharex=True, sharey="col", squeeze=False)
    for row, schedule in zip(axs, SCHEDULES):
        mine = [fits[schedule, phase] for phase in range(len(phases))]
        for index, ax in enumerate(row):
            draws = [_posterior_draws(fit.comparison.idata, index) for fit in mine]
            hdi = np.array([az.hdi(d, hdi_prob=summary.HDI_PROB) for d in draws])
            color = SCHEDULE_COLORS[schedule]
            ax.fill_between(phases, hdi[:, 0], hdi[:, 1], color=color, alpha=0.2, label="posterior 94% HDI")
            ax.plot(phases, [d.mean() for d in draws], "o-", color=color, label="posterior mean")
            with_wmle = [(fit.progress, _vector(fit.comparison.point)[index]) for fit in mine
                         if fit.comparison.point is not None]
            if with_wmle:
                ax.plot(*zip(*with_wmle), marker="x", linewidth=1.3, label="WMLE",
                        **plotting.ESTIMATOR_STYLE["mle"])
            ax.plot(phases, [_vector(fit.comparison.map)[index] for fit in mine], marker="+", linewidth=1.3,
                    label="MAP", **plotting.ESTIMATOR_STYLE["map"])
            ax.axhline(unweighted[index], color="0.5", linestyle="-.", linewidth=1.2, label="unweighted MLE")
            ax.axhline(truth[index], color="C2", linewidth=1.5, label="truth")
            ax.set_title(f"{_pretty(schedule)}: {PARAMETERS[index]}")
            if schedule == SCHEDULES[-1]:
                ax.set_xlabel("progress t")
        row[0].set_ylabel("estimate")
    handles, labels = axs[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=6, bbox_to_anchor=(0.5, -0.02))
    fig.suptitle(f"Path of the estimates across {len(phases)} phases of each schedule (weights normalised "
                 "to mean 1 at every phase)", y=1.0)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    return fig


def _plot_weight_profiles(fits: dict, phases: np.ndarray):
    fig, axs = plt.subplots(1, len(SCHEDULES), figsize=(4.4 * len(SCHEDULES), 5.2), sharey=True)
    colors = plt.cm.viridis(np.linspace(0, 0.9, len(phases)))
    for ax, schedule in zip(axs, SCHEDULES):
        for phase, color in zip(range(len(phases)), colors):
            fit = fits[schedule, phase]
            difficulty, weights = fit.fit.difficulty, fit.fit.weights
            order = np.argsort(difficulty)
            ax.plot(difficulty[order], weights[order], color=color, linewidth=1.6,
                    label=f"t = {fit.progress:.2f} (Kish ESS {weights_lib.kish_ess(weights):.0f})")
        ax.set_yscale("log")
        what = ("rank of the loss under the current fit" if schedule == "self_paced"
                else "closeness to the true boundary (rank)")
        ax.set(title=_pretty(schedule), xlabel=f"difficulty: {what}", xlim=(0, 1))
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.17), ncol=2, frameon=False)
    axs[0].set_ylabel("weight (mean 1; log scale)")
    fig.suptitle(f"Weight of each of the {fits[SCHEDULES[0], 0].fit.weights.size} samples against its "
                 f"difficulty at each phase (sharpness {SHARPNESS:g})", y=1.02)
    fig.tight_layout()
    return fig


def _plot_boundaries(data: Data, fits: dict, phases: np.ndarray, reference: dict):
    shown = sorted({0, len(phases) // 2, len(phases) - 1})
    fig, axs = plt.subplots(len(SCHEDULES), len(shown), figsize=(4.0 * len(shown), 3.7 * len(SCHEDULES)),
                            sharex=True, sharey=True, squeeze=False)
    x1 = np.linspace(-3.5, 3.5, 200)
    references = [(reference["intercept"], reference["coef"], "unweighted MLE",
                   {"color": "0.5", "linestyle": "-.", "linewidth": 1.2}),
                  (TRUE_INTERCEPT, TRUE_COEF, "truth", {"color": "C2", "linewidth": 1.2})]
    for row, schedule in zip(axs, SCHEDULES):
        for ax, phase in zip(row, shown):
            fit = fits[schedule, phase]
            size = 12 * fit.fit.weights  # marker area proportional to the weight
            for label_value, color, name in ((0, "0.6", CLASS_NAMES[0]), (1, "C1", CLASS_NAMES[1])):
                mask = data.y == label_value
                ax.scatter(*data.X[mask].T, s=size[mask], color=color, alpha=0.6, linewidth=0,
                           label=f"{name} (area ~ weight)")
            point = fit.comparison.point
            estimates = [] if point is None else [(point, "WMLE", {**plotting.ESTIMATOR_STYLE["mle"],
                                                                  "linewidth": 1.3})]
            plotting.decision_boundary(ax, fit.comparison.idata, x1, color=SCHEDULE_COLORS[schedule],
                                       estimates=estimates, references=references)
            ax.set(title=f"{_pretty(schedule)}, t = {fit.progress:.2f}", xlim=(-3.5, 3.5),
                   ylim=(-3.5, 3.5))
            if schedule == SCHEDULES[-1]:
                ax.set_xlabel(FEATURES[0])
        row[0].set_ylabel(FEATURES[1])
    handles, labels = axs[0, 0].get_legend_handles_labels()
    handles.insert(2, plt.Rectangle((0, 0), 1, 1, color="0.6", alpha=0.4))
    labels.insert(2, "3-97% of posterior draws say minority")
    fig.legend(handles, labels, loc="lower center", ncol=4, bbox_to_anchor=(0.5, -0.03), markerscale=2)
    fig.suptitle("P = 0.5 boundary at the first, middle and last phase (minority predicted below-right):\n"
                 "the line barely moves; how sure the posterior is of it does", y=1.01)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    return fig


def _plot_metrics(data: Data, fits: dict, phases: np.ndarray, reference: dict):
    fig, axs = plt.subplots(1, len(METRICS), figsize=(11, 4.0))
    titles = {"minority_recall": "minority recall at P = 0.5", "brier": "Brier score"}
    p_reference = classes.predict_proba(data.X_test, reference["intercept"], reference["coef"])
    p_truth = classes.predict_proba(data.X_test, TRUE_INTERCEPT, TRUE_COEF)
    for ax, metric in zip(axs, METRICS):
        for offset, schedule in zip((-0.01, 0.0, 0.01), SCHEDULES):
            mine = [fits[schedule, phase] for phase in range(len(phases))]
            draws = [fit.scores["posterior"][metric] for fit in mine]
            hdi = np.array([az.hdi(d, hdi_prob=summary.HDI_PROB) for d in draws])
            color = SCHEDULE_COLORS[schedule]
            ax.errorbar(phases + offset, [d.mean() for d in draws],
                        yerr=[[d.mean() for d in draws] - hdi[:, 0], hdi[:, 1] - [d.mean() for d in draws]],
                        fmt="o-", color=color, capsize=2, label=f"{_pretty(schedule)}: posterior, 94% HDI")
            with_wmle = [(fit.progress + offset, fit.scores["wmle"][metric]) for fit in mine
                         if "wmle" in fit.scores]
            ax.plot(*zip(*with_wmle), "x", color=color, markersize=7)
        ax.axhline(metrics(p_reference, data.y_test)[metric][0], color="0.5", linestyle="-.",
                   label="unweighted MLE")
        ax.axhline(metrics(p_truth, data.y_test)[metric][0], color="C2", linestyle="-", label="truth")
        ax.set(title=f"{titles[metric]} on {data.y_test.size:,} test samples", xlabel="progress t")
    axs[0].plot([], [], "x", color="black", label="WMLE (in the schedule's colour)")
    fig.legend(*axs[0].get_legend_handles_labels(), loc="lower center", ncol=3, bbox_to_anchor=(0.5, -0.1))
    fig.suptitle("Test-set metrics along each schedule", y=1.02)
    fig.tight_layout()
    return fig
