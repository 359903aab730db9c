"""The batched engine (models/sampling/batched.py) against exact posteriors and the one-at-a-time path.

Each JAX program costs a few seconds to compile, so one engine per model is shared by the tests
of this file (which pytest keeps on one worker: ``--dist loadfile``).
"""

import subprocess
import sys

import numpy as np
import pymc as pm
import pytest
from scipy import stats

from models import calibrate, classes, coin, inference
from models.calibrate.wlb import BatchedWLB
from models.errors import InputError
from models.sampling import batched, dispatch

pytestmark = pytest.mark.skipif(not dispatch.batched_available(), reason="needs the jax extra")

FITS, CHAINS, TUNE, DRAWS = 24, 2, 300, 500
FLIPS = np.array([1, 1, 1, 0, 1, 0, 1, 1, 0, 1])


def _coin_datasets(rng, fits):
    """Random tosses and weights in [0, 5]: exact Beta posteriors, some far from the prior."""
    return [{"flips": rng.integers(0, 2, FLIPS.size), "weights": rng.uniform(0, 5, FLIPS.size)}
            for _ in range(fits)]


@pytest.fixture(scope="module")
def coin_batch():
    model = coin.build_model(FLIPS)
    engine = batched.BatchedNUTS(model, draws=DRAWS, tune=TUNE, chains=CHAINS)
    datasets = _coin_datasets(np.random.default_rng(0), FITS)
    return model, engine, datasets, engine(datasets, list(range(FITS)))


def test_every_fit_matches_its_exact_beta_posterior_within_mcse(coin_batch):
    """Each fit's posterior mean is within 5 MCSE of its exact Beta mean (a chance of about 6e-7
    per fit), so a lane given another lane's data or a shared adaptation fails; the draws' sd
    within 15% of the exact sd (1000 draws of an ESS of hundreds give a few per cent)."""
    _, _, datasets, fits = coin_batch
    assert fits.posterior["p"].shape == (FITS, CHAINS, DRAWS)
    _each_fit_matches_its_exact_beta(datasets, fits)


def _each_fit_matches_its_exact_beta(datasets, fits):
    for index, (data, diagnostics) in enumerate(zip(datasets, fits.diagnostics)):
        exact = coin.exact_posterior(data["flips"], data["weights"])
        draws = fits.posterior["p"][index].ravel()
        mcse = draws.std() / np.sqrt(diagnostics.min_ess_bulk)
        assert abs(draws.mean() - exact.mean()) < 5 * mcse, index
        assert draws.std() == pytest.approx(exact.std(), rel=0.15)
        assert diagnostics.divergences == 0 and diagnostics.max_r_hat < 1.05


def test_a_fit_is_the_same_alone_or_in_a_batch(coin_batch):
    """Lanes share nothing: a data set fitted alone with its seed draws what it drew in the batch
    (another program size, so another vectorisation; agreement to rounding)."""
    _, engine, datasets, fits = coin_batch
    alone = engine([datasets[5]], [5])
    np.testing.assert_allclose(alone.posterior["p"][0], fits.posterior["p"][5], rtol=1e-9)
    np.testing.assert_array_equal(alone.stats["n_steps"][0], fits.stats["n_steps"][5])


@pytest.fixture(scope="module")
def coin_hmc_batch():
    model = coin.build_model(FLIPS)
    engine = batched.BatchedNUTS(model, draws=DRAWS, tune=TUNE, chains=CHAINS, kernel="jittered_hmc")
    datasets = _coin_datasets(np.random.default_rng(1), FITS)
    return model, engine, datasets, engine(datasets, list(range(FITS)))


def test_jittered_hmc_matches_every_exact_beta_posterior_and_a_fit_alone(coin_hmc_batch):
    """The jittered HMC kernel, fit by fit, against the exact Beta posterior (bounds as for NUTS above:
    5 MCSE, sd within 15%), and a fit alone equal to its lane in the batch: to 1e-3, not to rounding,
    as 32 vectorised lanes per device and one lane round differently and 800 iterations of
    trajectories amplify that (differences of about 1e-4 here); a lane given another lane's data or
    adaptation would be off by about the posterior's sd, 0.1."""
    _, engine, datasets, fits = coin_hmc_batch
    assert fits.sampler == "jittered HMC (batched)" and "tree_depth" not in fits.stats
    _each_fit_matches_its_exact_beta(datasets, fits)
    alone = engine([datasets[7]], [7])
    np.testing.assert_allclose(alone.posterior["p"][0], fits.posterior["p"][7], rtol=1e-3)
    with pytest.raises(InputError, match="kernel"):
        batched.BatchedNUTS(coin.build_model(FLIPS), kernel="hmc")


