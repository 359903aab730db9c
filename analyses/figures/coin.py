"""The coin analysis's figures (``figures/coin/``): the weighted log-likelihood, each weighting's
posterior against its exact Beta, the sweep of the key toss's weight, and NUTS's rank plot. Each
function takes the analysis's records (``CoinFit`` per weighting, the sweep's rows) and returns a
figure."""

from __future__ import annotations

import arviz as az
import matplotlib.pyplot as plt
import numpy as np
import pymc as pm

from analyses.figures import style as plotting
from models import inference

COLORS = {"unweighted": "0.55", "weights_as_given": "C3", "weights_sum_n": "C0", "weights_sum_ess": "C2"}


def plot_log_likelihood(model, fits: dict):
    grid = np.linspace(0.005, 0.995, 397)
    fig, ax = plt.subplots(figsize=(7, 4.2))
    log_likelihood = inference.compile_log_likelihood(model)
    for label, fit in fits.items():
        pm.set_data({"weights": fit.weights}, model=model)
        values = np.array([log_likelihood(p=p) for p in grid])
        ax.plot(grid, values - values.max(), color=COLORS[label], linewidth=2,
                label=f"{label.replace('_', ' ')} (sum w = {fit.weights.sum():.3g})")
    mle, wmle = (float(fits[label].comparison.point["p"]) for label in ("unweighted", "weights_as_given"))
    plotting.mark(ax, mle, "mle")
    plotting.mark(ax, wmle, "mle")
    for label, x in (("MLE", mle), ("WMLE", wmle)):
        ax.annotate(f"{label} {x:.3f}", (x, 0.15), ha="center", va="bottom", fontsize=9)
    ax.set(ylim=(-8, 0.9), xlabel="p (probability of heads)",
           ylabel="log-likelihood minus its maximum",
           title="Weighting the 3rd toss moves the maximiser; rescaling weights only changes curvature")
    ax.legend(loc="lower left", fontsize=8.5)
    return fig


def plot_posteriors(fits: dict):
    fig, axs = plt.subplots(1, len(fits), figsize=(13, 3.6), sharex=True)
    grid = np.linspace(0.0, 1.0, 501)
    for ax, (label, fit) in zip(axs, fits.items()):
        comparison = fit.comparison
        draws = comparison.idata.posterior["p"].values.ravel()
        ax.hist(draws, bins=50, range=(0, 1), density=True, color=COLORS[label], alpha=0.45,
                label=f"NUTS ({draws.size} draws)")
        ax.plot(grid, fit.exact.pdf(grid), color=COLORS[label], linewidth=2, label="exact Beta")
        plotting.mark(ax, float(comparison.point["p"]), "mle", comparison.point_name.upper())
        plotting.mark(ax, float(comparison.map["p"]), "map", "MAP")
        plotting.mark(ax, draws.mean(), "posterior_mean", "posterior mean")
        ax.set(title=f"{label.replace('_', ' ')}\nsum w = {fit.weights.sum():.3g}",
               xlabel="p", xlim=(0.2, 1.0))
        ax.set_yticks([])
    axs[0].legend(loc="upper left", fontsize=8)
    fig.suptitle("Posterior of p under Beta(2, 2): same WMLE, width set by the weights' scale", y=1.04)
    return fig


def plot_sweep(sweep: list[dict], normalizations: dict[str, str]):
    fig, axs = plt.subplots(1, len(normalizations), figsize=(13, 3.9), sharey=True)
    for ax, (how, label) in zip(axs, normalizations.items()):
        rows = [r for r in sweep if r["normalize"] == how]
        exact = [r for r in rows if r["estimator"] == "exact_posterior"]
        x = [r["key_weight"] for r in exact]
        ax.fill_between(x, [r["lower"] for r in exact], [r["upper"] for r in exact],
                        color=COLORS[label], alpha=0.2, label="94% HDI (exact)")
        ax.plot(x, [r["value"] for r in exact], color=COLORS[label], linewidth=2,
                label="posterior mean (exact)")
        nuts = [r for r in rows if r["estimator"] == "posterior"]
        ax.errorbar([r["key_weight"] for r in nuts], [r["value"] for r in nuts],
                    yerr=[[r["value"] - r["lower"] for r in nuts], [r["upper"] - r["value"] for r in nuts]],
                    fmt="o", color=COLORS[label], markeredgecolor="black", capsize=3,
                    label="NUTS mean, 94% HDI")
        wmle = [r for r in rows if r["estimator"] == "wmle"]
        ax.plot([r["key_weight"] for r in wmle], [r["value"] for r in wmle], marker="x",
                markersize=7, linewidth=1.4, **plotting.ESTIMATOR_STYLE["mle"], label="WMLE")
        ax.set(xscale="log", xlabel="weight c of the 3rd toss", title=label.replace("_", " "))
    axs[0].set(ylabel="p", ylim=(0.15, 1.0))
    axs[0].legend(loc="lower right", fontsize=8)
    fig.suptitle("The WMLE depends only on the weights' ratios; the posterior also on their sum", y=1.02)
    return fig


def plot_trace(idata):
    axes = az.plot_trace(idata, var_names=["p"], kind="rank_bars", figsize=(10, 3))
    fig = axes.ravel()[0].figure
    fig.suptitle("NUTS, weights as given: density per chain and rank bars (uniform = mixed)", y=1.03)
    return fig
