"""Calibration: which interval of a weighted fit covers the truth at its nominal rate?

Question. Multiplying every weight by c leaves the weighted MLE where it is and narrows the weighted
posterior by about 1 / sqrt(c). Under which weights are the weighted posterior's credible intervals
calibrated, and do the remedies (normalising the weights, the sandwich adjustment, the weighted
likelihood bootstrap) restore nominal coverage?

Method. Repeated simulation from a fixed, known truth: for s = 1..N simulate a data set, weight it,
fit every method, and record whether each central 50% and 90% interval (equal-tailed quantiles)
covers the true value. Empirical coverage with 95% Monte Carlo intervals (Jeffreys for one parameter;
clustered by data set for the logistic model's two).

Scenarios (``SCENARIOS``):

* ``coin_frequency``: 40 tosses with p = 0.3 stored as two rows, heads and tails, weighted by their
  counts (frequency weights: the weighted posterior is the exact posterior).
* ``coin_importance``: 50 tosses with p = 0.3, each weighted by noise LogNormal(-1/2, 1) (mean one,
  independent of the data, as importance ratios of a behaviour policy near the target are;
  Kish ESS about n / e = 18). The weighted MLE stays consistent for p; only its variance grows.
* ``logistic_frequency``: 200 units, x on the grid {-1.5, -0.5, 0.5, 1.5}, logit P(y = 1) =
  -0.5 + x, stored as 8 (x, y) rows weighted by their counts.
* ``logistic_balanced``: 300 units, x ~ N(0, 1), logit P(y = 1) = -2.5 + x (10.5% positives), with
  class-balanced weights n / (2 n_k). Their target is the population re-weighted to equal class
  rates: the slope 1 and the intercept -2.5 - logit(0.105) = -0.36 (King & Zeng's prior correction).
* ``logistic_importance``: 200 units, x ~ N(0, 1), logit P(y = 1) = -0.5 + x, LogNormal(-1/2, 1)
  noise weights as for the coin; target (-0.5, 1).

The coin has no class-balanced scenario: balanced weights give heads and tails equal total weight,
so its weighted MLE is 0.5 in every data set, and so is its target.

Methods: the weighted posterior with the weights as given (``raw``), rescaled to sum to n
(``sum_n``) and to Kish's ESS (``sum_ess``); the sandwich-adjusted raw posterior (``sandwich``,
:func:`models.calibrate.sandwich_adjust`; the scale of the weights cancels in it); the weighted
likelihood bootstrap (``wlb``, :func:`models.calibrate.weighted_likelihood_bootstrap`); and the
unweighted posterior (``unweighted``) for reference. Coin priors Beta(1, 1); logistic priors the
``models.classes`` defaults, coef ~ N(0, 2.5), intercept ~ N(0, 5).

Cost. The coin's weighted posterior is conjugate: raw, sum-n, sum-ESS and unweighted intervals are
exact Beta quantiles; the sandwich adjusts 4000 exact Beta draws (in ``InferenceData`` form); the WLB
uses its closed form, ``sum g w y / sum g w``, which is what ``weighted_likelihood_bootstrap`` computes
by optimisation (a test checks they agree). The logistic model: NUTS, 2 chains x (500 tuning + 1000
draws) per fit unless ``--chains/--tune/--draws`` say otherwise, every data set and weighting of a
scenario in one batch (``inference.sample_many``, one compiled JAX program); the WLB with 200 draws
of every data set in another (``calibrate.weighted_likelihood_bootstrap_many``).

Outputs: ``figures/calibration/{coverage,width_coverage,wlb_vs_nuts}.png`` (drawn by
``analyses.figures.calibration``); ``results/calibration/coverage.csv`` (one row per data set,
method and parameter), ``example_{raw,sandwich,wlb}.nc`` (one logistic importance-weighted data
set), ``summary.csv`` (``coverage`` rows: empirical coverage of the nominal 90% intervals, with 95%
Monte Carlo intervals).
"""

from __future__ import annotations

from dataclasses import dataclass

import arviz as az
import numpy as np
import pymc as pm
from scipy import integrate, special, stats