def test_idata_has_the_groups_and_provenance_of_inference_sample(coin_batch):
    model, _, datasets, fits = coin_batch
    idata = fits.idata_of(3)
    groups = {"posterior", "sample_stats", "log_likelihood", "observed_data", "constant_data"}
    assert groups <= set(idata.groups())
    assert idata.posterior["p"].dims == ("chain", "draw")
    np.testing.assert_array_equal(idata.observed_data["heads"], datasets[3]["flips"])
    np.testing.assert_allclose(idata.constant_data["weights"], datasets[3]["weights"])
    # The stored log-likelihood is the weighted pointwise term w_i log p(y_i | p).
    p = idata.posterior["p"].values[..., None]
    expected = datasets[3]["weights"] * stats.bernoulli.logpmf(datasets[3]["flips"], p)
    np.testing.assert_allclose(idata.log_likelihood["heads"].values, expected, rtol=1e-10, atol=1e-12)
    assert idata.attrs["sampler"] == "numpyro (batched)" and idata.attrs["random_seed"] == 3
    assert idata.attrs["tune"] == TUNE and idata.attrs["draws"] == DRAWS


def test_bad_batches_are_refused(coin_batch):
    _, engine, _, _ = coin_batch
    with pytest.raises(InputError, match="one seed per data set"):
        engine([{"flips": FLIPS}], [1, 2])
    with pytest.raises(InputError, match="not pm.Data"):
        engine([{"heads": FLIPS}], [1])
    with pytest.raises(InputError, match="shares one structure"):
        engine([{"flips": np.ones(3, int)}], [1])


def test_sample_many_runs_small_jobs_through_pymc_with_the_same_record():
    model = coin.build_model(FLIPS)
    datasets = _coin_datasets(np.random.default_rng(1), 2)
    result = inference.sample_many(model, datasets, random_seeds=[1, 2], draws=200, tune=200, chains=2)
    assert 2 * 2 * 400 < dispatch.BATCH_MIN_ITERATIONS and "numpyro" not in result.sampler
    assert result.posterior["p"].shape == (2, 2, 200) and len(result.diagnostics) == 2
    for index, data in enumerate(datasets):
        exact = coin.exact_posterior(data["flips"], data["weights"])
        draws = result.posterior["p"][index].ravel()
        mcse = draws.std() / np.sqrt(result.diagnostics[index].min_ess_bulk)
        assert abs(draws.mean() - exact.mean()) < 5 * mcse


def test_batched_wlb_agrees_with_the_one_at_a_time_wlb():
    """The same Dirichlet multipliers (one stream per seed), optimised by damped Newton in JAX and by
    the suite's compiled optimiser one data set at a time: the draws agree to the looser optimiser's
    tolerance. The one-at-a-time draws stop once the preconditioned gradient is below
    ``calibrate.wlb.GRADIENT_TOLERANCE`` (1e-6), which leaves errors of a few 1e-6 in coefficients of
    order 1 at this curvature; the batched Newton iterations run to 1e-12. Hence 1e-5."""
    rng = np.random.default_rng(2)
    X = rng.normal(size=(40, 2))
    y = (X @ [1.0, -0.5] + rng.logistic(size=40) > 0).astype(int)
    model = classes.build_model(X, y)
    datasets = [{"weights": rng.uniform(0.5, 2.0, 40)} for _ in range(3)]
    posterior, failed, fitted = BatchedWLB(model)(datasets, 20, [7, 8, 9])
    assert fitted.all() and not failed.any()
    for index, data in enumerate(datasets):
        pm.set_data(data, model=model)
        one = calibrate.weighted_likelihood_bootstrap(model, draws=20, random_seed=7 + index)
        np.testing.assert_allclose(posterior["coef"][index], one.posterior["coef"].values[0], atol=1e-5)
        np.testing.assert_allclose(posterior["intercept"][index], one.posterior["intercept"].values[0],
                                   atol=1e-5)


def test_an_engine_does_not_keep_its_model_alive():
    """Engines are cached per model in weak-keyed dictionaries (``inference.sample_many``'s batched NUTS,
    ``calibrate``'s batched WLB): an engine that held its model strongly would keep its own key, and
    the model with its compiled programs, alive for good. (The programs an engine compiles close over
    the engine, not the model.) A dropped model is an error, not a None."""
    import gc
    import weakref

    model = coin.build_model(FLIPS)
    engines = [batched.BatchedNUTS(model, draws=10, tune=10, chains=1), BatchedWLB(model)]
    assert all(engine.model is model for engine in engines)
    reference = weakref.ref(model)
    del model
    gc.collect()
    assert reference() is None
    with pytest.raises(ReferenceError, match="keep a reference to the model"):
        engines[0]([{"weights": np.ones(FLIPS.size)}], [1])


