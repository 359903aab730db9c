"""Reward-weighted action preferences: behaviour cloning, policy gradient, AWR and off-policy ratios
as weighted likelihoods of one softmax policy, in a contextual bandit and in FrozenLake.

Question. Logged steps (state, action, reward) of a known behaviour policy beta. Behaviour cloning,
REINFORCE, advantage (baseline) weights, advantage-weighted regression (AWR) and importance-weighted
(off-policy) advantages all fit the same tabular softmax policy; they differ only in the weight each
logged step gets. Which policies do their WMLE, MAP and posterior give, and how good are they? Both
problems are solved exactly, so every fitted policy (each posterior draw included) is scored by its
exact expected return against the optimum, not by simulated episodes. When does the WMLE not exist?

Model (``models.policy``, ``collapse=True``: one row per (state, action) cell with net weight W_sa;
one compiled model per problem, each scheme's cell weights swapped in with ``pm.set_data``):

    preference_s ~ ZeroSumNormal(1) (centred i.i.d. Normal(0, 1)),   pi(a | s) = softmax_a(preference_s)
    log p(preference | D, w) = sum_s log ZSN(preference_s | 1) + sum_i w_i log pi(a_i | s_i) + const

Weights, per logged step i (G_i the discounted return-to-go, ``weights.returns_to_go``; A_i = G_i
minus the mean return of its state, ``weights.advantages``):

* ``behavior_cloning``: w = 1. The MLE is the empirical action frequencies: it copies beta.
* ``reinforce``: w = G_i. The WMLE is the return-weighted action frequencies.
* ``advantage``: w = A_i, signed. Each state's weights sum to zero (the baseline is its mean return),
  so the weighted log-likelihood is linear, ``sum_sa W_sa preference_sa``: the WMLE never exists and
  the posterior of each state's centred preferences is exactly Normal(W_s, I - 11' / n_actions), the
  centred part of i.i.d. Normal(W_sa, 1) (its expected return is also computed from 4000 exact
  draws, row ``exact_posterior``; NUTS is checked against it in the tests). Since
  W_sa = n_sa x (mean advantage of the cell), the fit favours what beta does often, not what is best.
* ``awr``: w = min(exp(A_i / T), 20) (``weights.awr``; T = 0.5 in the bandit, whose rewards have sd 1,
  and 0.1 in FrozenLake, whose advantages have sd 0.2). Its WMLE is proportional to beta x mean exp(A / T).
* ``offpolicy_*``: w = rho_i A_i with rho_i = pi_target(a_i | s_i) / beta(a_i | s_i), ordinary,
  clipped to [0.8, 1.2] (PPO-style ratio clipping, eps = 0.2; PPO's surrogate also takes the minimum
  with the unclipped term), truncated at 1 (V-trace, rho_bar = 1) or self-normalised per state
  (divided by the mean ratio of the state's logged steps). The target is the uniform policy, the one
  at the prior mean (preferences 0) from which every fit starts: its ratios make the logged actions
  count as if each had been tried equally often, so a cell's weight follows its mean advantage
  instead of beta's frequency. It is stated, not fitted, and uses nothing the data do not (no
  oracle). The ratios correct the choice of the logged action only; the advantage remains the
  behaviour's (as in PPO). Where a state's weights sum to a negative number, the convex term
  ``+|sum_a W_sa| logsumexp(preference_s)`` can make the log density non-concave in that state's
  preferences (possible only for totals below -2 / sd^2): the pseudo-posterior can be multimodal
  (a mode per action that may dominate, and one near the uniform policy), and NUTS chains that
  settle in different modes show it in r_hat. The count of such states is the row ``weights,
  negative_state_totals``; ``policy.state_modes`` finds their modes, rows ``weights,
  multimodal_states`` and ``weights, second_mode_gap`` (the smallest gap, in nats, between a state's
  highest mode and its next: that mode's peak density is e^-gap times the main one's).

Weights are used as given (frequency weights, ``normalize="none"``): a weight of 20 counts as 20
steps. Signed weights have no natural scale: the prior alone keeps MAP and posterior finite, and
how far they move from the uniform policy is set by the prior's sd and the weights' overall size.

Existence of the WMLE is decided in closed form by the model (``models.policy.mle_existence``: every
cell of a visited state must have positive weight), so ``inference.mle`` returns the normalised
weighted counts or raises naming the cells that run off. ``unbounded_mle.png`` follows the
advantage-weighted fit through the MAP under ever wider priors (ridge 1 / sd^2): the preferences run
off while the MAP and the posterior at sd = 1 stay finite.

Problems (``analyses.rl_problems``: their definitions and exact solutions).

1. Contextual bandit (numpy): 3 equally likely states, 5 actions, reward ~ Normal(mu[s, a], 1) with
   the table ``rl_problems.BANDIT_MEANS``; beta puts 0.6 on a deliberately imperfect guess (``BANDIT_GUESS``:
   second best in every state) and 0.1 on every other action; 300 logged steps, each its own
   episode (G_i = r_i). Exact expected return: sum_s p(s) sum_a pi(a | s) mu[s, a]; optimum
   sum_s p(s) max_a mu[s, a].
2. FrozenLake-v1 (gymnasium toy text, 4x4 map, ``is_slippery=True``: the intended move and each
   perpendicular one happen with probability 1/3), discount gamma = 0.99, reward 1 at the goal.
   Chosen over CliffWalking because its dynamics are stochastic, so exact evaluation differs from
   replaying one path, and its reward is sparse, so most return weights are zero. The exact table
   ``env.unwrapped.P[s][a] = [(prob, next, reward, terminated), ...]`` gives r(s, a) and the
   transitions; value iteration gives the optimum, and a policy's expected return V_pi(start) solves
   (I - gamma P_pi) V = r_pi exactly (batched over 500 thinned posterior draws). Logged data: 3000
   episodes (500 with ``--quick``) of beta = 0.5 uniform + 0.5 the shortest-path policy of the
   *ice-free* map (a naive planner, poor on ice), simulated from the table with gymnasium's own
   ``categorical_sample`` and the same order of random draws as ``env.reset`` / ``env.step``: exactly
   the episodes gymnasium produces from that random stream (tested). No time limit: FrozenLake-v1's
   100 steps are a wrapper, the discounted problem value iteration solves has none, and beta's
   episodes end far sooner (at most about 40 steps).

Yardsticks per problem (``summary.csv``, estimator): ``optimal``; ``behavior``; ``behavior_greedy``,
one step of policy improvement (greedy in beta's exact Q); ``greedy_logged_advantage``, the same step
estimated from the log (greedy in each cell's mean logged advantage), a plug-in that gambles on
noisy estimates (in FrozenLake its return ranges from 0.07 to 0.52 over seeds 1-5 and 2026: a few
wrong choices next to holes are costly). The on-policy weightings keep beta's frequencies in the
fit; the signed ones take a step whose size the prior and the weights' scale set, large in the bandit
and small in FrozenLake.

Weight diagnostics: Kish ESS and PSIS k-hat of |w| per scheme (how many steps inform the fit,
whether a few dominate it; AWR: k-hat of the uncapped A / T); for the importance ratios, Kish ESS
per step and per-episode products (raw ratios also their k-hat). PSIS k-hat of per-step ratios is
undefined here (one value per cell: ties), and so is that of clipped or truncated ratios (ties at
the cap); ``weight_diagnostics.png`` shows instead the k-hat of the likelihood weights |rho_i A_i|
against clip and truncation levels.

Outputs (``figures/policy/``): ``policy_heatmaps.png`` (posterior mean pi(a | s) per scheme and the
posterior probability that an action is the fitted policy's most probable one), ``expected_return.png``
(posterior of the exact expected return per scheme, (W)MLE and MAP marked, against the yardsticks),
``weight_diagnostics.png``, ``unbounded_mle.png`` (the advantage-weighted fit running off as the
ridge vanishes, against the finite MAP and posterior); (``results/policy/``): one NetCDF posterior
per (problem, scheme) with provenance, and ``summary.csv``: per scheme the expected return of the
(W)MLE where it exists, the MAP and the posterior (mean, 94% HDI), whether the WMLE exists, weight
and sampler diagnostics; per problem the yardsticks, raw-ratio diagnostics and data sizes.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import arviz as az
import matplotlib.pyplot as plt
import numpy as np
import pymc as pm
from matplotlib import colors as mcolors
from matplotlib import ticker
from matplotlib.patches import Polygon, Rectangle

from analyses import plotting
from analyses.output import Output
from analyses.rl_problems import (
    Problem,
    action_values,
    expected_return,
    greedy,
    make_problem,
    state_values,
    value_iteration,
)
from analyses.study import Report, Settings, pooled, progress, rng_for, seed_for, thin
from models import inference, policy, summary
from models import weights as weights_lib

PREFERENCE_SD = 1.0
AWR_MAX_WEIGHT = 20.0
CLIP = 0.2
TRUNCATE = 1.0
CLIP_LEVELS = np.round(np.linspace(0.05, 0.5, 10), 2)
TRUNCATION_LEVELS = np.round(np.geomspace(0.5, 10.0, 14), 3)
RETURN_DRAWS = 500      # thinned posterior draws whose exact expected return is computed
EXACT_DRAWS = 4000      # draws from the exact (Gaussian) posterior of the advantage scheme
RIDGE_SDS = (1.0, 1.5, 2.0, 3.0, 5.0, 7.0, 10.0)   # prior sd along the vanishing-ridge path
RIDGE_SDS_QUICK = (1.0, 3.0, 10.0)

PROBLEMS = ("bandit", "frozenlake")

SCHEMES = ("behavior_cloning", "reinforce", "advantage", "awr", "offpolicy_ordinary", "offpolicy_clipped",
           "offpolicy_truncated", "offpolicy_self_normalised")
QUICK_SCHEMES = ("behavior_cloning", "advantage", "awr", "offpolicy_truncated")
LABELS = {"behavior_cloning": "behaviour cloning", "reinforce": "REINFORCE", "advantage": "advantage",
          "awr": "AWR", "offpolicy_ordinary": "IS ratio x A", "offpolicy_clipped": f"clipped ({CLIP:g}) x A",
          "offpolicy_truncated": f"truncated ({TRUNCATE:g}) x A",
          "offpolicy_self_normalised": "self-norm. ratio x A"}
ACTION_NAMES = {"bandit": [f"a{a}" for a in range(5)], "frozenlake": ["left", "down", "right", "up"]}


# --------------------------------------------------------------------------- weights


def returns(problem: Problem) -> np.ndarray:
    return weights_lib.returns_to_go(problem.rewards, problem.episode_ends, problem.gamma)


def advantages(problem: Problem) -> np.ndarray:
    return weights_lib.advantages(returns(problem), problem.states, n_states=problem.n_states)


def target_policy(problem: Problem) -> np.ndarray:
    """The off-policy target: the uniform policy, the one at the prior mean (all preferences 0)."""
    return np.full((problem.n_states, problem.n_actions), 1.0 / problem.n_actions)


def ratio_inputs(problem: Problem) -> tuple[np.ndarray, np.ndarray]:
    """Target and behaviour probabilities of every logged action."""
    index = (problem.states, problem.actions)
    return target_policy(problem)[index], problem.behavior[index]


def ratios(problem: Problem, *, clip=None, truncate=None) -> np.ndarray:
    """Per-step importance ratios pi_target(a_i | s_i) / beta(a_i | s_i), clipped or truncated."""
    return weights_lib.importance_ratios(*ratio_inputs(problem), clip=clip, truncate=truncate)


OFFPOLICY = {"offpolicy_ordinary": {}, "offpolicy_self_normalised": {},
             "offpolicy_clipped": {"clip": CLIP}, "offpolicy_truncated": {"truncate": TRUNCATE}}


def scheme_weights(problem: Problem, scheme: str) -> tuple[np.ndarray, bool]:
    """``(weights, signed)``: one weight per logged step, and whether they may be negative."""
    if scheme == "behavior_cloning":
        return np.ones(problem.states.size), False
    if scheme == "reinforce":
        g = returns(problem)
        return g, bool(np.any(g < 0))
    advantage = advantages(problem)
    if scheme == "advantage":
        return advantage, True
    if scheme == "awr":
        return weights_lib.awr(advantage, temperature=problem.temperature, max_weight=AWR_MAX_WEIGHT), False
    rho = ratios(problem, **OFFPOLICY[scheme])
    if scheme == "offpolicy_self_normalised":
        rho = weights_lib.self_normalised_ratios(rho, problem.states, n_states=problem.n_states)
    return rho * advantage, True


def episode_log_ratios(problem: Problem, rho: np.ndarray) -> np.ndarray:
    """log prod_t rho_t over each logged episode: the importance weight of a whole episode."""
    episode = np.concatenate([[0], np.cumsum(problem.episode_ends)[:-1]])
    return np.bincount(episode, weights=np.log(rho))


def finite_khat(log_weights) -> float:
    """``weights.psis_khat``, or NaN where ArviZ cannot fit a tail (ties at the top: inf)."""
    with warnings.catch_warnings():  # ArviZ warns about the tail it cannot fit; NaN says so here
        warnings.simplefilter("ignore")
        khat = weights_lib.psis_khat(log_weights)
    return khat if np.isfinite(khat) else float("nan")


def magnitude_diagnostics(weights: np.ndarray) -> dict[str, float]:
    """Kish ESS and PSIS k-hat of |w|: how many steps inform the fit, and whether a few dominate it.

    Signed weights pull as hard as their magnitude; for non-negative weights |w| = w. Zero weights
    are left out of k-hat; equal weights have no tail (NaN).
    """
    magnitude = np.abs(weights)
    return {"kish_ess": weights_lib.kish_ess(magnitude),
            "psis_khat": finite_khat(np.log(magnitude[magnitude > 0]))}


def ratio_diagnostics(problem: Problem, rho: np.ndarray) -> dict[str, float]:
    """Kish ESS of the per-step ratios, and Kish ESS and PSIS k-hat of their per-episode products.

    The per-step ratios take one value per (state, action) cell, so their top values tie and their
    k-hat is undefined; so do clipped or truncated ratios, which tie at the cap. The product over
    an episode (FrozenLake) is the weight an unbiased off-policy estimate of the return would need.
    In the bandit, episodes are single steps and the two coincide.
    """
    log_episode = episode_log_ratios(problem, rho)
    return {"ratio_kish_ess": weights_lib.kish_ess(rho),
            # Kish ESS ignores the scale: shifting the logs keeps exp() finite for long episodes.
            "episode_ratio_kish_ess": weights_lib.kish_ess(np.exp(log_episode - log_episode.max())),
            "episode_ratio_psis_khat": finite_khat(log_episode)}


# --------------------------------------------------------------------------- fits


def build(problem: Problem):
    """One collapsed model per problem (cells, not steps); each scheme swaps its weights in."""
    return policy.build_model(problem.states, problem.actions, None, n_states=problem.n_states,
                              n_actions=problem.n_actions, preference_sd=PREFERENCE_SD,
                              allow_negative=True, collapse=True)


def mode_probability(draws: np.ndarray) -> np.ndarray:
    """Posterior probability that each action is the policy's most probable one in its state, (S, A)."""
    return np.eye(draws.shape[-1])[np.argmax(draws, axis=-1)].mean(axis=0)


