"""The policy analysis's figures (``figures/policy/``): posterior policies per weighting, the exact
expected return of every fit, the importance ratios' diagnostics against clip and truncation levels,
and the advantage-weighted fit running off as the prior's ridge vanishes. Each function takes the
analysis's records (``analyses.policy.SchemeFit`` per problem and scheme) and returns a figure."""

from __future__ import annotations

from typing import TYPE_CHECKING

import arviz as az
import matplotlib.pyplot as plt
import numpy as np
from matplotlib import colors as mcolors
from matplotlib import ticker
from matplotlib.patches import Polygon, Rectangle

from analyses.environments.rl_problems import (
    CLIP,
    TRUNCATE,
    Problem,
    advantages,
    expected_return,
    ratios,
    reference_policies,
)
from models import summary
from models import weights as weights_lib

if TYPE_CHECKING:
    from analyses.policy import SchemeFit

CLIP_LEVELS = np.round(np.linspace(0.05, 0.5, 10), 2)
TRUNCATION_LEVELS = np.round(np.geomspace(0.5, 10.0, 14), 3)
LABELS = {"behavior_cloning": "behaviour cloning", "reinforce": "REINFORCE", "advantage": "advantage",
          "awr": "AWR", "offpolicy_ordinary": "IS ratio x A", "offpolicy_clipped": f"clipped ({CLIP:g}) x A",
          "offpolicy_truncated": f"truncated ({TRUNCATE:g}) x A",
          "offpolicy_self_normalised": "self-norm. ratio x A"}
ACTION_NAMES = {"bandit": [f"a{a}" for a in range(5)], "frozenlake": ["left", "down", "right", "up"]}

ARROWS = {0: (-1, 0), 1: (0, -1), 2: (1, 0), 3: (0, 1)}   # FrozenLake: left, down, right, up (y up)
REFERENCE_STYLE = {"optimal": {"color": "C2", "linestyle": "-", "linewidth": 1.4,
                               "label": "optimum (value iteration)"},
                   "behavior_greedy": {"color": "C0", "linestyle": "-.", "linewidth": 1.4,
                                       "label": "one-step improvement (greedy in Q of beta)"},
                   "greedy_logged_advantage": {"color": "C4", "linestyle": ":", "linewidth": 2,
                                               "label": "greedy in the logged mean advantages"},
                   "behavior": {"color": "0.5", "linestyle": "--", "linewidth": 1.4,
                                "label": "behaviour policy beta"}}
TITLES = {"bandit": "Contextual bandit (3 states, 5 actions)",
          "frozenlake": "FrozenLake 4x4, slippery (gamma = 0.99)"}


def _return_text(result: SchemeFit) -> str:
    lower, upper = az.hdi(result.returns, hdi_prob=summary.HDI_PROB)
    return f"E[return] {result.returns.mean():.3g} [{lower:.3g}, {upper:.3g}]"


def _bandit_panel(ax, problem: Problem, result: SchemeFit, optimal: np.ndarray):
    pi, mode = result.policy_mean, result.mode_probability
    image = ax.imshow(pi, cmap="Blues", vmin=0, vmax=1, aspect="auto")
    for s in range(problem.n_states):
        for a in range(problem.n_actions):
            dark = pi[s, a] > 0.6
            ax.text(a, s - 0.12, f"{pi[s, a]:.2f}", ha="center", va="center", fontsize=9.5,
                    fontweight="bold", color="white" if dark else "black")
            ax.text(a, s + 0.22, f"P {mode[s, a]:.2f}", ha="center", va="center", fontsize=7.5,
                    color="white" if dark else "0.25")
        best = int(np.argmax(optimal[s]))
        ax.add_patch(Rectangle((best - 0.47, s - 0.47), 0.94, 0.94, fill=False, edgecolor="C3", linewidth=2))
    ax.set_xticks(range(problem.n_actions), ACTION_NAMES["bandit"])
    ax.set_yticks(range(problem.n_states), [f"s{s}" for s in range(problem.n_states)])
    ax.grid(False)
    return image


