"""Calibration: which interval of a weighted fit covers the truth at its nominal rate?

Question. Scaling the weights by c leaves the WMLE alone and narrows the posterior by about 1 / sqrt(c).
Under which weights are the weighted posterior's intervals calibrated, and which remedies restore
nominal coverage?

Models: ``models.coin`` (p ~ Beta(1, 1)) and ``models.classes`` (one feature, coef ~ N(0, 2.5),
intercept ~ N(0, 5)), both log p(theta | y, w) = log p(theta) + sum_i w_i log p(y_i | theta) + const.

Design. Repeated simulation from a known truth (4000 coin, 600 logistic data sets per scenario).
Scenarios: frequency weights (coin, logistic), noisy importance-type weights LogNormal(-1/2, 1)
(coin, logistic), class-balanced weights (logistic), and the focal loss (gamma 2) in place of the
log-likelihood. Methods: the weighted posterior as given (raw), summing to n, summing to Kish's ESS,
sandwich-adjusted, the weighted likelihood bootstrap (WLB), generalised posterior calibration (GPC),
and the unweighted posterior. Scored by the coverage of central 50% and 90% intervals (95% Monte Carlo
intervals) and the implied scale, (width_raw / width_method)^2 of the 90% intervals.

Outputs: ``figures/calibration/{coverage,width_coverage,scales,wlb_vs_nuts}.png``;
``results/calibration/``: ``coverage.csv``, ``gpc.csv``, ``example_{raw,sandwich,wlb}.nc``, ``summary.csv``.
Details and results: docs/analyses/calibration.md
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import arviz as az
import numpy as np
import pymc as pm
from numpy.polynomial.hermite_e import hermegauss
from scipy import integrate, special, stats

from analyses.figures import calibration as figures
from analyses.figures import style as plotting
from analyses.output import Output
from analyses.study import (
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
from models import weights as weights_lib
from models.calibrate.posterior_calibration import GPCScale
from models.calibrate.sandwich import SandwichAdjustment
from models.calibrate.wlb import weighted_likelihood_bootstrap_many
from models.errors import InputError

SAMPLER_DEFAULTS = {"draws": 1000, "tune": 500, "chains": 2}
SIMULATIONS = {"coin": 4000, "logistic": 600, "focal": 600}
SIMULATIONS_QUICK = {"coin": 10, "logistic": 2, "focal": 2}
NUTS_METHODS = ("unweighted", "sum_n", "sum_ess", "raw")
KERNEL = "jittered_hmc"   # the batched engine's transition for the GLM posteriors (models/sampling/hmc.py)
WLB_DRAWS = 200
WLB_DRAWS_QUICK = 50
SANDWICH_BETA_DRAWS = 4000
LEVELS = (50, 90)
MIN_DRAWS = 100  # per fit, for 5% and 95% quantiles

COIN_P = 0.3
LOGNORMAL_SD = 1.0  # mean-one noise weights LogNormal(-sd^2 / 2, sd): Kish ESS about n / exp(sd^2)
GRID = np.array([-1.5, -0.5, 0.5, 1.5])
FOCAL_GAMMA = 2.0
QUADRATURE_NODES = 80   # Gauss-Hermite nodes for expectations over x ~ N(0, 1)

METHODS = ("raw", "sum_n", "sum_ess", "sandwich", "wlb", "gpc", "unweighted")
SCALE_METHODS = ("sum_ess", "sandwich", "wlb", "gpc")   # the remedies whose implied scale is drawn
GPC_LEVEL, GPC_BOOTSTRAP, GPC_BOOTSTRAP_QUICK = 0.9, 200, 50
PRIOR_SD = {"intercept": 5.0, "coef": 2.5}   # the logistic priors (models.classes defaults, stated)
NORMALIZE = {"raw": "none", "sum_n": "n", "sum_ess": "ess"}


def _population_rate(intercept: float, slope: float) -> float:
    """P(y = 1) with x ~ N(0, 1), by quadrature."""
    rate, _ = integrate.quad(lambda x: special.expit(intercept + slope * x) * stats.norm.pdf(x), -12, 12)
    return rate


@functools.cache
def focal_risk_minimiser(intercept: float, slope: float, gamma: float) -> tuple[float, float]:
    """``argmin_theta E[focal loss]`` of a logistic regression on x ~ N(0, 1) whose truth is logit P(y =
    1) = intercept + slope x: the expectation over y exact, over x by Gauss-Hermite quadrature (one row
    per node and label, weighted by its probability), minimised by Newton's method. ``gamma = 0`` gives
    the truth back (the log-likelihood is a proper scoring rule)."""
    nodes, node_weights = hermegauss(QUADRATURE_NODES)
    node_weights = node_weights / node_weights.sum()
    p = special.expit(intercept + slope * nodes)
    design = np.column_stack([np.ones(2 * nodes.size), np.tile(nodes, 2)])
    labels = np.repeat([1.0, 0.0], nodes.size)
    weights = np.concatenate([node_weights * p, node_weights * (1 - p)])
    minimiser, _ = classes.laplace_logistic(design, labels, weights, np.zeros(2), focal_gamma=gamma)
    return float(minimiser[0, 0]), float(minimiser[0, 1])


@dataclass(frozen=True)
class Scenario:
    """How one scenario's data are simulated and weighted, and the truth its intervals should cover."""

    name: str
    family: str  # "coin", "logistic" or "focal" (the logistic model with the focal loss)
    weighting: str  # "frequency", "balanced", "importance" or "unit" (all weights 1)
    n: int
    intercept: float = 0.0
    slope: float = 1.0

    @property
    def truth(self) -> dict[str, np.ndarray]:
        if self.family == "coin":
            return {"p": np.array(COIN_P)}
        if self.family == "focal":
            intercept, slope = focal_risk_minimiser(self.intercept, self.slope, FOCAL_GAMMA)
            return {"intercept": np.array(intercept), "coef": np.array([slope])}
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
        if self.weighting == "unit":
            return {"X": x[:, None], "y": y}, np.ones(self.n)
        return {"X": x[:, None], "y": y}, rng.lognormal(-LOGNORMAL_SD**2 / 2, LOGNORMAL_SD, self.n)

    def build_model(self, data: dict, weights: np.ndarray) -> pm.Model:
        if self.family == "coin":
            return coin.build_model(data["flips"], weights)
        return classes.build_model(data["X"], data["y"], weights, coef_sd=PRIOR_SD["coef"],
                                   intercept_sd=PRIOR_SD["intercept"],
                                   likelihood="focal" if self.family == "focal" else "categorical",
                                   focal_gamma=self.focal_gamma)

    @property
    def focal_gamma(self) -> float:
        return FOCAL_GAMMA if self.family == "focal" else 0.0

    @property
    def nuts_methods(self) -> tuple[str, ...]:
        """The methods fitted by NUTS: with weights 1 every normalisation is the raw posterior."""
        return ("raw",) if self.weighting == "unit" else NUTS_METHODS

    @property
    def methods(self) -> tuple[str, ...]:
        """The methods with coverage rows: :data:`METHODS` less the NUTS fits not repeated."""
        return tuple(m for m in METHODS if m not in NUTS_METHODS or m in self.nuts_methods)

    def units(self, data: dict, weights: np.ndarray) -> tuple[dict, np.ndarray]:
        """The data as independent units: frequency-weighted rows expanded (weights 1), others as stored."""
        if self.weighting != "frequency":
            return data, weights
        repeats = weights.astype(int)
        return {key: np.repeat(value, repeats, axis=0) for key, value in data.items()}, np.ones(repeats.sum())


