"""Imbalanced classes: weighted logistic (K = 2) and softmax (K > 2) regression.

With features ``x_i`` (standardised by the caller: the priors below are on that scale), labels
``y_i`` in 0..K-1 and weights ``w_i``::

    K = 2:  eta_i = intercept + x_i . coef,           p(y_i = 1) = sigmoid(eta_i)
    K > 2:  eta_ik = intercept_k + x_i . coef[:, k],  p(y_i = k) = softmax(eta_i)_k

    log p(theta | y, w) = log p(theta) + sum_i w_i log p(y_i | x_i, theta) + const

Priors: ``coef ~ Normal(0, coef_sd)`` and ``intercept ~ Normal(0, intercept_sd)``, or a flat
intercept when ``intercept_sd=None``.

Identifiability. A softmax is unchanged when the same number is added to every class's logit, so
the likelihood alone cannot tell ``coef[:, k]`` from ``coef[:, k] + c``. For K = 2 class 0 is the
reference (its logit is 0): the usual logistic regression, ``coef`` has dims ``feature`` only. For
K > 2 every class keeps its own column, but ``intercept`` and each row of ``coef`` sum to zero over
``class`` (``pm.ZeroSumNormal``, a flat prior on that subspace when ``intercept_sd=None``): the model
has K - 1 free directions per feature, all classes are treated alike, and the (W)MLE is unique
whenever it exists and ``[1, X]`` has full column rank. ``coef_sd`` is then the scale of the
zero-sum vector; each element's marginal sd is ``coef_sd sqrt((K - 1) / K)``, so the log-odds of two
classes, a difference of two elements, has prior sd ``coef_sd sqrt(2)`` (``coef_sd`` for K = 2).

Weights. ``weights`` (default all ones; e.g. :func:`models.weights.balanced`) are checked, rescaled by
``normalize`` and stored as ``pm.Data("weights")``. Scaling them all by c leaves the (W)MLE alone
and narrows the posterior by about 1 / sqrt(c).

Focal loss (``likelihood="focal"``). The log-likelihood term of sample i is replaced by
``alpha_{y_i} (1 - p_i)^gamma log p_i`` with ``p_i`` the fitted probability of the observed class
(Lin et al. 2017): well-classified samples (p_i near 1) are down-weighted, so the fit concentrates on
hard ones. It is a loss, not a likelihood: the result is a generalised (Gibbs) posterior
``prior x exp(-sum_i w_i loss_i)``. Its spread is set by the loss's arbitrary scale (gamma and alpha
change it as a temperature would), so its credible intervals have no coverage guarantee, its
``log_likelihood`` group holds pseudo-log-likelihoods, and LOO/WAIC on them do not estimate
predictive accuracy. ``gamma = 0`` with no alpha is exactly the categorical log-likelihood.

Separation. When a hyperplane splits the classes (or the weighted data behave so), the (W)MLE does
not exist: the coefficients run off to infinity. The model carries an exact verdict
(:mod:`models.estimation.existence`): the linear programs of :mod:`models.estimation.separation` on
its current data (rows of weight 0 dropped; the verdict is the same for the focal loss), so
``inference.mle`` raises ``UnboundedLikelihoodError`` naming the coefficients that diverge and their
directions. The MAP exists whenever every coefficient has a proper prior; with a flat intercept
(``intercept_sd=None``) it does not when the rows separate along the intercept alone (every weighted
row in one class, say).
"""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytensor.tensor as pt
from scipy import special, stats

from models import weights as weights_lib
from models.calibrate.posterior_calibration import (
    GPCScale,
    bootstrap_counts,
    default_tolerance,
    robbins_monro,
)
from models.errors import InputError
from models.estimation import existence, separation
from models.likelihood import weighted_softmax

__all__ = ["LIKELIHOODS", "binary_terms", "build_model", "focal_alpha_per_class", "gpc_scale",
           "laplace_logistic", "map_existence", "mle_existence", "parameter_vector", "predict_proba",
           "prepare", "prior_correction"]

LIKELIHOODS = ("categorical", "focal")


