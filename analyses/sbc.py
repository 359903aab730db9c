"""Simulation-based calibration: do the (weighted) posteriors recover the truth they came from?

Question. Is the sampler, with the suite's weighted likelihood, calibrated when the weights are
frequency weights, and how far from calibrated is a weighted pseudo-posterior when they are not?

Method (Talts et al. 2018). For s = 1..N: draw theta_s from the prior, simulate data y_s from the
generative model (a numpy simulator, independent of the PyMC code under test), fit the weighted
model by NUTS and take L = 99 draws evenly spaced through the pooled chains; rank_s is the number of
draws below theta_s. If the fitted posterior is the true posterior of the process that made the data,
rank_s is uniform on {0, ..., 99}: a U shape means intervals too narrow, a hump too wide, a slope a
bias. Uniformity is tested with a chi-square test on 20 bins; the empirical coverage of central 50%
and 90% intervals says the same in interval terms (with 95% Jeffreys intervals for Monte Carlo error).

Coin scenarios (``models.coin``, prior Beta(2, 2)):

* ``frequency_weights``: 20 tosses stored as two rows, heads and tails, weighted by their counts.
  The weighted likelihood is then the binomial likelihood, the posterior is exact: SBC must pass.
* ``key_toss_x10_as_given`` / ``_sum_n`` / ``_sum_ess``: 10 tosses, the 3rd weighted 10, with the
  weights as given, summing to n, or summing to Kish's ESS. The data are ten tosses, whatever the
  weights say: the weighted posterior is a pseudo-posterior, and SBC shows how far off it is.

Each fit: 2 chains x (500 tuning + 1000 draws) unless ``--chains/--tune/--draws`` say otherwise; one
compiled model per scenario and worker process (``inference.RepeatedNUTS``), fits spread over cores.
Outputs: ``figures/sbc/coin_ranks.png``; ``results/sbc/summary.csv``, ``results/sbc/ranks.csv``.
"""

from __future__ import annotations

import logging
import multiprocessing
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass

import arviz as az
import matplotlib.pyplot as plt
import numpy as np
from scipy import stats

from analyses import plotting, tables
from analyses.cli import Report, Settings
from analyses.output import Output
from models import coin, inference
from models.errors import InputError
from models.inference import Diagnostics

PRIOR = (2.0, 2.0)
RANK_DRAWS = 99  # L: ranks take the L + 1 = 100 values 0..99
BINS = 20
SIMULATIONS = 100
SIMULATIONS_QUICK = 20
CHUNK = 10  # simulations per task: progress granularity
SAMPLER_DEFAULTS = {"draws": 1000, "tune": 500, "chains": 2}
FREQUENCY_TOSSES = 20
KEY_WEIGHTS = np.array([1, 1, 10, 1, 1, 1, 1, 1, 1, 1], dtype=float)


@dataclass(frozen=True)
class Scenario:
    """How data are simulated and weighted; ``exact`` when the weighted posterior is the posterior."""

    name: str
    exact: bool
    normalize: str

    def simulate(self, rng) -> tuple[float, np.ndarray, np.ndarray]:
        """``(p_true, flips, weights)`` from the prior and the Bernoulli generative model."""
        p_true = rng.beta(*PRIOR)
        if self.exact:
            heads = rng.binomial(FREQUENCY_TOSSES, p_true)
            return p_true, np.array([1, 0]), np.array([heads, FREQUENCY_TOSSES - heads], dtype=float)
        return p_true, rng.binomial(1, p_true, size=KEY_WEIGHTS.size), KEY_WEIGHTS


SCENARIOS = (
    Scenario("frequency_weights", exact=True, normalize="none"),
    Scenario("key_toss_x10_as_given", exact=False, normalize="none"),
    Scenario("key_toss_x10_sum_n", exact=False, normalize="n"),
    Scenario("key_toss_x10_sum_ess", exact=False, normalize="ess"),
)

# --------------------------------------------------------------------------- worker processes

_SAMPLERS: dict = {}  # per process: (scenario, draws, tune, chains) -> RepeatedNUTS


def _quiet_worker() -> None:
    import pymc  # noqa: F401  (pymc sets its logger level on import)

    logging.getLogger("pymc").setLevel(logging.WARNING)