from analyses import plotting
from analyses.figures import calibration as figures
from analyses.output import Output
from analyses.study import (
    Report,
    Settings,
    coverage_interval,
    progress,
    rng_for,
    seed_for,
    summarise_fits,
)
from models import calibrate, classes, coin, inference, summary
from models import weights as weights_lib
from models.errors import InputError

SAMPLER_DEFAULTS = {"draws": 1000, "tune": 500, "chains": 2}
SIMULATIONS = {"coin": 4000, "logistic": 600}
SIMULATIONS_QUICK = {"coin": 10, "logistic": 2}
NUTS_METHODS = ("unweighted", "sum_n", "sum_ess", "raw")
WLB_DRAWS = 200
WLB_DRAWS_QUICK = 50
SANDWICH_BETA_DRAWS = 4000
LEVELS = (50, 90)
MIN_DRAWS = 100  # per fit, for 5% and 95% quantiles

COIN_P = 0.3
LOGNORMAL_SD = 1.0  # mean-one noise weights LogNormal(-sd^2 / 2, sd): Kish ESS about n / exp(sd^2)
GRID = np.array([-1.5, -0.5, 0.5, 1.5])

METHODS = ("raw", "sum_n", "sum_ess", "sandwich", "wlb", "unweighted")
NORMALIZE = {"raw": "none", "sum_n": "n", "sum_ess": "ess"}


def _population_rate(intercept: float, slope: float) -> float:
    """P(y = 1) with x ~ N(0, 1), by quadrature."""
    rate, _ = integrate.quad(lambda x: special.expit(intercept + slope * x) * stats.norm.pdf(x), -12, 12)
    return rate


@dataclass(frozen=True)
class Scenario:
    """How one scenario's data are simulated and weighted, and the truth its intervals should cover."""

    name: str
    family: str  # "coin" or "logistic"
    weighting: str  # "frequency", "balanced" or "importance"
    n: int
    intercept: float = 0.0
    slope: float = 1.0

    @property
    def truth(self) -> dict[str, np.ndarray]:
        if self.family == "coin":
            return {"p": np.array(COIN_P)}
        intercept = self.intercept
        if self.weighting == "balanced":  # the population re-weighted to equal class rates
            intercept -= special.logit(_population_rate(self.intercept, self.slope))
        return {"intercept": np.array(intercept), "coef": np.array([self.slope])}

    def simulate(self, rng) -> tuple[dict, np.ndarray]:
        """``(data, weights)``: ``pm.Data`` values of the model and the weights as given."""
        if self.family == "coin":
            flips = rng.binomial(1, COIN_P, self.n)
            if self.weighting == "frequency":
                heads = flips.sum()
                return {"flips": np.array([1, 0])}, np.array([heads, self.n - heads], dtype=float)
            return {"flips": flips}, rng.lognormal(-LOGNORMAL_SD**2 / 2, LOGNORMAL_SD, self.n)
        if self.weighting == "frequency":
            x = GRID[rng.integers(0, GRID.size, self.n)]
        else:
            x = rng.normal(size=self.n)
        y = (rng.uniform(size=self.n) < special.expit(self.intercept + self.slope * x)).astype(np.int64)
        if self.weighting == "frequency":  # counts of the 8 (x, y) rows
            rows_x, rows_y = np.repeat(GRID, 2), np.tile([0, 1], GRID.size)
            counts = np.bincount(2 * np.searchsorted(GRID, x) + y, minlength=rows_x.size).astype(float)
            return {"X": rows_x[:, None], "y": rows_y}, counts
        if self.weighting == "balanced":
            if np.all(y == y[0]):  # one class only: no balanced weights exist; vanishingly rare at n = 300
                raise RuntimeError(f"{self.name}: a simulated data set has one class only")
            return {"X": x[:, None], "y": y}, weights_lib.balanced(y)
        return {"X": x[:, None], "y": y}, rng.lognormal(-LOGNORMAL_SD**2 / 2, LOGNORMAL_SD, self.n)

    def build_model(self, data: dict, weights: np.ndarray) -> pm.Model:
        if self.family == "coin":
            return coin.build_model(data["flips"], weights)
        return classes.build_model(data["X"], data["y"], weights)


