"""Simulation-based calibration: do the (weighted) posteriors recover the truth they came from?

Question. Is the sampler, with the suite's weighted likelihood, calibrated under frequency weights,
and how far from calibrated is a weighted pseudo-posterior when the weights are not frequencies?

Models: ``models.coin`` (p ~ Beta(2, 2)), ``models.classes`` (two features, coef and intercept ~
N(0, 1)), ``models.policy`` (2 states x 3 actions, ZeroSumNormal(1) preferences), each with
log p(theta | y, w) = log p(theta) + sum_i w_i log p(y_i | theta) + const.

Design (Talts et al. 2018). 1000 times per scenario: draw theta from the prior, simulate data with
numpy, fit by NUTS, rank the truth among L = 99 thinned draws; test the ranks' uniformity (chi-square,
20 bins, Bonferroni over parameters) and the coverage of central 50% and 90% intervals. Scenarios:
frequency weights for each model (must pass), and weights that are not frequencies: one coin toss
weighted 10 (as given, summing to n, summing to Kish's ESS), balanced class weights summing to n,
log-normal importance-type policy weights as given.

Outputs: ``figures/sbc/{coin,classes,policy}_ranks.png``; ``results/sbc/``: ``summary.csv``,
``ranks.csv`` (one row per simulation and parameter).
Details and results: docs/analyses/sbc.md
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special, stats

from analyses.figures import sbc as figures
from analyses.figures import style as plotting
from analyses.output import Output
from analyses.study import (
    FitsSummary,
    Report,
    Settings,
    coverage_interval,
    progress,
    progress_bar,
    rng_for,
    seed_for,
    summarise_fits,
)
from models import classes, coin, inference, summary
from models import policy as policy_lib
from models import weights as weights_lib
from models.errors import InputError

RANK_DRAWS = 99  # L: ranks take the L + 1 = 100 values 0..99
KERNEL = "jittered_hmc"   # the batched engine's transition (models/sampling/hmc.py)
BINS = 20
SIMULATIONS = 1000
SIMULATIONS_QUICK = 4  # a smoke run: every scenario, model and figure, few fits
SAMPLER_DEFAULTS = {"draws": 1000, "tune": 500, "chains": 2}

COIN_PRIOR = (2.0, 2.0)
FREQUENCY_TOSSES = 20
KEY_WEIGHTS = np.array([1, 1, 10, 1, 1, 1, 1, 1, 1, 1], dtype=float)

CLASSES_PRIOR = {"coef_sd": 1.0, "intercept_sd": 1.0}
CLASSES_SAMPLES = 60
GRID = np.array([(a, b) for a in (-1.0, 0.0, 1.0) for b in (-1.0, 0.0, 1.0)])  # 9 covariate patterns

POLICY_STATES, POLICY_ACTIONS, POLICY_STEPS, POLICY_SD = 2, 3, 40, 1.0
LOGNORMAL_SD = 1.5  # noisy importance-type weights with mean 1, as ratios under beta; Kish ESS ~ n / 9.5


def _coin_simulate(rng, variant: str, normalize: str):
    p_true = rng.beta(*COIN_PRIOR)
    if variant == "frequency":
        heads = rng.binomial(FREQUENCY_TOSSES, p_true)
        flips, weights = np.array([1, 0]), np.array([heads, FREQUENCY_TOSSES - heads], dtype=float)
    else:
        flips, weights = rng.binomial(1, p_true, size=KEY_WEIGHTS.size), KEY_WEIGHTS
    return {"p": p_true}, {"flips": flips}, weights_lib.normalize(weights, normalize)


def _classes_simulate(rng, variant: str, normalize: str):
    intercept = rng.normal(0, CLASSES_PRIOR["intercept_sd"])
    coef = rng.normal(0, CLASSES_PRIOR["coef_sd"], size=2)
    X = GRID[rng.integers(0, len(GRID), CLASSES_SAMPLES)]
    y = (rng.uniform(size=CLASSES_SAMPLES) < special.expit(intercept + X @ coef)).astype(np.int64)
    truth = {"intercept": intercept, "coef": coef}
    if variant == "frequency":  # the same data as counts of the 18 (pattern, label) rows
        X_rows, y_rows = np.repeat(GRID, 2, axis=0), np.tile([0, 1], len(GRID))
        pattern = np.argmax((X[:, None, :] == GRID[None]).all(-1), axis=1)
        counts = np.bincount(2 * pattern + y, minlength=len(X_rows)).astype(float)
        return truth, {"X": X_rows, "y": y_rows}, counts
    if np.all(y == y[0]):  # balanced weights need both classes; all ones is then what they would be
        return truth, {"X": X, "y": y}, np.ones(CLASSES_SAMPLES)
    return truth, {"X": X, "y": y}, weights_lib.normalize(weights_lib.balanced(y), normalize)


def _policy_simulate(rng, variant: str, normalize: str):
    preference = rng.normal(0, POLICY_SD, size=(POLICY_STATES, POLICY_ACTIONS))
    preference -= preference.mean(axis=1, keepdims=True)  # a ZeroSumNormal draw, the model's prior
    policy = special.softmax(preference, axis=1)
    states = rng.integers(0, POLICY_STATES, POLICY_STEPS)
    actions = np.array([rng.choice(POLICY_ACTIONS, p=policy[s]) for s in states])
    if variant == "frequency":
        weights = np.ones(POLICY_STEPS)
    else:
        mean_one = rng.lognormal(-LOGNORMAL_SD**2 / 2, LOGNORMAL_SD, POLICY_STEPS)
        weights = weights_lib.normalize(mean_one, normalize)
    cells = policy_lib.cell_weights(states, actions, weights, n_states=POLICY_STATES,
                                    n_actions=POLICY_ACTIONS)
    return {"preference": preference}, {}, cells.ravel()


@dataclass(frozen=True)
class Scenario:
    """A model, how its data are simulated from the prior, and how they are weighted.

    ``exact``: the weighted posterior is the true posterior of the simulated process (frequency
    weights), so SBC must pass; otherwise it is a pseudo-posterior and SBC measures how far off it is.
    """

    name: str
    family: str  # "coin", "classes" or "policy"
    variant: str
    exact: bool
    normalize: str = "none"  # of the per-observation weights, before any collapsing

    def simulate(self, rng) -> tuple[dict, dict, np.ndarray]:
        """``(truth, data, weights)``: parameters from the prior, ``pm.Data`` values, weights."""
        simulate = {"coin": _coin_simulate, "classes": _classes_simulate, "policy": _policy_simulate}
        return simulate[self.family](rng, self.variant, self.normalize)

    def build_model(self, data: dict, weights: np.ndarray):
        if self.family == "coin":
            return coin.build_model(data["flips"], weights, prior=COIN_PRIOR)
        if self.family == "classes":
            return classes.build_model(data["X"], data["y"], weights, **CLASSES_PRIOR)
        states = np.repeat(np.arange(POLICY_STATES), POLICY_ACTIONS)
        actions = np.tile(np.arange(POLICY_ACTIONS), POLICY_STATES)
        return policy_lib.build_model(states, actions, weights, n_states=POLICY_STATES,
                                      n_actions=POLICY_ACTIONS, preference_sd=POLICY_SD, collapse=True)


SCENARIOS = (
    Scenario("frequency_weights", "coin", "frequency", exact=True),
    Scenario("key_toss_x10_as_given", "coin", "key_toss", exact=False),
    Scenario("key_toss_x10_sum_n", "coin", "key_toss", exact=False, normalize="n"),
    Scenario("key_toss_x10_sum_ess", "coin", "key_toss", exact=False, normalize="ess"),
    Scenario("classes_frequency_weights", "classes", "frequency", exact=True),
    Scenario("classes_balanced_sum_n", "classes", "balanced", exact=False, normalize="n"),
    Scenario("policy_frequency_weights", "policy", "frequency", exact=True),
    Scenario("policy_lognormal_weights_as_given", "policy", "lognormal", exact=False),
)
FAMILIES = ("coin", "classes", "policy")

# --------------------------------------------------------------------------- fits


def fit_scenario(scenario: Scenario, simulations: int, settings: Settings, models: dict | None = None
                 ) -> list[dict]:
    """Simulate, fit and rank every simulation of one scenario, the fits in one batch on one compiled
    model (``inference.sample_many``). ``models``, when given, keeps the models built so far by family
    and data shapes: scenarios that differ only in their weights fit the same compiled model (every
    fit sets all of its data).

    One result per simulation and scalar parameter: the rank of the true value among L thinned
    draws and whether the central 50% and 90% intervals cover it.
    """
    simulated = [scenario.simulate(rng_for(settings.seed, scenario.name, s, "data"))
                 for s in range(simulations)]
    models = {} if models is None else models
    _, data, weights = simulated[0]
    key = (scenario.family, np.shape(weights), *((name, np.shape(data[name])) for name in sorted(data)))
    if key not in models:
        models[key] = scenario.build_model(data, weights)
    model = models[key]
    progress("sbc", f"{scenario.name}: {simulations} fits")
    with progress_bar("sbc", scenario.name, simulations) as update:
        fits = inference.sample_many(
            model, [{**data, "weights": weights} for _, data, weights in simulated],
            random_seeds=[seed_for(settings.seed, scenario.name, s) for s in range(simulations)],
            draws=settings.draws, tune=settings.tune, chains=settings.chains, sampler=settings.sampler,
            progress=update, kernel=KERNEL)
    results = []
    for simulation, (truth, _, _) in enumerate(simulated):
        for name, true_value in truth.items():
            draws = fits.posterior[name][simulation]
            draws_of_name = draws.reshape(-1, *draws.shape[2:])
            for index in np.ndindex(*np.shape(true_value)):
                draws_p = draws_of_name[(slice(None), *index)]
                value = float(np.asarray(true_value)[index])
                thinned = draws_p[np.linspace(0, draws_p.size - 1, RANK_DRAWS).round().astype(int)]
                q05, q25, q75, q95 = np.quantile(draws_p, [0.05, 0.25, 0.75, 0.95])
                results.append({
                    "scenario": scenario.name, "simulation": simulation,
                    "parameter": name + (f"[{','.join(map(str, index))}]" if index else ""),
                    "true_value": value, "rank": int(np.sum(thinned < value)),
                    "covered_50": int(q25 <= value <= q75), "covered_90": int(q05 <= value <= q95),
                    "diagnostics": fits.diagnostics[simulation],
                })
    return results


# --------------------------------------------------------------------------- orchestration


def check_settings(settings: Settings) -> None:
    """Ranks among L = 99 draws need at least 99 draws per fit."""
    if settings.draws * settings.chains < RANK_DRAWS:
        raise InputError(f"sbc needs at least {RANK_DRAWS} draws per fit (draws x chains), "
                         f"got {settings.draws} x {settings.chains}")


def _run_all(settings: Settings, simulations: int) -> list[dict]:
    results, models = [], {}
    for scenario in SCENARIOS:
        results += fit_scenario(scenario, simulations, settings, models)
    return sorted(results, key=lambda r: (r["scenario"], r["simulation"]))


def rank_counts(ranks: np.ndarray) -> np.ndarray:
    """Ranks 0..L in ``BINS`` equal bins."""
    return np.bincount(np.asarray(ranks) * BINS // (RANK_DRAWS + 1), minlength=BINS)


def _rows(scenario: Scenario, results: list[dict]) -> tuple[list[dict], FitsSummary]:
    """Uniformity per parameter (chi-square, 20 bins) and for the scenario (Bonferroni: the smallest
    p-value times the number of parameters); coverage pooled over parameters and simulations."""
    parameters = sorted({r["parameter"] for r in results})
    pvalues = {}
    for name in parameters:
        ranks = [r["rank"] for r in results if r["parameter"] == name]
        pvalues[name] = stats.chisquare(rank_counts(ranks)).pvalue
    simulations = sorted({r["simulation"] for r in results})
    rows = [
        summary.point(scenario.name, "sbc", "simulations", len(simulations)),
        summary.point(scenario.name, "sbc", "rank_uniformity_pvalue",
                     min(1.0, len(parameters) * min(pvalues.values()))),
    ]
    if len(parameters) > 1:
        rows += [summary.point(scenario.name, "sbc", f"rank_uniformity_pvalue[{name}]", value)
                 for name, value in pvalues.items()]
    for level in (50, 90):
        covered = np.array([[r[f"covered_{level}"] for r in results if r["simulation"] == s]
                            for s in simulations])
        rows.append(summary.interval(scenario.name, "sbc", f"coverage_{level}", covered.mean(),
                                    *coverage_interval(covered)))
    first_per_fit = {r["simulation"]: r["diagnostics"] for r in results}
    fits = summarise_fits(list(first_per_fit.values()))
    rows.append(summary.point(scenario.name, "sbc", "fits_failing_diagnostics", fits.failing))
    worst = summary.diagnostic_rows(scenario.name, fits.worst, estimator="sbc", ok=fits.ok)
    return rows + worst, fits


def main(settings: Settings, output: Output) -> Report:
    check_settings(settings)
    plotting.apply_style()
    simulations = SIMULATIONS_QUICK if settings.quick else SIMULATIONS
    progress("sbc", f"{simulations} simulations x {len(SCENARIOS)} scenarios, NUTS {settings.chains} x "
                    f"({settings.tune} + {settings.draws}) each, one batch per scenario")
    results = _run_all(settings, simulations)
    rows, fits = [], {}
    for scenario in SCENARIOS:
        mine = [r for r in results if r["scenario"] == scenario.name]
        scenario_rows, fits[scenario.name] = _rows(scenario, mine)
        rows += scenario_rows
    columns = ("scenario", "simulation", "parameter", "true_value", "rank", "covered_50", "covered_90")
    output.table(results, "ranks.csv", columns=columns)
    for family in FAMILIES:
        scenarios = [s for s in SCENARIOS if s.family == family]
        output.figure(figures.plot_ranks(family, scenarios, results, rows, simulations, rank_draws=RANK_DRAWS,
                                         bins=BINS, histogram=rank_counts), f"{family}_ranks.png")
    return Report(rows=rows, fits=fits)
