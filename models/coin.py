"""A weighted coin: Bernoulli tosses with a Beta prior on the probability of heads.

    p ~ Beta(a, b)
    log p(p | y, w) = log Beta(p | a, b) + sum_i w_i [y_i log p + (1 - y_i) log(1 - p)] + const

with ``y_i = 1`` for heads. Because the weighted Bernoulli likelihood is a Beta kernel in ``p``
for any non-negative weights, the weighted posterior is exactly

    Beta(a + sum_i w_i y_i,  b + sum_i w_i (1 - y_i)),

which the tests and the coin analysis use as ground truth for the sampler. The weighted MLE is
``sum w y / sum w``: unchanged when every weight is multiplied by ``c``, whereas the posterior's
pseudo-counts (and so its width) scale with ``c``.

Existence, in closed form. Both estimators maximise ``A log p + B log(1 - p)`` over [0, 1]: the
WMLE with ``A = sum w y`` and ``B = sum w (1 - y)``, the MAP (the mode of the density, no Jacobian)
with ``A = a - 1 + sum w y`` and ``B = b - 1 + sum w (1 - y)``. With A, B >= 0 the maximiser is
``A / (A + B)``, on the boundary (p = 0 or 1) when one side carries nothing, so the WMLE of
non-negative weights always exists; every p maximises when A = B = 0. With A < 0 (or B < 0) the
objective rises to +infinity as p -> 0 (or 1): no maximiser (a net negative weight on heads, or a
Beta prior with a < 1 that no heads outweigh). The models carry this verdict
(:mod:`models.existence`), so ``inference.mle`` and ``map_estimate`` return these values exactly.
"""

from __future__ import annotations

import numpy as np
import pymc as pm
from scipy import stats

from models import existence
from models import weights as weights_lib
from models.errors import InputError
from models.likelihood import weighted_likelihood


def _check_flips(flips) -> np.ndarray:
    y = np.asarray(flips)
    if y.ndim != 1 or y.size == 0:
        raise InputError(f"flips must be a non-empty one-dimensional array, got shape {y.shape}")
    if y.dtype == bool:
        y = y.astype(np.int64)
    if not np.issubdtype(y.dtype, np.number) or not np.all(np.isin(y, (0, 1))):
        raise InputError("flips must hold only 0 (tails) and 1 (heads)")
    return y.astype(np.int64)


def _check_prior(prior) -> tuple[float, float]:
    try:
        a, b = (float(v) for v in prior)
    except (TypeError, ValueError):
        raise InputError(f"prior must be a pair (a, b) of Beta parameters, got {prior!r}") from None
    if not (np.isfinite(a) and np.isfinite(b) and a > 0 and b > 0):
        raise InputError(f"prior Beta(a, b) needs finite a > 0 and b > 0, got ({a:g}, {b:g})")
    return a, b


def prepare(flips, weights=None, *, prior=(1.0, 1.0), normalize="none"):
    """Validated ``(flips, weights, (a, b))`` exactly as the model uses them."""
    y = _check_flips(flips)
    w = weights_lib.normalize(weights_lib.check(weights, y.size), normalize)
    return y, w, _check_prior(prior)


def build_model(flips, weights=None, *, prior=(1.0, 1.0), normalize="none") -> pm.Model:
    """The weighted coin model; free variable ``p``, observed term ``heads`` (dims ``toss``).

    ``weights`` (default all ones) are checked and rescaled by ``normalize`` ("none", "n" or
    "ess", see :func:`models.weights.normalize`) and stored as ``pm.Data("weights")``; the tosses
    as ``pm.Data("flips")`` and the prior as ``pm.Data("prior_a")`` and ``pm.Data("prior_b")``, so
    that new data or a new prior of the same shapes reuse the compiled model (``pm.set_data``).
    """
    y, w, (a, b) = prepare(flips, weights, prior=prior, normalize=normalize)
    with pm.Model(coords={"toss": np.arange(y.size)}) as model:
        flips_data = pm.Data("flips", y, dims="toss")
        weights_data = pm.Data("weights", w, dims="toss")
        # Data, not constants: a constant would be compiled into the C code, once per prior.
        p = pm.Beta("p", alpha=pm.Data("prior_a", np.float64(a)), beta=pm.Data("prior_b", np.float64(b)))
        weighted_likelihood("heads", pm.Bernoulli, weights_data, observed=flips_data, dims="toss", p=p)
    return existence.attach(model, "coin", mle_existence, map_existence)


def _weighted_counts(model: pm.Model) -> tuple[float, float]:
    """``(sum w y, sum w (1 - y))`` from the model's current data."""
    y, w = model["flips"].get_value(), model["weights"].get_value()
    return float(np.sum(w * y)), float(np.sum(w * (1 - y)))


def maximiser_existence(heads: float, tails: float) -> existence.Existence:
    """The verdict on ``argmax_p heads log p + tails log(1 - p)`` over [0, 1], in closed form."""
    if heads < 0 or tails < 0:
        running = [*(["p -> 0"] if heads < 0 else []), *(["p -> 1"] if tails < 0 else [])]
        return existence.Existence(
            False, "closed form", f"heads weigh {heads:.4g} and tails {tails:.4g}; a negative side sends "
            "the objective to +infinity at its boundary", diverging=tuple(running))
    if heads + tails == 0:
        return existence.Existence(True, "closed form", "heads and tails weigh nothing: every p maximises "
                                   "(p = 0.5 reported)", aliased=("p",), maximiser={"p": 0.5})
    p_hat = heads / (heads + tails)
    where = " (on the boundary)" if p_hat in (0.0, 1.0) else ""
    return existence.Existence(True, "closed form", f"heads weigh {heads:.4g} and tails {tails:.4g}: "
                               f"p = {p_hat:.6g}{where}", maximiser={"p": p_hat})


def mle_existence(model: pm.Model) -> existence.Existence:
    """The WMLE's verdict for a coin model (its current data): ``sum w y / sum w``."""
    return maximiser_existence(*_weighted_counts(model))


def map_existence(model: pm.Model) -> existence.Existence:
    """The MAP's verdict for a coin model with a Beta(a, b) prior: the mode of Beta(a + sum w y,
    b + sum w (1 - y)) when it has one."""
    heads, tails = _weighted_counts(model)
    a, b = (float(model[name].get_value()) for name in ("prior_a", "prior_b"))
    return maximiser_existence(a - 1 + heads, b - 1 + tails)


def exact_posterior(flips, weights=None, *, prior=(1.0, 1.0), normalize="none"):
    """The conjugate weighted posterior ``Beta(a + sum w y, b + sum w (1 - y))`` (scipy frozen)."""
    y, w, (a, b) = prepare(flips, weights, prior=prior, normalize=normalize)
    return stats.beta(a + np.sum(w * y), b + np.sum(w * (1 - y)))
