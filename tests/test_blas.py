"""PyTensor links a BLAS once `models` is imported, in a fresh interpreter, without warnings."""

import subprocess
import sys

import pytensor

import models


def test_blas_ldflags_set_after_import():
    assert pytensor.config.blas__ldflags, "PyTensor has no BLAS: install libopenblas-dev (make setup)"
    assert models.blas.find_openblas() is not None


def test_fresh_interpreter_links_blas_without_warning():
    code = "import models, pytensor, arviz; print(pytensor.config.blas__ldflags)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "openblas" in done.stdout
    assert "could not link to a BLAS" not in done.stderr
