"""Exact verdicts on whether the (W)MLE and the MAP exist: the separation linear programs, the
families' closed forms, the structural MAP verdict, and the ridge path as an independent oracle.

No tolerance here depends on floating-point kernels: the verdicts are whole numbers (counts of
separable margins) or signs of exact sums, and the certificates are checked with margins far from
rounding (stated where used)."""

import pickle

import numpy as np
import pymc as pm
import pytest
from scipy import optimize, special

from models import classes, coin, inference, policy
from models.errors import InputError
from models.estimation import existence, maximise, separation
from models.likelihood import weighted_likelihood

pytestmark = pytest.mark.python_mode


def labels_of(separated: separation.Separation) -> dict[str, str]:
    return dict(separated.directions)


# --------------------------------------------------------------------------- the linear programs


def test_complete_separation_names_the_slope_and_every_row():
    x = np.array([[-2.0], [-1.0], [-0.5], [0.5], [1.0], [2.0]])
    found = separation.detect(x, (x[:, 0] > 0).astype(int))
    assert found.separated and found.complete and found.rows == tuple(range(6))
    # The threshold may sit anywhere in (-0.5, 0.5): the intercept can run either way, the slope up.
    assert labels_of(found) == {"intercept": "+inf or -inf", "coef[feature=x0]": "+inf"}
    assert found.aliased == ()


def test_quasi_complete_separation_leaves_the_tied_rows_out():
    # Two rows at x = 0 carry both labels: the slope runs off, the tied rows' terms stay put.
    found = separation.detect(np.array([[-1.0], [0.0], [0.0], [1.0]]), np.array([0, 0, 1, 1]))
    assert found.separated and not found.complete
    assert found.rows == (0, 3)
    assert labels_of(found) == {"coef[feature=x0]": "+inf"}


def test_overlapping_classes_are_not_separated():
    found = separation.detect(np.array([[-1.0], [0.3], [0.1], [1.0]]), np.array([0, 0, 1, 1]))
    assert not found.separated and found.rows == () and found.directions == {} and found.aliased == ()
    np.testing.assert_array_equal(found.direction, 0.0)


def test_an_aliased_column_is_named_and_does_not_make_a_verdict():
    x = np.array([-1.0, 0.3, 0.1, 1.0])
    found = separation.detect(np.column_stack([x, 2 * x]), np.array([0, 0, 1, 1]))
    assert not found.separated
    assert found.aliased == ("coef[feature=x0]", "coef[feature=x1]")


def test_rows_of_weight_zero_are_dropped_and_positive_weights_do_not_matter():
    x, y = np.array([[-1.0], [0.3], [0.1], [1.0]]), np.array([0, 0, 1, 1])
    # Without the row that overlaps (x = 0.3, label 0) the rest separate.
    dropped = separation.detect(x, y, np.array([1.0, 0.0, 1.0, 1.0]))
    assert dropped.separated and dropped.complete and dropped.rows == (0, 2, 3)
    assert dropped.weighted_rows == 3
    rng = np.random.default_rng(0)
    for _ in range(5):
        weights = rng.uniform(1e-3, 1e3, size=4) * np.array([1, 0, 1, 1])
        assert separation.detect(x, y, weights) == dropped


def test_one_weighted_class_separates_along_the_intercept_alone():
    x, y = np.array([[-1.0], [0.3], [0.1], [1.0]]), np.array([0, 0, 1, 1])
    found = separation.detect(x, y, np.array([0.0, 0.0, 1.0, 1.0]))
    assert found.separated and found.complete
    only_intercept = separation.detect(x, y, np.array([0.0, 0.0, 1.0, 1.0]), fixed=["coef[feature=x0]"])
    assert only_intercept.separated and labels_of(only_intercept) == {"intercept": "+inf"}
    # Both classes weighted: the intercept alone cannot separate them.
    assert not separation.detect(x, y, fixed=["coef[feature=x0]"]).separated


def test_three_classes_with_one_separated():
    # Class 2 lives beyond x0 = 1, classes 0 and 1 overlap below it.
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 2))
    y = rng.integers(0, 2, size=60)
    y[X[:, 0] > 1.0] = 2
    found = separation.detect(X, y, n_classes=3)
    assert found.separated and not found.complete
    directions = labels_of(found)
    assert directions["coef[feature=x0, class=class_2]"] == "+inf"
    assert directions["intercept[class=class_2]"] == "-inf"
    # Every direction keeps the overlapping pair (class 0 vs 1) untouched: their difference is finite.
    # Classes 0 and 1 enter only through ties with class 2, so x1's coefficients can move either way.
    assert all(way in ("+inf", "-inf", "+inf or -inf") for way in directions.values())
    # Without class 2 the rest overlap.
    rest = y < 2
    assert not separation.detect(X[rest], y[rest], n_classes=2).separated