def _frozenlake_panel(ax, problem: Problem, result: SchemeFit, optimal: np.ndarray):
    """The 4x4 map; each free cell split into four triangles (left, down, right, up) shaded by
    posterior mean pi(a | s), the optimal action's outlined in red; bottom left, the posterior
    probability that the optimal action is the policy's most probable one."""
    pi, mode = result.policy_mean, result.mode_probability
    rows, columns = problem.grid.shape
    colormap = plt.get_cmap("Blues")
    for s in range(problem.n_states):
        row, column = divmod(s, columns)
        x, y = column, rows - 1 - row   # row 0 at the top
        letter = problem.grid[row, column]
        if letter in "HG":
            ax.add_patch(Rectangle((x, y), 1, 1, color="#3a3a3a" if letter == "H" else "#e9c46a"))
            ax.text(x + 0.5, y + 0.5, "hole" if letter == "H" else "goal", ha="center", va="center",
                    color="white" if letter == "H" else "black", fontsize=8)
            continue
        best = int(np.argmax(optimal[s]))
        centre = (x + 0.5, y + 0.5)
        for a, (dx, dy) in ARROWS.items():
            tip = (x + 0.5 + 0.5 * dx, y + 0.5 + 0.5 * dy)
            corners = [(tip[0] + 0.5 * dy, tip[1] + 0.5 * dx), (tip[0] - 0.5 * dy, tip[1] - 0.5 * dx)]
            ax.add_patch(Polygon([centre, *corners], closed=True, facecolor=colormap(pi[s, a]),
                                 edgecolor="white", linewidth=0.8))
            ax.text(x + 0.5 + 0.34 * dx, y + 0.5 + 0.34 * dy, f"{pi[s, a]:.2f}", ha="center", va="center",
                    fontsize=6.5, color="white" if pi[s, a] > 0.6 else "black")
        dx, dy = ARROWS[best]
        tip = (x + 0.5 + 0.5 * dx, y + 0.5 + 0.5 * dy)
        corners = [(tip[0] + 0.5 * dy, tip[1] + 0.5 * dx), (tip[0] - 0.5 * dy, tip[1] - 0.5 * dx)]
        ax.add_patch(Polygon([centre, *corners], closed=True, fill=False, edgecolor="C3", linewidth=1.6,
                             zorder=3))
        ax.text(x + 0.03, y + 0.03, f"P {mode[s, best]:.2f}", ha="left", va="bottom", fontsize=6, zorder=4,
                color="C3", fontweight="bold",
                bbox={"boxstyle": "square,pad=0.1", "facecolor": "white", "edgecolor": "none", "alpha": 0.8})
        if letter == "S":
            ax.text(x + 0.97, y + 0.97, "start", fontsize=6, va="top", ha="right")
    for edge in range(rows + 1):
        ax.axhline(edge, color="0.3", linewidth=0.8)
        ax.axvline(edge, color="0.3", linewidth=0.8)
    ax.set(xlim=(0, columns), ylim=(0, rows), aspect="equal", xticks=[], yticks=[])
    ax.grid(False)
    return plt.cm.ScalarMappable(norm=mcolors.Normalize(0.0, 1.0), cmap=colormap)


