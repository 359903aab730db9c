"""wmle models: one weighted log density, ``log p(theta) + sum_i w_i log p(y_i | theta)``.

Importing this package first points PyTensor at OpenBLAS (see :mod:`models.blas`), so every
model compiles against a BLAS, then makes its C compilation cheaper (:mod:`models.cxx`: a
precompiled header, no debug information).
"""

import warnings

from models import blas

blas.configure()
# ArviZ 0.23 announces its 1.0 refactor on every import; this suite pins 0.23 on purpose.
warnings.filterwarnings("ignore", message="ArviZ is undergoing a major refactor", category=FutureWarning)

import pymc  # noqa: E402, F401  (sets PyTensor compiler flags of its own, which cxx builds on)

from models import cxx  # noqa: E402

cxx.configure()

__all__ = ["blas", "cxx"]
