"""Policy iteration: learning a policy by repeated weighted refits (act, weight, refit, act again).

Question. When the data come from the policy being learned, which weighted refit learns fastest, what
does a prior centred at the current policy add, does Thompson sampling beat the MAP, and what does
the WMLE of signed advantages do?

Model (``models.policy``, collapsed; prior centred at the current preferences m_k, sd the step size):
    preference_s = m_k,s + step_s,   step_s ~ ZeroSumNormal(sd),   pi(a | s) = softmax_a(preference_s)
    log p(preference | D_k, w) = sum_s log ZSN(preference_s - m_k,s | sd) + sum_i w_i log pi(a_i | s_i)

Design. FrozenLake 4x4 and 8x8 (slippery), CliffWalking (``analyses.environments.toy_text``), gamma
0.99; 10 seeds x 60 iterations x 100 episodes; advantages A = G - state mean. Rules: ``map`` (w = A:
the MAP m + sd^2 W in closed form), ``thompson`` (act with a draw of that posterior), ``reinforce``
(step sd^2 sum_i G_i grad log pi), ``awr`` (WMLE of min(exp(A / T), 20)), ``wmle_signed`` (no WMLE:
the limit of softmax(m + sd^2 W) as sd -> inf), ``exact_pi`` (exact policy iteration). Each at its sd
(or T) with the largest area under the curve, rerun on fresh streams; scored by exact expected return.

Outputs: ``figures/policy_iteration/{learning_curves,step_size,weights_ess}.png``;
``results/policy_iteration/``: ``summary.csv``, ``curves.csv`` (every seed's curve).
Details and results: docs/analyses/policy_iteration.md
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pymc as pm
from scipy import special

from analyses.environments import toy_text
from analyses.environments.rl_problems import (
    AWR_MAX_WEIGHT,
    action_values,
    expected_return,
    greedy,
    state_values,
    value_iteration,
)
from analyses.figures import policy_iteration as figures
from analyses.output import Output
from analyses.study import Report, Settings, mean_interval, progress, rng_for
from models import inference, policy
from models import weights as weights_lib

ENVIRONMENTS = tuple(toy_text.ENVIRONMENTS)
SEEDS, EPISODES, ITERATIONS = 10, 100, 60
QUICK_SEEDS, QUICK_EPISODES, QUICK_ITERATIONS = 3, 20, 4
STEP_SIZES = {"frozenlake_4x4": (0.25, 0.5, 1.0, 2.0), "frozenlake_8x8": (0.25, 0.5, 1.0, 2.0),
              "cliffwalking": (0.004, 0.008, 0.016, 0.032)}
TEMPERATURES = {"frozenlake_4x4": (0.01, 0.03, 0.1), "frozenlake_8x8": (0.01, 0.03, 0.1),
                "cliffwalking": (1.0, 10.0, 100.0)}
STEP_RULES = ("map", "thompson", "reinforce")
RULES = ("map", "thompson", "reinforce", "awr", "wmle_signed", "exact_pi")
TARGET_SHARE = 0.9


@dataclass(frozen=True)
class Run:
    """One rule at one setting on one environment: per (seed, iteration) the exact expected return of
    the acting policy (iteration 0 is the start), of the centre (Thompson's posterior mean; else the
    same), the Kish ESS share of the rule's weights, whether the WMLE of the batch existed (AWR: of its
    exp(A / T) weights; every other rule: of the signed advantages) and whether the batch was flat (no
    return varied within a state: every advantage cell 0, every policy a signed WMLE)."""

    environment: str
    rule: str
    setting: float | None
    returns: np.ndarray
    centre_returns: np.ndarray
    ess_share: np.ndarray
    wmle_exists: np.ndarray
    flat: np.ndarray

    @property
    def auc(self) -> np.ndarray:
        """Per seed, the mean exact return over the iterations (area under the curve per iteration)."""
        return self.returns.mean(axis=1)


def _kish_share(steps: toy_text.Steps, weights: np.ndarray) -> np.ndarray:
    """Per lane Kish's ESS of |w| over the lane's steps (``weights.kish_ess``), divided by its number
    of steps; NaN where every weight of the lane is 0 (no reward varied: no ESS)."""
    lanes = [np.abs(weights[steps.lane == lane]) for lane in range(steps.lanes)]
    return np.array([weights_lib.kish_ess(w) / w.size if np.any(w) else np.nan for w in lanes])


def _wmle_exists(cells: np.ndarray) -> np.ndarray:
    return np.array([policy.mle_existence(lane).exists for lane in cells])


def _signed_limit(cells: np.ndarray, current: np.ndarray) -> np.ndarray:
    """The limit of the ray along which a linear weighted log-likelihood rises: uniform over each
    state's argmax cells; states whose cells are all zero keep ``current``."""
    top = cells == cells.max(axis=-1, keepdims=True)
    limit = top / top.sum(axis=-1, keepdims=True)
    return np.where(np.any(cells != 0, axis=-1, keepdims=True), limit, current)