@dataclass(frozen=True)
class SchemeFit:
    """One weighting of one problem: its weights, its estimators, and what the figures show of them
    (posterior mean policy, mode probabilities, the exact return of thinned posterior draws, and for
    the advantage scheme the exact return of draws from its exact Gaussian posterior)."""

    scheme: str
    weights: np.ndarray
    signed: bool
    cells: np.ndarray
    mode_gaps: list
    comparison: inference.Comparison
    policy_mean: np.ndarray
    mode_probability: np.ndarray
    returns: np.ndarray
    exact_returns: np.ndarray | None

    @property
    def wmle(self) -> np.ndarray | None:
        return None if self.comparison.point is None else self.comparison.point["policy"]

    @property
    def map(self) -> np.ndarray:
        return self.comparison.map["policy"]


def fit_problem(problem: Problem, model, chosen, settings: Settings, output: Output) -> dict[str, SchemeFit]:
    """(W)MLE, MAP and NUTS posterior of every weighting scheme of one problem (the posteriors in one
    batch on the problem's compiled model), and the exact return of each; the WMLE's existence is the
    model's closed-form verdict."""
    weighted = {}
    for scheme in chosen:
        weights, signed = scheme_weights(problem, scheme)
        weights = weights_lib.check(weights, problem.states.size, allow_negative=signed)
        cells = policy.cell_weights(problem.states, problem.actions, weights, n_states=problem.n_states,
                                    n_actions=problem.n_actions)
        gaps = [values[0] - values[1] for values in policy.state_modes(cells, preference_sd=PREFERENCE_SD)
                if values.size > 1]
        if gaps:
            progress("policy", f"  {problem.name}, {scheme}: {len(gaps)} state(s) with several posterior "
                               f"modes; the closest minor mode lies {min(gaps):.3g} nats below its state's "
                               "highest")
        weighted[scheme] = (weights, signed, cells, gaps)
    progress("policy", f"{problem.name}: (W)MLE, MAP, NUTS {settings.chains} x {settings.draws} of "
                       f"{len(chosen)} weightings")
    # Behaviour cloning's cell weights are counts of unweighted steps: its WMLE is the MLE.
    comparisons = inference.compare_many(
        model, [{"weights": weighted[scheme][2].ravel()} for scheme in chosen],
        random_seeds=[seed_for(settings.seed, problem.name, scheme) for scheme in chosen],
        point_names=["mle" if scheme == "behavior_cloning" else None for scheme in chosen],
        **settings.sampling())
    fits = {}
    for scheme, comparison in zip(chosen, comparisons):
        weights, signed, cells, gaps = weighted[scheme]
        if comparison.point is None:
            progress("policy", f"  {problem.name}, {scheme}: no WMLE: {comparison.point_failure}")
        label = f"{problem.name}_{scheme}"
        output.posterior(comparison.idata, f"{label}.nc", model=label, problem=problem.name,
                         scheme=scheme, gamma=problem.gamma, preference_sd=PREFERENCE_SD,
                         temperature=problem.temperature if scheme == "awr" else "none",
                         awr_max_weight=AWR_MAX_WEIGHT if scheme == "awr" else "none",
                         target_policy="uniform" if scheme in OFFPOLICY else "none",
                         clip=OFFPOLICY.get(scheme, {}).get("clip", "none"),
                         truncate=OFFPOLICY.get(scheme, {}).get("truncate", "none"),
                         weights_on="cells (state-major): net weight of every (state, action)",
                         logged_steps=problem.states.size, episodes=int(problem.episode_ends.sum()))
        draws = pooled(comparison.idata, "policy")
        exact = None
        if scheme == "advantage":
            stream = rng_for(settings.seed, problem.name, scheme, "exact_posterior")
            exact_draws = policy.advantage_posterior_policies(cells, PREFERENCE_SD, stream, EXACT_DRAWS)
            exact = expected_return(problem.dynamics, exact_draws)
        fits[scheme] = SchemeFit(scheme, weights, signed, cells, gaps, comparison, draws.mean(axis=0),
                                 mode_probability(draws),
                                 expected_return(problem.dynamics, thin(draws, RETURN_DRAWS)), exact)
    return fits