def plot_policies(problems: dict, fits: dict):
    names = list(next(iter(fits.values())))
    columns = min(4, len(names))
    rows = -(-len(names) // columns)
    fig = plt.figure(figsize=(4.1 * columns, 2 * 3.3 * rows + 1.6), layout="constrained")
    subfigures = fig.subfigures(2, 1, height_ratios=[0.85, 1.15])
    notes = {
        "bandit": "shade and bold number: posterior mean pi(a | s); 'P': posterior probability that a is the "
                  "policy's most probable action; red box: the best action",
        "frozenlake": "triangles point left, down, right, up; shade and number: posterior mean pi(a | s); "
                      "red: the optimal action; 'P' (corner): probability it is the policy's most probable",
    }
    for subfigure, (name, problem) in zip(subfigures, problems.items()):
        optimal = reference_policies(problem)["optimal"]
        axs = np.atleast_1d(subfigure.subplots(rows, columns)).ravel()
        for ax, scheme in zip(axs, names):
            result = fits[name][scheme]
            panel = _bandit_panel if name == "bandit" else _frozenlake_panel
            mappable = panel(ax, problem, result, optimal)
            ax.set_title(f"{LABELS[scheme]}\n{_return_text(result)}", fontsize=9.5)
        for ax in axs[len(names):]:
            ax.set_visible(False)
        subfigure.colorbar(mappable, ax=axs.tolist(), shrink=0.8, label="posterior mean pi(a | s)")
        optimum = expected_return(problem.dynamics, optimal)
        subfigure.suptitle(f"{TITLES[name]}: optimum {optimum:.3g}, behaviour "
                           f"{expected_return(problem.dynamics, problem.behavior):.3g}\n{notes[name]}",
                           fontsize=10.5)
    fig.suptitle("Posterior policies per weighting: cloning copies beta; on-policy advantages and AWR "
                 "mostly sharpen beta's favourites;\nratios to the uniform target let each cell's mean "
                 "advantage decide", fontsize=12)
    return fig


def plot_returns(problems: dict, fits: dict):
    fig, axs = plt.subplots(1, len(problems), figsize=(7.2 * len(problems), 5.2), layout="constrained")
    for ax, (name, problem) in zip(np.atleast_1d(axs), problems.items()):
        results = fits[name]
        positions = np.arange(len(results))
        violins = ax.violinplot([r.returns for r in results.values()], positions, widths=0.75,
                                showextrema=False)
        for body in violins["bodies"]:
            body.set(facecolor="C1", edgecolor="C1", alpha=0.45)
        for i, result in enumerate(results.values()):
            lower, upper = az.hdi(result.returns, hdi_prob=summary.HDI_PROB)
            ax.plot([i, i], [lower, upper], color="C1", linewidth=1.5)
            ax.plot(i, result.returns.mean(), "o", color="C1", markeredgecolor="black", markersize=5,
                    label="posterior mean, 94% HDI" if i == 0 else None)
            if result.wmle is not None:
                ax.plot(i, expected_return(problem.dynamics, result.wmle), "x", color="black",
                        markersize=9, markeredgewidth=2, label="(W)MLE" if i == 0 else None)
            else:
                ax.annotate("no WMLE", (i, 0.0), xycoords=("data", "axes fraction"), ha="center",
                            va="bottom", fontsize=8, color="C3")
            ax.plot(i, expected_return(problem.dynamics, result.map), "D", color="0.35", markersize=6,
                    markerfacecolor="none", markeredgewidth=1.5, label="MAP" if i == 0 else None)
            if result.exact_returns is not None:
                ax.plot(i + 0.28, result.exact_returns.mean(), "s", color="C5", markersize=5,
                        label="exact posterior (advantage)")
        for reference, pi in reference_policies(problem).items():
            ax.axhline(expected_return(problem.dynamics, pi), **REFERENCE_STYLE[reference])
        ax.set_xticks(positions, [LABELS[s] for s in results], rotation=30, ha="right")
        if name == "frozenlake":   # returns from 0.01 to 0.54: a log axis resolves the small ones
            ax.set_yscale("log")
            ax.yaxis.set_major_locator(ticker.FixedLocator([0.01, 0.02, 0.03, 0.05, 0.1, 0.2, 0.3, 0.5]))
            ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda value, _: f"{value:g}"))
            ax.yaxis.set_minor_formatter(ticker.NullFormatter())
        ax.set(ylabel="exact expected discounted return", title=TITLES[name])
    handles, labels = np.atleast_1d(axs)[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=4, fontsize=9)
    findings = []
    for name, problem in problems.items():
        means = {scheme: result.returns.mean() for scheme, result in fits[name].items()}
        best = max(means, key=means.get)
        optimum = expected_return(problem.dynamics, reference_policies(problem)["optimal"])
        findings.append(f"{name}: best posterior mean {means[best]:.3g} ({LABELS[best]}) of the optimum "
                        f"{optimum:.3g}")
    fig.suptitle("Exact expected return of each fitted policy, every posterior draw evaluated exactly\n"
                 + "; ".join(findings), fontsize=11.5)
    return fig