def _fit_chunk(scenario_index: int, simulations: list[int], seed: int, draws: int, tune: int,
               chains: int) -> list[dict]:
    """Simulate, fit and rank the given simulations of one scenario (runs in a worker process)."""
    scenario = SCENARIOS[scenario_index]
    key = (scenario_index, draws, tune, chains)
    if key not in _SAMPLERS:
        _, flips, weights = scenario.simulate(np.random.default_rng(0))
        model = coin.build_model(flips, weights, prior=PRIOR, normalize=scenario.normalize)
        _SAMPLERS[key] = inference.RepeatedNUTS(model, draws=draws, tune=tune, chains=chains)
    sampler = _SAMPLERS[key]
    results = []
    for simulation in simulations:
        rng = np.random.default_rng([seed, scenario_index, simulation])
        p_true, flips, weights = scenario.simulate(rng)
        flips, weights, _ = coin.prepare(flips, weights, prior=PRIOR, normalize=scenario.normalize)
        idata = sampler({"flips": flips, "weights": weights}, random_seed=int(rng.integers(2**31 - 1)))
        draws_p = idata.posterior["p"].values.ravel()
        thinned = draws_p[np.linspace(0, draws_p.size - 1, RANK_DRAWS).round().astype(int)]
        q05, q25, q75, q95 = np.quantile(draws_p, [0.05, 0.25, 0.75, 0.95])
        results.append({
            "scenario": scenario.name, "simulation": simulation, "p_true": p_true,
            "rank": int(np.sum(thinned < p_true)),
            "covered_50": int(q25 <= p_true <= q75), "covered_90": int(q05 <= p_true <= q95),
            "diagnostics": inference.diagnose(idata),
        })
    return results


# --------------------------------------------------------------------------- orchestration


def check_settings(settings: Settings) -> None:
    """Ranks among L = 99 draws need at least 99 draws per fit."""
    if settings.draws * settings.chains < RANK_DRAWS:
        raise InputError(f"sbc needs at least {RANK_DRAWS} draws per fit (draws x chains), "
                         f"got {settings.draws} x {settings.chains}")


def _run_all(settings: Settings, simulations: int) -> list[dict]:
    tasks = [(i, list(range(start, min(start + CHUNK, simulations))))
             for i in range(len(SCENARIOS)) for start in range(0, simulations, CHUNK)]
    done = {scenario.name: 0 for scenario in SCENARIOS}
    results = []
    context = multiprocessing.get_context("spawn")
    workers = inference.available_cores()
    with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_quiet_worker) as pool:
        futures = [pool.submit(_fit_chunk, i, chunk, settings.seed, settings.draws, settings.tune,
                               settings.chains) for i, chunk in tasks]
        for future in as_completed(futures):
            chunk = future.result()
            results += chunk
            done[chunk[0]["scenario"]] += len(chunk)
            print("sbc: fits done " + ", ".join(f"{name} {n}/{simulations}" for name, n in done.items()),
                  file=sys.stderr, flush=True)
    return sorted(results, key=lambda r: (r["scenario"], r["simulation"]))


@dataclass(frozen=True)
class FitsSummary:
    """Diagnostics of many fits of one scenario; ``ok`` unless more than 5% of the fits fail.

    With 100 fits some will cross a single-fit threshold (r_hat 1.01, ESS 400) by chance; a share
    above 5% (or any divergence) is a problem of the sampler, not chance.
    """

    fits: int
    failing: int
    divergences: int
    worst: Diagnostics

    ALLOWED_SHARE = 0.05

    @property
    def problems(self) -> list[str]:
        found = []
        if self.failing > self.ALLOWED_SHARE * self.fits:
            found.append(f"{self.failing} of {self.fits} fits fail a diagnostic "
                         f"(worst: {'; '.join(self.worst.problems)})")
        if self.divergences:
            found.append(f"{self.divergences} divergent transition(s) over all fits")
        return found

    @property
    def ok(self) -> bool:
        return not self.problems


def summarise_fits(diagnostics: list[Diagnostics]) -> FitsSummary:
    worst = Diagnostics(
        max_r_hat=max(d.max_r_hat for d in diagnostics),
        min_ess_bulk=min(d.min_ess_bulk for d in diagnostics),
        min_ess_tail=min(d.min_ess_tail for d in diagnostics),
        divergences=sum(d.divergences for d in diagnostics),
        min_bfmi=min(d.min_bfmi for d in diagnostics),
        chains=diagnostics[0].chains,
        draws=diagnostics[0].draws,
        nonfinite_draws=sum(d.nonfinite_draws for d in diagnostics),
    )
    return FitsSummary(fits=len(diagnostics), failing=sum(not d.ok for d in diagnostics),
                       divergences=worst.divergences, worst=worst)


