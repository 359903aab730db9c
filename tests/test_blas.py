"""PyTensor links a BLAS once `models` is imported (a fresh interpreter: tests/test_fresh_interpreter.py)."""

import numpy as np
import pytensor
import pytensor.tensor as pt

from models._config import blas


def test_blas_ldflags_set_after_import():
    assert pytensor.config.blas__ldflags, "PyTensor has no BLAS: install libopenblas-dev (make setup)"
    assert blas.find_openblas() is not None


def test_matrix_products_compile_to_the_c_blas_op():
    # Without BLAS flags PyTensor falls back to the Python-level Gemv; with them it uses CGemv.
    matrix, vector = pt.matrix("matrix"), pt.vector("vector")
    product = pytensor.function([matrix, vector], pt.dot(matrix, vector))
    assert "CGemv" in {type(node.op).__name__ for node in product.maker.fgraph.toposort()}
    a, x = np.arange(6.0).reshape(2, 3), np.array([1.0, -1.0, 2.0])
    np.testing.assert_allclose(product(a, x), a @ x, rtol=1e-15)