SCENARIOS = (
    Scenario("coin_frequency", "coin", "frequency", n=40),
    Scenario("coin_importance", "coin", "importance", n=50),
    Scenario("logistic_frequency", "logistic", "frequency", n=200, intercept=-0.5),
    Scenario("logistic_balanced", "logistic", "balanced", n=300, intercept=-2.5),
    Scenario("logistic_importance", "logistic", "importance", n=200, intercept=-0.5),
)
EXAMPLE = "logistic_importance"  # the scenario whose first data set is saved and plotted

# --------------------------------------------------------------------------- per data set


def _flat_draws(idata, name: str) -> np.ndarray:
    """Pooled draws of ``name`` as (draws, elements), NaN draws (failed WLB optimisations) dropped."""
    values = idata.posterior[name].values
    values = values.reshape(values.shape[0] * values.shape[1], -1)
    return values[np.all(np.isfinite(values), axis=1)]


def interval_rows(scenario: Scenario, simulation: int, method: str, quantile) -> list[dict]:
    """Coverage and width of the central 50% and 90% intervals of every scalar parameter, one row
    each; ``quantile(name, k, probabilities)`` gives quantiles of element k of parameter ``name``."""
    rows = []
    for name, true_value in scenario.truth.items():
        for k, value in enumerate(np.ravel(true_value)):
            row = {"scenario": scenario.name, "simulation": simulation, "method": method,
                   "parameter": name + (f"[{k}]" if np.ndim(true_value) else ""), "true_value": float(value)}
            for level in LEVELS:
                low, high = quantile(name, k, [0.5 - level / 200, 0.5 + level / 200])
                row[f"covered_{level}"] = int(low <= value <= high)
                row[f"width_{level}"] = float(high - low)
            rows.append(row)
    return rows


def _draw_quantiles(idata, names):
    """``quantile`` for :func:`interval_rows` from the draws of ``idata``."""
    draws = {name: _flat_draws(idata, name) for name in names}
    return lambda name, k, probabilities: np.quantile(draws[name][:, k], probabilities)


def _array_quantiles(draws: dict, names):
    """``quantile`` for :func:`interval_rows` from draws (chains, draws, *shape) per name."""
    flat = {name: np.reshape(draws[name], (-1, int(np.prod(np.shape(draws[name])[2:])))) for name in names}
    return lambda name, k, probabilities: np.quantile(flat[name][:, k], probabilities)


def coin_wlb(flips: np.ndarray, weights: np.ndarray, draws: int, rng) -> np.ndarray:
    """The coin's WLB in closed form: ``sum g w y / sum g w`` with ``g = n e / sum e``, ``e ~ Exp(1)``
    (the normalisation of g cancels); the same stream of ``e`` as ``weighted_likelihood_bootstrap``."""
    multipliers = rng.standard_exponential((draws, flips.size)) * weights
    return multipliers @ flips / multipliers.sum(axis=1)


def _weights_for(method: str, weights: np.ndarray) -> np.ndarray:
    if method == "unweighted":
        return np.ones_like(weights)
    return weights_lib.normalize(weights, NORMALIZE[method])


@dataclass(frozen=True)
class ScenarioFits:
    """A scenario's coverage rows, the diagnostics of its NUTS fits per method, its WLB's failed draws
    and undefined data sets, and (for the example) a few posteriors of its first data set."""

    rows: list
    diagnostics: dict
    wlb_failed_draws: int
    wlb_undefined: int
    example: dict