def plot_weight_diagnostics(problems: dict):
    fig, axs = plt.subplots(2, 2, figsize=(12.5, 8), sharex="col", layout="constrained")
    levels = {"clip": CLIP_LEVELS, "truncate": TRUNCATION_LEVELS}
    colors = {"bandit": "C0", "frozenlake": "C3"}
    for column, (kind, grid) in enumerate(levels.items()):
        top, bottom = axs[0, column], axs[1, column]
        for name, problem in problems.items():
            color, steps, episodes = colors[name], problem.states.size, int(problem.episode_ends.sum())
            advantage = advantages(problem)
            raw = weights_lib.ratio_diagnostics(ratios(problem), problem.episode_ends)
            capped = [ratios(problem, **{kind: level}) for level in grid]
            series = [weights_lib.ratio_diagnostics(rho, problem.episode_ends) for rho in capped]
            top.plot(grid, [d["ratio_kish_ess"] / steps for d in series], "o-", color=color,
                     markersize=3.5, label=f"top, {name}: per-step ratios")
            top.axhline(raw["ratio_kish_ess"] / steps, color=color, linestyle=":", linewidth=1)
            khat = [weights_lib.magnitude_diagnostics(rho * advantage)["psis_khat"] for rho in capped]
            bottom.plot(grid, khat, "o-", color=color, markersize=3.5,
                        label=f"bottom, {name}: |ratio x advantage| per step")
            if name == "frozenlake":
                top.plot(grid, [d["episode_ratio_kish_ess"] / episodes for d in series], "s--", color=color,
                         markersize=3.5, label=f"top, {name}: ratio products per episode")
                top.axhline(raw["episode_ratio_kish_ess"] / episodes, color=color, linestyle=":",
                            linewidth=1, label="dotted: unclipped, untruncated")
                bottom.axhline(raw["episode_ratio_psis_khat"], color=color, linestyle="--", linewidth=1.4,
                               label=f"bottom, {name}: raw ratio products per episode")
        for name, problem in problems.items():  # Vehtari et al. (2024): reliable below this threshold
            threshold = min(1 - 1 / np.log10(problem.states.size), 0.7)
            bottom.axhline(threshold, color=colors[name], linewidth=1,
                           label=f"{name}: k-hat threshold {threshold:.2f} for S = {problem.states.size}")
        top.set(ylabel="Kish ESS / n", ylim=(0, 1.05))
        bottom.set(ylabel="PSIS k-hat")
        chosen = CLIP if kind == "clip" else TRUNCATE
        for ax in axs[:, column]:
            ax.axvline(chosen, color="0.6", linewidth=6, alpha=0.3)
    axs[1, 0].set(xlabel="clip level eps (ratios clipped to [1 - eps, 1 + eps]; grey: the fits' 0.2)")
    axs[1, 1].set(xlabel="truncation level rho_bar (ratios capped at rho_bar; grey: the fits' 1)",
                  xscale="log")
    axs[0, 0].set_title("PPO-style clipping: Kish ESS of the ratios")
    axs[0, 1].set_title("V-trace truncation: Kish ESS of the ratios")
    for ax, kind in zip(axs[1], ("PPO-style clipping", "V-trace truncation")):
        ax.set_title(f"{kind}: k-hat of the likelihood weights |rho_i A_i|\n(k-hat of capped ratios is "
                     "undefined: they tie at the cap, and per-step ratios tie per cell)", fontsize=9.5)
    handles, labels = [], []
    for ax in axs[:, 0]:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            if label not in labels:
                handles.append(handle)
                labels.append(label)
    fig.legend(handles, labels, loc="outside lower center", ncol=3, fontsize=8.5)
    frozenlake = problems.get("frozenlake")
    heavy = ""
    if frozenlake is not None:
        raw = weights_lib.ratio_diagnostics(ratios(frozenlake), frozenlake.episode_ends)
        heavy = (f"; whole-episode ratio products in FrozenLake keep "
                 f"{raw['episode_ratio_kish_ess'] / frozenlake.episode_ends.sum():.0%} ESS, "
                 f"k-hat {raw['episode_ratio_psis_khat']:.2f}")
    fig.suptitle("Importance ratios to the uniform target: clipping and truncation trade bias for effective "
                 f"sample size\ncapped per-step ratios keep most of the sample{heavy}", fontsize=11.5)
    return fig


