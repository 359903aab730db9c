"""Imbalanced classes: weighted logistic (K = 2) and softmax (K > 2) regression.

With features ``x_i`` (standardised by the caller: the priors below are on that scale), labels
``y_i`` in 0..K-1 and weights ``w_i``:

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
(:mod:`models.existence`): the linear programs of :mod:`models.separation` on its current data (rows
of weight 0 dropped; the verdict is the same for the focal loss), so ``inference.mle`` raises
``UnboundedLikelihoodError`` naming the coefficients that diverge and their directions. The MAP
exists whenever every coefficient has a proper prior; with a flat intercept (``intercept_sd=None``)
it does not when the rows separate along the intercept alone (every weighted row in one class, say).
"""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytensor.tensor as pt
from scipy import special

from models import existence, separation
from models import weights as weights_lib
from models.errors import InputError
from models.likelihood import weighted_softmax

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
    """``alpha`` for each class: ``None`` -> all ones; a number a in (0, 1) for K = 2 -> (1 - a, a),
    i.e. a for class 1 as in Lin et al.; else one positive number per class."""
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
    """Validated ``(X, y, weights, counts)`` exactly as the model uses them."""
    features = _check_features(X)
    labels, counts = weights_lib.class_labels(y)
    if labels.size != features.shape[0]:
        raise InputError(f"y has length {labels.size} but X has {features.shape[0]} rows")
    w = weights_lib.normalize(weights_lib.check(weights, labels.size), normalize)
    return features, labels, w, counts


def build_model(X, y, weights=None, *, coef_sd=2.5, intercept_sd=5.0, likelihood="categorical",
                focal_gamma=2.0, focal_alpha=None, normalize="none", feature_names=None,
                class_names=None) -> pm.Model:
    """Weighted logistic (two classes) or softmax (more) regression; see the module docstring.

    Free variables ``intercept`` and ``coef`` (dims ``feature``; for K > 2 also ``class``); data
    ``X`` (``obs_id``, ``feature``), ``y`` and ``weights`` (``obs_id``) in ``pm.Data``; observed
    term ``label``. ``focal_gamma`` and ``focal_alpha`` are used only with ``likelihood="focal"``.
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
    """The (W)MLE's verdict for a classes model: separation by linear programming (also the focal
    loss's pseudo-MLE); ``None`` for negative weights."""
    found = _separation(model, intercept_only=False)
    return None if found is None else _verdict(found)


def map_existence(model: pm.Model) -> existence.Existence | None:
    """The MAP's verdict for a classes model with a flat intercept: it does not exist exactly when the
    weighted rows separate along the intercept alone (the coefficients' Normal priors penalise every
    other direction)."""
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
    """A two-class point estimate (``intercept``, ``coef``) as one vector: intercept, then coefficients."""
    return np.r_[estimate["intercept"], estimate["coef"]]


def predict_proba(X, intercept, coef, *, n_classes: int = 2) -> np.ndarray:
    """Class probabilities for the rows of ``X`` at one or many parameter values (numpy).

    Two classes: ``intercept`` has shape ``(...)`` and ``coef`` ``(..., feature)``; returns
    P(y = 1) with shape ``(..., obs)``. K > 2: ``intercept (..., class)``, ``coef (..., feature,
    class)``; returns ``(..., obs, class)``. Leading axes are draws (e.g. chain, draw).
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
    """King & Zeng's (2001) prior correction: the shift of a logistic intercept that moves a fit to
    a sample with event rate ``sample_rate`` (ybar) to a population whose rate is ``population_rate``
    (tau): ``intercept_tau = intercept - log[((1 - tau) / tau) (ybar / (1 - ybar))]``, i.e. the
    shift is ``logit(tau) - logit(ybar)``.

    The slopes are consistent under sampling on the outcome; only the intercept absorbs the rate.
    Returns the shift (add it to the intercept, or to every posterior draw of it).
    """
    for name, rate in (("sample_rate", sample_rate), ("population_rate", population_rate)):
        if not (isinstance(rate, (int, float, np.floating)) and 0 < rate < 1):
            raise InputError(f"{name} must be a number in (0, 1), got {rate!r}")
    return float(special.logit(population_rate) - special.logit(sample_rate))
