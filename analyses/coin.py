"""Coin: one heavily weighted toss moves the MLE; the scale of the weights moves only the posterior.

Question. Ten tosses give seven heads, so the MLE of p(heads) is 0.7. The third toss (heads) was
"decisive" and gets weight 10: the weighted MLE becomes (6 + 10) / (9 + 10) = 16/19 = 0.842. How do
MAP and posterior respond, and what does the overall scale of the weights (as given, summing to n,
summing to Kish's effective sample size) change?

Model (``models.coin``):

    p ~ Beta(2, 2)
    log p(p | y, w) = log Beta(p | 2, 2) + sum_i w_i [y_i log p + (1 - y_i) log(1 - p)] + const

whose exact posterior is Beta(2 + sum w y, 2 + sum w (1 - y)); NUTS draws are checked against it.
Rescaling all weights by c leaves the WMLE at 16/19 but multiplies the pseudo-counts by c.

One model is built and compiled; every fit (the four weightings, the sweep) swaps its weights in.

Outputs (``figures/coin/``, drawn by ``analyses.figures.coin``): ``log_likelihood.png``,
``posteriors.png``, ``weight_sweep.png``, ``trace_rank.png``; (``results/coin/``): one NetCDF
posterior per weighting, ``summary.csv``, ``weight_sweep.csv``.
"""

from __future__ import annotations

from dataclasses import dataclass

import arviz as az
import numpy as np
import pymc as pm
from scipy import optimize

from analyses.figures import coin as figures
from analyses.figures import style as plotting
from analyses.output import Output
from analyses.study import Report, Settings, progress, progress_bar, seed_for
from models import coin, inference, summary

FLIPS = np.array([1, 0, 1, 1, 0, 1, 1, 0, 1, 1])  # 7 heads; the 3rd toss (index 2) is heads
KEY_TOSS = 2
KEY_WEIGHT = 10.0
PRIOR = (2.0, 2.0)
NORMALIZATIONS = {"none": "weights_as_given", "n": "weights_sum_n", "ess": "weights_sum_ess"}
SWEEP_GRID = np.geomspace(1, 100, 81)
SWEEP_NUTS = (1.0, 3.0, 10.0, 30.0, 100.0)
SWEEP_NUTS_QUICK = (100.0,)
SWEEP_COLUMNS = ("normalize", "key_weight", "estimator", "value", "lower", "upper", "diagnostics_ok")


def key_weights(weight: float) -> np.ndarray:
    """All ones except the third toss, which gets ``weight``."""
    w = np.ones(FLIPS.size)
    w[KEY_TOSS] = weight
    return w


def beta_hdi(distribution, prob: float = summary.HDI_PROB) -> tuple[float, float]:
    """Exact highest-density interval of a unimodal scipy distribution (shortest prob-interval)."""
    width = lambda low: distribution.ppf(low + prob) - distribution.ppf(low)  # noqa: E731
    low = optimize.minimize_scalar(width, bounds=(0.0, 1.0 - prob), method="bounded",
                                   options={"xatol": 1e-10}).x
    return float(distribution.ppf(low)), float(distribution.ppf(low + prob))


def _variants() -> dict[str, tuple[np.ndarray | None, str]]:
    variants = {"unweighted": (None, "none")}
    variants.update({label: (key_weights(KEY_WEIGHT), how) for how, label in NORMALIZATIONS.items()})
    return variants


def _weights(weights, how: str) -> np.ndarray:
    """``weights`` checked and rescaled by ``how`` exactly as ``coin.build_model`` does."""
    return coin.prepare(FLIPS, weights, prior=PRIOR, normalize=how)[1]


@dataclass(frozen=True)
class CoinFit:
    """One weighting's estimators and its exact posterior."""

    label: str
    weights: np.ndarray
    comparison: inference.Comparison
    exact: object  # the conjugate Beta (scipy frozen)


