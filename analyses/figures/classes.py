"""The classes analysis's figures (``figures/classes/``): decision boundaries per scheme, the
coefficients' forest, test-set metrics, a reliability diagram and the focal-gamma sweep. Each function
takes the analysis's records (``Dataset``, ``SchemeFit`` and metric scores per data set and scheme)
and returns a figure."""

from __future__ import annotations

from typing import TYPE_CHECKING

import arviz as az
import matplotlib.pyplot as plt
import numpy as np
from scipy import stats

from analyses.figures import style as plotting
from models import classes, summary

if TYPE_CHECKING:
    from analyses.classes import Dataset

METRIC_LABELS = {"minority_recall": "minority recall", "balanced_accuracy": "balanced accuracy",
                 "brier": "Brier score", "ece": "expected calibration error"}
SCHEME_COLORS = {"none": "0.45", "balanced": "C3", "balanced_sum_ess": "C6", "effective_number": "C1",
                 "focal_g0": "C8", "focal_g1": "C9", "focal_g2": "C0", "focal_g5": "C4",
                 "prior_correction": "C2"}


def _pretty(name: str) -> str:
    if name.startswith("focal_g"):
        return f"focal, gamma = {name[7:]}"
    return name.replace("_", " ")


BOUNDARY_PANELS = ("none", "balanced", "balanced_sum_ess", "effective_number", "focal_g2", "prior_correction")


def plot_boundaries(dataset: Dataset, fits: dict, names: list[str], *, target_rate: float):
    shown = [n for n in names if n in BOUNDARY_PANELS]
    fig, axs = plt.subplots(1, len(shown), figsize=(3.3 * len(shown), 3.8), sharex=True, sharey=True)
    x1 = np.linspace(-3, 4.5, 200)
    dogs, cats = dataset.X[dataset.y == 0], dataset.X[dataset.y == 1]
    truth = dataset.truth
    balanced_truth = truth["intercept"] + classes.prior_correction(float(dataset.y.mean()), target_rate)
    references = [(truth["intercept"], truth["coef"], "truth, P(cat) = 0.5", {"color": "C2", "linewidth": 1}),
                  (balanced_truth, truth["coef"], "truth, equal class rates",
                   {"color": "C2", "linestyle": "-.", "linewidth": 1})]
    for ax, name in zip(np.atleast_1d(axs), shown):
        comparison = fits[dataset.name, name].comparison
        ax.scatter(*dogs.T, s=4, color="0.75", label=f"{dataset.class_names[0]}s ({len(dogs)})")
        ax.scatter(*cats.T, s=22, color="C3", edgecolor="black", linewidth=0.5,
                   label=f"{dataset.class_names[1]}s ({len(cats)})")
        estimates = [(comparison.map, "MAP", {**plotting.ESTIMATOR_STYLE["map"], "linewidth": 1.5})]
        if comparison.point is not None:
            estimates.insert(0, (comparison.point, "MLE / WMLE", {**plotting.ESTIMATOR_STYLE["mle"],
                                                                 "linewidth": 1.3}))
        plotting.decision_boundary(ax, comparison.idata, x1, color=SCHEME_COLORS[name], estimates=estimates,
                                   references=references)
        ax.set(title=_pretty(name), xlabel=f"{dataset.feature_names[0]} (standardised)",
               xlim=(-3, 4.5), ylim=(-3, 4.5))
    np.atleast_1d(axs)[0].set_ylabel(f"{dataset.feature_names[1]} (standardised)")
    handles, labels = np.atleast_1d(axs)[0].get_legend_handles_labels()
    handles.insert(2, plt.Rectangle((0, 0), 1, 1, color="0.6", alpha=0.4))
    labels.insert(2, "3-97% of posterior draws say cat (94% band)")
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=8, bbox_to_anchor=(0.5, -0.12))
    fig.suptitle("Where each scheme puts the P = 0.5 boundary between 1000 dogs and 10 cats "
                 "(cats predicted above-right)", y=1.02)
    return fig


def plot_forest(datasets, fits, names):
    fig, axs = plt.subplots(1, len(datasets), figsize=(13, 1.5 + 0.4 * len(names) * 3),
                            gridspec_kw={"wspace": 0.45})
    for ax, dataset in zip(axs, datasets):
        az.plot_forest([fits[dataset.name, n].comparison.idata for n in names],
                       model_names=[_pretty(n) for n in names], var_names=["intercept", "coef"],
                       combined=True, hdi_prob=summary.HDI_PROB, colors=[SCHEME_COLORS[n] for n in names],
                       legend=ax is axs[0], ax=ax)
        ax.set_title(f"{dataset.name.replace('_', ' ')}: posterior mean, 50% and 94% HDI")
        if dataset.truth is not None:  # one tick per variable, top to bottom: intercept, coef[...]
            truth = [dataset.truth["intercept"], *dataset.truth["coef"]]
            ax.plot(truth, sorted(ax.get_yticks(), reverse=True), "D", color="C2", markersize=7,
                    markeredgecolor="black", zorder=5)
            ax.set_title(ax.get_title() + "\n(green diamonds: the true values)")
    fig.suptitle("Coefficients per scheme: weights move the intercept and narrow the intervals; "
                 "the prior correction moves only the intercept", y=0.97)
    return fig


