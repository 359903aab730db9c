import csv
import subprocess
import sys

import numpy as np
import pytest

import models  # noqa: F401  (BLAS configuration before PyTensor compiles anything)

# The seed's example: 10 tosses, 7 heads, the 3rd toss (heads) weighted 10.
SEED_FLIPS = np.array([1, 0, 1, 1, 0, 1, 1, 0, 1, 1])
SEED_WEIGHTS = np.array([1, 1, 10, 1, 1, 1, 1, 1, 1, 1], dtype=float)


@pytest.fixture
def flips():
    return SEED_FLIPS.copy()


@pytest.fixture
def key_weights():
    return SEED_WEIGHTS.copy()


@pytest.fixture(scope="session")
def run_quick(tmp_path_factory):
    """``run_quick(name)``: ``python -m analyses NAME --quick --seed 3`` into a fresh folder, as a
    user runs it; returns ``(folder, completed process, summary rows)`` after asserting exit 0."""

    def run(name: str):
        out = tmp_path_factory.mktemp(name)
        done = subprocess.run([sys.executable, "-m", "analyses", name, "--quick", "--seed", "3",
                               "--out", str(out)], capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr
        with open(out / "results" / name / "summary.csv", newline="") as handle:
            return out, done, list(csv.DictReader(handle))

    return run
