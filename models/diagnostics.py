"""Convergence diagnostics of NUTS draws: the numbers one checks before trusting them.

:func:`diagnose` reduces an ``InferenceData`` to its worst r-hat, bulk and tail ESS and BFMI, and its
divergences (a :class:`Diagnostics` record; ``ok`` when every check passes the thresholds below).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import arviz as az
import numpy as np
from scipy import special
from scipy.fft import next_fast_len

from models.errors import InputError

__all__ = ["BFMI_MIN", "Diagnostics", "ESS_MIN", "R_HAT_MAX", "diagnose", "diagnose_draws",
           "rank_diagnostics"]

R_HAT_MAX = 1.01
"""Default bound on the rank-normalised split r-hat (Vehtari et al. 2021)."""
ESS_MIN = 400.0
"""Default bound on bulk and tail ESS (100 per chain for 4 chains, Vehtari et al. 2021)."""
BFMI_MIN = 0.3
"""Default bound on the energy Bayesian fraction of missing information (Betancourt 2016)."""


def _compared(value: float, bound: float) -> str:
    """``value`` with at least three significant digits, and as many more as it takes to print on the
    side of ``bound`` it lies on (r-hat 1.0104 against 1.01, ESS 399.6 against 400: never "400 < 400")."""
    if not np.isfinite(value):
        return str(value)
    decimals = max(0, 2 - int(np.floor(np.log10(abs(value))))) if value else 0
    for decimals in range(decimals, decimals + 12):
        text = f"{value:.{decimals}f}"
        if float(text) != bound and (float(text) > bound) == (value > bound):
            return text
    return repr(value)


@dataclass(frozen=True)
class Diagnostics:
    """Convergence summary of one set of draws, with the bounds it is judged by.

    Attributes
    ----------
    max_r_hat, min_ess_bulk, min_ess_tail, min_bfmi : float
        The worst value over every varying element of the posterior (NaN when undefined).
    divergences : int
        Divergent transitions after warm-up.
    chains, draws : int
        What the statistics were computed from.
    nonfinite_draws : int
        Draws that are NaN or infinite.
    r_hat_bound, ess_bound, bfmi_bound : float
        The checks: r-hat at most ``r_hat_bound``, both ESS at least ``ess_bound``, BFMI at least
        ``bfmi_bound``, no divergence, every draw finite, at least 2 chains.

    Examples
    --------
    >>> print(Diagnostics(1.0104, 812.0, 399.6, 0, 0.9, 4, 1000))
    not ok: r_hat 1.0104 > 1.01; tail ESS 399.6 < 400
    """

    max_r_hat: float
    min_ess_bulk: float
    min_ess_tail: float
    divergences: int
    min_bfmi: float
    chains: int
    draws: int
    nonfinite_draws: int = 0
    r_hat_bound: float = R_HAT_MAX
    ess_bound: float = ESS_MIN
    bfmi_bound: float = BFMI_MIN

    @property
    def problems(self) -> list[str]:
        """One sentence per failed check (empty when ``ok``)."""
        found = []
        if self.nonfinite_draws:
            found.append(f"{self.nonfinite_draws} non-finite draw(s)")
        if self.chains < 2:
            found.append("r_hat needs at least 2 chains")
        elif not self.max_r_hat <= self.r_hat_bound:
            found.append(f"r_hat {_compared(self.max_r_hat, self.r_hat_bound)} > {self.r_hat_bound:g}")
        if not self.min_ess_bulk >= self.ess_bound:
            found.append(f"bulk ESS {_compared(self.min_ess_bulk, self.ess_bound)} < {self.ess_bound:g}")
        if not self.min_ess_tail >= self.ess_bound:
            found.append(f"tail ESS {_compared(self.min_ess_tail, self.ess_bound)} < {self.ess_bound:g}")
        if self.divergences:
            found.append(f"{self.divergences} divergent transition(s)")
        if not self.min_bfmi >= self.bfmi_bound:
            found.append(f"BFMI {_compared(self.min_bfmi, self.bfmi_bound)} < {self.bfmi_bound:g}")
        return found

    @property
    def ok(self) -> bool:
        """Whether every check passes."""
        return not self.problems

    def as_dict(self) -> dict:
        """The fields and ``ok``, for ``InferenceData.attrs`` (``diagnostics_*``)."""
        return {**asdict(self), "ok": self.ok}

    def __str__(self) -> str:
        if not self.ok:
            return "not ok: " + "; ".join(self.problems)
        return (f"ok: r_hat {self.max_r_hat:.3f}, bulk ESS {self.min_ess_bulk:.0f}, tail ESS "
                f"{self.min_ess_tail:.0f}, BFMI {self.min_bfmi:.2f}, no divergence "
                f"({self.chains} chains x {self.draws} draws)")


def diagnose(idata: az.InferenceData, *, r_hat_max: float = R_HAT_MAX, ess_min: float = ESS_MIN,
             bfmi_min: float = BFMI_MIN) -> Diagnostics:
    """Worst-case r_hat, bulk/tail ESS and BFMI over all posterior variables, and divergences.

    Elements that are constant across draws (e.g. a fixed reference category) are skipped: their
    r_hat and ESS are undefined, not bad. Anything else that is undefined counts as a failure: a
    non-finite r_hat or ESS of a varying element, and draws that are NaN or infinite.

    Parameters
    ----------
    idata : arviz.InferenceData
        With a ``posterior`` group; ``sample_stats`` (``diverging``, ``energy``) when there is one.
    r_hat_max, ess_min, bfmi_min : float
        The bounds the checks use (defaults :data:`R_HAT_MAX`, :data:`ESS_MIN`, :data:`BFMI_MIN`).

    Returns
    -------
    Diagnostics
        ``ok`` when every check passes; ``problems`` (and ``print``) say which do not.

    Raises
    ------
    InputError
        When ``idata`` has no posterior group, or a bound is not a positive number.

    Examples
    --------
    >>> import models
    >>> idata = models.sample(models.coin.build_model([1, 0, 1, 1]), draws=200, tune=200, chains=2,
    ...                       random_seed=1)
    >>> found = models.diagnose(idata)
    >>> found.chains, found.draws, found.divergences
    (2, 200, 0)
    >>> models.diagnose(idata, ess_min=100, r_hat_max=1.05).ok
    True
    """
    if not isinstance(idata, az.InferenceData) or "posterior" not in idata.groups():
        raise InputError(f"idata must be an InferenceData with a posterior group, got {type(idata).__name__}")
    posterior = idata.posterior
    stats = idata.get("sample_stats")
    diverging = stats["diverging"].values[None] if stats is not None and "diverging" in stats else None
    energy = stats["energy"].values[None] if stats is not None and "energy" in stats else None
    draws = {name: posterior[name].values[None] for name in posterior.data_vars}
    bounds = {"r_hat_max": r_hat_max, "ess_min": ess_min, "bfmi_min": bfmi_min}
    return diagnose_draws(draws, diverging, energy, **bounds)[0]


# --------------------------------------------------------------------------- many series at once
#
# ArviZ's rank-normalised split r-hat and bulk and tail ESS (Vehtari et al. 2021; ``az.rhat``,
# ``az.ess(method="bulk" | "tail")``), computed for many series at once: ArviZ evaluates them one
# element at a time, which dominated batches of a thousand fits. Each step
# is ArviZ's, with its floating-point operations (ranks with ties averaged, Blom's offsets, R's type 7
# quantile, FFT autocovariance, Geyer's initial positive then monotone sequence), so the numbers agree
# with ArviZ's to rounding (tests/test_diagnostics.py checks them). Arrays are (series, chain, draw).


def _ranks(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Average ranks (1-based, ties shared, as ``scipy.stats.rankdata``) along the last axis, and the
    values sorted."""
    order = np.argsort(values, axis=1, kind="stable")
    ordered = np.take_along_axis(values, order, axis=1)
    size = values.shape[1]
    position = np.arange(size)
    first = np.ones_like(ordered, dtype=bool)
    first[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    last = np.ones_like(ordered, dtype=bool)
    last[:, :-1] = first[:, 1:]
    start = np.maximum.accumulate(np.where(first, position, 0), axis=1)
    end = np.minimum.accumulate(np.where(last, position, size - 1)[:, ::-1], axis=1)[:, ::-1]
    ranks = np.empty_like(ordered)
    np.put_along_axis(ranks, order, (start + end) / 2.0 + 1.0, axis=1)
    return ranks, ordered


def _z_scale(ranks: np.ndarray, shape) -> np.ndarray:
    """Normal scores of ranks (Blom's offset c = 3/8)."""
    size = ranks.shape[1]
    return special.ndtri((ranks - 3 / 8) / (size - 2 * 3 / 8 + 1)).reshape(shape)   # norm.ppf


def _split(values: np.ndarray) -> np.ndarray:
    """Each chain's first and last halves as two chains (the middle draw of an odd length dropped)."""
    half = values.shape[2] // 2
    return np.concatenate([values[:, :, :half], values[:, :, -half:]], axis=1)


def _rhat(values: np.ndarray) -> np.ndarray:
    draws = values.shape[2]
    between = draws * values.mean(axis=2).var(axis=1, ddof=1)
    within = values.var(axis=2, ddof=1).mean(axis=1)
    return np.sqrt((between / within + draws - 1) / draws)


def _ess(values: np.ndarray) -> np.ndarray:
    """ESS of each series of (series, chain, draw) values (ArviZ's ``_ess``)."""
    values = np.asarray(values, dtype=float)
    series, chains, draws = values.shape
    flat = values.reshape(series, -1)
    constant = (flat.max(axis=1) - flat.min(axis=1)) < np.finfo(float).resolution
    padded = next_fast_len(2 * draws)
    centred = values - values.mean(axis=2, keepdims=True)
    spectrum = np.fft.rfft(centred, n=padded, axis=2)
    autocovariance = np.fft.irfft(spectrum * np.conjugate(spectrum), n=padded, axis=2)[:, :, :draws] / draws
    mean_var = autocovariance[:, :, 0].mean(axis=1) * draws / (draws - 1.0)
    var_plus = mean_var * (draws - 1.0) / draws
    if chains > 1:
        var_plus = var_plus + values.mean(axis=2).var(axis=1, ddof=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = 1.0 - (mean_var[:, None] - autocovariance.mean(axis=1)) / var_plus[:, None]
    rho[:, 0] = 1.0
    pairs = (draws - 1) // 2                    # pair k: lags 2k and 2k + 1
    even, odd = rho[:, 0:2 * pairs:2], rho[:, 1:2 * pairs:2]
    sums = even + odd
    # Geyer's initial positive sequence takes pair k >= 1 while 2k - 1 < draws - 3 and the pair before
    # sums above 0; it ends at k_end, the last pair taken (0 when none is).
    taken = (2 * np.arange(1, pairs) - 1 < draws - 3)[None, :] & (sums[:, :-1] > 0)
    k_end = (np.where(taken.all(axis=1), pairs - 1, np.argmin(taken, axis=1)) if taken.shape[1]
             else np.zeros(series, dtype=int))
    # Geyer's initial monotone sequence: every pair's sum capped by the one before it.
    monotone = np.minimum.accumulate(sums, axis=1)
    total = np.where(np.arange(pairs)[None, :] < k_end[:, None], monotone, 0.0).sum(axis=1)
    rows = np.arange(series)
    last_even, last_sum = even[rows, k_end], sums[rows, k_end]
    last = np.where(k_end == 0, 1.0, np.where((last_sum >= 0) | (last_even > 0), last_even, 0.0))
    size = chains * draws
    ess = size / np.maximum(-1.0 + 2.0 * total + last, 1 / np.log10(size))
    ess[np.isnan(rho).any(axis=1)] = np.nan
    ess[constant] = size
    return ess


def _type7(ordered: np.ndarray, probability: float) -> np.ndarray:
    """R's type 7 quantile of sorted rows, with the steps of ``scipy.stats.mstats.mquantiles``."""
    size = ordered.shape[1]
    aleph = size * probability + (1.0 - probability)
    k = int(np.floor(np.clip(aleph, 1, size - 1)))
    gamma = float(np.clip(aleph - k, 0, 1))
    return (1.0 - gamma) * ordered[:, k - 1] + gamma * ordered[:, k]


def rank_diagnostics(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rank-normalised split r-hat, bulk ESS and tail ESS of many series at once.

    As ``az.rhat`` and ``az.ess(method="bulk" | "tail")`` give them (Vehtari et al. 2021), with
    ArviZ's steps, so the numbers agree with ArviZ's to rounding.

    Parameters
    ----------
    values : array_like, shape (series, chain, draw)

    Returns
    -------
    r_hat, ess_bulk, ess_tail : numpy.ndarray, shape (series,)
        One number per series; r_hat is NaN for one chain.

    Examples
    --------
    >>> import numpy as np
    >>> from models.diagnostics import rank_diagnostics
    >>> r_hat, ess_bulk, ess_tail = rank_diagnostics(np.random.default_rng(0).normal(size=(3, 4, 500)))
    >>> r_hat.shape, bool(np.all(r_hat < 1.01)), bool(np.all(ess_bulk > 1000))
    ((3,), True, True)
    """
    values = np.asarray(values, dtype=float)
    series = values.shape[0]
    split = _split(values)   # an odd chain length loses its middle draw: ranks are of what remains
    ranks, ordered = _ranks(split.reshape(series, -1))
    bulk = _z_scale(ranks, split.shape)
    ess_bulk = _ess(bulk)
    ordered_all = np.sort(values.reshape(series, -1), axis=1)   # the tail's quantiles: every draw
    ess_tail = np.minimum(*(_ess(_split((values <= _type7(ordered_all, p)[:, None, None]).astype(float)))
                            for p in (0.05, 0.95)))
    if values.shape[1] < 2:
        return np.full(series, np.nan), ess_bulk, ess_tail
    size = ordered.shape[1]
    median = ((ordered[:, (size - 1) // 2] + ordered[:, size // 2]) / 2.0)[:, None, None]
    folded = np.abs(split - median).reshape(series, -1)
    r_hat = np.maximum(_rhat(bulk), _rhat(_z_scale(_ranks(folded)[0], split.shape)))
    return r_hat, ess_bulk, ess_tail


def diagnose_draws(draws: dict, diverging=None, energy=None, *, r_hat_max: float = R_HAT_MAX,
                   ess_min: float = ESS_MIN, bfmi_min: float = BFMI_MIN) -> list[Diagnostics]:
    """:func:`diagnose` for many fits at once.

    r_hat and ESS come from :func:`rank_diagnostics`, all elements of all fits at once. Elements
    constant across draws are skipped (undefined, not bad); non-finite draws fail their fit
    (``nonfinite_draws``), as does a varying element whose statistic is undefined.

    Parameters
    ----------
    draws : dict
        Each variable -> ``(fits, chains, draws, *shape)``.
    diverging, energy : array_like, shape (fits, chains, draws), optional
        Sampler statistics; without ``energy`` the BFMI is NaN (a failed check).
    r_hat_max, ess_min, bfmi_min : float
        The bounds the checks use (defaults :data:`R_HAT_MAX`, :data:`ESS_MIN`, :data:`BFMI_MIN`).

    Returns
    -------
    list of Diagnostics
        One per fit.

    Raises
    ------
    InputError
        When a bound is not a finite positive number.

    Examples
    --------
    >>> import numpy as np
    >>> from models.diagnostics import diagnose_draws
    >>> rng = np.random.default_rng(0)
    >>> draws = rng.normal(size=(2, 4, 500))   # 2 fits, 4 chains of 500 draws
    >>> draws[1, :2] += 3                      # fit 1: two chains elsewhere
    >>> energy = rng.normal(size=(2, 4, 500))
    >>> [found.ok for found in diagnose_draws({"mu": draws}, energy=energy)]
    [True, False]
    """
    for name, bound in (("r_hat_max", r_hat_max), ("ess_min", ess_min), ("bfmi_min", bfmi_min)):
        if isinstance(bound, bool) or not isinstance(bound, (int, float, np.integer, np.floating)) \
                or not (np.isfinite(bound) and bound > 0):
            raise InputError(f"{name} must be a finite positive number, got {bound!r}")
    fits, chains, length = np.shape(next(iter(draws.values())))[:3]
    blocks = [np.moveaxis(np.asarray(v, dtype=float).reshape(fits, chains, length, -1), 3, 1)
              for v in draws.values()]
    series = np.concatenate([b.reshape(-1, chains, length) for b in blocks])
    owner = np.concatenate([np.repeat(np.arange(fits), b.shape[1]) for b in blocks])
    # Elements constant across draws are skipped (undefined, not bad); so are non-finite ones, which
    # fail the fit through nonfinite_draws.
    varying = np.isfinite(series).all(axis=(1, 2)) & (series.std(axis=(1, 2)) > 0)
    r_hat, ess_bulk, ess_tail = np.full((3, series.shape[0]), np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        if varying.any():
            r_hat[varying], ess_bulk[varying], ess_tail[varying] = rank_diagnostics(series[varying])

    def worst(statistic, reduce, fill):
        """Per fit, ``reduce`` over its varying elements (NaN when it has none)."""
        per = np.full(fits, fill)
        reduce.at(per, owner, np.where(varying, statistic, fill))
        per[np.bincount(owner, weights=varying, minlength=fits) == 0] = np.nan
        return per

    worst_r_hat = worst(r_hat, np.fmax, -np.inf) if chains > 1 else np.full(fits, np.nan)
    worst_bulk, worst_tail = worst(ess_bulk, np.fmin, np.inf), worst(ess_tail, np.fmin, np.inf)
    # A varying element whose statistic is undefined makes the fit's worst value NaN: a failure.
    undefined_element = varying & (np.isnan(ess_bulk) | np.isnan(ess_tail) | (np.isnan(r_hat) & (chains > 1)))
    undefined = np.bincount(owner, weights=undefined_element, minlength=fits) > 0
    for values in (worst_r_hat, worst_bulk, worst_tail):
        values[undefined] = np.nan
    nonfinite = sum((~np.isfinite(v)).reshape(fits, -1).sum(axis=1) for v in draws.values())
    divergences = np.zeros(fits, int) if diverging is None else np.asarray(diverging).reshape(fits, -1).sum(1)
    # BFMI per chain (as az.bfmi): mean squared change of energy over its variance (ddof 1).
    bfmi = (np.full(fits, np.nan) if energy is None else
            (np.square(np.diff(energy, axis=2)).mean(axis=2) / np.var(energy, axis=2, ddof=1)).min(axis=1))
    return [Diagnostics(max_r_hat=float(worst_r_hat[i]), min_ess_bulk=float(worst_bulk[i]),
                        min_ess_tail=float(worst_tail[i]), divergences=int(divergences[i]),
                        min_bfmi=float(bfmi[i]), chains=int(chains), draws=int(length),
                        nonfinite_draws=int(nonfinite[i]), r_hat_bound=float(r_hat_max),
                        ess_bound=float(ess_min), bfmi_bound=float(bfmi_min))
            for i in range(fits)]
