"""What every weighted model of the suite must satisfy, checked once over a table of families (as
PyMC's ``check_logp`` runs one checker over many distributions):

* weights all ones give the unweighted log-likelihood (against a numpy/scipy reference);
* a zero weight drops its row; an integer weight k equals the row repeated k times;
* the WMLE does not move when every weight is multiplied by c;
* bad weights are refused, naming the argument and the defect.

A family is its fixed data, a builder from (rows, weights) to a model, a parameter point and the
numpy log density of one unweighted row at that point. Log densities are compared at rtol 1e-12
(sums of a few dozen float64 terms); estimates at 1e-7 (L-BFGS to a relative gradient of 1e-12, or
the closed forms, which are exact).
"""

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pymc as pm
import pytensor
import pytensor.tensor as pt
import pytest
from scipy import special, stats

from models import classes, coin, inference, policy
from models.errors import InputError

pytestmark = pytest.mark.python_mode

RNG = np.random.default_rng(20261203)
N = 24


def log_likelihood(model, point: dict) -> float:
    """The model's observed terms at ``point`` (constrained values), compiled without C code (the
    graph is what is checked; a few dozen terms evaluate in microseconds either way)."""
    total = pt.sum([pt.sum(pm.logp(rv, model.rvs_to_values[rv])) for rv in model.observed_RVs])
    function = pytensor.function(model.free_RVs, total, mode="FAST_COMPILE", on_unused_input="ignore")
    return float(function(*(point[rv.name] for rv in model.free_RVs)))


@dataclass(frozen=True)
class Family:
    name: str
    rows: int
    build: Callable          # (row indices, weights or None) -> model over those rows of the data
    point: dict              # constrained values of the free variables
    reference: Callable      # (row indices) -> unweighted log density of each row, numpy
    estimand: str            # the variable whose WMLE is compared across scales

    def model(self, rows=None, weights=None):
        return self.build(np.arange(self.rows) if rows is None else np.asarray(rows), weights)

    def log_likelihood(self, rows=None, weights=None) -> float:
        return log_likelihood(self.model(rows, weights), self.point)


# --------------------------------------------------------------------------- the families

FLIPS = RNG.integers(0, 2, N)
X = RNG.normal(size=(N, 2))
Y_BINARY = (RNG.random(N) < special.expit(0.3 + X @ [1.0, -0.5])).astype(int)
Y_BINARY[:2] = [0, 1]  # both classes in every subset the checks use
Y_THREE = RNG.integers(0, 3, N)
Y_THREE[:3] = [0, 1, 2]
STATES, ACTIONS = RNG.integers(0, 3, N), RNG.integers(0, 4, N)
STATES[:12], ACTIONS[:12] = np.repeat(np.arange(3), 4), np.tile(np.arange(4), 3)  # every cell logged

COEF_3 = np.array([[0.4, -0.1, -0.3], [-0.2, 0.5, -0.3]])
INTERCEPT_3 = np.array([0.2, -0.5, 0.3])
PREFERENCE = np.array([[0.5, -0.2, 0.1, -0.4], [-0.3, 0.6, -0.1, -0.2], [0.0, 0.2, -0.5, 0.3]])
FOCAL_GAMMA = 2.0


def _binary_log_p(rows, intercept=0.2, coef=(0.7, -0.4)):
    eta = intercept + X[rows] @ np.asarray(coef)
    return np.where(Y_BINARY[rows] == 1, -np.logaddexp(0, -eta), -np.logaddexp(0, eta))


def _focal(rows):
    log_p = _binary_log_p(rows)
    return (-np.expm1(log_p)) ** FOCAL_GAMMA * log_p


def _softmax(rows):
    logits = INTERCEPT_3 + X[rows] @ COEF_3
    return special.log_softmax(logits, axis=1)[np.arange(len(rows)), Y_THREE[rows]]


def _policy(rows):
    return special.log_softmax(PREFERENCE, axis=1)[STATES[rows], ACTIONS[rows]]


