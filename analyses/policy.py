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

The problems, their weighting schemes and yardsticks live in ``analyses.rl_problems``, the figures in
``analyses.figures.policy``.

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

from dataclasses import dataclass

import arviz as az
import numpy as np
import pymc as pm

from analyses import plotting
from analyses.figures import policy as figures
from analyses.output import Output
from analyses.rl_problems import (
    AWR_MAX_WEIGHT,
    OFFPOLICY,
    Problem,
    advantages,
    expected_return,
    make_problem,
    ratios,
    reference_policies,
    returns,
    scheme_weights,
)
from analyses.study import Report, Settings, pooled, progress, rng_for, seed_for, thin
from models import inference, policy, summary
from models import weights as weights_lib

PREFERENCE_SD = 1.0
RETURN_DRAWS = 500      # thinned posterior draws whose exact expected return is computed
EXACT_DRAWS = 4000      # draws from the exact (Gaussian) posterior of the advantage scheme
RIDGE_SDS = (1.0, 1.5, 2.0, 3.0, 5.0, 7.0, 10.0)   # prior sd along the vanishing-ridge path
RIDGE_SDS_QUICK = (1.0, 3.0, 10.0)

PROBLEMS = ("bandit", "frozenlake")

SCHEMES = ("behavior_cloning", "reinforce", "advantage", "awr", "offpolicy_ordinary", "offpolicy_clipped",
           "offpolicy_truncated", "offpolicy_self_normalised")
QUICK_SCHEMES = ("behavior_cloning", "advantage", "awr", "offpolicy_truncated")


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


# --------------------------------------------------------------------------- tables


def weight_rows(problem: Problem, result: SchemeFit) -> list[dict]:
    """Sum, share negative, Kish ESS and PSIS k-hat of |w| (AWR: of the uncapped exp(A / T), as
    capping ties the top weights); off-policy schemes also the Kish ESS of their ratios."""
    label, scheme, weights = f"{problem.name}_{result.scheme}", result.scheme, result.weights
    rows = [summary.point(label, "weights", "sum", weights.sum()),
            summary.point(label, "weights", "negative_share", np.mean(weights < 0))]
    diagnostics = weights_lib.magnitude_diagnostics(weights)
    if scheme == "awr":
        diagnostics["psis_khat"] = weights_lib.finite_psis_khat(advantages(problem) / problem.temperature)
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
    raw = weights_lib.ratio_diagnostics(ratios(problem), problem.episode_ends)
    rows += [summary.point(problem.name, "raw_ratios", quantity, value) for quantity, value in raw.items()
             if np.isfinite(value)]
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

    output.figure(figures.plot_policies(problems, fits), "policy_heatmaps.png")
    output.figure(figures.plot_returns(problems, fits), "expected_return.png")
    output.figure(figures.plot_weight_diagnostics(problems), "weight_diagnostics.png")
    progress("policy", "bandit, advantage: MAP under ever wider priors (the vanishing ridge)")
    advantage = fits["bandit"]["advantage"]
    path = prior_ridge_path(models["bandit"], advantage, RIDGE_SDS_QUICK if settings.quick else RIDGE_SDS)
    output.figure(figures.plot_unbounded(problems["bandit"], advantage, path), "unbounded_mle.png")
    return Report(rows=rows, fits=diagnostics)
