"""What a user's fresh interpreter shows, in one new process (a new interpreter costs seconds of imports
and, from an empty compile cache, the coin model's compilation): PyTensor links a BLAS once `models` is
imported, without warning; without JAX, NumPyro and nutpie the "auto" sampler is PyMC; and PyMC runs
the chains in parallel processes (the model pickles). This pytest process cannot show the last two:
JAX is installed and imported here by the back-end tests, and after JAX has run, PyMC's chains stay in
their process on purpose (forking it can deadlock)."""

import subprocess
import sys

import pytest

from models.sampling import dispatch

SCRIPT = """
import logging, sys
sys.modules.update(dict.fromkeys(["jax", "jaxlib", "numpyro", "nutpie"]))  # None: import fails
import models, pytensor, arviz
from models import coin, inference
from models.sampling import dispatch
print("blas", pytensor.config.blas__ldflags)
print("installed", *dispatch.installed())
logging.basicConfig(level=logging.INFO, stream=sys.stdout)
model = coin.build_model([1, 0, 1, 1], [1.0, 1.0, 10.0, 1.0])
idata = inference.sample(model, draws=50, tune=50, chains=2, cores=2, random_seed=3)
print("sampler", idata.attrs["sampler"], "cores", idata.attrs["cores"])
print("jax imported", sys.modules["jax"] is not None)
"""


@pytest.fixture(scope="module")
def fresh():
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = dict(line.split(" ", 1) for line in done.stdout.splitlines() if " " in line)
    return done, lines


def test_blas_is_linked_without_warning(fresh):
    done, lines = fresh
    assert "openblas" in lines["blas"]
    assert "could not link to a BLAS" not in done.stderr


def test_auto_samples_with_pymc_when_jax_numpyro_and_nutpie_cannot_be_imported(fresh):
    _, lines = fresh
    assert lines["installed"] == "pymc"
    assert lines["sampler"].split()[0] == "pymc"
    assert lines["jax"] == "imported False"


@pytest.mark.skipif(dispatch.available_cores() < 2, reason="needs two cores")
def test_sampling_runs_chains_in_parallel_processes(fresh):
    done, lines = fresh
    assert "Could not pickle model" not in done.stdout + done.stderr
    assert "Multiprocess sampling (2 chains in 2 jobs)" in done.stdout
    assert lines["sampler"].split()[-1] == "2"   # attrs["cores"]