def _check_features(X) -> np.ndarray:
    try:
        features = np.array(X, dtype=float)
    except (TypeError, ValueError) as err:
        raise InputError(f"X must be a numeric matrix (samples x features): {err}") from None
    if features.ndim != 2 or features.shape[0] == 0 or features.shape[1] == 0:
        raise InputError(f"X must be a non-empty two-dimensional array (samples x features), "
                         f"got shape {features.shape}")
    bad = ~np.isfinite(features)
    if bad.any():
        row, column = np.argwhere(bad)[0]
        raise InputError(f"X has {bad.sum()} NaN or infinite value(s), first at row {row}, column {column}")
    return features


def _check_names(names, size: int, argument: str, default_prefix: str) -> list[str]:
    if names is None:
        return [f"{default_prefix}{j}" for j in range(size)]
    if isinstance(names, str) or not np.iterable(names):
        raise InputError(f"{argument} must be a sequence of {size} names, got {names!r}")
    names = [str(name) for name in names]
    if len(names) != size:
        raise InputError(f"{argument} has {len(names)} name(s), expected {size}")
    if len(set(names)) != size:
        raise InputError(f"{argument} has duplicate names: {names}")
    return names


def _is_number(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _check_scale(value, argument: str, *, allow_none: bool = False):
    if value is None and allow_none:
        return None
    if not _is_number(value) or not (np.isfinite(value) and value > 0):
        raise InputError(f"{argument} must be a finite positive number, got {value!r}")
    return np.float64(value)


def focal_alpha_per_class(focal_alpha, n_classes: int) -> np.ndarray:
    """The focal loss's ``alpha`` for each class.

    Parameters
    ----------
    focal_alpha : None, float or array_like
        ``None`` -> all ones; a number a in (0, 1) for K = 2 -> (1 - a, a), i.e. a for class 1 as in
        Lin et al.; else one positive number per class.
    n_classes : int
        K.

    Returns
    -------
    numpy.ndarray
        K positive numbers.

    Raises
    ------
    InputError
        For anything else: not numbers, one number outside (0, 1), or not K positive finite numbers.

    Examples
    --------
    >>> focal_alpha_per_class(0.25, 2)
    array([0.75, 0.25])
    >>> focal_alpha_per_class(None, 3)
    array([1., 1., 1.])
    """
    if focal_alpha is None:
        return np.ones(n_classes)
    try:
        alpha = np.atleast_1d(np.asarray(focal_alpha, dtype=float))
    except (TypeError, ValueError):
        raise InputError(f"focal_alpha must be None or numbers, got {focal_alpha!r}") from None
    if alpha.size == 1 and n_classes == 2:
        if not 0 < alpha[0] < 1:
            raise InputError(f"focal_alpha as one number must lie in (0, 1), got {alpha[0]:g}")
        return np.array([1 - alpha[0], alpha[0]])
    if alpha.shape != (n_classes,) or not np.all(np.isfinite(alpha) & (alpha > 0)):
        raise InputError(f"focal_alpha must be None, a number in (0, 1) (two classes) or {n_classes} "
                         f"positive numbers, one per class; got {focal_alpha!r}")
    return alpha


def prepare(X, y, weights=None, *, normalize="none"):
    """Validated ``(X, y, weights, counts)`` exactly as the model uses them.

    Parameters
    ----------
    X, y, weights, normalize
        As for :func:`build_model`.

    Returns
    -------
    X : numpy.ndarray
        The features, a finite float matrix (samples x features).
    y : numpy.ndarray
        The labels as int64 codes 0..K-1.
    weights : numpy.ndarray
        The checked weights, rescaled by ``normalize``.
    counts : numpy.ndarray
        The number of samples of each class, length K.

    Raises
    ------
    InputError
        For features that are not a non-empty finite matrix, labels that are not class codes 0..K-1
        with every class present (:func:`models.weights.class_labels`), one label per row, weights
        that :func:`models.weights.check` refuses, or an unknown ``normalize``.

    Examples
    --------
    >>> X, y, weights, counts = prepare([[-1.0], [-0.5], [0.5], [1.0]], [0, 1, 0, 1], [1, 1, 2, 2],
    ...                                 normalize="n")
    >>> weights, counts
    (array([0.66666667, 0.66666667, 1.33333333, 1.33333333]), array([2, 2]))
    """
    features = _check_features(X)
    labels, counts = weights_lib.class_labels(y)
    if labels.size != features.shape[0]:
        raise InputError(f"y has length {labels.size} but X has {features.shape[0]} rows")
    w = weights_lib.normalize(weights_lib.check(weights, labels.size), normalize)
    return features, labels, w, counts


def build_model(X, y, weights=None, *, coef_sd=2.5, intercept_sd=5.0, likelihood="categorical",
                focal_gamma=2.0, focal_alpha=None, normalize="none", feature_names=None,
                class_names=None) -> pm.Model:
    """Weighted logistic (two classes) or softmax (more) regression.

    See the module docstring. With features ``x_i``, labels ``y_i`` in 0..K-1 and weights ``w_i``::

        K = 2:  eta_i = intercept + x_i . coef,           p(y_i = 1) = sigmoid(eta_i)
        K > 2:  eta_ik = intercept_k + x_i . coef[:, k],  p(y_i = k) = softmax(eta_i)_k

        coef ~ Normal(0, coef_sd),  intercept ~ Normal(0, intercept_sd)
        log p(theta | y, w) = log p(theta) + sum_i w_i log p(y_i | x_i, theta) + const

    For K > 2 both priors are ``pm.ZeroSumNormal`` over ``class``; ``intercept_sd=None`` makes the
    intercept's prior flat. With ``likelihood="focal"`` the term of sample i is
    ``alpha_{y_i} (1 - p_i)^gamma log p_i`` instead (a generalised posterior).

    Free variables ``intercept`` and ``coef`` (dims ``feature``; for K > 2 also ``class``); data ``X``
    (``obs_id``, ``feature``), ``y`` and ``weights`` (``obs_id``) in ``pm.Data``, as are ``coef_sd``,
    ``intercept_sd`` (unless ``None``) and, for the focal loss, ``focal_gamma`` and ``focal_alpha`` (a
    sweep over them reuses one compiled model); observed term ``label``. The model carries the exact
    verdicts :func:`mle_existence` and, with a flat intercept, :func:`map_existence` (with a proper
    one the MAP always exists).

    Parameters
    ----------
    X : array_like
        Features, samples x features, finite (standardised by the caller: the priors are on that
        scale).
    y : array_like
        Class codes 0..K-1, every class present, K >= 2.
    weights : array_like, optional
        One weight per sample (default all ones; e.g. :func:`models.weights.balanced`), checked
        (negative weights refused) and rescaled by ``normalize``.
    coef_sd : float, default 2.5
        The coefficients' prior scale, finite and positive (for K > 2 the scale of the zero-sum
        vector).
    intercept_sd : float or None, default 5.0
        The intercept's prior scale, finite and positive; ``None`` for a flat prior.
    likelihood : {"categorical", "focal"}, default "categorical"
        The log-likelihood, or the focal loss of Lin et al. (2017).
    focal_gamma : float, default 2.0
        The focal loss's gamma, finite and >= 0; used only with ``likelihood="focal"`` (checked
        whatever the likelihood).
    focal_alpha : None, float or array_like, optional
        The focal loss's alpha (:func:`focal_alpha_per_class`); used only with ``likelihood="focal"``.
    normalize : {"none", "n", "ess"}, default "none"
        How the weights are rescaled, see :func:`models.weights.normalize`.
    feature_names, class_names : sequence of str, optional
        Coordinates of ``feature`` and ``class``, unique (default ``x0, x1, ...`` and
        ``class_0, class_1, ...``).

    Returns
    -------
    pymc.Model
        The model, with coords ``obs_id``, ``feature`` and ``class``.

    Raises
    ------
    InputError
        For invalid data or weights (:func:`prepare`), an unknown ``likelihood``, prior scales that are
        not finite and positive, a negative or non-finite ``focal_gamma``, an invalid ``focal_alpha``,
        or names of the wrong number or with duplicates.

    Examples
    --------
    >>> model = build_model([[-1.0], [-0.5], [0.5], [1.0]], [0, 1, 0, 1], feature_names=["ear"])
    >>> model.free_RVs, model.observed_RVs, model.coords["feature"]
    ([intercept, coef], [label], ('ear',))
    """
    features, labels, w, counts = prepare(X, y, weights, normalize=normalize)
    n_classes = counts.size
    if likelihood not in LIKELIHOODS:
        raise InputError(f"likelihood must be one of {LIKELIHOODS}, got {likelihood!r}")
    coef_sd = _check_scale(coef_sd, "coef_sd")
    intercept_sd = _check_scale(intercept_sd, "intercept_sd", allow_none=True)
    # Checked whatever the likelihood, so that a typo is never silently ignored.
    if not _is_number(focal_gamma) or not (np.isfinite(focal_gamma) and focal_gamma >= 0):
        raise InputError(f"focal_gamma must be a finite number >= 0, got {focal_gamma!r}")
    alpha = focal_alpha_per_class(focal_alpha, n_classes)
    coords = {
        "obs_id": np.arange(labels.size),
        "feature": _check_names(feature_names, features.shape[1], "feature_names", "x"),
        "class": _check_names(class_names, n_classes, "class_names", "class_"),
    }
    with pm.Model(coords=coords) as model:
        X_data = pm.Data("X", features, dims=("obs_id", "feature"))
        y_data = pm.Data("y", labels, dims="obs_id")
        weights_data = pm.Data("weights", w, dims="obs_id")
        # Prior scales and focal parameters are data, not constants, which would be compiled into the
        # C code once per value: a sweep over them reuses one compiled model (pm.set_data).
        coef_sd = pm.Data("coef_sd", coef_sd)
        if intercept_sd is not None:
            intercept_sd = pm.Data("intercept_sd", intercept_sd)
        if n_classes == 2:
            intercept = (pm.Flat("intercept") if intercept_sd is None
                         else pm.Normal("intercept", np.float64(0.0), intercept_sd))
            coef = pm.Normal("coef", np.float64(0.0), coef_sd, dims="feature")
            eta = intercept + pt.dot(X_data, coef)
            logits = pt.stack([pt.zeros_like(eta), eta], axis=-1)
        else:
            intercept = (
                pm.Flat("intercept", dims="class",
                        default_transform=pm.distributions.transforms.ZeroSumTransform([-1]))
                if intercept_sd is None else pm.ZeroSumNormal("intercept", sigma=intercept_sd, dims="class")
            )
            coef = pm.ZeroSumNormal("coef", sigma=coef_sd, dims=("feature", "class"))
            logits = intercept + pt.dot(X_data, coef)
        if likelihood == "focal":
            weighted_softmax("label", logits, weights_data, observed=y_data, dims="obs_id",
                             gamma=pm.Data("focal_gamma", np.float64(focal_gamma)),
                             alpha=pm.Data("focal_alpha", alpha, dims="class"))
        else:
            weighted_softmax("label", logits, weights_data, observed=y_data, dims="obs_id")
    return existence.attach(model, "classes", mle_existence,
                            map_existence if intercept_sd is None else _proper_map_existence)


def _separation(model: pm.Model, *, intercept_only: bool) -> separation.Separation | None:
    """The linear programs on the model's current data; ``None`` for negative weights, which the
    family does not decide. ``intercept_only``: coefficient directions held at zero."""
    X, y, w = (model[name].get_value() for name in ("X", "y", "weights"))
    if np.any(w < 0):
        return None
    features, classes = list(model.coords["feature"]), list(model.coords["class"])
    names = separation.coordinate_names(len(features), len(classes), features, classes)
    fixed = [name for name in names if name.startswith("coef")] if intercept_only else ()
    return separation.detect(X, y, w, n_classes=len(classes), names=names, fixed=fixed)


def _verdict(found: separation.Separation, reason: str | None = None) -> existence.Existence:
    return existence.Existence(
        not found.separated, "linear program", reason or found.describe(),
        diverging=tuple(f"{name} -> {way}" for name, way in found.directions.items()), aliased=found.aliased)


def mle_existence(model: pm.Model) -> existence.Existence | None:
    """The (W)MLE's verdict for a classes model: separation by linear programming.

    Also the verdict on the focal loss's pseudo-MLE. Rows of weight 0 are dropped
    (:func:`models.estimation.separation.detect` on the model's current data).

    Parameters
    ----------
    model : pymc.Model
        A model :func:`build_model` made.

    Returns
    -------
    models.estimation.existence.Existence or None
        The verdict (method ``"linear program"``), naming the coefficients that diverge and their
        directions; ``None`` for negative weights, which the family does not decide.

    Examples
    --------
    >>> verdict = mle_existence(build_model([[-1.0], [-0.5], [0.5], [1.0]], [0, 0, 1, 1]))
    >>> verdict.exists, verdict.diverging
    (False, ('intercept -> +inf or -inf', 'coef[feature=x0] -> +inf'))
    """
    found = _separation(model, intercept_only=False)
    return None if found is None else _verdict(found)


def map_existence(model: pm.Model) -> existence.Existence | None:
    """The MAP's verdict for a classes model with a flat intercept.

    The MAP does not exist exactly when the weighted rows separate along the intercept alone (the
    coefficients' Normal priors penalise every other direction). With a proper intercept prior the
    model carries an analytic verdict instead: the MAP exists.

    Parameters
    ----------
    model : pymc.Model
        A model :func:`build_model` made with ``intercept_sd=None``.

    Returns
    -------
    models.estimation.existence.Existence or None
        The verdict (method ``"linear program"``); ``None`` for negative weights.

    Examples
    --------
    >>> X = [[-1.0], [-0.5], [0.5], [1.0]]
    >>> map_existence(build_model(X, [1, 1, 1, 0], intercept_sd=None)).exists
    True
    >>> map_existence(build_model(X, [1, 1, 1, 0], [1, 1, 1, 0], intercept_sd=None)).diverging
    ('intercept -> +inf',)
    """
    found = _separation(model, intercept_only=True)
    if found is None:
        return None
    if not found.separated:
        return _verdict(found, "the coefficients' Normal priors penalise every separating direction "
                               "but those of the intercept, and the rows do not separate along it")
    return _verdict(found, "the intercept's prior is flat and the weighted rows separate along the "
                           f"intercept alone ({found.describe()}); give it a proper prior (intercept_sd)")


def _proper_map_existence(model: pm.Model) -> existence.Existence:
    return existence.Existence(True, "analytic", "every coefficient has a Normal (ZeroSumNormal) prior that "
                               "falls quadratically, while the weighted log-likelihood changes at most "
                               "linearly along any direction, whatever the weights' signs")


def parameter_vector(estimate) -> np.ndarray:
    """A two-class point estimate as one vector: intercept, then coefficients.

    Parameters
    ----------
    estimate : mapping
        ``intercept`` (a scalar) and ``coef`` (one per feature), e.g. an ``inference.mle`` result.

    Returns
    -------
    numpy.ndarray
        ``[intercept, coef...]``.

    Examples
    --------
    >>> parameter_vector({"intercept": 0.5, "coef": [1.0, -2.0]})
    array([ 0.5,  1. , -2. ])
    """
    return np.r_[estimate["intercept"], estimate["coef"]]


def predict_proba(X, intercept, coef, *, n_classes: int = 2) -> np.ndarray:
    """Class probabilities for the rows of ``X`` at one or many parameter values (numpy).

    Parameters
    ----------
    X : array_like
        Features, samples x features, finite.
    intercept : array_like
        Two classes: shape ``(...)``; K > 2: ``(..., class)``. Leading axes are draws (e.g. chain,
        draw).
    coef : array_like
        Two classes: shape ``(..., feature)``; K > 2: ``(..., feature, class)``.
    n_classes : int, default 2
        K.

    Returns
    -------
    numpy.ndarray
        Two classes: P(y = 1) with shape ``(..., obs)``. K > 2: shape ``(..., obs, class)``.

    Raises
    ------
    InputError
        When ``X`` is not a non-empty finite matrix, or the shapes of ``intercept`` and ``coef`` do not
        fit it and ``n_classes``.

    Examples
    --------
    >>> predict_proba([[0.0], [1.0]], 0.0, [2.0]).round(4)
    array([0.5   , 0.8808])
    >>> predict_proba([[0.0], [1.0]], [0.0, 0.0, 0.0], [[1.0, 0.0, -1.0]], n_classes=3).round(3)
    array([[0.333, 0.333, 0.333],
           [0.665, 0.245, 0.09 ]])
    """
    X = _check_features(X)
    intercept, coef = np.asarray(intercept, dtype=float), np.asarray(coef, dtype=float)
    if n_classes == 2 and coef.shape[-1:] == (X.shape[1],) and intercept.shape == coef.shape[:-1]:
        return special.expit(intercept[..., None] + coef @ X.T)
    if n_classes > 2 and coef.shape[-2:] == (X.shape[1], n_classes) \
            and intercept.shape == coef.shape[:-2] + (n_classes,):
        return special.softmax(intercept[..., None, :] + np.einsum("of,...fk->...ok", X, coef), axis=-1)
    raise InputError(f"intercept {intercept.shape} and coef {coef.shape} do not fit X with "
                     f"{X.shape[1]} feature(s) and {n_classes} classes")


def prior_correction(sample_rate: float, population_rate: float) -> float:
    """King & Zeng's (2001) prior correction of a logistic intercept.

    The shift of the intercept moves a fit to a sample with event rate ``sample_rate`` (ybar) to a population
    whose rate is ``population_rate`` (tau):
    ``intercept_tau = intercept - log[((1 - tau) / tau) (ybar / (1 - ybar))]``, i.e. the shift is
    ``logit(tau) - logit(ybar)``. The slopes are consistent under sampling on the outcome; only the intercept
    absorbs the rate.

    Parameters
    ----------
    sample_rate : float
        ybar, in (0, 1).
    population_rate : float
        tau, in (0, 1).

    Returns
    -------
    float
        The shift (add it to the intercept, or to every posterior draw of it).

    Raises
    ------
    InputError
        When a rate is not a number in (0, 1).

    Examples
    --------
    >>> round(prior_correction(0.5, 0.1), 4)  # logit(0.1) - logit(0.5)
    -2.1972
    """
    for name, rate in (("sample_rate", sample_rate), ("population_rate", population_rate)):
        if not (isinstance(rate, (int, float, np.floating)) and 0 < rate < 1):
            raise InputError(f"{name} must be a number in (0, 1), got {rate!r}")
    return float(special.logit(population_rate) - special.logit(sample_rate))


# --------------------------------------------------------------------------- GPC without MCMC


NEWTON_TOLERANCE = 1e-10
NEWTON_ITERATIONS = 100


def binary_terms(eta: np.ndarray, y: np.ndarray, focal_gamma: float = 0.0):
    """Per-row value, slope and curvature of a binary log-likelihood or focal term.

    The term is ``l = log q`` (``focal_gamma = 0``) or minus the focal loss ``l = (1 - q)^gamma log q``
    (Lin et al. 2017), with ``q = sigmoid(u)`` the fitted probability of the observed class,
    ``u = s eta`` and ``s = 2 y - 1``; ``c = -d^2 l / deta^2`` is the curvature the Hessian sums. With
    ``a = 1 - q``, ``L = log q`` and ``r = L / a``::

        dl/du = a^gamma (a - gamma q L),    c = q a^(gamma + 1) (1 + 2 gamma + gamma L - gamma^2 q r).

    ``c`` is q a > 0 for the log-likelihood; for the focal loss it turns negative on badly misclassified
    rows (gamma = 2: below zero for u < -2.79, least -0.047 at u = -3.85): the focal loss is not
    convex in the logit.

    Parameters
    ----------
    eta : numpy.ndarray
        The logit of class 1 of every row (any shape that broadcasts with ``y``).
    y : numpy.ndarray
        The labels, 0 or 1.
    focal_gamma : float, default 0.0
        gamma; 0 for the log-likelihood.

    Returns
    -------
    l : numpy.ndarray
        The term of every row.
    slope : numpy.ndarray
        ``dl/deta``.
    c : numpy.ndarray
        The curvature ``-d^2 l / deta^2``.

    Examples
    --------
    >>> import numpy as np
    >>> l, slope, c = binary_terms(np.array([0.0, -3.85]), np.array([1, 1]), focal_gamma=2.0)
    >>> c.round(4)  # negative on the badly misclassified row
    array([ 0.3991, -0.0472])
    """
    if focal_gamma == 0:
        p = special.expit(eta)
        return y * eta - np.logaddexp(0.0, eta), y - p, p * (1 - p)
    sign = 2 * y - 1
    u = sign * eta
    q, a, log_q = special.expit(u), special.expit(-u), special.log_expit(u)
    ratio = np.where(u > 30, -1.0, log_q / np.where(u > 30, 1.0, a))   # L / a -> -1 as q -> 1
    power = a**focal_gamma
    gradient = sign * power * (a - focal_gamma * q * log_q)
    curvature = q * a * power * (1 + 2 * focal_gamma + focal_gamma * log_q - focal_gamma**2 * q * ratio)
    return power * log_q, gradient, curvature


def laplace_logistic(design: np.ndarray, y: np.ndarray, weights: np.ndarray, prior_precision: np.ndarray,
                     start: np.ndarray | None = None, *,
                     focal_gamma: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Modes and Hessians of weighted logistic log posteriors, one per row of ``weights``.

    Each fit maximises ``sum_i w_i l_i(design_i theta) - theta' P theta / 2`` with
    P = diag(``prior_precision``) (zeros: no prior, the WMLE) and ``l_i`` the log-likelihood term, or
    with ``focal_gamma > 0`` minus the focal loss (the Gibbs posterior and the loss minimiser;
    :func:`binary_terms`). Newton's method with step halving, all fits at once; where a fit's Hessian
    is not positive definite (the focal loss is not concave) the step uses the rows of positive
    curvature only, still an ascent direction.

    Parameters
    ----------
    design : numpy.ndarray
        The design matrix (n, d), e.g. a column of ones and the features.
    y : numpy.ndarray
        The labels, 0 or 1, length n.
    weights : numpy.ndarray
        Weights (fits, n), or one row of n.
    prior_precision : numpy.ndarray
        The diagonal of P, length d; zeros for no prior.
    start : numpy.ndarray, optional
        Starting values, broadcastable to (fits, d); default zeros.
    focal_gamma : float, default 0.0
        gamma of the focal loss, >= 0; 0 for the log-likelihood.

    Returns
    -------
    modes : numpy.ndarray
        The modes, (fits, d).
    H : numpy.ndarray
        Minus the Hessian at each mode, (fits, d, d).

    Raises
    ------
    InputError
        When ``focal_gamma`` is negative or NaN.
    RuntimeError
        When a fit does not converge (no finite mode: separation without a prior; or no step: the rows
        of positive curvature do not span every direction) or stops where H is not positive definite
        (not a maximum: no Laplace approximation).

    Examples
    --------
    >>> import numpy as np
    >>> design = np.column_stack([np.ones(4), [-1.0, -0.5, 0.5, 1.0]])
    >>> modes, H = laplace_logistic(design, np.array([0, 1, 0, 1]), np.array([1.0, 1.0, 2.0, 2.0]),
    ...                             np.zeros(2))
    >>> modes.round(3)
    array([[-0.256,  0.956]])
    """
    if not focal_gamma >= 0:
        raise InputError(f"focal_gamma must be >= 0, got {focal_gamma!r}")
    w = np.atleast_2d(np.asarray(weights, dtype=float))
    fits, d = w.shape[0], design.shape[1]
    theta = np.zeros((fits, d)) if start is None else np.array(np.broadcast_to(start, (fits, d)), dtype=float)
    precision = np.asarray(prior_precision, dtype=float)

    def objective(t):
        log_terms = binary_terms(t @ design.T, y, focal_gamma)[0]
        return np.sum(w * log_terms, axis=1) - 0.5 * np.sum(precision * t**2, axis=1)

    def hessian(curvature):
        return np.einsum("fn,ni,nj->fij", w * curvature, design, design) + np.diag(precision)

    for _ in range(NEWTON_ITERATIONS):
        _, slope, curvature = binary_terms(theta @ design.T, y, focal_gamma)
        gradient = (w * slope) @ design - precision * theta
        matrix = hessian(curvature)
        if focal_gamma != 0:
            concave = np.linalg.eigvalsh(matrix)[:, 0] > 0
            matrix = np.where(concave[:, None, None], matrix, hessian(np.maximum(curvature, 0.0)))
        try:
            newton = np.linalg.solve(matrix, gradient[..., None])[..., 0]
        except np.linalg.LinAlgError:   # no curvature left on any row: the mode runs off
            break
        size = np.ones(fits)
        current = objective(theta)
        for _ in range(30):   # halve the step where it would lower the objective
            worse = objective(theta + size[:, None] * newton) < current - 1e-12 * np.abs(current)
            if not worse.any():
                break
            size = np.where(worse, size / 2, size)
        theta = theta + size[:, None] * newton
        if np.max(np.abs(size[:, None] * newton)) < NEWTON_TOLERANCE * (1 + np.max(np.abs(theta))):
            final = hessian(binary_terms(theta @ design.T, y, focal_gamma)[2])
            if np.any(np.linalg.eigvalsh(final)[:, 0] <= 0):
                raise RuntimeError("Newton's method stopped where the Hessian is not negative definite")
            return theta, final
    raise RuntimeError("Newton's method did not converge: no finite mode (separation?)")


def gpc_scale(design: np.ndarray, y: np.ndarray, weights: np.ndarray, prior_precision: np.ndarray, *,
              level: float = 0.9, bootstrap: int = 200, rng, step: float = 4.0, iterations: int = 30,
              focal_gamma: float = 0.0) -> tuple[GPCScale, np.ndarray]:
    """GPC of a weighted logistic regression, without MCMC.

    Generalised posterior calibration (GPC). The omega-posterior of each bootstrap resample is replaced by its
    Laplace approximation N(mode_b, H_b^-1) (:func:`laplace_logistic`, all resamples at once) and its credible
    region by the ellipsoid ``(theta - mode_b)' H_b (theta - mode_b) <= chi2_d(level)``; the scale follows
    :func:`models.calibrate.posterior_calibration.robbins_monro`.

    Parameters
    ----------
    design : numpy.ndarray
        The design matrix (n, d); its rows are the units.
    y : numpy.ndarray
        The labels, 0 or 1.
    weights : numpy.ndarray
        One weight per row.
    prior_precision : numpy.ndarray
        The diagonal of the prior precision, length d.
    level : float, default 0.9
        The credible level to calibrate.
    bootstrap : int, default 200
        The number of bootstrap resamples.
    rng : numpy.random.Generator
        Draws the bootstrap resamples.
    step : float, default 4.0
        The Robbins-Monro step size.
    iterations : int, default 30
        The most Robbins-Monro iterations.
    focal_gamma : float, default 0.0
        ``focal_gamma > 0``: the focal loss's Gibbs posterior, centred on the loss minimiser.

    Returns
    -------
    calibration : models.calibrate.posterior_calibration.GPCScale
        The calibrated scale omega, the bootstrap coverage there, whether it converged and the path.
    target : numpy.ndarray
        The WMLE (loss minimiser) it centres on, length d.

    Raises
    ------
    RuntimeError
        When the WMLE (loss minimiser) does not exist (:func:`laplace_logistic`).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=40)
    >>> y = (rng.uniform(size=40) < 1 / (1 + np.exp(-x))).astype(int)
    >>> design = np.column_stack([np.ones(40), x])
    >>> calibration, target = gpc_scale(design, y, np.ones(40), np.array([1 / 25, 1 / 6.25]),
    ...                                 bootstrap=100, rng=np.random.default_rng(1))
    >>> calibration.converged, round(calibration.scale, 2), target.round(3)
    (True, 1.13, array([0.459, 1.437]))
    """
    w = np.asarray(weights, dtype=float)
    target, _ = laplace_logistic(design, y, w, np.zeros(design.shape[1]), focal_gamma=focal_gamma)
    counts = bootstrap_counts(y.size, bootstrap, rng) * w
    radius = stats.chi2.ppf(level, design.shape[1])
    modes = {"last": target}

    def coverage_at(scale: float) -> float:
        mode, hessian = laplace_logistic(design, y, scale * counts, prior_precision, start=modes["last"],
                                         focal_gamma=focal_gamma)
        modes["last"] = mode   # warm start for the next scale
        gap = target - mode
        return float(np.mean(np.einsum("fi,fij,fj->f", gap, hessian, gap) <= radius))

    return robbins_monro(coverage_at, level=level, tolerance=default_tolerance(level, bootstrap), step=step,
                         iterations=iterations), target[0]