def prior_ridge_path(model, result: SchemeFit, sds) -> dict[str, np.ndarray]:
    """The MAP of the same weights under ever wider Normal(0, sd) priors: the vanishing-ridge path
    (ridge 1 / sd^2) along which a WMLE would be approached. Preferences (sd, S, A) and the weighted
    log-likelihood at each. Runs on the problem's compiled model, its prior sd swapped in."""
    pm.set_data({"weights": result.cells.ravel()}, model=model)
    preferences = []
    for sd in sds:
        pm.set_data({"preference_sd": float(sd)}, model=model)
        preferences.append(inference.map_estimate(model)["preference"])
    pm.set_data({"preference_sd": PREFERENCE_SD}, model=model)
    log_likelihood = inference.compile_log_likelihood(model)
    return {"sd": np.asarray(sds, dtype=float), "preference": np.array(preferences),
            "log_likelihood": np.array([log_likelihood(preference=p) for p in preferences]),
            "map_log_likelihood": log_likelihood(preference=result.comparison.map["preference"])}


def reference_policies(problem: Problem) -> dict[str, np.ndarray]:
    """Yardsticks: the optimal policy; the behaviour; one step of policy improvement on the behaviour
    (greedy in its exact Q); and the same step estimated from the log (greedy in each cell's mean
    logged advantage, never-logged actions excluded): what the data could support at best in one step."""
    dynamics = problem.dynamics
    behavior_q = action_values(dynamics, state_values(dynamics, problem.behavior))
    index = {"states": problem.states, "actions": problem.actions, "n_states": problem.n_states,
             "n_actions": problem.n_actions}
    counts = policy.cell_weights(**index)
    mean_advantage = policy.cell_weights(**index, weights=advantages(problem)) / np.maximum(counts, 1)
    return {"optimal": greedy(value_iteration(dynamics)[1]), "behavior": problem.behavior,
            "behavior_greedy": greedy(behavior_q),
            "greedy_logged_advantage": greedy(np.where(counts > 0, mean_advantage, -np.inf))}


