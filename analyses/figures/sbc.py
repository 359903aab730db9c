"""The SBC analysis's figure (``figures/sbc/{family}_ranks.png``): per scenario, the histogram of the
ranks of the true values and each parameter's rank ECDF against the uniform, with their bands."""

from __future__ import annotations

from typing import TYPE_CHECKING

import arviz as az
import matplotlib.pyplot as plt
import numpy as np
from scipy import stats

if TYPE_CHECKING:
    from analyses.sbc import Scenario


def plot_ranks(family: str, scenarios: list[Scenario], results: list[dict], rows: list[dict],
               simulations: int, *, rank_draws: int, bins: int, histogram):
    """Per scenario: histogram of the ranks (averaged over the parameters) with the pointwise 99% band
    of one parameter's histogram (top), and each parameter's ECDF of the ranks minus the uniform CDF
    with ArviZ's simultaneous 99% band for that many simulations (bottom; Säilynoja et al. 2022).
    Ranks take the values 0..``rank_draws``; ``histogram(ranks)`` counts them in ``bins`` equal bins.

    The parameters of one fit are correlated, so pooled ranks are not independent draws: every band
    here is computed for the number of simulations, not simulations x parameters. For the averaged
    histogram that band is conservative (the average of correlated bins varies at most as one bin).
    """
    value = {(r["model"], r["quantity"]): r["value"] for r in rows}
    fig, axs = plt.subplots(2, len(scenarios), figsize=(3.8 * len(scenarios) + 0.5, 6.6), sharey="row",
                            squeeze=False)
    edges = np.arange(1, rank_draws + 1) / (rank_draws + 1)  # where the ranks' CDF meets U(0, 1)'s
    low, high = stats.binom(simulations, 1 / bins).ppf([0.005, 0.995])
    for column, scenario in enumerate(scenarios):
        mine = [r for r in results if r["scenario"] == scenario.name]
        parameters = sorted({r["parameter"] for r in mine})
        ranks = {name: np.array([r["rank"] for r in mine if r["parameter"] == name]) for name in parameters}
        colour = "C0" if scenario.exact else "C3"
        top, bottom = axs[0, column], axs[1, column]
        top.axhspan(low, high, color="0.85", label="99% band if uniform (per bin)")
        top.axhline(simulations / bins, color="0.4", linestyle="--", linewidth=1)
        average = np.mean([histogram(r) for r in ranks.values()], axis=0)
        top.bar(np.arange(bins), average, width=0.9, color=colour,
                label=f"ranks, {simulations} simulations" + (f", mean of {len(parameters)} parameters"
                                                             if len(parameters) > 1 else ""))
        top.set_xticks(np.arange(0, bins + 1, 5) - 0.5, np.arange(0, rank_draws + 2, 25))
        top.set_title(f"{scenario.name.replace('_', ' ')}\nuniformity p = "
                      f"{value[scenario.name, 'rank_uniformity_pvalue']:.2g}; "
                      f"90% intervals cover {value[scenario.name, 'coverage_90']:.0%}", fontsize=10)
        for name, parameter_ranks in ranks.items():
            az.plot_ecdf((parameter_ranks + 0.5) / (rank_draws + 1), cdf=stats.uniform().cdf, difference=True,
                         confidence_bands="optimized", ci_prob=0.99, eval_points=edges, ax=bottom,
                         plot_kwargs={"color": colour, "alpha": 1.0 if len(ranks) == 1 else 0.6,
                                      "linewidth": 1.2},
                         fill_kwargs={"color": "0.85", "alpha": 1.0})
        per_parameter = " (one line per parameter)" if len(ranks) > 1 else ""
        bottom.set_xlabel(f"rank / {rank_draws + 1}{per_parameter}")
    axs[0, 0].set_ylabel("simulations per bin")
    axs[1, 0].set_ylabel("ECDF - uniform CDF\n(grey: simultaneous 99% band)")
    axs[0, 0].legend(loc="upper left", fontsize=8)
    fig.suptitle(f"SBC of the weighted {family} model: ranks of the true values among 99 posterior draws\n"
                 "(uniform = calibrated; U shape = intervals too narrow; hump = too wide; slope = bias)")
    fig.tight_layout()
    return fig