def _interval_mark(ax, x, draws, color, label):
    """Posterior mean and 94% HDI of ``draws`` as a square with error bars at ``x``."""
    lower, upper = az.hdi(draws, hdi_prob=summary.HDI_PROB)
    mean = draws.mean()
    ax.errorbar(x, mean, yerr=[[mean - lower], [upper - mean]], fmt="s", color=color,
                markeredgecolor="black", capsize=3, label=label)


def plot_unbounded(problem: Problem, result: SchemeFit, path: dict):
    cells, variance = result.cells, path["sd"] ** 2
    low = np.unravel_index(np.argmin(cells), cells.shape)
    high = np.unravel_index(np.argmax(cells), cells.shape)
    posterior = result.comparison.idata.posterior["preference"]
    xlabel = "prior variance sd^2 = 1 / ridge (the ridge vanishes to the right)"
    fig, axs = plt.subplots(1, 2, figsize=(12.5, 4.8), layout="constrained")
    ax = axs[0]
    for (s, a), color in ((high, "C0"), (low, "C3")):
        ax.plot(variance, variance * cells[s, a], color="0.7", linewidth=4, zorder=1,
                label="exact: sd^2 W" if color == "C0" else None)
        ax.plot(variance, path["preference"][:, s, a], "o-", color=color,
                label=f"preference[s{s}, a{a}], W = {cells[s, a]:+.1f}: MAP along the path")
        _interval_mark(ax, 0.8, posterior.values[..., s, a].ravel(), color, "posterior at sd = 1")
    ax.set(xscale="log", yscale="symlog", xlabel=xlabel, ylabel="preference (symmetric log scale)",
           title="Preferences of net-negative / net-positive cells run off like sd^2")
    ax.legend(fontsize=7.5, loc="center left")
    ax = axs[1]
    ax.plot(variance, path["log_likelihood"], "o-", color="black", label="at the MAP along the path")
    log_likelihood = result.comparison.idata.log_likelihood["action"].sum(dim="cell").values.ravel()
    _interval_mark(ax, 0.8, log_likelihood, "C1", "posterior draws at sd = 1: mean, 94% HDI")
    ax.plot(1.0, path["map_log_likelihood"], "D", color="0.35", markerfacecolor="none", markersize=9,
            markeredgewidth=1.5, label="MAP at sd = 1")
    ax.set(xscale="log", yscale="log", xlabel=xlabel,
           ylabel="weighted log-likelihood sum_i A_i log pi(a_i | s_i)",
           title="The weighted log-likelihood climbs without bound: no WMLE")
    ax.legend(fontsize=8.5, loc="upper left")
    fig.suptitle(f"{TITLES[problem.name]}, advantage weights: per-state sums are 0, so the weighted "
                 "log-likelihood is linear in the preferences\nand unbounded; only the prior keeps MAP and "
                 "posterior finite", fontsize=11.5)
    return fig