def rank_counts(ranks: np.ndarray) -> np.ndarray:
    """Ranks 0..L in ``BINS`` equal bins."""
    return np.bincount(np.asarray(ranks) * BINS // (RANK_DRAWS + 1), minlength=BINS)


def jeffreys_interval(successes: int, trials: int, level: float = 0.95) -> tuple[float, float]:
    """Jeffreys interval of a binomial proportion (Monte Carlo error of an empirical coverage)."""
    tail = (1 - level) / 2
    posterior = stats.beta(successes + 0.5, trials - successes + 0.5)
    return float(posterior.ppf(tail)), float(posterior.ppf(1 - tail))


def _rows(scenario: Scenario, results: list[dict]) -> tuple[list[dict], FitsSummary]:
    ranks = np.array([r["rank"] for r in results])
    n = ranks.size
    rows = [
        tables.point(scenario.name, "sbc", "simulations", n),
        tables.point(scenario.name, "sbc", "rank_uniformity_pvalue",
                     stats.chisquare(rank_counts(ranks)).pvalue),
    ]
    for level in (50, 90):
        covered = sum(r[f"covered_{level}"] for r in results)
        rows.append(tables.interval(scenario.name, "sbc", f"coverage_{level}", covered / n,
                                    *jeffreys_interval(covered, n)))
    fits = summarise_fits([r["diagnostics"] for r in results])
    rows.append(tables.point(scenario.name, "sbc", "fits_failing_diagnostics", fits.failing))
    worst = tables.diagnostic_rows(scenario.name, fits.worst, estimator="sbc", ok=fits.ok)
    return rows + worst, fits


def main(settings: Settings, output: Output) -> Report:
    check_settings(settings)
    plotting.apply_style()
    simulations = SIMULATIONS_QUICK if settings.quick else SIMULATIONS
    print(f"sbc: {simulations} simulations x {len(SCENARIOS)} scenarios, NUTS {settings.chains} x "
          f"({settings.tune} + {settings.draws}) each, on {inference.available_cores()} processes",
          file=sys.stderr)
    results = _run_all(settings, simulations)
    rows, fits = [], {}
    for scenario in SCENARIOS:
        mine = [r for r in results if r["scenario"] == scenario.name]
        scenario_rows, fits[scenario.name] = _rows(scenario, mine)
        rows += scenario_rows
    columns = ("scenario", "simulation", "p_true", "rank", "covered_50", "covered_90")
    output.table(results, "ranks.csv", columns=columns)
    output.figure(_plot_ranks(results, rows, simulations), "coin_ranks.png")
    return Report(rows=rows, fits=fits)


def _plot_ranks(results: list[dict], rows: list[dict], simulations: int):
    """Per scenario: rank histogram with a pointwise 99% band (top), and the ECDF of the ranks minus
    the uniform CDF with ArviZ's simultaneous 99% band (bottom; Säilynoja et al. 2022)."""
    value = {(r["model"], r["quantity"]): r["value"] for r in rows}
    fig, axs = plt.subplots(2, len(SCENARIOS), figsize=(15, 6.6), sharey="row")
    low, high = stats.binom(simulations, 1 / BINS).ppf([0.005, 0.995])
    edges = np.arange(1, RANK_DRAWS + 1) / (RANK_DRAWS + 1)  # where the ranks' CDF meets U(0, 1)'s
    for column, scenario in enumerate(SCENARIOS):
        ranks = np.array([r["rank"] for r in results if r["scenario"] == scenario.name])
        colour = "C0" if scenario.exact else "C3"
        top, bottom = axs[0, column], axs[1, column]
        top.axhspan(low, high, color="0.85", label="99% band if uniform (per bin)")
        top.axhline(simulations / BINS, color="0.4", linestyle="--", linewidth=1)
        top.bar(np.arange(BINS), rank_counts(ranks), width=0.9, color=colour,
                label=f"ranks of {simulations} simulations")
        top.set_xticks(np.arange(0, BINS + 1, 5) - 0.5, np.arange(0, RANK_DRAWS + 2, 25))
        top.set_title(f"{scenario.name.replace('_', ' ')}\nuniformity p = "
                      f"{value[scenario.name, 'rank_uniformity_pvalue']:.2g}; "
                      f"90% intervals cover {value[scenario.name, 'coverage_90']:.0%}", fontsize=10)
        az.plot_ecdf((ranks + 0.5) / (RANK_DRAWS + 1), cdf=stats.uniform().cdf, difference=True,
                     confidence_bands="optimized", ci_prob=0.99, eval_points=edges, ax=bottom,
                     plot_kwargs={"color": colour}, fill_kwargs={"color": "0.85", "alpha": 1.0})
        bottom.set_xlabel(f"rank / {RANK_DRAWS + 1}")
    axs[0, 0].set_ylabel("simulations per bin")
    axs[1, 0].set_ylabel("ECDF - uniform CDF\n(grey: simultaneous 99% band)")
    axs[0, 0].legend(loc="upper left", fontsize=8)
    fig.suptitle("SBC of the weighted coin: ranks of the true p among 99 posterior draws "
                 "(uniform = calibrated; U shape = intervals too narrow; hump = too wide)")
    fig.tight_layout()
    return fig