def _boundary_wmle(cells: np.ndarray, current: np.ndarray) -> np.ndarray:
    """Positive weights: W / sum W in every visited state (on the boundary where a cell is 0)."""
    totals = cells.sum(axis=-1, keepdims=True)
    return np.where(totals > 0, cells / np.where(totals > 0, totals, 1.0), current)


def _log_policy(pi: np.ndarray) -> np.ndarray:
    """Centred preferences of a policy; probability 0 is kept as a very large negative preference."""
    with np.errstate(divide="ignore"):
        log = np.maximum(np.log(pi), -700.0)
    return log - log.mean(axis=-1, keepdims=True)


def learn(environment: toy_text.Environment, rule: str, setting: float | None, *, seeds: int, episodes: int,
          iterations: int, rng) -> Run:
    """Run ``rule`` (one of :data:`RULES`) at ``setting`` (prior sd, or AWR temperature) for ``seeds``
    lanes side by side; the module docstring says what each rule does."""
    dynamics = environment.dynamics
    S, A = environment.n_states, environment.n_actions
    centre = np.zeros((seeds, S, A))   # preferences; Thompson's posterior mean
    acting = special.softmax(centre, axis=-1)
    if rule == "thompson":
        acting = special.softmax(rng.normal(centre, setting), axis=-1)
    shape = (seeds, iterations + 1)
    returns, centre_returns = np.empty(shape), np.empty(shape)
    ess_share, exists, flat = np.full(shape, np.nan), np.zeros(shape, dtype=bool), np.zeros(shape, dtype=bool)
    for k in range(iterations + 1):
        returns[:, k] = expected_return(dynamics, acting)
        centre_returns[:, k] = expected_return(dynamics, special.softmax(centre, axis=-1))
        if k == iterations:
            break
        if rule == "exact_pi":
            acting = np.stack([greedy(action_values(dynamics, v)) for v in state_values(dynamics, acting)])
            centre = _log_policy(acting)
            continue
        steps = toy_text.play(environment, acting, episodes, rng)
        advantage, signed_cells = toy_text.advantage_cells(steps, S, A)
        exists[:, k] = _wmle_exists(signed_cells)
        flat[:, k] = np.all(signed_cells == 0, axis=(1, 2))
        if rule in ("map", "thompson"):
            ess_share[:, k] = _kish_share(steps, advantage)
            posterior_mean = np.stack([policy.advantage_map(cells, setting, m)
                                       for cells, m in zip(signed_cells, centre)])
            if rule == "thompson":
                acting = np.concatenate([policy.advantage_posterior_policies(cells, setting, rng, 1, m)
                                         for cells, m in zip(signed_cells, centre)])
            else:
                acting = special.softmax(posterior_mean, axis=-1)
            centre = posterior_mean
        elif rule == "reinforce":
            ess_share[:, k] = _kish_share(steps, steps.returns)
            return_cells = toy_text.cell_sums(steps, steps.returns, S, A)
            gradient = return_cells - return_cells.sum(axis=-1, keepdims=True) * acting
            centre = centre + setting**2 * gradient
            acting = special.softmax(centre, axis=-1)
        elif rule == "awr":
            w = weights_lib.awr(advantage, temperature=setting, max_weight=AWR_MAX_WEIGHT)
            ess_share[:, k] = _kish_share(steps, w)
            cells = toy_text.cell_sums(steps, w, S, A)
            exists[:, k] = _wmle_exists(cells)
            acting = _boundary_wmle(cells, acting)
            centre = _log_policy(acting)
        elif rule == "wmle_signed":
            ess_share[:, k] = _kish_share(steps, advantage)
            acting = _signed_limit(signed_cells, acting)
            centre = _log_policy(acting)
        else:
            raise ValueError(f"unknown rule {rule!r}")
    return Run(environment.name, rule, setting, returns, centre_returns, ess_share, exists, flat)


CHECK_EPISODES = 500
CHECK_BATCHES = 2


def _check_batch(environment: toy_text.Environment, rng) -> tuple[np.ndarray, np.ndarray]:
    """A random centre (preferences) and the advantage cells of :data:`CHECK_EPISODES` episodes played
    with its policy (the first batch in which some return varies)."""
    S, A = environment.n_states, environment.n_actions
    centre = rng.normal(0.0, 1.0, size=(1, S, A))
    for _ in range(20):
        steps = toy_text.play(environment, special.softmax(centre, axis=-1), CHECK_EPISODES, rng)
        cells = toy_text.advantage_cells(steps, S, A)[1][0]
        if np.any(cells != 0):
            return centre[0], cells
    raise RuntimeError(f"{environment.name}: 20 batches without a return that varies")


