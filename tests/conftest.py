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