def plot_metrics(datasets, scores, names, *, threshold: float):
    fig, axs = plt.subplots(len(datasets), len(METRIC_LABELS), figsize=(14, 3.2 * len(datasets)),
                            sharey="row")
    y = np.arange(len(names))[::-1]
    for row, dataset in zip(np.atleast_2d(axs), datasets):
        for ax, metric in zip(row, METRIC_LABELS):
            for position, name in zip(y, names):
                score = scores[dataset.name, name]
                draws = score["posterior"][metric]
                lower, upper = az.hdi(draws, hdi_prob=summary.HDI_PROB)
                ax.plot([lower, upper], [position, position], color=SCHEME_COLORS[name], linewidth=3,
                        alpha=0.6)
                ax.plot(draws.mean(), position, "o", color=SCHEME_COLORS[name], markeredgecolor="black")
                if "mle" in score:
                    ax.plot(score["mle"][metric], position + 0.22, "x", color="black")
                ax.plot(score["map"][metric], position - 0.22, "+", color="0.35")
            ax.set(title=f"{dataset.name.replace('_', ' ')}: {METRIC_LABELS[metric]}", yticks=y,
                   yticklabels=[_pretty(n) for n in names])
    handles = [plt.Line2D([], [], marker="o", color="0.4", markeredgecolor="black",
                          label="posterior mean, 94% HDI"),
               plt.Line2D([], [], marker="x", color="black", linestyle="", label="(W)MLE"),
               plt.Line2D([], [], marker="+", color="0.35", linestyle="", label="MAP")]
    fig.legend(handles=handles, loc="lower center", ncol=3, bbox_to_anchor=(0.5, -0.03))
    fig.suptitle(f"Test-set metrics at threshold {threshold:g}: recall bought with calibration", y=1.0)
    fig.tight_layout()
    return fig


def plot_calibration(dataset: Dataset, scores, names, *, bins: np.ndarray):
    """Reliability diagram on the simulated test set (100,000 animals, so bins are well filled);
    error bars: 95% Jeffreys intervals of each bin's observed rate."""
    fig, ax = plt.subplots(figsize=(6.8, 5.2))
    edges = bins
    for offset, name in zip(np.linspace(-0.012, 0.012, len(names)), names):
        p = scores[dataset.name, name]["predictive_probability"]
        index = np.clip(np.digitize(p, edges[1:-1]), 0, edges.size - 2)
        count = np.bincount(index, minlength=edges.size - 1)
        cats = np.bincount(index, dataset.y_test, minlength=edges.size - 1)
        used = count >= 20
        predicted = np.bincount(index, p, minlength=edges.size - 1)[used] / count[used]
        low, high = stats.beta(cats[used] + 0.5, count[used] - cats[used] + 0.5).ppf([[0.025], [0.975]])
        observed = cats[used] / count[used]
        low, high = np.minimum(low, observed), np.maximum(high, observed)  # k = 0 or n: bound at 0 or 1
        ax.errorbar(predicted + offset, observed, yerr=[observed - low, high - observed], fmt="o-",
                    color=SCHEME_COLORS[name], markersize=4, capsize=2, linewidth=1.2, label=_pretty(name))
    ax.plot([0, 1], [0, 1], color="black", linewidth=0.8)
    ax.set(xlabel="mean predicted P(cat) in bin (posterior predictive)",
           ylabel="observed share of cats in bin", xlim=(0, 1), ylim=(0, 1),
           title="Calibration on 100,000 fresh animals (bins with >= 20; 95% intervals):\n"
                 "class weights and the prior correction over-predict cats, as they are meant to")
    ax.legend(fontsize=8, loc="upper left")
    return fig


def plot_focal(datasets, fits, scores, names):
    gammas = [float(n[7:]) for n in names]
    fig, axs = plt.subplots(len(datasets), 2, figsize=(11, 3.3 * len(datasets)))
    for (ax_coef, ax_recall), dataset in zip(np.atleast_2d(axs), datasets):
        for j, feature in enumerate(["intercept", *dataset.feature_names]):
            key = (lambda post: post["intercept"]) if j == 0 else (lambda post, j=j: post["coef"][..., j - 1])
            color = f"C{j}"
            draws = [key(fits[dataset.name, n].comparison.idata.posterior).values.ravel() for n in names]
            hdi = np.array([az.hdi(d, hdi_prob=summary.HDI_PROB) for d in draws])
            ax_coef.fill_between(gammas, hdi[:, 0], hdi[:, 1], color=color, alpha=0.2)
            ax_coef.plot(gammas, [d.mean() for d in draws], "o-", color=color, label=feature)
            mles = [fits[dataset.name, n].comparison.point for n in names]
            if all(m is not None for m in mles):
                ax_coef.plot(gammas, [np.ravel(key(m))[0] for m in mles], "x", color="black")
        ax_coef.set(title=f"{dataset.name.replace('_', ' ')}: coefficients (posterior mean, 94% HDI; x: MLE)",
                    xlabel="focal gamma")
        ax_coef.legend(fontsize=8)
        recall = [scores[dataset.name, n]["posterior"]["minority_recall"] for n in names]
        hdi = np.array([az.hdi(r, hdi_prob=summary.HDI_PROB) for r in recall])
        ax_recall.fill_between(gammas, hdi[:, 0], hdi[:, 1], color="C3", alpha=0.2)
        ax_recall.plot(gammas, [r.mean() for r in recall], "o-", color="C3", label="posterior")
        with_mle = [(g, scores[dataset.name, n]["mle"]["minority_recall"]) for g, n in zip(gammas, names)
                    if "mle" in scores[dataset.name, n]]
        if with_mle:
            ax_recall.plot(*zip(*with_mle), "x", color="black", label="MLE")
        ax_recall.legend(fontsize=8)
        ax_recall.set(title="minority recall on the test set", xlabel="focal gamma", ylim=(0, 1))
    fig.suptitle("Focal loss without class weights: larger gamma flattens the fit (intercept up, slopes "
                 "down), leaves minority recall where it was, and widens the Gibbs posterior", y=1.01)
    fig.tight_layout()
    return fig