# --------------------------------------------------------------------------- tables


def weight_rows(problem: Problem, result: SchemeFit) -> list[dict]:
    """Sum, share negative, Kish ESS and PSIS k-hat of |w| (AWR: of the uncapped exp(A / T), as
    capping ties the top weights); off-policy schemes also the Kish ESS of their ratios."""
    label, scheme, weights = f"{problem.name}_{result.scheme}", result.scheme, result.weights
    rows = [summary.point(label, "weights", "sum", weights.sum()),
            summary.point(label, "weights", "negative_share", np.mean(weights < 0))]
    diagnostics = magnitude_diagnostics(weights)
    if scheme == "awr":
        diagnostics["psis_khat"] = finite_khat(advantages(problem) / problem.temperature)
    if scheme in OFFPOLICY:
        rho = ratios(problem, **OFFPOLICY[scheme])
        diagnostics["ratio_kish_ess"] = weights_lib.kish_ess(rho)
    if result.signed:   # visited states whose weights sum below zero: possibly multimodal there
        diagnostics["negative_state_totals"] = float(np.sum(result.cells.sum(axis=1) < -1e-9))
        diagnostics["multimodal_states"] = float(len(result.mode_gaps))
        diagnostics["second_mode_gap"] = min(result.mode_gaps, default=np.nan)
    rows += [summary.point(label, "weights", quantity, value) for quantity, value in diagnostics.items()
             if np.isfinite(value)]
    return rows