FAMILIES = [
    Family("coin", N, lambda r, w: coin.build_model(FLIPS[r], w, prior=(2.0, 2.0)), {"p": np.array(0.37)},
           lambda r: stats.bernoulli(0.37).logpmf(FLIPS[r]), "p"),
    Family("binary_classes", N, lambda r, w: classes.build_model(X[r], Y_BINARY[r], w),
           {"intercept": np.array(0.2), "coef": np.array([0.7, -0.4])}, _binary_log_p, "coef"),
    Family("softmax_classes", N, lambda r, w: classes.build_model(X[r], Y_THREE[r], w),
           {"intercept": INTERCEPT_3, "coef": COEF_3}, _softmax, "coef"),
    Family("focal", N, lambda r, w: classes.build_model(X[r], Y_BINARY[r], w, likelihood="focal",
                                                        focal_gamma=FOCAL_GAMMA),
           {"intercept": np.array(0.2), "coef": np.array([0.7, -0.4])}, _focal, "coef"),
    Family("policy_steps", N,
           lambda r, w: policy.build_model(STATES[r], ACTIONS[r], w, n_states=3, n_actions=4),
           {"preference": PREFERENCE}, _policy, "policy"),
    Family("policy_collapsed", N,
           lambda r, w: policy.build_model(STATES[r], ACTIONS[r], w, n_states=3, n_actions=4, collapse=True),
           {"preference": PREFERENCE}, _policy, "policy"),
]
by_name = pytest.mark.parametrize("family", FAMILIES, ids=[f.name for f in FAMILIES])


# --------------------------------------------------------------------------- the checks


@by_name
def test_all_ones_is_the_unweighted_log_likelihood(family):
    expected = np.sum(family.reference(np.arange(family.rows)))
    assert family.log_likelihood() == pytest.approx(expected, rel=1e-12)
    assert family.log_likelihood(weights=np.ones(family.rows)) == pytest.approx(expected, rel=1e-12)


@by_name
def test_a_zero_weight_drops_its_row(family):
    weights = RNG.uniform(0.5, 3.0, family.rows)
    weights[[5, 17]] = 0.0
    kept = np.setdiff1d(np.arange(family.rows), [5, 17])
    assert family.log_likelihood(weights=weights) == pytest.approx(
        family.log_likelihood(kept, weights[kept]), rel=1e-12)


@by_name
def test_an_integer_weight_repeats_its_row(family):
    counts = RNG.integers(0, 4, family.rows)
    counts[:3] = [1, 1, 1]  # the rows that keep every class or cell present stay
    repeated = np.repeat(np.arange(family.rows), counts)
    assert family.log_likelihood(weights=counts.astype(float)) == pytest.approx(
        family.log_likelihood(repeated), rel=1e-12)


@by_name
def test_the_wmle_ignores_the_weights_scale(family):
    weights = RNG.uniform(0.5, 3.0, family.rows)
    model = family.model(weights=weights)
    reference = inference.mle(model)[family.estimand]
    stored = model["weights"].get_value()  # the collapsed policy stores cell totals
    for scale in (1e-3, 1e3):
        pm.set_data({"weights": scale * stored}, model=model)
        np.testing.assert_allclose(inference.mle(model)[family.estimand], reference, rtol=1e-7, atol=1e-9)


BAD_WEIGHTS = {"NaN": lambda w: np.r_[np.nan, w[1:]], "infinite": lambda w: np.r_[np.inf, w[1:]],
               "negative": lambda w: np.r_[-1.0, w[1:]], "all zero": lambda w: 0 * w,
               "length": lambda w: w[1:]}


@by_name
@pytest.mark.parametrize("defect", BAD_WEIGHTS)
def test_bad_weights_are_refused_naming_the_defect(family, defect):
    bad = BAD_WEIGHTS[defect](np.ones(family.rows))
    with pytest.raises(InputError, match="weights") as raised:
        family.model(weights=bad)
    assert {"length": "expected"}.get(defect, defect) in str(raised.value)
