"""Leave-one-out cross-validation that says what it estimates, for weighted posteriors.

The suite stores the pointwise *weighted* log-likelihood ``w_i log p(y_i | theta)`` in
``log_likelihood`` (what the sampler's target sums) and the *unweighted* ``log p(y_i | theta)`` in
``unweighted_log_likelihood``. ``az.loo(idata)`` reads the first, so it leaves a whole weighted row
out (importance ratios ``p(y_i | theta)^-w_i``) and scores it by ``w_i log p``: for frequency weights
that is not the leave-one-unit-out estimate anyone wants, and its Pareto k-hats grow with ``w_i``.
:func:`loo` instead asks which of two targets is meant, with S posterior draws theta_s:

* ``weights="frequency"``: row i stands for ``w_i`` identical units (integer weights). Leaving one
  unit out divides the posterior by ``p(y_i | theta)``, so the ratios are ``r_is = 1 / p(y_i | theta_s)``
  (Pareto-smoothed, PSIS), and the unit's predictive density is::

      elpd_i = log( sum_s r~_is p(y_i | theta_s) )     (r~ the normalised smoothed ratios),

  counted ``w_i`` times: ``elpd = sum_i w_i elpd_i`` over the ``N = sum_i w_i`` units, with standard
  error ``sqrt(N var_units(elpd_i))``. This is ``az.loo`` on the data expanded to one row per unit,
  from the same draws (the tests check it).
* ``weights="population"``: the weights describe another population than the sample (importance,
  class-balancing or survey weights). Row i is left out of the pseudo-posterior, which holds it as
  ``p(y_i | theta)^w_i``, so ``r_is = p(y_i | theta_s)^-w_i``; ``elpd_i`` as above; and the population's
  expected log predictive density of n new units is the weighted (Hajek) mean scaled to n,
  ``elpd = sum_i v_i elpd_i`` with ``v_i = n w_i / sum_j w_j``, standard error
  ``sqrt(sum_i v_i^2 (elpd_i - elpd / n)^2)``. Assumptions: the rows are independent draws from the
  sample's distribution; ``w_i`` is proportional to the population's density over the sample's at row
  i (known, not estimated); the scale of the weights does not matter here (it cancels in ``v``), but it
  does set how wide the pseudo-posterior is (see :mod:`models.calibrate`). With all weights 1 both
  targets are ``az.loo``.

Rows of weight 0 are outside the fit; they still get ``elpd_i`` (a prediction of a held-out row) and
count ``w_i = 0`` in the totals.

``population=`` states the target population apart from the fit's weights: rows are still left out
of the fit as it holds them (``r_is = p(y_i | theta_s)^-w_i``), but the total weighs ``elpd_i`` by
``v_i = n u_i / sum_j u_j`` for the given ``u``. Fits of the same rows under different weights (no
weights, class-balanced, effective-number) then estimate the same quantity, the expected log
predictive density of new units of that population, and :func:`loo_compare` ranks them with a paired
standard error of each difference. ``az.compare`` cannot: it would sum each fit's own weighted terms,
a different target per fit.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import arviz as az
import numpy as np
import xarray as xr
from scipy.special import logsumexp

from models.errors import InputError
from models.sampling.idata import UNWEIGHTED_GROUP

__all__ = ["COMPARE_COLUMNS", "LooResult", "TARGETS", "loo", "loo_compare"]

TARGETS = ("frequency", "population")


@dataclass(frozen=True)
class LooResult:
    """A leave-one-out estimate of one target (what :func:`loo` returns).

    ``str(result)`` is a one-line summary; the property ``units`` says how many units the totals are
    over.

    Attributes
    ----------
    elpd : float
        The estimate, a total over units: ``sum w`` units for frequency weights, n rows for a
        population.
    se : float
        Its standard error.
    p_loo : float
        The weighted in-sample log predictive density minus ``elpd``. With a population it is
        population-weighted too: a measure of optimism for that population, not a number of
        parameters.
    pointwise : numpy.ndarray
        Per row, one unit's elpd.
    pareto_k : numpy.ndarray
        Per row, the Pareto k-hat (NaN for a row outside the fit, weight 0: nothing is left out, its
        elpd is the posterior predictive).
    weights : numpy.ndarray
        The row weights that count the units (the population's ``u`` when one is given).
    target : {"frequency", "population"}
    good_k : float
        ArviZ's threshold ``min(1 - 1/log10 S, 0.7)``: above it a row's estimate is unreliable.

    Examples
    --------
    >>> import models
    >>> model = models.coin.build_model([1, 0, 1, 1], [1, 2, 1, 1])
    >>> result = models.loo(models.sample(model, draws=200, tune=200, chains=2, random_seed=1))
    >>> result.target, result.units, result.pointwise.shape
    ('frequency', 5.0, (4,))
    """

    elpd: float
    se: float
    p_loo: float
    pointwise: np.ndarray
    pareto_k: np.ndarray
    weights: np.ndarray
    target: str
    good_k: float

    @property
    def units(self) -> float:
        """How many units the totals are over: ``sum w`` for frequency weights, else the rows."""
        return float(self.weights.sum()) if self.target == "frequency" else float(self.weights.size)

    def __str__(self) -> str:
        bad = int(np.sum(self.pareto_k > self.good_k))
        return (f"LOO ({self.target} weights, {self.units:g} units): elpd {self.elpd:.2f} "
                f"(se {self.se:.2f}), p_loo {self.p_loo:.2f}; {bad} of {self.pareto_k.size} rows with "
                f"Pareto k > {self.good_k:.2f}")


def _stacked(group: xr.Dataset, var_name: str | None) -> tuple[str, xr.DataArray]:
    names = list(group.data_vars)
    if var_name is None:
        if len(names) != 1:
            raise InputError(f"the log-likelihood holds {names}: pass var_name")
        var_name = names[0]
    if var_name not in names:
        raise InputError(f"no log-likelihood of {var_name!r}; there are {names}")
    return var_name, group[var_name]


def _row_weights(idata, var_name: str, weights_var: str | None, shape) -> np.ndarray:
    if weights_var is None:   # as the sampler recorded it; "" for an unweighted term
        weights_var = idata.attrs.get(f"weights_of_{var_name}", "weights")
        if weights_var == "":
            return np.ones(int(np.prod(shape, dtype=int)))
    if "constant_data" not in idata.groups() or weights_var not in idata.constant_data:
        raise InputError(f"constant_data has no {weights_var!r}: pass weights_var, the name of the "
                         f"weights of {var_name!r}")
    weights = np.broadcast_to(np.asarray(idata.constant_data[weights_var], dtype=float), shape)
    if not np.all(np.isfinite(weights)) or np.any(weights < 0):
        raise InputError("leave-one-out needs finite, non-negative weights")
    return np.ravel(weights)


def _population_weights(population, rows: int) -> np.ndarray:
    try:
        u = np.asarray(population, dtype=float)
    except (TypeError, ValueError) as err:
        raise InputError(f"population must be numbers, one per row: {err}") from None
    if u.size != rows:
        raise InputError(f"population has {u.size} weights for {rows} rows: one per row")
    if not np.all(np.isfinite(u)) or np.any(u < 0):
        raise InputError("population weights must be finite and non-negative")
    return np.ravel(u)


def _relative_efficiency(idata, samples: int) -> float:
    """ArviZ's ``reff``: the mean ESS of the posterior over the number of draws."""
    if idata.posterior.sizes["chain"] == 1:
        return 1.0
    ess = az.ess(idata.posterior, method="mean")
    values = np.hstack([ess[v].values.ravel() for v in ess.data_vars])
    values = values[np.isfinite(values)]   # constant deterministics have no ESS
    return float(values.mean() / samples) if values.size else 1.0


def loo(idata, *, weights: str = "frequency", var_name: str | None = None,
        weights_var: str | None = None, population=None) -> LooResult:
    """Leave-one-out of a weighted posterior for the ``weights`` target (see the module docstring).

    Parameters
    ----------
    idata : arviz.InferenceData
        Needs ``posterior``, ``unweighted_log_likelihood`` (the suite's samplers store it beside
        ``log_likelihood``) and the row weights in ``constant_data``.
    weights : {"frequency", "population"}, default "frequency"
        The target: row i stands for ``w_i`` identical units (integer weights), or the weights
        describe another population than the sample.
    var_name : str, optional
        Picks the observed variable when there are several.
    weights_var : str, optional
        The name of the row weights in ``constant_data``; by default the one the suite's samplers
        record for the variable (``idata.attrs["weights_of_<name>"]``: 1 for an unweighted term of a
        weighted model), else ``"weights"``.
    population : array_like, optional
        Only with ``weights="population"``: one non-negative number per row, proportional to the
        target population's density over the sample's; by default the fit's own weights.

    Returns
    -------
    LooResult

    Raises
    ------
    InputError
        For an unknown target, ``population`` without ``weights="population"``, missing groups,
        variables or weights, weights that are negative or not finite, frequency weights that are not
        integers, population weights that are not one finite non-negative number per row or sum to 0,
        or an unweighted log-likelihood that is not finite where it counts.

    Examples
    --------
    >>> import models
    >>> model = models.coin.build_model([1, 0, 1, 1], [1, 2, 1, 1])
    >>> idata = models.sample(model, draws=200, tune=200, chains=2, random_seed=1)
    >>> models.loo(idata).units   # frequency weights: 5 tosses
    5.0
    >>> models.loo(idata, weights="population").units   # 4 rows of a population
    4.0
    """
    if weights not in TARGETS:
        raise InputError(f"weights must be one of {TARGETS}, got {weights!r}")
    if population is not None and weights != "population":
        raise InputError("population= states a target population: use it with weights='population'")
    groups = set(idata.groups())
    if UNWEIGHTED_GROUP not in groups or "posterior" not in groups:
        raise InputError(f"idata needs posterior and {UNWEIGHTED_GROUP} groups (sample with the suite's "
                         "inference.sample / sample_many, log_likelihood=True)")
    var_name, unweighted = _stacked(idata[UNWEIGHTED_GROUP], var_name)
    rows_shape = unweighted.shape[2:]
    w = _row_weights(idata, var_name, weights_var, rows_shape)
    log_p = unweighted.values.reshape(-1, int(np.prod(rows_shape, dtype=int))).T   # (rows, draws)
    if weights == "frequency":
        if not np.allclose(w, np.round(w), rtol=0, atol=1e-9):
            raise InputError("frequency weights count units: they must be integers (use "
                             "weights='population' for other weights)")
        exponent = (w > 0).astype(float)   # a row of weight 0 is not in the fit: nothing to leave out
    else:
        exponent = w   # row i leaves the fit as the fit holds it; w now counts the rows
        if population is not None:
            w = _population_weights(population, w.size)
        if w.sum() <= 0:
            raise InputError("population weights need a positive sum")
    if not np.all(np.isfinite(log_p[(exponent > 0) | (w > 0)])):
        raise InputError("the unweighted log-likelihood is not finite at some draws")
    samples = log_p.shape[1]
    reff = _relative_efficiency(idata, samples)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)   # k-hats are reported, not warned about
        log_ratios, pareto_k = az.psislw(-exponent[:, None] * log_p, reff)
    pareto_k = np.where(exponent > 0, np.asarray(pareto_k), np.nan)   # constant ratios: no tail to fit
    pointwise = logsumexp(np.asarray(log_ratios) + log_p, axis=1)
    in_sample = logsumexp(log_p, axis=1) - np.log(samples)
    if weights == "frequency":
        units = w.sum()
        elpd = float(np.sum(w * pointwise))
        mean = elpd / units
        se = float(np.sqrt(np.sum(w * (pointwise - mean) ** 2)))   # sqrt(N var over the N units)
        p_loo = float(np.sum(w * in_sample)) - elpd
    else:
        v = w.size * w / w.sum()
        elpd = float(np.sum(v * pointwise))
        se = float(np.sqrt(np.sum(v**2 * (pointwise - elpd / w.size) ** 2)))
        p_loo = float(np.sum(v * in_sample)) - elpd
    good_k = min(1 - 1 / np.log10(samples), 0.7)
    return LooResult(elpd=elpd, se=se, p_loo=p_loo, pointwise=pointwise.reshape(rows_shape),
                     pareto_k=pareto_k.reshape(rows_shape), weights=w.reshape(rows_shape),
                     target=weights, good_k=good_k)