def scheme_rows(problem: Problem, result: SchemeFit) -> list[dict]:
    label, comparison = f"{problem.name}_{result.scheme}", result.comparison
    dynamics = problem.dynamics
    rows = weight_rows(problem, result)
    rows.append(summary.point(label, comparison.point_name, "exists", result.wmle is not None))
    if result.wmle is not None:
        rows.append(summary.point(label, comparison.point_name, "expected_return",
                                  expected_return(dynamics, result.wmle)))
    rows.append(summary.point(label, "map", "expected_return", expected_return(dynamics, result.map)))
    rows.append(summary.interval(label, "posterior", "expected_return", result.returns.mean(),
                                 *az.hdi(result.returns, hdi_prob=summary.HDI_PROB)))
    if result.exact_returns is not None:
        rows.append(summary.interval(label, "exact_posterior", "expected_return", result.exact_returns.mean(),
                                     *az.hdi(result.exact_returns, hdi_prob=summary.HDI_PROB)))
    return rows + summary.diagnostic_rows(label, comparison.diagnostics)


def problem_rows(problem: Problem) -> list[dict]:
    rows = [summary.point(problem.name, name, "expected_return", expected_return(problem.dynamics, pi))
            for name, pi in reference_policies(problem).items()]
    rows += [summary.point(problem.name, "raw_ratios", quantity, value)
             for quantity, value in ratio_diagnostics(problem, ratios(problem)).items() if np.isfinite(value)]
    rows += [summary.point(problem.name, "data", "steps", problem.states.size),
             summary.point(problem.name, "data", "episodes", problem.episode_ends.sum()),
             summary.point(problem.name, "data", "mean_return", returns(problem)[
                 np.concatenate([[True], problem.episode_ends[:-1]])].mean())]
    return rows