def fit_coin(scenario: Scenario, count: int, settings: Settings, wlb_draws: int) -> ScenarioFits:
    """Exact Beta posteriors, the sandwich-adjusted exact posterior and the closed-form WLB of every
    data set, on one compiled model."""
    simulated = [scenario.simulate(rng_for(settings.seed, scenario.name, s, "data")) for s in range(count)]
    model = scenario.build_model(*simulated[0])
    sandwich = calibrate.SandwichAdjustment(model)
    rows = []
    for simulation, (data, weights) in enumerate(simulated):
        seed, flips = seed_for(settings.seed, scenario.name, simulation), data["flips"]
        exact = {method: coin.exact_posterior(flips, weights, normalize=how)
                 for method, how in NORMALIZE.items()}
        exact["unweighted"] = coin.exact_posterior(flips)
        for method, posterior in exact.items():
            rows += interval_rows(scenario, simulation, method, lambda _, __, q, beta=posterior: beta.ppf(q))
        beta_draws = exact["raw"].rvs(SANDWICH_BETA_DRAWS, random_state=rng_for(seed, "sandwich"))
        pm.set_data({**data, "weights": weights}, model=model)
        adjusted = sandwich(az.from_dict(posterior={"p": beta_draws[None]}))
        rows += interval_rows(scenario, simulation, "sandwich", _draw_quantiles(adjusted, ["p"]))
        wlb = coin_wlb(flips, weights, wlb_draws, rng_for(seed, "wlb"))
        rows += interval_rows(scenario, simulation, "wlb", lambda _, __, q: np.quantile(wlb, q))
    return ScenarioFits(rows, {}, 0, 0, {})


def fit_logistic(scenario: Scenario, count: int, settings: Settings, wlb_draws: int) -> ScenarioFits:
    """NUTS at every weighting of every data set in one batch, the sandwich on each raw posterior, and
    the WLB of every data set whose WMLE exists in one more batch, all on one model."""
    simulated = [scenario.simulate(rng_for(settings.seed, scenario.name, s, "data")) for s in range(count)]
    model = scenario.build_model(*simulated[0])
    names = list(scenario.truth)
    datasets = [{**data, "weights": _weights_for(method, weights)} for data, weights in simulated
                for method in NUTS_METHODS]
    seeds = [seed_for(settings.seed, scenario.name, s, method)
             for s in range(count) for method in NUTS_METHODS]
    fits = inference.sample_many(
        model, datasets, random_seeds=seeds, draws=settings.draws, tune=settings.tune, chains=settings.chains,
        sampler=settings.sampler,
        progress=lambda done, total: progress("calibration", f"{scenario.name}: {done}/{total} NUTS fits"))
    rows, diagnostics, example = [], {method: [] for method in NUTS_METHODS}, {}
    sandwich = calibrate.SandwichAdjustment(model)
    for simulation in range(count):
        for k, method in enumerate(NUTS_METHODS):
            index = simulation * len(NUTS_METHODS) + k
            draws = fits.draws(index)
            diagnostics[method].append(fits.diagnostics[index])
            rows += interval_rows(scenario, simulation, method, _array_quantiles(draws, names))
        first = simulation * len(NUTS_METHODS)
        # idata() leaves the model holding that fit's data, which the sandwich reads.
        raw = fits.idata(first + NUTS_METHODS.index("raw"), log_likelihood=False)
        adjusted = sandwich(raw)
        rows += interval_rows(scenario, simulation, "sandwich", _draw_quantiles(adjusted, names))
        if scenario.name == EXAMPLE and simulation == 0:
            sum_ess = fits.idata(first + NUTS_METHODS.index("sum_ess"), log_likelihood=False)
            example = {"raw": raw, "sum_ess": sum_ess, "sandwich": adjusted}
    progress("calibration", f"{scenario.name}: weighted likelihood bootstrap of {count} data sets")
    wlb = calibrate.weighted_likelihood_bootstrap_many(
        model, [{**data, "weights": weights} for data, weights in simulated], wlb_draws,
        [seed_for(settings.seed, scenario.name, s, "wlb") for s in range(count)])
    for simulation, idata in enumerate(wlb):
        if idata is not None:
            rows += interval_rows(scenario, simulation, "wlb", _draw_quantiles(idata, names))
    if scenario.name == EXAMPLE and wlb[0] is not None:
        example["wlb"] = wlb[0]
    return ScenarioFits(rows, diagnostics, sum(int(w.attrs["failed_draws"]) for w in wlb if w is not None),
                        sum(w is None for w in wlb), example)


# --------------------------------------------------------------------------- orchestration