@pytest.mark.parametrize("units", [1e-5, 1.0, 1e5])
def test_the_verdict_ignores_the_units_of_the_features(units):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(40, 2))
    y = (X[:, 0] - X[:, 1] > 0).astype(int)
    found = separation.detect(units * X, y)
    assert found.separated and found.complete
    assert labels_of(found) == labels_of(separation.detect(X, y))


def test_the_direction_is_a_certificate():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(50, 3))
    y = (X @ [1.0, -2.0, 0.5] > 0.3).astype(int)
    found = separation.detect(X, y)
    margins = np.column_stack([np.ones(50), X]) @ found.direction * np.where(y == 1, 1, -1)
    # Every margin positive: the LP makes each at least 1 after rescaling features to max |x| = 1
    # (here max |x| < 4), so each is at least ~0.25 / 4, far above rounding (~1e-15).
    assert found.complete and margins.min() > 1e-3


# --------------------------------------------------------------------------- the phase transition


def stiemke_certificate(S: np.ndarray) -> bool:
    """Is there y >= 1 with S' y = 0? By Stiemke's theorem exactly when no direction b has S b >= 0
    with some entry > 0: no separation. An independent program, not the one under test."""
    found = optimize.linprog(np.zeros(S.shape[0]), A_eq=S.T, b_eq=np.zeros(S.shape[1]),
                             bounds=[(1, None)] * S.shape[0], method="highs")
    return found.status == 0


def newton_mle(S: np.ndarray, start: np.ndarray) -> tuple[np.ndarray, float]:
    """Newton's method on the logistic log-likelihood sum log sigmoid(S b) from ``start``; returns the
    point and the largest |gradient| there."""
    b = start.copy()
    for _ in range(100):
        p = 1 / (1 + np.exp(-(S @ b)))
        gradient = S.T @ (1 - p)
        if np.abs(gradient).max() < 1e-10:
            break
        b += np.linalg.solve((S * (p * (1 - p))[:, None]).T @ S, gradient)
    return b, float(np.abs(S.T @ (1 - 1 / (1 + np.exp(-(S @ b))))).max())


PHASE_TRANSITION_ROWS, PHASE_TRANSITION_FEATURES = 80, 36


def certified_phase_transition_designs():
    """Logistic regressions with n = 80 rows and 36 standard-normal features plus an intercept,
    labels fair coins: kappa = 37 / 80 sits just below Candes & Sur's threshold 1/2, so some designs
    separate and some do not. Every LP verdict is certified independently (a separating direction
    checked by its margins, or a Stiemke vector y >= 1 with S'y = 0 and a Newton maximiser with
    vanishing gradient). Returns (X, y, separated, largest |b_j| of the MLE (inf when separated))."""
    n, p = PHASE_TRANSITION_ROWS, PHASE_TRANSITION_FEATURES
    designs = []
    for seed in range(16):
        design = np.random.default_rng([seed, 1])
        X, y = design.normal(size=(n, p)), (design.random(n) < 0.5).astype(int)
        S = np.column_stack([np.ones(n), X]) * np.where(y == 1, 1, -1)[:, None]
        found = separation.detect(X, y)
        if found.separated:   # margins of the rescaled LP are >= 1 / max|x| ~ 0.2, far from rounding
            assert (S @ found.direction)[list(found.rows)].min() > 1e-3
            assert (S @ found.direction).min() > -1e-9 * np.abs(S).max() * np.abs(found.direction).max()
            assert not stiemke_certificate(S)
            size = np.inf
        else:
            assert stiemke_certificate(S)
            b, gradient = newton_mle(S, np.zeros(p + 1))
            assert gradient < 1e-8 and np.all(np.isfinite(b))
            size = np.abs(b).max()
        designs.append((X, y, found.separated, size))
    assert 0 < sum(separated for _, _, separated, _ in designs) < len(designs)   # both kinds occur
    return designs


def test_near_the_phase_transition_every_verdict_of_the_linear_program_is_certified():
    certified_phase_transition_designs()