def check_map_step(environment: toy_text.Environment, rng, sd: float) -> float:
    """The proximal step in closed form against ``inference.map_estimate`` of the model, built once
    and refitted with a second batch's cells and centre swapped in by ``pm.set_data``:
    the largest absolute difference of the preferences over :data:`CHECK_BATCHES` batches."""
    S, A = environment.n_states, environment.n_actions
    states, actions = np.repeat(np.arange(S), A), np.tile(np.arange(A), S)
    model, worst = None, 0.0
    for _ in range(CHECK_BATCHES):
        centre, cells = _check_batch(environment, rng)
        if model is None:
            model = policy.build_model(states, actions, cells.ravel(), n_states=S, n_actions=A,
                                       preference_sd=sd, allow_negative=True, collapse=True,
                                       prior_mean=centre)
        else:
            # Swapped in uncentred: the model centres it.
            pm.set_data({"weights": cells.ravel(), "prior_mean": centre}, model=model)
        numerical = inference.map_estimate(model)["preference"]
        worst = max(worst, float(np.max(np.abs(numerical - policy.advantage_map(cells, sd, centre)))))
    return worst


def _mean_interval(values: np.ndarray) -> tuple[float, float, float]:
    """Mean over seeds and its 95% normal interval (``study.mean_interval``)."""
    mean, half = mean_interval(values)
    return float(mean), float(mean - half), float(mean + half)


def episodes_to_target(run: Run, target: float, episodes: int) -> np.ndarray:
    """Per seed, the episodes played before the acting policy first reaches ``target`` (inf: never)."""
    reached = run.returns >= target
    first = np.argmax(reached, axis=1).astype(float)
    first[~reached.any(axis=1)] = np.inf
    return first * episodes


def run_rows(run: Run, target: float, episodes: int, label: str | None = None) -> list[dict]:
    """The summary rows of one run (``label`` names the estimator; default the rule)."""
    row = {"model": run.environment, "estimator": label or run.rule}
    rows = []
    for quantity, values in (("final_return", run.returns[:, -1]), ("auc", run.auc)):
        value, lower, upper = _mean_interval(values)
        rows.append({**row, "quantity": quantity, "value": value, "lower": lower, "upper": upper})
    if label is not None:
        return rows
    # Exact policy iteration plays no episodes: count its iterations instead.
    per_iteration, quantity = ((1, "iterations_to_90") if run.rule == "exact_pi"
                               else (episodes, "episodes_to_90"))
    needed = episodes_to_target(run, target, per_iteration)
    reached = np.isfinite(needed)
    median = float(np.median(needed)) if reached.mean() > 0.5 else None   # None: most seeds never got there
    rows += [{**row, "quantity": quantity, "value": median,
              "lower": float(needed[reached].min()) if reached.any() else None,
              "upper": float(needed[reached].max()) if reached.any() else None},
             {**row, "quantity": "reached_90_share", "value": float(reached.mean())}]
    if run.setting is not None:
        name = "temperature" if run.rule == "awr" else "step_size"
        rows.append({**row, "quantity": name, "value": run.setting})
    if run.rule != "exact_pi":
        shares = run.ess_share[:, :-1]   # NaN in batches whose weights are all 0: none when every one is
        rows.append({**row, "quantity": "kish_ess_share",
                     "value": float(np.nanmean(shares)) if np.isfinite(shares).any() else None})
        rows.append({**row, "quantity": "wmle_exists_share", "value": float(run.wmle_exists[:, :-1].mean())})
        rows.append({**row, "quantity": "flat_batch_share", "value": float(run.flat[:, :-1].mean())})
    if run.rule == "thompson":
        value, lower, upper = _mean_interval(run.centre_returns[:, -1])
        rows.append({**row, "quantity": "final_return_of_mean", "value": value, "lower": lower,
                     "upper": upper})
    return rows


CURVE_COLUMNS = ("environment", "rule", "setting", "run", "seed", "iteration", "episodes",
                 "expected_return", "centre_expected_return", "kish_ess_share", "wmle_exists", "flat_batch")


def curve_rows(run: Run, episodes: int, kind: str) -> list[dict]:
    """Every (seed, iteration) of ``run``; ``kind``: "sweep" (a tuning run) or "report" (a curve shown)."""
    return [{"environment": run.environment, "rule": run.rule, "setting": run.setting, "run": kind,
             "seed": seed, "iteration": k, "episodes": k * episodes,
             "expected_return": float(run.returns[seed, k]),
             "centre_expected_return": float(run.centre_returns[seed, k]),
             "kish_ess_share": None if np.isnan(run.ess_share[seed, k]) else float(run.ess_share[seed, k]),
             "wmle_exists": int(run.wmle_exists[seed, k]) if k < run.returns.shape[1] - 1 else None,
             "flat_batch": int(run.flat[seed, k]) if k < run.returns.shape[1] - 1 else None}
            for seed in range(run.returns.shape[0]) for k in range(run.returns.shape[1])]


