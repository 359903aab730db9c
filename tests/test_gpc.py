"""Generalised posterior calibration (models/gpc.py) on the coin, where the answer is known.

With 60 tosses of weight 1 the posterior is the exact Bayesian one, whose credible intervals cover the
WMLE of bootstrap resamples at about their nominal rate (Bernstein-von Mises): GPC should keep
omega near 1. Multiplying every weight by 10 changes nothing but the scale, so GPC must find omega
near 1/10: the same effective sample size, omega x sum w, about 60.
"""

import numpy as np
import pytest

from models import batched, calibrate, coin
from models.errors import InputError
from models.gpc import covers

pytestmark = pytest.mark.skipif(not batched.available(), reason="GPC's bootstrap fits run batched here")

FLIPS = np.random.default_rng(11).binomial(1, 0.35, 60)
SETTINGS = {"bootstrap": 100, "draws": 400, "tune": 300, "chains": 2, "sampler": "numpyro"}


def test_covers_is_the_draws_own_credible_ellipsoid():
    rng = np.random.default_rng(0)
    draws = rng.normal(size=(20000, 2)) * [1.0, 3.0]
    # The 90% ellipsoid of a Gaussian: Mahalanobis distance^2 below the chi-square(2) 0.9 quantile, 4.61.
    assert covers(draws, np.array([2.0, 0.0]), 0.9) and not covers(draws, np.array([2.3, 0.0]), 0.9)
    assert covers(draws, np.array([0.0, 6.3]), 0.9) and not covers(draws, np.array([0.0, 6.6]), 0.9)


@pytest.mark.parametrize("scale", [1.0, 10.0])
def test_gpc_undoes_the_weights_scale(scale):
    """Both runs end with omega x sum w within 35% of 60 (the coverage estimate from 100 bootstrap
    fits has a Monte Carlo sd of 0.03, about 0.12 in log omega near 0.9, and the stopping tolerance
    adds as much again; a scale left uncorrected would be off by a factor of 10)."""
    model = coin.build_model(FLIPS, np.full(FLIPS.size, scale))
    result = calibrate.gpc(model, level=0.9, random_seed=3, **SETTINGS)
    assert result.converged and abs(result.coverage - 0.9) <= 0.03
    assert result.effective_sample_size == pytest.approx(FLIPS.size, rel=0.35)
    assert result.scale * scale == pytest.approx(1.0, rel=0.35)
    assert result.path[0]["scale"] == 1.0 and result.path[-1]["coverage"] == result.coverage
    np.testing.assert_allclose(result.idata.constant_data["weights"], result.scale * scale)
    assert result.idata.attrs["gpc_scale"] == result.scale
    np.testing.assert_allclose(model["weights"].get_value(), scale)   # the model keeps its own weights


def test_gpc_refuses_what_it_cannot_calibrate():
    with pytest.raises(InputError, match="level"):
        calibrate.gpc(coin.build_model(FLIPS), level=1.5, random_seed=1)
    with pytest.raises(InputError, match="bootstrap"):
        calibrate.gpc(coin.build_model(FLIPS), random_seed=1, bootstrap=3)
