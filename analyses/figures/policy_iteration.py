"""The policy-iteration analysis's figures (``figures/policy_iteration/``): learning curves of every
update rule, the step-size sensitivity of the rules that take one, and the Kish ESS of each
iteration's weights. Each function takes the analysis's records (``EnvironmentResult`` per
environment) and returns a figure."""

from __future__ import annotations

from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np

from analyses.figures import style as plotting
from analyses.study import mean_interval

if TYPE_CHECKING:
    from analyses.policy_iteration import EnvironmentResult, Run

STYLE = {"exact_pi": {"color": "black", "linestyle": "--",
                      "label": "exact policy iteration (knows the table)"},
         "map": {"color": "C0", "label": "MAP step, prior at current policy (proximal PG)"},
         "thompson": {"color": "C4", "label": "posterior draw (Thompson sampling)"},
         "reinforce": {"color": "C1", "label": "REINFORCE (SGD on returns)"},
         "awr": {"color": "C2", "label": "iterated AWR (WMLE, exp(A / T) weights)"},
         "wmle_signed": {"color": "C3", "label": "WMLE of signed advantages (its limit)"}}
TITLES = {"frozenlake_4x4": "FrozenLake 4x4, slippery", "frozenlake_8x8": "FrozenLake 8x8, slippery",
          "cliffwalking": "CliffWalking"}


def _setting_text(run: Run) -> str:
    if run.setting is None:
        return ""
    return f" (T = {run.setting:g})" if run.rule == "awr" else f" (sd = {run.setting:g})"


def _band(ax, x: np.ndarray, values: np.ndarray, style: dict, label: str) -> None:
    """Mean over seeds and a 95% band (1.96 standard errors of the mean; none for one seed)."""
    mean, half = mean_interval(values, axis=0)
    half = np.nan_to_num(half)
    ax.plot(x, mean, color=style["color"], linestyle=style.get("linestyle", "-"), linewidth=1.6, label=label)
    ax.fill_between(x, mean - half, mean + half, color=style["color"], alpha=0.18, linewidth=0)


def _references(ax, result: EnvironmentResult) -> None:
    ax.axhline(result.optimum, color="0.2", linestyle=":", linewidth=1.3, label="optimum (value iteration)")
    ax.axhline(result.target, color="0.55", linestyle=":", linewidth=1.0, label="90% of the optimum")
    ax.axhline(result.start, color="0.55", linestyle="-.", linewidth=1.0, label="start: uniform policy")


def learning_curves(results: list[EnvironmentResult]):
    plotting.apply_style()
    fig, axs = plt.subplots(1, len(results), figsize=(5.2 * len(results), 4.4), squeeze=False)
    for ax, result in zip(axs[0], results):
        for rule, run in result.runs.items():
            x = np.arange(run.returns.shape[1]) * result.episodes
            _band(ax, x, run.returns, STYLE[rule], STYLE[rule]["label"] + _setting_text(run))
        _references(ax, result)
        seeds = next(iter(result.runs.values())).returns.shape[0]
        ax.set(title=f"{TITLES.get(result.name, result.name)} ({seeds} seeds)",
               xlabel=f"episodes played ({result.episodes} per iteration)", ylabel="exact expected return")
        if result.start < 0:   # CliffWalking: the start is far below; show the learning, not the start
            ax.set_ylim(bottom=max(result.start, 12 * result.optimum), top=0.5 * result.optimum)
    handles, labels = axs[0, 0].get_legend_handles_labels()
    fig.legend(handles, [label.split(" (sd")[0].split(" (T =")[0] for label in labels], loc="lower center",
               ncol=3, bbox_to_anchor=(0.5, -0.12))
    fig.suptitle("Learning by repeated weighted refits: exact return of each iteration's acting policy "
                 "(mean and 95% band over seeds; each rule at its best setting)", y=1.02)
    fig.tight_layout()
    return fig


def step_sizes(results: list[EnvironmentResult], rules) -> plt.Figure:
    plotting.apply_style()
    fig, axs = plt.subplots(1, len(results), figsize=(5.2 * len(results), 3.8), squeeze=False)
    for ax, result in zip(axs[0], results):
        for rule in rules:
            runs = result.sweeps[rule]
            sizes = np.array([run.setting for run in runs])
            mean, half = mean_interval([run.auc for run in runs], axis=1)   # over seeds, per setting
            ax.errorbar(sizes, mean, yerr=np.nan_to_num(half), marker="o", capsize=3,
                        color=STYLE[rule]["color"], label=STYLE[rule]["label"])
        ax.axhline(result.optimum, color="0.2", linestyle=":", linewidth=1.3,
                   label="optimum (value iteration)")
        ax.set_xscale("log")
        ax.set_xticks(sizes, [f"{size:g}" for size in sizes])
        ax.xaxis.set_minor_locator(plt.NullLocator())
        ax.set(title=TITLES.get(result.name, result.name),
               xlabel="prior sd = step size (REINFORCE: sqrt(rate))",
               ylabel="mean exact return over the iterations")
    handles, labels = axs[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=4, bbox_to_anchor=(0.5, -0.1))
    fig.suptitle("Step-size sensitivity: area under the learning curve (mean and 95% interval over seeds)",
                 y=1.03)
    fig.tight_layout()
    return fig


def weights_ess(results: list[EnvironmentResult]) -> plt.Figure:
    plotting.apply_style()
    fig, axs = plt.subplots(1, len(results), figsize=(5.2 * len(results), 3.6), squeeze=False)
    for ax, result in zip(axs[0], results):
        for rule, run in result.runs.items():
            if rule == "exact_pi":
                continue
            share = run.ess_share[:, :-1]
            x = np.arange(share.shape[1]) * result.episodes
            known = np.isfinite(share)   # NaN: every weight of the batch was 0 (no reward seen)
            total = np.where(known, share, 0).sum(axis=0)
            mean = np.where(known.any(axis=0), total / np.maximum(known.sum(axis=0), 1), np.nan)
            ax.plot(x, mean, color=STYLE[rule]["color"], linewidth=1.5,
                    label=STYLE[rule]["label"] + _setting_text(run))
        ax.set(title=TITLES.get(result.name, result.name), xlabel="episodes played", ylim=(0, 1.02),
               ylabel="Kish ESS of |w| / steps in the batch")
        ax.legend(fontsize=7)
    fig.suptitle("How many of each batch's steps carry its weights (mean over seeds; |w| for signed ones)",
                 y=1.03)
    fig.tight_layout()
    return fig
