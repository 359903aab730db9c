"""The many-fit diagnostics (models/diagnostics.py) are ArviZ's, computed for many series at once:
rank-normalised split r-hat and bulk and tail ESS equal ``az.rhat`` and ``az.ess`` to rounding, and
``diagnose_draws`` equals ``diagnose`` fit by fit."""

import arviz as az
import numpy as np
import pytest

from models import diagnostics


def autoregressive(rng, chains, draws, phi, rounded=False):
    noise = rng.normal(size=(chains, draws))
    values = np.zeros((chains, draws))
    for t in range(draws):
        values[:, t] = (phi * values[:, t - 1] if t else 0.0) + noise[:, t]
    return np.round(values, 1) if rounded else values   # rounding makes ties (ranks, quantiles)


def test_rank_diagnostics_equal_arviz_series_by_series():
    rng = np.random.default_rng(0)
    for trial in range(60):
        chains, draws = int(rng.integers(1, 5)), int(rng.integers(8, 300))
        x = autoregressive(rng, chains, draws, rng.uniform(-0.5, 0.99), rounded=trial % 5 == 0)
        r_hat, bulk, tail = (v[0] for v in diagnostics.rank_diagnostics(x[None]))
        # Sums of a few hundred float64 terms in another order: agreement to 1e-9 relative.
        assert bulk == pytest.approx(az.ess(x, method="bulk"), rel=1e-9)
        assert tail == pytest.approx(az.ess(x, method="tail"), rel=1e-9)
        if chains > 1:
            assert r_hat == pytest.approx(az.rhat(x), rel=1e-9)
        else:
            assert np.isnan(r_hat)


def test_diagnose_draws_equals_diagnose_fit_by_fit():
    rng = np.random.default_rng(1)
    fits, chains, draws = 5, 3, 200
    posterior = {"a": rng.normal(size=(fits, chains, draws)).cumsum(axis=2) * 0.05
                 + rng.normal(size=(fits, chains, draws)),
                 "b": rng.normal(size=(fits, chains, draws, 2, 2)),
                 "fixed": np.zeros((fits, chains, draws))}   # constant: skipped, not bad
    posterior["b"][2, 0, 5, 1, 0] = np.nan                  # a NaN draw: counted, and the fit fails
    diverging = rng.random((fits, chains, draws)) < 0.002
    energy = (rng.normal(size=(fits, chains, draws)).cumsum(axis=2) * 0.1
              + rng.normal(size=(fits, chains, draws)))
    many = diagnostics.diagnose_draws(posterior, diverging, energy)
    for fit in range(fits):
        # ArviZ, element by element, over the elements that vary and are finite.
        idata = az.from_dict(posterior={k: v[fit] for k, v in posterior.items()})
        kept = {k: np.isfinite(idata.posterior[k].values).all(axis=(0, 1))
                & (idata.posterior[k].std(dim=("chain", "draw")).values > 0) for k in posterior}

        def worst(statistic, reduce, kept=kept):
            return reduce(np.concatenate([np.ravel(statistic[k].values[kept[k]]) for k in posterior]))

        assert many[fit].max_r_hat == pytest.approx(worst(az.rhat(idata), np.max), rel=1e-9)
        assert many[fit].min_ess_bulk == pytest.approx(worst(az.ess(idata, method="bulk"), np.min), rel=1e-9)
        assert many[fit].min_ess_tail == pytest.approx(worst(az.ess(idata, method="tail"), np.min), rel=1e-9)
        assert many[fit].min_bfmi == pytest.approx(np.min(az.bfmi(energy[fit])), rel=1e-12)
        assert many[fit].divergences == diverging[fit].sum()
    assert many[2].nonfinite_draws == 1 and not many[2].ok
    assert [d.nonfinite_draws for d in many] == [0, 0, 1, 0, 0]
