"""The calibration study's figures (``figures/calibration/``): empirical against nominal coverage per
scenario and method, width against coverage, the scale of the weights each remedy implies, and one
data set's WLB, NUTS and sandwich draws. Each function takes the study's table rows (or draws, or
implied scales) and returns a figure."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from scipy import stats

LABELS = {"raw": "weights as given", "sum_n": "weights sum to n", "sum_ess": "weights sum to Kish ESS",
          "sandwich": "sandwich-adjusted", "wlb": "weighted likelihood bootstrap",
          "gpc": "GPC (scale calibrated by bootstrap)", "unweighted": "unweighted (reference)"}
COLORS = {"raw": "C3", "sum_n": "C0", "sum_ess": "C2", "sandwich": "C4", "wlb": "C1", "gpc": "C5",
          "unweighted": "0.5"}


def _values(table: list[dict]) -> dict:
    return {(r["model"], r["estimator"], r["quantity"]): r for r in table}


def _finish(fig, axs, ylabel: str, title: str):
    """Coverage on the y axis of the first panel, the legend below the panels, the title above."""
    axs[0].set_ylabel(ylabel)
    axs[0].set_ylim(0.0, 1.02)
    fig.tight_layout(rect=(0, 0.1, 1, 0.93))
    fig.legend(*axs[0].get_legend_handles_labels(), loc="lower center", ncol=6, fontsize=9)
    fig.suptitle(title)
    return fig


def _error_bars(rows: list[dict]) -> np.ndarray:
    """(2, k) distances from each row's value to its interval's ends (rounding can leave -1e-17)."""
    below = [r["value"] - r["lower"] for r in rows]
    return np.clip([below, [r["upper"] - r["value"] for r in rows]], 0, None)


def plot_coverage(table: list[dict], scenarios, methods):
    """Per scenario: empirical against nominal coverage (50% and 90%) of each method, with 95% Monte
    Carlo intervals; on the diagonal a method is calibrated."""
    value = _values(table)
    fig, axs = plt.subplots(1, len(scenarios), figsize=(3.3 * len(scenarios), 3.9), sharey=True)
    offsets = np.linspace(-0.05, 0.05, len(methods))
    for ax, scenario in zip(axs, scenarios):
        ax.plot([0.3, 1.0], [0.3, 1.0], color="black", linewidth=0.8, linestyle="--")
        for offset, method in zip(offsets, methods):
            points = [value.get((scenario.name, method, q)) for q in ("coverage_50", "coverage")]
            if None in points:
                continue
            nominal = np.array([0.5, 0.9]) + offset
            coverage = np.array([p["value"] for p in points])
            errors = _error_bars(points)
            ax.errorbar(nominal, coverage, yerr=errors, color=COLORS[method], marker="o", markersize=4,
                        linewidth=1.2, capsize=2, label=LABELS[method])
        ax.set_title(scenario.name.replace("_", " "))
        ax.set_xticks([0.5, 0.9], ["50%", "90%"])
        ax.set_xlabel("nominal coverage")
        ax.set_xlim(0.35, 1.05)
    return _finish(fig, axs, "empirical coverage of the true value",
                   "Coverage of central intervals from each method (dashed: calibrated; "
                   "bars: 95% Monte Carlo intervals)")


def plot_width(table: list[dict], scenarios, methods):
    """Mean width of the nominal 90% intervals against their coverage, per scenario and method."""
    value = _values(table)
    fig, axs = plt.subplots(1, len(scenarios), figsize=(3.3 * len(scenarios), 3.9), sharey=True)
    for ax, scenario in zip(axs, scenarios):
        ax.axhline(0.9, color="black", linewidth=0.8, linestyle="--")
        for method in methods:
            row = value.get((scenario.name, method, "coverage"))
            width = value.get((scenario.name, method, "width_90"))
            if row is None:
                continue
            ax.errorbar(width["value"], row["value"], yerr=_error_bars([row]), color=COLORS[method],
                        marker="o", capsize=2, label=LABELS[method])
        ax.set_xlim(left=0)
        ax.set_title(scenario.name.replace("_", " "))
        unit = "p" if scenario.family == "coin" else "logit scale, mean of 2 parameters"
        ax.set_xlabel(f"mean width of 90% interval\n({unit})")
    return _finish(fig, axs, "coverage of nominal 90% interval",
                   "Width against coverage of the nominal 90% intervals (dashed: 90%; "
                   "bars: 95% Monte Carlo intervals)")


def plot_example(pooled: dict, truth: dict):
    """One logistic data set with noisy importance weights: the WLB's draws against NUTS's (raw and
    sum-to-ESS weighted posteriors) and the sandwich-adjusted draws, with the truth. ``pooled``: per
    method, per parameter of ``truth``, the pooled draws."""
    fig, axs = plt.subplots(1, 2, figsize=(10, 4.2))
    for ax, (name, true_value) in zip(axs, truth.items()):
        columns = {method: by_name[name] for method, by_name in pooled.items()}
        low, high = np.min([np.quantile(c, 0.001) for c in columns.values()]), \
            np.max([np.quantile(c, 0.999) for c in columns.values()])
        grid = np.linspace(low, high, 300)
        for method, draws in columns.items():
            kind = "WLB" if method == "wlb" else ("NUTS, adjusted" if method == "sandwich" else "NUTS")
            ax.plot(grid, stats.gaussian_kde(draws)(grid), color=COLORS[method], linewidth=1.6,
                    label=f"{LABELS[method]} ({kind}, {draws.size} draws)")
        ax.axvline(float(np.ravel(true_value)[0]), color="black", linewidth=1.2, label="truth")
        ax.set_xlabel(name)
        ax.set_yticks([])
    axs[0].set_ylabel("density (Gaussian KDE)")
    fig.suptitle("One data set of logistic importance: 200 rows with LogNormal(-1/2, 1) weights")
    fig.tight_layout(rect=(0, 0.12, 1, 0.95))
    fig.legend(*axs[0].get_legend_handles_labels(), loc="lower center", ncol=3, fontsize=9)
    return fig


def plot_scales(implied: dict, scenarios, methods):
    """Per scenario: the factor on the weights as given that each remedy implies, one box per method
    over the data sets (log scale; 1: the weights as given)."""
    fig, axs = plt.subplots(1, len(scenarios), figsize=(3.3 * len(scenarios), 4.0), sharey=True)
    for ax, scenario in zip(axs, scenarios):
        values = [implied.get(scenario.name, {}).get(method, np.array([np.nan])) for method in methods]
        boxes = ax.boxplot(values, patch_artist=True, widths=0.6, showfliers=False)
        for box, method in zip(boxes["boxes"], methods):
            box.set(facecolor=COLORS[method], alpha=0.55)
        for median in boxes["medians"]:
            median.set(color="black")
        ax.axhline(1.0, color="black", linewidth=0.8, linestyle="--")
        ax.set_yscale("log")
        ax.set_xticks(range(1, len(methods) + 1), [m.replace("_", " ") for m in methods], rotation=30)
        ax.set_title(scenario.name.replace("_", " "))
    axs[0].set_ylabel("implied scale of the weights\n(width as given / width)^2")
    fig.suptitle("The scale each remedy puts on the weights, per data set (box: quartiles, whiskers: "
                 "1.5 IQR; dashed: as given)")
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    return fig
