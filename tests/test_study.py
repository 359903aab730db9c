"""The machinery every analysis shares (analyses/study.py): statistics of many fits, thinning, seeds."""

import numpy as np
import pytest
from scipy import stats

from analyses import study
from models.inference import Diagnostics


def test_jeffreys_interval_is_the_beta_half_posterior_quantiles():
    low, high = study.jeffreys_interval(45, 50)
    assert (low, high) == pytest.approx(stats.beta(45.5, 5.5).ppf([0.025, 0.975]), rel=1e-12)
    assert low < 0.9 < high


def test_coverage_interval_is_jeffreys_for_one_parameter_and_clustered_for_several():
    one = np.r_[np.ones(45), np.zeros(5)][:, None]
    assert study.coverage_interval(one) == study.jeffreys_interval(45, 50)
    # Parameters that always agree within a simulation carry the information of one parameter.
    twins = np.repeat(one, 2, axis=1)
    low, high = study.coverage_interval(twins)
    assert low < 0.9 < high and high - low > 0.8 * np.subtract(*study.jeffreys_interval(45, 50)[::-1])


def test_fits_summary_takes_the_worst_and_tolerates_a_few_failing_fits():
    good = Diagnostics(1.001, 900.0, 800.0, 0, 0.9, 2, 1000)
    unlucky = Diagnostics(1.012, 300.0, 950.0, 0, 1.1, 2, 1000)
    summary = study.summarise_fits([good] * 19 + [unlucky])
    worst = summary.worst
    worst_values = (worst.max_r_hat, worst.min_ess_bulk, worst.min_ess_tail, worst.min_bfmi)
    assert worst_values == (1.012, 300.0, 800.0, 0.9)
    assert summary.failing == 1 and summary.ok  # 1 of 20 = 5%: chance
    assert not study.summarise_fits([good] * 18 + [unlucky] * 2).ok  # 10%: a problem
    divergent = Diagnostics(1.001, 900.0, 800.0, 3, 0.9, 2, 1000)
    assert not study.summarise_fits([good] * 99 + [divergent]).ok  # any divergence


def test_thin_takes_evenly_spaced_draws_and_all_of_few():
    draws = np.arange(1000)
    np.testing.assert_array_equal(study.thin(draws, 5), [0, 249, 499, 749, 999])
    np.testing.assert_array_equal(study.thin(draws[:3], 5), [0, 1, 2])


def test_seeds_are_keyed_by_what_they_seed():
    assert study.seed_for(3, "bandit", "awr") == study.seed_for(3, "bandit", "awr")
    assert study.seed_for(3, "bandit", "awr") != study.seed_for(3, "bandit", "advantage")
    assert study.seed_for(3, "bandit", "awr") != study.seed_for(4, "bandit", "awr")
    # A stream does not depend on which others were drawn before it, and strings key it the same
    # on every machine (CRC-32, not Python's salted hash): this value is fixed.
    np.testing.assert_array_equal(study.rng_for(3, "data", 7).integers(10, size=3),
                                  np.random.default_rng([3, 2918445923, 7]).integers(10, size=3))