DEVICES_SCRIPT = """
import sys
from models.sampling.jax_model import configure_jax
jax = configure_jax(int(sys.argv[1]))   # this many host devices, fixed once JAX starts:
jax.devices()                            # started before the engine asks for one per core
import numpy as np
from models import coin
from models.sampling import batched
model = coin.build_model([1, 1, 1, 0, 1, 0, 1, 1, 0, 1])
datasets = [{"weights": np.full(10, w)} for w in (0.5, 1.0, 2.0, 5.0, 10.0)]
engine = batched.BatchedNUTS(model, draws=50, tune=50, chains=2, lanes_per_device=16)
fits = engine(datasets, [1, 2, 3, 4, 5])
np.save(sys.argv[2], fits.posterior["p"])
print(len(jax.devices()))
"""


def test_the_same_lanes_draw_the_same_on_one_device_or_two(tmp_path):
    """One program over a mesh of 1 or 2 (forced host) devices: each lane's computation is its own, so
    the draws agree to rounding (another split of the lanes, another vectorisation width: 5 fits x 2
    chains make 10 lanes, padded to 16 on one device and to 2 x 8 on two)."""
    runs = {}
    command = [sys.executable, "-c", DEVICES_SCRIPT]
    processes = {n: subprocess.Popen([*command, str(n), str(tmp_path / f"{n}.npy")],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for n in (1, 2)}
    for n, process in processes.items():
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, err[-3000:]
        assert out.split()[-1] == str(n)
        runs[n] = np.load(tmp_path / f"{n}.npy")
    assert runs[1].shape == (5, 2, 50)
    np.testing.assert_allclose(runs[1], runs[2], rtol=1e-9)


def test_adaptation_schedule_has_stans_windows_at_every_length():
    """No windows below 20 warm-up iterations; Stan's shrunk 15% / 75% / 10% split below 150; from 150
    on 75 fast, windows doubling from 25 with the last stretched to the buffer, 50 fast."""
    from models.sampling.hmc import adaptation_schedule

    for tune in (0, 19):
        in_window, window_end = adaptation_schedule(tune)
        assert not in_window.any() and not window_end.any()
    in_window, window_end = adaptation_schedule(20)
    assert in_window.nonzero()[0].tolist() == list(range(3, 18)) and window_end.nonzero()[0].tolist() == [17]
    for tune, ends in ((149, [134]), (150, [99]), (1000, [99, 149, 249, 449, 949])):
        in_window, window_end = adaptation_schedule(tune)
        assert window_end.nonzero()[0].tolist() == ends, tune
        assert in_window.nonzero()[0].max() == ends[-1]


def test_jittered_hmc_samples_a_correlated_gaussian():
    """Four chains on a 2-d Gaussian with sds 1 and 10 and correlation 0.9 (the diagonal mass matrix
    leaves the correlation to the trajectory length): means within 5 MCSE of 0 (ArviZ's, a chance
    below 1e-6 each) and the sample covariance within 10% of the truth (sd ratio of 4000 draws of an
    ESS of thousands: a few per cent)."""
    import arviz as az

    from models.sampling import hmc
    from models.sampling.jax_model import configure_jax

    jax = configure_jax(1)
    covariance = np.array([[1.0, 9.0], [9.0, 100.0]])
    precision = np.linalg.inv(covariance)

    def log_density(z):
        return -0.5 * z @ precision @ z

    def chain(key, z0):
        return hmc.run_lane(jax, log_density, z0, key, tune=500, draws=1000, target_accept=0.8,
                            max_steps=1023)

    keys = jax.random.split(jax.random.PRNGKey(3), 4)
    starts = np.array([[1.0, -5.0], [-1.0, 5.0], [0.5, 0.0], [0.0, 2.0]])
    draws, (diverging, *_) = jax.jit(jax.vmap(chain))(keys, starts)
    draws = np.asarray(draws)
    posterior = az.convert_to_dataset({"z": draws})
    mcse = az.mcse(posterior)["z"].values
    np.testing.assert_array_less(np.abs(draws.mean(axis=(0, 1))), 5 * mcse)
    np.testing.assert_allclose(np.cov(draws.reshape(-1, 2), rowvar=False), covariance, rtol=0.1, atol=0.3)
    assert not np.asarray(diverging).any()