SCENARIOS = (
    Scenario("coin_frequency", "coin", "frequency", n=40),
    Scenario("coin_importance", "coin", "importance", n=50),
    Scenario("logistic_frequency", "logistic", "frequency", n=200, intercept=-0.5),
    Scenario("logistic_balanced", "logistic", "balanced", n=300, intercept=-2.5),
    Scenario("logistic_importance", "logistic", "importance", n=200, intercept=-0.5),
    Scenario("focal_loss", "focal", "unit", n=300, intercept=-2.5),
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
    and undefined data sets, (for the example) a few posteriors of its first data set, and GPC's
    calibration of every data set (a data set without WMLE has none, and no GPC rows)."""

    rows: list
    diagnostics: dict
    wlb_failed_draws: int
    wlb_undefined: int
    example: dict
    gpc: list   # per data set: GPC's scale, effective sample size, bootstrap coverage, convergence


def _gpc_record(scenario: Scenario, simulation: int, calibrated: GPCScale, unit_weights) -> dict:
    return {"scenario": scenario.name, "simulation": simulation, "scale": calibrated.scale,
            "effective_sample_size": calibrated.scale * float(np.sum(unit_weights)),
            "coverage": calibrated.coverage, "converged": int(calibrated.converged),
            "iterations": len(calibrated.path)}


def fit_coin(scenario: Scenario, count: int, settings: Settings, wlb_draws: int,
             gpc_bootstrap: int) -> ScenarioFits:
    """Exact Beta posteriors, the sandwich-adjusted exact posterior, the closed-form WLB and GPC of
    every data set, on one compiled model."""
    simulated = [scenario.simulate(rng_for(settings.seed, scenario.name, s, "data")) for s in range(count)]
    model = scenario.build_model(*simulated[0])
    sandwich = SandwichAdjustment(model)
    rows, scales = [], []
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
        units, unit_weights = scenario.units(data, weights)
        calibrated = coin.gpc_scale(units["flips"], unit_weights, level=GPC_LEVEL, bootstrap=gpc_bootstrap,
                                    rng=rng_for(seed, "gpc"))
        posterior = coin.exact_posterior(units["flips"], calibrated.scale * unit_weights)
        rows += interval_rows(scenario, simulation, "gpc", lambda _, __, q, beta=posterior: beta.ppf(q))
        scales.append(_gpc_record(scenario, simulation, calibrated, unit_weights))
    return ScenarioFits(rows, {}, 0, 0, {}, scales)


def logistic_gpc(scenario: Scenario, simulation: int, data: dict, weights: np.ndarray, bootstrap: int,
                 seed: int) -> tuple[list[dict], dict | None]:
    """GPC of one logistic (or focal-loss) data set with Laplace-approximated omega-posteriors: its
    coverage rows and its record (none when the WMLE, or the loss minimiser, does not exist)."""
    units, unit_weights = scenario.units(data, weights)
    design = np.column_stack([np.ones(units["y"].size), units["X"][:, 0]])
    precision = np.array([PRIOR_SD["intercept"] ** -2, PRIOR_SD["coef"] ** -2])
    try:
        calibrated, _ = classes.gpc_scale(design, units["y"], unit_weights, precision, level=GPC_LEVEL,
                                           bootstrap=bootstrap, rng=rng_for(seed, "gpc"),
                                           focal_gamma=scenario.focal_gamma)
    except RuntimeError:   # no finite WMLE or loss minimiser (separation), or Newton stopped where the
        return [], None    # focal loss's Hessian is not negative definite: nothing to calibrate around
    mode, hessian = classes.laplace_logistic(design, units["y"], calibrated.scale * unit_weights, precision,
                                         focal_gamma=scenario.focal_gamma)
    sd = np.sqrt(np.diag(np.linalg.inv(hessian[0])))
    index = {"intercept": 0, "coef": 1}
    rows = interval_rows(scenario, simulation, "gpc", lambda name, _, q: stats.norm.ppf(
        q, mode[0, index[name]], sd[index[name]]))
    return rows, _gpc_record(scenario, simulation, calibrated, unit_weights)


def _distinct_fits(scenario: Scenario, simulated: list, methods: tuple[str, ...], seed: int
                   ) -> tuple[list[dict], list[int], dict[tuple[int, str], int]]:
    """The NUTS fits to run: one per distinct weight vector of each data set (balanced class weights
    already sum to n, so "as given" and "sum to n" are one fit), with their seeds, and the fit of each
    (data set, method)."""
    datasets, seeds, fit_of = [], [], {}
    for simulation, (data, weights) in enumerate(simulated):
        for method in methods:
            values = _weights_for(method, weights)
            same = [fit_of[simulation, earlier] for earlier in methods[:methods.index(method)]
                    if np.allclose(datasets[fit_of[simulation, earlier]]["weights"], values,
                                   rtol=1e-12, atol=0)]
            if not same:
                datasets.append({**data, "weights": values})
                seeds.append(seed_for(seed, scenario.name, simulation, method))
            fit_of[simulation, method] = same[0] if same else len(datasets) - 1
    return datasets, seeds, fit_of


def fit_logistic(scenario: Scenario, count: int, settings: Settings, wlb_draws: int,
                 gpc_bootstrap: int) -> ScenarioFits:
    """NUTS at every weighting of every data set in one batch, the sandwich on each raw posterior, the
    WLB of every data set whose WMLE exists in one more batch, all on one model, and GPC per data set."""
    simulated = [scenario.simulate(rng_for(settings.seed, scenario.name, s, "data")) for s in range(count)]
    model = scenario.build_model(*simulated[0])
    names, methods = list(scenario.truth), scenario.nuts_methods
    datasets, seeds, fit_of = _distinct_fits(scenario, simulated, methods, settings.seed)
    progress("calibration", f"{scenario.name}: {len(datasets)} NUTS fits")
    with progress_bar("calibration", f"{scenario.name}, NUTS", len(datasets)) as update:
        fits = inference.sample_many(model, datasets, random_seeds=seeds, draws=settings.draws,
                                     tune=settings.tune, chains=settings.chains, sampler=settings.sampler,
                                     progress=update, kernel=KERNEL)
    rows, diagnostics, example = [], {method: [] for method in methods}, {}
    sandwich = SandwichAdjustment(model)
    for simulation in range(count):
        for method in methods:
            index = fit_of[simulation, method]
            diagnostics[method].append(fits.diagnostics[index])
            rows += interval_rows(scenario, simulation, method, _array_quantiles(fits.draws(index), names))
        raw = fits.idata_of(fit_of[simulation, "raw"], log_likelihood=False)
        pm.set_data(fits.data[fit_of[simulation, "raw"]], model=model)   # the sandwich reads the model's data
        adjusted = sandwich(raw)
        rows += interval_rows(scenario, simulation, "sandwich", _draw_quantiles(adjusted, names))
        if scenario.name == EXAMPLE and simulation == 0:
            sum_ess = fits.idata_of(fit_of[simulation, "sum_ess"], log_likelihood=False)
            example = {"raw": raw, "sum_ess": sum_ess, "sandwich": adjusted}
    progress("calibration", f"{scenario.name}: weighted likelihood bootstrap of {count} data sets")
    wlb = weighted_likelihood_bootstrap_many(
        model, [{**data, "weights": weights} for data, weights in simulated], wlb_draws,
        [seed_for(settings.seed, scenario.name, s, "wlb") for s in range(count)])
    for simulation, idata in enumerate(wlb):
        if idata is not None:
            rows += interval_rows(scenario, simulation, "wlb", _draw_quantiles(idata, names))
    if scenario.name == EXAMPLE and wlb[0] is not None:
        example["wlb"] = wlb[0]
    progress("calibration", f"{scenario.name}: GPC of {count} data sets")
    scales = []
    for simulation, (data, weights) in enumerate(simulated):
        gpc_rows, record = logistic_gpc(scenario, simulation, data, weights, gpc_bootstrap,
                                        seed_for(settings.seed, scenario.name, simulation))
        rows += gpc_rows
        scales += [record] if record is not None else []
    return ScenarioFits(rows, diagnostics, sum(int(w.attrs["failed_draws"]) for w in wlb if w is not None),
                        sum(w is None for w in wlb), example, scales)


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


def gpc_rows(scenario: Scenario, records: list[dict], count: int) -> list[dict]:
    """GPC's scale and effective sample size (median and quartiles over data sets), the share of data
    sets whose iteration converged, and the data sets without a WMLE (no GPC)."""
    table = [summary.point(scenario.name, "gpc", "undefined_data_sets", count - len(records))]
    if not records:
        return table
    for quantity in ("scale", "effective_sample_size"):
        values = np.array([r[quantity] for r in records])
        table.append(summary.interval(scenario.name, "gpc", quantity, float(np.median(values)),
                                      *np.quantile(values, [0.25, 0.75])))
    table.append(summary.point(scenario.name, "gpc", "converged_share",
                               float(np.mean([r["converged"] for r in records]))))
    return table


def implied_scales(rows: list[dict]) -> dict[str, dict[str, np.ndarray]]:
    """Per scenario and method in :data:`SCALE_METHODS`, per data set: ``(width_raw / width_method)^2``
    of the 90% intervals, geometric mean over the parameters (the module docstring)."""
    width = {(r["scenario"], r["simulation"], r["method"], r["parameter"]): r["width_90"] for r in rows}
    found: dict[str, dict[str, list]] = {}
    for (scenario, simulation, method, parameter), value in width.items():
        raw = width.get((scenario, simulation, "raw", parameter))
        if method in SCALE_METHODS and raw is not None and value > 0:
            per_method = found.setdefault(scenario, {m: {} for m in SCALE_METHODS})[method]
            per_method.setdefault(simulation, []).append(np.log((raw / value) ** 2))
    return {scenario: {method: np.exp(np.array([np.mean(v) for v in by_simulation.values()]))
                       for method, by_simulation in methods.items()} for scenario, methods in found.items()}


def main(settings: Settings, output: Output) -> Report:
    check_settings(settings)
    plotting.apply_style()
    counts = SIMULATIONS_QUICK if settings.quick else SIMULATIONS
    wlb_draws = WLB_DRAWS_QUICK if settings.quick else WLB_DRAWS
    gpc_bootstrap = GPC_BOOTSTRAP_QUICK if settings.quick else GPC_BOOTSTRAP
    progress("calibration", f"{counts['coin']} coin, {counts['logistic']} logistic and {counts['focal']} "
                            f"focal-loss data sets per scenario; NUTS {settings.chains} x ({settings.tune} + "
                            f"{settings.draws}), WLB {wlb_draws} draws; one batch per scenario")
    results = {}
    for scenario in SCENARIOS:
        fit = fit_coin if scenario.family == "coin" else fit_logistic
        results[scenario.name] = fit(scenario, counts[scenario.family], settings, wlb_draws, gpc_bootstrap)
    rows = sorted((r for result in results.values() for r in result.rows),
                  key=lambda r: (r["scenario"], r["simulation"], METHODS.index(r["method"]), r["parameter"]))
    table, fits = [], {}
    for scenario in SCENARIOS:
        table += summary_rows(scenario, rows)
        result = results[scenario.name]
        if scenario.family != "coin":
            table.append(summary.point(scenario.name, "wlb", "failed_draws", result.wlb_failed_draws))
            table.append(summary.point(scenario.name, "wlb", "undefined_data_sets", result.wlb_undefined))
            for method in (m for m in METHODS if m in scenario.nuts_methods):
                fit_summary = summarise_fits(result.diagnostics[method])
                fits[f"{scenario.name}/{method}"] = fit_summary
                table.append(summary.point(scenario.name, method, "fits_failing_diagnostics",
                                           fit_summary.failing))
        table += gpc_rows(scenario, result.gpc, counts[scenario.family])
    implied = implied_scales(rows)
    for scenario in SCENARIOS:
        for method in SCALE_METHODS:
            values = implied.get(scenario.name, {}).get(method, np.array([]))
            if values.size == 0:   # every data set lacked the method (no WMLE for the WLB and GPC)
                continue
            table.append(summary.interval(scenario.name, method, "implied_scale", float(np.median(values)),
                                          *np.quantile(values, [0.25, 0.75])))
    columns = ("scenario", "simulation", "method", "parameter", "true_value", "covered_50", "covered_90",
               "width_50", "width_90")
    output.table(rows, "coverage.csv", columns=columns)
    output.table([record for result in results.values() for record in result.gpc], "gpc.csv",
                 columns=("scenario", "simulation", "scale", "effective_sample_size", "coverage", "converged",
                          "iterations"))
    example = results[EXAMPLE].example
    for name, idata in example.items():
        if name != "sum_ess":
            output.posterior(idata, f"example_{name}.nc", scenario=EXAMPLE, weighting=name,
                             seed=settings.seed)
    output.figure(figures.plot_coverage(table, SCENARIOS, METHODS), "coverage.png")
    output.figure(figures.plot_width(table, SCENARIOS, METHODS), "width_coverage.png")
    output.figure(figures.plot_scales(implied, SCENARIOS, SCALE_METHODS), "scales.png")
    truth = next(s for s in SCENARIOS if s.name == EXAMPLE).truth
    draws = {method: {name: _flat_draws(idata, name)[:, 0] for name in truth}
             for method, idata in example.items()}
    output.figure(figures.plot_example(draws, truth), "wlb_vs_nuts.png")
    return Report(rows=table, fits=fits)
