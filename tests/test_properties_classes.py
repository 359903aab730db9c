"""Property-based tests (hypothesis) for the classes model and the class-weight schemes: random valid
input gives finite log density and gradient; random invalid input is refused with ValueError; the
schemes keep their defining identities for any labels."""

import numpy as np
import pymc as pm
import pytensor
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from models import classes, weights

pytestmark = pytest.mark.python_mode

FAST = settings(max_examples=200, deadline=None)
COMPILED_ONCE = settings(max_examples=60, deadline=None)

N, FEATURES = 12, 2


@st.composite
def labels(draw, min_classes=2, max_classes=5, max_size=40):
    """Integer labels 0..K-1 with every class present."""
    k = draw(st.integers(min_classes, max_classes))
    extra = draw(st.lists(st.integers(0, k - 1), max_size=max_size - k))
    y = np.array(list(range(k)) + extra)
    return np.array(draw(st.permutations(y)))


@FAST
@given(labels())
def test_balanced_gives_every_class_the_same_total_weight(y):
    w = weights.balanced(y)
    k = y.max() + 1
    totals = np.bincount(y, weights=w)
    np.testing.assert_allclose(totals, y.size / k, rtol=1e-12)
    assert w.sum() == pytest.approx(y.size)


@FAST
@given(labels(), st.floats(0.0, 0.9999))
def test_effective_number_lies_between_equal_and_inverse_frequency(y, beta):
    w = weights.effective_number(y, beta)
    counts = np.bincount(y)
    per_class = np.array([w[y == k][0] for k in range(counts.size)])
    assert per_class.sum() == pytest.approx(counts.size)  # sums to K over classes
    # Rarer classes never weigh less; no class is up-weighted beyond inverse frequency.
    order = np.argsort(counts)
    assert np.all(np.diff(per_class[order]) <= 1e-12)
    ratio = per_class.max() / per_class.min()
    assert ratio <= counts.max() / counts.min() * (1 + 1e-9)


@st.composite
def invalid_class_input(draw):
    """(X, y, defect): exactly one defect of the kinds the builder must refuse."""
    n = draw(st.integers(3, 15))
    X = draw(arrays(float, (n, 2), elements=st.floats(-5, 5)))
    y = np.r_[0, 1, draw(arrays(np.int64, n - 2, elements=st.integers(0, 1)))]
    defect = draw(st.sampled_from(["nan", "inf", "length", "one class", "negative", "fraction", "gap"]))
    i = draw(st.integers(0, n - 1))
    if defect == "nan":
        X[i, draw(st.integers(0, 1))] = np.nan
    elif defect == "inf":
        X[i, draw(st.integers(0, 1))] = draw(st.sampled_from([np.inf, -np.inf]))
    elif defect == "length":
        y = np.r_[y, draw(st.integers(0, 1))] if draw(st.booleans()) else y[:-1]
    elif defect == "one class":
        y = np.full(n, draw(st.integers(0, 3)))
    elif defect == "negative":
        y = y.copy()
        y[i] = -draw(st.integers(1, 9))
    elif defect == "fraction":
        y = y.astype(float)
        y[i] = draw(st.sampled_from([0.5, 1.25, np.nan]))
    else:
        y = y.copy()
        y[i] = 2 + draw(st.integers(1, 5))  # skips class 2: a gap
    return X, y, defect


MESSAGES = {"nan": "X has", "inf": "X has", "length": "y has length", "one class": "one class only",
            "negative": "integer class codes", "fraction": "integer class codes",
            "gap": "no sample of class|codes must run 0..K-1"}


@FAST
@given(invalid_class_input())
def test_invalid_class_input_is_refused_naming_the_argument(case):
    X, y, defect = case
    with pytest.raises(ValueError, match=MESSAGES[defect]):
        classes.prepare(X, y)


@pytest.fixture(scope="module", params=[(2, "categorical"), (3, "categorical"), (2, "focal")],
                ids=["binary", "three_classes", "binary_focal"])
def compiled(request):
    """One model per case, compiled once, and its initial point (priors' support points, which no
    data enter); hypothesis feeds data through pm.set_data. Features up to 10 and coefficients up to 3
    from the start reach logits of +-60, where PyMC's own logit_p Bernoulli and Categorical already
    return NaN gradients."""
    k, likelihood = request.param
    model = classes.build_model(np.zeros((N, FEATURES)), np.arange(N) % k, np.ones(N), likelihood=likelihood)
    with pytensor.config.change_flags(mode="FAST_COMPILE"):   # module scope: outside the autouse fixture
        logp, dlogp = model.compile_logp(), model.compile_dlogp()
        start = model.initial_point()   # compiles a function on every call
    return k, model, logp, dlogp, start


@COMPILED_ONCE
@given(data=st.data())
def test_random_valid_data_give_finite_log_density_and_gradient(compiled, data):
    k, model, logp, dlogp, start = compiled
    X = data.draw(arrays(float, (N, FEATURES), elements=st.floats(-10, 10)))
    y = data.draw(arrays(np.int64, N, elements=st.integers(0, k - 1)))
    w = data.draw(arrays(float, N, elements=st.floats(0, 100)))
    assume(w.sum() > 0)
    pm.set_data({"X": X, "y": y, "weights": w}, model=model)
    point = {name: value + data.draw(st.floats(-3, 3)) for name, value in start.items()}
    assert np.isfinite(logp(point))
    assert np.all(np.isfinite(dlogp(point)))
