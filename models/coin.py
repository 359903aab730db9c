"""A weighted coin: Bernoulli tosses with a Beta prior on the probability of heads.

    p ~ Beta(a, b)
    log p(p | y, w) = log Beta(p | a, b) + sum_i w_i [y_i log p + (1 - y_i) log(1 - p)] + const

with ``y_i = 1`` for heads. Because the weighted Bernoulli likelihood is a Beta kernel in ``p``
for any non-negative weights, the weighted posterior is exactly

    Beta(a + sum_i w_i y_i,  b + sum_i w_i (1 - y_i)),

which the tests and the coin analysis use as ground truth for the sampler. The weighted MLE is
``sum w y / sum w``: unchanged when every weight is multiplied by ``c``, whereas the posterior's
pseudo-counts (and so its width) scale with ``c``.
"""

from __future__ import annotations

import numpy as np
import pymc as pm
from scipy import stats

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
    "ess", see :func:`models.weights.normalize`) and stored as ``pm.Data("weights")``.
    """
    y, w, (a, b) = prepare(flips, weights, prior=prior, normalize=normalize)
    with pm.Model(coords={"toss": np.arange(y.size)}) as model:
        flips_data = pm.Data("flips", y, dims="toss")
        weights_data = pm.Data("weights", w, dims="toss")
        # float64 scalars: a Python float that fits float32 would make PyTensor do the prior in float32.
        p = pm.Beta("p", alpha=np.float64(a), beta=np.float64(b))
        weighted_likelihood("heads", pm.Bernoulli, weights_data, observed=flips_data, dims="toss", p=p)
    return model


def exact_posterior(flips, weights=None, *, prior=(1.0, 1.0), normalize="none"):
    """The conjugate weighted posterior ``Beta(a + sum w y, b + sum w (1 - y))`` (scipy frozen)."""
    y, w, (a, b) = prepare(flips, weights, prior=prior, normalize=normalize)
    return stats.beta(a + np.sum(w * y), b + np.sum(w * (1 - y)))