# --------------------------------------------------------------------------- main


def schemes(quick: bool) -> tuple[str, ...]:
    return QUICK_SCHEMES if quick else SCHEMES


def main(settings: Settings, output: Output) -> Report:
    plotting.apply_style()
    # Each problem's data from its own stream of the seed (--quick logs a prefix).
    problems = {name: make_problem(name, rng_for(settings.seed, "data", name), settings.quick)
                for name in PROBLEMS}
    fits, rows, diagnostics = {}, [], {}
    models = {}
    for name, problem in problems.items():
        progress("policy", f"{name}: {problem.states.size} logged steps in {int(problem.episode_ends.sum())} "
                           "episodes")
        rows += problem_rows(problem)
        model = models[name] = build(problem)
        fits[name] = fit_problem(problem, model, schemes(settings.quick), settings, output)
        for scheme, result in fits[name].items():
            rows += scheme_rows(problem, result)
            diagnostics[f"{name}_{scheme}"] = result.comparison.diagnostics

    output.figure(plot_policies(problems, fits), "policy_heatmaps.png")
    output.figure(plot_returns(problems, fits), "expected_return.png")
    output.figure(plot_weight_diagnostics(problems), "weight_diagnostics.png")
    progress("policy", "bandit, advantage: MAP under ever wider priors (the vanishing ridge)")
    advantage = fits["bandit"]["advantage"]
    path = prior_ridge_path(models["bandit"], advantage, RIDGE_SDS_QUICK if settings.quick else RIDGE_SDS)
    output.figure(plot_unbounded(problems["bandit"], advantage, path), "unbounded_mle.png")
    return Report(rows=rows, fits=diagnostics)


# --------------------------------------------------------------------------- figures

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


def _bandit_panel(ax, problem: Problem, result: dict, optimal: np.ndarray):
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


def _frozenlake_panel(ax, problem: Problem, result: dict, optimal: np.ndarray):
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
            raw = ratio_diagnostics(problem, ratios(problem))
            capped = [ratios(problem, **{kind: level}) for level in grid]
            series = [ratio_diagnostics(problem, rho) for rho in capped]
            top.plot(grid, [d["ratio_kish_ess"] / steps for d in series], "o-", color=color,
                     markersize=3.5, label=f"top, {name}: per-step ratios")
            top.axhline(raw["ratio_kish_ess"] / steps, color=color, linestyle=":", linewidth=1)
            bottom.plot(grid, [magnitude_diagnostics(rho * advantage)["psis_khat"] for rho in capped], "o-",
                        color=color, markersize=3.5, label=f"bottom, {name}: |ratio x advantage| per step")
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
        raw = ratio_diagnostics(frozenlake, ratios(frozenlake))
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


def plot_unbounded(problem: Problem, result: dict, path: dict):
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