def fit_variants(model, settings: Settings, output: Output) -> dict[str, CoinFit]:
    """(W)MLE, MAP and NUTS of every weighting, on one compiled model (one batch of posteriors)."""
    variants = _variants()
    progress("coin", f"fitting {', '.join(variants)}: (W)MLE, MAP, NUTS {settings.chains} x {settings.draws}")
    weights = {label: _weights(w, how) for label, (w, how) in variants.items()}
    with progress_bar("coin", "weightings", len(variants)) as update:
        seeds = [seed_for(settings.seed, label) for label in variants]
        comparisons = inference.compare_many(model, [{"weights": w} for w in weights.values()],
                                             random_seeds=seeds, **settings.sampling(),
                                             posterior_predictive=True, progress=update)
    fits = {}
    for (label, (w, how)), comparison in zip(variants.items(), comparisons):
        output.posterior(comparison.idata, f"{label}.nc", model=label, normalize=how, prior=f"Beta{PRIOR}",
                         flips=str(FLIPS.tolist()), weights=str(weights[label].round(6).tolist()))
        fits[label] = CoinFit(label, weights[label], comparison,
                              coin.exact_posterior(FLIPS, w, prior=PRIOR, normalize=how))
    return fits


def _rows(fit: CoinFit) -> list[dict]:
    exact, idata = fit.exact, fit.comparison.idata
    return [
        *fit.comparison.rows(fit.label, ["p"]),
        summary.interval(fit.label, "exact_posterior", "p", exact.mean(), *beta_hdi(exact)),
        summary.point(fit.label, "exact_posterior", "p_sd", exact.std()),
        summary.point(fit.label, "posterior", "p_sd", idata.posterior["p"].std()),
    ]


def main(settings: Settings, output: Output) -> Report:
    plotting.apply_style()
    model = coin.build_model(FLIPS, prior=PRIOR)
    fits = fit_variants(model, settings, output)
    rows = [row for fit in fits.values() for row in _rows(fit)]
    diagnostics = {label: fit.comparison.diagnostics for label, fit in fits.items()}

    sweep, sweep_diagnostics = _sweep(model, settings)
    output.table(sweep, "weight_sweep.csv", columns=SWEEP_COLUMNS)

    output.figure(figures.plot_log_likelihood(model, fits), "log_likelihood.png")
    output.figure(figures.plot_posteriors(fits), "posteriors.png")
    output.figure(figures.plot_sweep(sweep, NORMALIZATIONS), "weight_sweep.png")
    output.figure(figures.plot_trace(fits["weights_as_given"].comparison.idata), "trace_rank.png")
    return Report(rows=rows, fits=diagnostics | sweep_diagnostics)


def _sweep(model, settings: Settings):
    """WMLE, exact posterior and NUTS as the 3rd toss's weight c goes from 1 to 100.

    Exact posterior on a fine grid; the WMLE and NUTS at a few weights, under each normalisation (the
    NUTS fits in one batch). Returns tidy rows and the diagnostics of each NUTS fit.
    """
    wmle_weights = np.geomspace(1, 100, 3 if settings.quick else 9)
    nuts_weights = SWEEP_NUTS_QUICK if settings.quick else SWEEP_NUTS
    rows = []
    for how in NORMALIZATIONS:
        for weight in SWEEP_GRID:
            exact = coin.exact_posterior(FLIPS, key_weights(weight), prior=PRIOR, normalize=how)
            rows.append(dict(zip(SWEEP_COLUMNS, (how, weight, "exact_posterior", exact.mean(),
                                                 *beta_hdi(exact)))))
        for weight in wmle_weights:
            pm.set_data({"weights": _weights(key_weights(weight), how)}, model=model)
            rows.append(dict(zip(SWEEP_COLUMNS, (how, weight, "wmle", float(inference.mle(model)["p"])))))
    points = [(how, weight) for how in NORMALIZATIONS for weight in nuts_weights]
    progress("coin", f"weight sweep: NUTS at c = {', '.join(f'{c:g}' for c in nuts_weights)} under each "
                     f"normalisation, {len(points)} fits")
    datasets = [{"weights": _weights(key_weights(weight), how)} for how, weight in points]
    seeds = [seed_for(settings.seed, "sweep", how, weight) for how, weight in points]
    with progress_bar("coin", "weight sweep", len(datasets)) as update:
        fits = inference.sample_many(model, datasets, random_seeds=seeds, **settings.sampling(),
                                     progress=update)
    diagnostics = {}
    for index, (how, weight) in enumerate(points):
        draws = fits.posterior["p"][index]
        lower, upper = az.hdi(draws.ravel(), hdi_prob=summary.HDI_PROB)
        fit = diagnostics[f"sweep_{NORMALIZATIONS[how]}_c{weight:g}"] = fits.diagnostics[index]
        rows.append(dict(zip(SWEEP_COLUMNS, (how, weight, "posterior", float(draws.mean()), lower, upper,
                                             int(fit.ok)))))
    return rows, diagnostics