def check_settings(settings: Settings) -> None:
    """Central 90% intervals from quantiles need at least ``MIN_DRAWS`` draws per fit."""
    if settings.draws * settings.chains < MIN_DRAWS:
        raise InputError(f"calibration needs at least {MIN_DRAWS} draws per fit (draws x chains), "
                         f"got {settings.draws} x {settings.chains}")


def summary_rows(scenario: Scenario, rows: list[dict]) -> list[dict]:
    """Per method: ``coverage`` (nominal 90%) and ``coverage_50`` with 95% Monte Carlo intervals
    (clustered by data set), and the mean width of the 90% intervals (``width_90``, averaged over
    the parameters, in their own units)."""
    table = []
    for method in METHODS:
        mine = [r for r in rows if r["scenario"] == scenario.name and r["method"] == method]
        if not mine:
            continue
        simulations = sorted({r["simulation"] for r in mine})
        by_simulation = {s: [r for r in mine if r["simulation"] == s] for s in simulations}
        for level, quantity in ((90, "coverage"), (50, "coverage_50")):
            covered = np.array([[r[f"covered_{level}"] for r in by_simulation[s]] for s in simulations])
            table.append(summary.interval(scenario.name, method, quantity, covered.mean(),
                                           *coverage_interval(covered)))
        width = np.mean([r["width_90"] for r in mine])
        table.append(summary.point(scenario.name, method, "width_90", width))
        table.append(summary.point(scenario.name, method, "data_sets", len(simulations)))
    return table


def main(settings: Settings, output: Output) -> Report:
    check_settings(settings)
    plotting.apply_style()
    counts = SIMULATIONS_QUICK if settings.quick else SIMULATIONS
    wlb_draws = WLB_DRAWS_QUICK if settings.quick else WLB_DRAWS
    progress("calibration", f"{counts['coin']} coin and {counts['logistic']} logistic data sets per "
                            f"scenario; NUTS {settings.chains} x ({settings.tune} + {settings.draws}), WLB "
                            f"{wlb_draws} draws; one batch per scenario")
    results = {}
    for scenario in SCENARIOS:
        fit = fit_coin if scenario.family == "coin" else fit_logistic
        results[scenario.name] = fit(scenario, counts[scenario.family], settings, wlb_draws)
    rows = sorted((r for result in results.values() for r in result.rows),
                  key=lambda r: (r["scenario"], r["simulation"], METHODS.index(r["method"]), r["parameter"]))
    table, fits = [], {}
    for scenario in SCENARIOS:
        table += summary_rows(scenario, rows)
        result = results[scenario.name]
        if scenario.family == "logistic":
            table.append(summary.point(scenario.name, "wlb", "failed_draws", result.wlb_failed_draws))
            table.append(summary.point(scenario.name, "wlb", "undefined_data_sets", result.wlb_undefined))
            for method in ("raw", "sum_n", "sum_ess", "unweighted"):
                fit_summary = summarise_fits(result.diagnostics[method])
                fits[f"{scenario.name}/{method}"] = fit_summary
                table.append(summary.point(scenario.name, method, "fits_failing_diagnostics",
                                           fit_summary.failing))
    columns = ("scenario", "simulation", "method", "parameter", "true_value", "covered_50", "covered_90",
               "width_50", "width_90")
    output.table(rows, "coverage.csv", columns=columns)
    example = results[EXAMPLE].example
    for name, idata in example.items():
        if name != "sum_ess":
            output.posterior(idata, f"example_{name}.nc", scenario=EXAMPLE, weighting=name,
                             seed=settings.seed)
    output.figure(figures.plot_coverage(table, SCENARIOS, METHODS), "coverage.png")
    output.figure(figures.plot_width(table, SCENARIOS, METHODS), "width_coverage.png")
    truth = next(s for s in SCENARIOS if s.name == EXAMPLE).truth
    draws = {method: {name: _flat_draws(idata, name)[:, 0] for name in truth}
             for method, idata in example.items()}
    output.figure(figures.plot_example(draws, truth), "wlb_vs_nuts.png")
    return Report(rows=table, fits=fits)