@pytest.mark.slow
@pytest.mark.default_mode
def test_near_the_phase_transition_the_ridge_path_mostly_agrees_with_the_linear_program():
    """On the certified designs above, the ridge path (16 paths of 9 L-BFGS runs each: 15 s, hence
    the slow tier; the default tier runs the ridge path on the hand-built models of
    tests/test_inference.py). Where it disagrees, the certificate says it is wrong: the MLE exists but
    lies far out (largest |b_j| 20 on seed 12, against 1-4 on most designs), where the ridge path,
    judging convergence by the shape of its steps, had not settled by lambda = 1e-8. It never errs the
    other way: along a separating direction the likelihood rises to its supremum at infinity, which
    no finite point of the path reaches."""
    designs = certified_phase_transition_designs()
    n, p = PHASE_TRANSITION_ROWS, PHASE_TRANSITION_FEATURES
    model = classes.build_model(np.random.default_rng(0).normal(size=(n, p)), np.tile([0, 1], n // 2))
    objective = maximise.compiled_objective(model, model.observed_RVs, separate_likelihood=True)
    outcomes = []
    for X, y, separated, size in designs:
        pm.set_data({"X": X, "y": y}, model=model)
        ridge, _ = maximise.ridge_path(objective, "weighted log-likelihood")
        outcomes.append((separated, not ridge.exists, size))
    wrong = [(lp, ridge, size) for lp, ridge, size in outcomes if lp != ridge]
    print(f"the ridge path agrees with the certified LP on {len(outcomes) - len(wrong)} of {len(outcomes)}")
    # Its only errors: a runaway reported where a certified MLE lies far out.
    assert all(not lp and ridge and size > 5 for lp, ridge, size in wrong), wrong
    assert len(wrong) <= len(outcomes) // 4


# --------------------------------------------------------------------------- the families' verdicts


def test_coin_verdicts_are_the_closed_forms(flips, key_weights):
    estimate = inference.mle(coin.build_model(flips, key_weights))
    assert estimate["p"] == 16 / 19 and estimate.existence.method == "closed form"
    all_heads = coin.build_model(np.ones(4, dtype=int), prior=(1.0, 3.0))
    assert inference.mle(all_heads)["p"] == 1.0                       # on the boundary
    assert inference.map_estimate(all_heads)["p"] == 4 / 6            # Beta(5, 3): mode 4 / 6
    flat = coin.build_model(np.ones(4, dtype=int), prior=(0.5, 1.0))  # Beta(4.5, 1): mode at p = 1
    assert inference.map_estimate(flat)["p"] == 1.0


def test_coin_map_does_not_exist_where_the_beta_density_is_unbounded():
    model = coin.build_model(np.zeros(3, dtype=int), prior=(0.5, 2.0))  # Beta(0.5, 5): +inf at p = 0
    with pytest.raises(inference.UnboundedLikelihoodError, match=r"closed form.*p -> 0") as raised:
        inference.map_estimate(model)
    assert raised.value.existence.diverging == ("p -> 0",)
    assert inference.mle(model)["p"] == 0.0


def test_family_verdicts_follow_new_data(flips):
    model = coin.build_model(flips, prior=(2.0, 2.0))
    assert inference.mle(model)["p"] == pytest.approx(0.7, abs=1e-15)
    pm.set_data({"weights": np.where(flips == 1, 1.0, 0.0)}, model=model)  # tails weigh nothing
    estimate = inference.mle(model)
    assert estimate["p"] == 1.0 and estimate.existence.method == "closed form"   # on the boundary
    pm.set_data({"weights": np.where(flips == 1, -1.0, 1.0)}, model=model)  # the coin refuses signed weights
    with pytest.raises(InputError, match="the weights of 'heads' has 7 negative"):
        inference.mle(model)
    assert not coin.mle_existence(model).exists   # heads weigh -7: unbounded above as p -> 0


def test_policy_verdict_names_the_cells_that_run_off():
    cells = np.array([[2.0, 1.0, 1.0], [3.0, -1.0, 0.0], [0.0, 0.0, 0.0]])
    verdict = policy.mle_existence(cells)
    assert not verdict.exists and "unbounded above" in verdict.reason
    assert verdict.diverging == ("preference[state=1, action=1] -> -inf",)
    found = policy.mle_existence(np.array([[2.0, 1.0, 1.0], [3.0, 0.0, 1.0]]))
    assert found.diverging == ("preference[state=1, action=1] -> -inf",) and "zero net weight" in found.reason
    exists = policy.mle_existence(np.array([[2.0, 1.0, 1.0], [0.0, 0.0, 0.0]]))
    preference = exists.maximiser["preference"]
    np.testing.assert_allclose(preference.sum(axis=1), 0.0, atol=1e-15)   # centred
    np.testing.assert_allclose(special.softmax(preference, axis=1), [[0.5, 0.25, 0.25], [1 / 3] * 3],
                               rtol=1e-12)   # pi = W / sum W; uniform where nothing weighs
    assert exists.aliased == tuple(f"preference[state=1, action={a}]" for a in range(3))


def test_policy_model_estimates_come_from_the_closed_form():
    model = policy.build_model([0, 0, 0, 1, 1], [0, 1, 1, 0, 1], n_states=3, n_actions=2, collapse=True)
    estimate = inference.mle(model)
    assert estimate.existence.method == "closed form"
    np.testing.assert_allclose(estimate["policy"], [[1 / 3, 2 / 3], [0.5, 0.5], [0.5, 0.5]], rtol=1e-12)
    unseen = policy.build_model([0, 0, 0, 1], [0, 1, 1, 0], n_states=2, n_actions=2, collapse=True)
    with pytest.raises(inference.UnboundedLikelihoodError, match=r"preference\[state=1, action=1\] -> -inf"):
        inference.mle(unseen)   # state 1 never takes action 1: its probability's supremum is at 0
    assert inference.map_estimate(unseen).existence.method == "analytic"


def test_classes_verdicts_cover_the_mle_the_map_and_the_focal_loss():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(40, 2))
    y = (X[:, 0] > 0).astype(int)
    for likelihood in ("categorical", "focal"):
        model = classes.build_model(X, y, likelihood=likelihood)
        with pytest.raises(inference.UnboundedLikelihoodError, match="linear program") as raised:
            inference.mle(model)
        assert "coef[feature=x0] -> +inf" in raised.value.existence.diverging
        assert inference.map_estimate(model).existence.method == "analytic"
    flat = classes.build_model(X, y, intercept_sd=None, weights=y.astype(float))  # only class 1 weighted
    with pytest.raises(inference.UnboundedLikelihoodError, match="intercept's prior is flat") as raised:
        inference.map_estimate(flat)
    assert raised.value.existence.diverging == ("intercept -> +inf",)
    pm.set_data({"weights": np.ones(40)}, model=flat)  # both classes: the intercept cannot separate them
    assert inference.map_estimate(flat).existence.exists


# --------------------------------------------------------------------------- models from outside the families


def hand_built(prior, weights=np.ones(4), potential=False):
    with pm.Model(coords={"obs_id": range(4)}) as model:
        intercept = prior("intercept")
        coef = pm.Normal("coef", 0.0, 2.5)
        weighted_likelihood("y", pm.Bernoulli, pm.Data("weights", weights, dims="obs_id"),
                            observed=np.array([0, 0, 1, 1]), dims="obs_id",
                            logit_p=intercept + coef * np.array([-1.0, -0.5, 0.5, 1.0]), allow_negative=True)
        if potential:
            pm.Potential("extra", -coef**2)
    return model


@pytest.mark.parametrize("prior", [lambda n: pm.Normal(n, 0.0, 5.0), lambda n: pm.StudentT(n, nu=3.0),
                                   lambda n: pm.Cauchy(n, 0.0, 1.0)])
def test_structure_decides_the_map_of_proper_coercive_priors(prior):
    model = hand_built(prior)
    verdict = existence.of_map(model)
    assert verdict.exists and verdict.method == "structure"
    estimate = inference.map_estimate(model)
    assert estimate.existence == verdict and np.isfinite(estimate["coef"])


@pytest.mark.parametrize("prior, weights, potential", [
    (lambda n: pm.Flat(n), np.ones(4), False),                    # flat: no penalty
    (lambda n: pm.HalfNormal(n, 1.0), np.ones(4), False),         # mode may sit on the boundary 0
    (lambda n: pm.Normal(n, 0.0, 5.0), np.array([1.0, -1.0, 1.0, 1.0]), False),   # unbounded above?
    (lambda n: pm.Normal(n, 0.0, 5.0), np.ones(4), True),         # a potential: unknown
])
def test_structure_does_not_decide_what_it_cannot(prior, weights, potential):
    assert existence.of_map(hand_built(prior, weights, potential)) is None


def test_a_hierarchical_or_weak_shape_prior_is_not_decided_by_structure():
    with pm.Model() as model:
        scale = pm.HalfNormal("scale", 1.0)
        mu = pm.Normal("mu", 0.0, scale)
        p = pm.Beta("p", 1.0, 3.0)  # finite density at p = 0
        weighted_likelihood("y", pm.Bernoulli, np.ones(2), observed=np.array([0, 1]), dims=None,
                            p=pm.math.sigmoid(mu) * p)
    assert existence.of_map(model) is None


def test_a_changed_family_model_loses_its_family_verdict(flips):
    model = coin.build_model(flips)
    assert existence.family_verdicts(model).family == "coin"
    with model:
        pm.Potential("nudge", -model["p"])
    assert existence.family_verdicts(model) is None
    assert inference.mle(model).existence.method == "ridge path"


def test_estimates_and_errors_pickle_with_their_verdicts(flips):
    estimate = inference.mle(coin.build_model(flips))
    again = pickle.loads(pickle.dumps(estimate))
    assert again == estimate and again.existence == estimate.existence
    model = coin.build_model(np.zeros(3, dtype=int), prior=(0.5, 2.0))
    with pytest.raises(inference.UnboundedLikelihoodError) as caught:   # Beta(0.5, .) has no MAP at 0 heads
        inference.map_estimate(model)
    assert pickle.loads(pickle.dumps(caught.value)).existence == caught.value.existence
