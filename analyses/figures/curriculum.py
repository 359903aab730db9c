"""The curriculum analysis's figures (``figures/curriculum/``): the estimates' paths across phases,
the weight profiles, decision boundaries at the first, middle and last phase, and test-set metrics.
Each function takes the analysis's records (``Phase`` per schedule and phase index) and returns a
figure."""

from __future__ import annotations

from typing import TYPE_CHECKING

import arviz as az
import matplotlib.pyplot as plt
import numpy as np

from analyses.figures import style as plotting
from models import classes, summary
from models import weights as weights_lib

if TYPE_CHECKING:
    from analyses.curriculum import Data

SCHEDULE_COLORS = {"easy_to_hard": "C0", "hard_to_easy": "C3", "self_paced": "C4"}
TITLES = {"minority_recall": "minority recall at P = 0.5", "brier": "Brier score"}


def _pretty(schedule: str) -> str:
    return schedule.replace("_", " ")


def _posterior_draws(idata, index: int) -> np.ndarray:
    """Draws of parameter ``index`` (0: intercept, then the coefficients)."""
    posterior = idata.posterior
    values = posterior["intercept"] if index == 0 else posterior["coef"].isel(feature=index - 1)
    return values.values.ravel()


def plot_paths(fits: dict, phases: np.ndarray, reference: dict, *, truth: dict, schedules, parameters):
    truth = classes.parameter_vector(truth)
    unweighted = classes.parameter_vector(reference)
    fig, axs = plt.subplots(len(schedules), len(parameters), figsize=(13, 3.1 * len(schedules)),
                            sharex=True, sharey="col", squeeze=False)
    for row, schedule in zip(axs, schedules):
        mine = [fits[schedule, phase] for phase in range(len(phases))]
        for index, ax in enumerate(row):
            draws = [_posterior_draws(fit.comparison.idata, index) for fit in mine]
            hdi = np.array([az.hdi(d, hdi_prob=summary.HDI_PROB) for d in draws])
            color = SCHEDULE_COLORS[schedule]
            ax.fill_between(phases, hdi[:, 0], hdi[:, 1], color=color, alpha=0.2, label="posterior 94% HDI")
            ax.plot(phases, [d.mean() for d in draws], "o-", color=color, label="posterior mean")
            with_wmle = [(fit.progress, classes.parameter_vector(fit.comparison.point)[index]) for fit in mine
                         if fit.comparison.point is not None]
            if with_wmle:
                ax.plot(*zip(*with_wmle), marker="x", linewidth=1.3, label="WMLE",
                        **plotting.ESTIMATOR_STYLE["mle"])
            maps = [classes.parameter_vector(fit.comparison.map)[index] for fit in mine]
            ax.plot(phases, maps, marker="+", linewidth=1.3, label="MAP", **plotting.ESTIMATOR_STYLE["map"])
            ax.axhline(unweighted[index], color="0.5", linestyle="-.", linewidth=1.2, label="unweighted MLE")
            ax.axhline(truth[index], color="C2", linewidth=1.5, label="truth")
            ax.set_title(f"{_pretty(schedule)}: {parameters[index]}")
            if schedule == schedules[-1]:
                ax.set_xlabel("progress t")
        row[0].set_ylabel("estimate")
    handles, labels = axs[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=6, bbox_to_anchor=(0.5, -0.02))
    fig.suptitle(f"Path of the estimates across {len(phases)} phases of each schedule (weights normalised "
                 "to mean 1 at every phase)", y=1.0)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    return fig


def plot_weight_profiles(fits: dict, phases: np.ndarray, *, schedules, sharpness: float):
    fig, axs = plt.subplots(1, len(schedules), figsize=(4.4 * len(schedules), 5.2), sharey=True)
    colors = plt.cm.viridis(np.linspace(0, 0.9, len(phases)))
    for ax, schedule in zip(axs, schedules):
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
    fig.suptitle(f"Weight of each of the {fits[schedules[0], 0].fit.weights.size} samples against its "
                 f"difficulty at each phase (sharpness {sharpness:g})", y=1.02)
    fig.tight_layout()
    return fig


def plot_boundaries(data: Data, fits: dict, phases: np.ndarray, reference: dict, *, truth: dict, schedules,
                    features, class_names):
    shown = sorted({0, len(phases) // 2, len(phases) - 1})
    fig, axs = plt.subplots(len(schedules), len(shown), figsize=(4.0 * len(shown), 3.7 * len(schedules)),
                            sharex=True, sharey=True, squeeze=False)
    x1 = np.linspace(-3.5, 3.5, 200)
    references = [(reference["intercept"], reference["coef"], "unweighted MLE",
                   {"color": "0.5", "linestyle": "-.", "linewidth": 1.2}),
                  (truth["intercept"], truth["coef"], "truth", {"color": "C2", "linewidth": 1.2})]
    for row, schedule in zip(axs, schedules):
        for ax, phase in zip(row, shown):
            fit = fits[schedule, phase]
            size = 12 * fit.fit.weights  # marker area proportional to the weight
            for label_value, color, name in ((0, "0.6", class_names[0]), (1, "C1", class_names[1])):
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
            if schedule == schedules[-1]:
                ax.set_xlabel(features[0])
        row[0].set_ylabel(features[1])
    handles, labels = axs[0, 0].get_legend_handles_labels()
    handles.insert(2, plt.Rectangle((0, 0), 1, 1, color="0.6", alpha=0.4))
    labels.insert(2, "3-97% of posterior draws say minority")
    fig.legend(handles, labels, loc="lower center", ncol=4, bbox_to_anchor=(0.5, -0.03), markerscale=2)
    fig.suptitle("P = 0.5 boundary at the first, middle and last phase (minority predicted below-right):\n"
                 "the line barely moves; how sure the posterior is of it does", y=1.01)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    return fig


def plot_metrics(data: Data, fits: dict, phases: np.ndarray, *, schedules, reference_scores: dict):
    """``reference_scores``: the metrics of the ``unweighted`` MLE and of the ``truth``."""
    fig, axs = plt.subplots(1, len(TITLES), figsize=(11, 4.0))
    for ax, metric in zip(axs, TITLES):
        for offset, schedule in zip((-0.01, 0.0, 0.01), schedules):
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
        ax.axhline(reference_scores["unweighted"][metric], color="0.5", linestyle="-.",
                   label="unweighted MLE")
        ax.axhline(reference_scores["truth"][metric], color="C2", linestyle="-", label="truth")
        ax.set(title=f"{TITLES[metric]} on {data.y_test.size:,} test samples", xlabel="progress t")
    axs[0].plot([], [], "x", color="black", label="WMLE (in the schedule's colour)")
    fig.legend(*axs[0].get_legend_handles_labels(), loc="lower center", ncol=3, bbox_to_anchor=(0.5, -0.1))
    fig.suptitle("Test-set metrics along each schedule", y=1.02)
    fig.tight_layout()
    return fig