COMPARE_COLUMNS = ("model", "rank", "elpd", "se", "elpd_diff", "dse", "p_loo", "bad_k", "units", "target")


def loo_compare(results: dict[str, LooResult]) -> list[dict]:
    """Rank fits of the same rows by their :func:`loo` estimates of one target, best first.

    Every result must have the same target and the same counting weights (the frequency weights, or
    the population's up to their scale, which cancels): then each ``elpd`` estimates the same
    quantity and the difference of two fits is a sum over the same units,
    ``d = sum_i c_i (elpd_i^A - elpd_i^B)``. Its standard error is paired, as ``az.compare``'s: over
    units, ``sqrt(N var_units(elpd_i^A - elpd_i^B))`` for frequency weights (``az.compare`` on the
    data expanded to units gives the same), and for a population ``sqrt(sum_i v_i^2 (d_i - d / n)^2)``,
    the standard error of the weighted total as in :func:`loo`. No stacking weights: for a population
    they would need a weighted stacking objective.

    Parameters
    ----------
    results : dict
        Name -> :class:`LooResult`, at least two, of the same target and counting weights.

    Returns
    -------
    list of dict
        One row per fit, best first, with the keys of :data:`COMPARE_COLUMNS`: ``model``, ``rank``
        (0 best), ``elpd``, ``se``, ``elpd_diff`` (to the best, >= 0), ``dse``, ``p_loo``, ``bad_k``
        (rows with Pareto k above ``good_k``: their terms are unreliable), ``units``, ``target``.

    Raises
    ------
    InputError
        For fewer than two results, or results of different targets or counting other units.

    Examples
    --------
    >>> import numpy as np, models
    >>> rows = np.ones(4)
    >>> fits = {name: models.sample(models.coin.build_model([1, 0, 1, 1], weights), draws=200,
    ...                             tune=200, chains=2, random_seed=1)
    ...         for name, weights in (("plain", None), ("weighted", [1, 2, 1, 1]))}
    >>> table = models.loo_compare({name: models.loo(idata, weights="population", population=rows)
    ...                             for name, idata in fits.items()})
    >>> [(row["model"], row["rank"], row["units"]) for row in table]
    [('plain', 0, 4.0), ('weighted', 1, 4.0)]
    """
    if len(results) < 2:
        raise InputError("compare needs at least two LOO results")
    def counts(result: LooResult) -> np.ndarray:
        c = np.ravel(result.weights)
        return c if result.target == "frequency" else c.size * c / c.sum()

    first_name, first = next(iter(results.items()))
    for name, result in results.items():
        if result.target != first.target:
            raise InputError(f"{name!r} has target {result.target!r}, {first_name!r} {first.target!r}: "
                             "compare only estimates of one target")
        if result.weights.shape != first.weights.shape or not np.allclose(counts(result), counts(first),
                                                                           rtol=1e-12, atol=0):
            raise InputError(f"{name!r} counts other units than {first_name!r} (its {first.target} weights "
                             "differ): compare only what counts the same units")
    counts = counts(first)
    order = sorted(results, key=lambda name: results[name].elpd, reverse=True)
    best = np.ravel(results[order[0]].pointwise)
    rows = []
    for rank, name in enumerate(order):
        result = results[name]
        d = best - np.ravel(result.pointwise)
        total = float(np.sum(counts * d))
        if first.target == "frequency":
            dse = float(np.sqrt(np.sum(counts * (d - total / counts.sum()) ** 2)))
        else:
            dse = float(np.sqrt(np.sum(counts**2 * (d - total / counts.size) ** 2)))
        rows.append({"model": name, "rank": rank, "elpd": result.elpd, "se": result.se, "elpd_diff": total,
                     "dse": dse, "p_loo": result.p_loo, "bad_k": int(np.sum(result.pareto_k > result.good_k)),
                     "units": result.units, "target": result.target})
    return rows