def _settings(rule: str, name: str, quick: bool) -> tuple:
    grid = STEP_SIZES[name] if rule in STEP_RULES else TEMPERATURES[name] if rule == "awr" else (None,)
    return grid[1:3] if quick and len(grid) > 2 else grid


@dataclass(frozen=True)
class EnvironmentResult:
    """Everything learned on one environment: the run shown per rule (its best setting), every run of
    the swept rules, the optimum, the uniform start and the 90% target, episodes per iteration."""

    name: str
    runs: dict[str, Run]
    sweeps: dict[str, list[Run]]
    optimum: float
    start: float
    target: float
    episodes: int


def study(name: str, seed: int, *, seeds: int, episodes: int, iterations: int, quick: bool
          ) -> tuple[EnvironmentResult, list[dict]]:
    """Every rule on environment ``name``, with its summary rows."""
    environment = toy_text.load(name)
    dynamics = environment.dynamics
    optimum = float(value_iteration(dynamics)[0] @ dynamics.start)
    uniform = np.full((environment.n_states, environment.n_actions), 1.0 / environment.n_actions)
    start = float(expected_return(dynamics, uniform))
    target = optimum * TARGET_SHARE if optimum > 0 else optimum / TARGET_SHARE
    rows = [{"model": name, "estimator": "optimal", "quantity": "expected_return", "value": optimum},
            {"model": name, "estimator": "uniform", "quantity": "expected_return", "value": start},
            {"model": name, "estimator": "target_90", "quantity": "expected_return", "value": target},
            *({"model": name, "estimator": "data", "quantity": quantity, "value": value} for quantity, value
              in (("episodes_per_iteration", episodes), ("iterations", iterations), ("seeds", seeds)))]
    runs, sweeps = {}, {}
    for rule in RULES:
        started = time.perf_counter()
        sweeps[rule] = [learn(environment, rule, setting, seeds=seeds, episodes=episodes,
                              iterations=iterations, rng=rng_for(seed, "episodes", name, rule, str(setting)))
                        for setting in _settings(rule, name, quick)]
        best = max(sweeps[rule], key=lambda run: run.auc.mean())
        runs[rule] = best if len(sweeps[rule]) == 1 else learn(
            environment, rule, best.setting, seeds=seeds, episodes=episodes, iterations=iterations,
            rng=rng_for(seed, "report", name, rule, str(best.setting)))
        if len(sweeps[rule]) > 1:
            parameter = "T" if rule == "awr" else "sd"
            for run in sweeps[rule]:
                rows += run_rows(run, target, episodes, label=f"{rule}[{parameter}={run.setting:g}]")
        rows += run_rows(runs[rule], target, episodes)
        progress("policy_iteration", f"{name}: {rule}, {len(sweeps[rule])} setting(s), "
                                     f"{time.perf_counter() - started:.1f} s; final return "
                                     f"{runs[rule].returns[:, -1].mean():.4g} (optimum {optimum:.4g})")
    step_check = check_map_step(environment, rng_for(seed, "map_step_check", name), STEP_SIZES[name][1])
    rows.append({"model": name, "estimator": "map", "quantity": "map_step_check", "value": step_check})
    return EnvironmentResult(name, runs, sweeps, optimum, start, target, episodes), rows


def main(settings: Settings, output: Output) -> Report:
    seeds, episodes, iterations = ((QUICK_SEEDS, QUICK_EPISODES, QUICK_ITERATIONS) if settings.quick
                                   else (SEEDS, EPISODES, ITERATIONS))
    results, rows = [], []
    for name in ENVIRONMENTS:
        result, environment_rows = study(name, settings.seed, seeds=seeds, episodes=episodes,
                                         iterations=iterations, quick=settings.quick)
        results.append(result)
        rows += environment_rows
    curves = []
    for result in results:
        for rule, report in result.runs.items():
            sweep = result.sweeps[rule] if len(result.sweeps[rule]) > 1 else []
            curves += [row for run in sweep for row in curve_rows(run, result.episodes, "sweep")]
            curves += curve_rows(report, result.episodes, "report")
    output.table(curves, "curves.csv", columns=CURVE_COLUMNS)
    output.figure(figures.learning_curves(results), "learning_curves.png")
    output.figure(figures.step_sizes(results, STEP_RULES), "step_size.png")
    output.figure(figures.weights_ess(results), "weights_ess.png")
    return Report(rows, {})
