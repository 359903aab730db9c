"""Policy: behaviour cloning, REINFORCE, advantages, AWR and off-policy ratios as weights of one policy.

Question. Logged steps of a known behaviour policy beta, weighted eight ways: which policies do the
WMLE, MAP and posterior give, how good are they, and when does the WMLE not exist?

Model (``models.policy``, collapsed to one row per (state, action) cell with net weight W_sa):
    preference_s ~ ZeroSumNormal(1),   pi(a | s) = softmax_a(preference_s)
    log p(preference | D, w) = sum_s log ZSN(preference_s | 1) + sum_i w_i log pi(a_i | s_i) + const

Design. Two exactly solved problems (``analyses.environments.rl_problems``): a contextual bandit (3
states, 5 actions, 300 steps) and slippery FrozenLake 4x4 (3000 episodes, gamma 0.99). Weights per
step, used as given: 1 (behavior_cloning), return-to-go G (reinforce), advantage A = G - state mean
(advantage), min(exp(A / T), 20) (awr), rho A with rho the ratio to the uniform target: ordinary,
clipped at 0.2, truncated at 1 or self-normalised per state (offpolicy_*). Each by (W)MLE (existence
in closed form), MAP and NUTS; every posterior draw scored by its exact expected return against the
yardsticks (optimal, behavior, two one-step improvements); multimodal states by ``policy.state_modes``.

Outputs: ``figures/policy/{policy_heatmaps,expected_return,weight_diagnostics,unbounded_mle}.png``;
``results/policy/``: one NetCDF posterior per (problem, weighting), ``summary.csv``.
Details and results: docs/analyses/policy.md
"""

from __future__ import annotations

from dataclasses import dataclass

import arviz as az
import numpy as np
import pymc as pm

from analyses.environments.rl_problems import (
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
from analyses.figures import policy as figures
from analyses.figures import style as plotting
from analyses.output import Output
from analyses.study import Report, Settings, pooled, progress, progress_bar, rng_for, seed_for, thin
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
    with progress_bar("policy", problem.name, len(chosen)) as update:
        comparisons = inference.compare_many(
            model, [{"weights": weighted[scheme][2].ravel()} for scheme in chosen],
            random_seeds=[seed_for(settings.seed, problem.name, scheme) for scheme in chosen],
            point_names=["mle" if scheme == "behavior_cloning" else None for scheme in chosen],
            **settings.sampling(), progress=update)
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
