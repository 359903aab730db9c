"""Tidy summary rows: one row per (model, estimator, quantity).

Columns ``model, estimator, quantity, value, lower, upper``; ``lower``/``upper`` are empty for point
estimates and bound the 94% highest-density interval for posteriors. ``inference.Comparison.rows``
and every analysis's ``summary.csv`` are made of them; :func:`render` prints them as a table.
"""

from __future__ import annotations

import math

import arviz as az
import numpy as np

__all__ = ["HDI_PROB", "diagnostic_rows", "element_labels", "estimate_rows", "interval", "point",
           "posterior_rows", "render"]

HDI_PROB = 0.94


def point(model: str, estimator: str, quantity: str, value) -> dict:
    """One row for a point estimate (no ``lower``/``upper``).

    Parameters
    ----------
    model : str
        The model's name.
    estimator : str
        ``"mle"``, ``"wmle"``, ``"map"``, ``"posterior"``, ...
    quantity : str
        What ``value`` is, e.g. ``"p"`` or ``"coef[ear]"``.
    value : float
        The number (converted to ``float``).

    Returns
    -------
    dict
        ``model``, ``estimator``, ``quantity`` and ``value``.

    Examples
    --------
    >>> point("coin", "wmle", "p", 0.75)
    {'model': 'coin', 'estimator': 'wmle', 'quantity': 'p', 'value': 0.75}
    """
    return {"model": model, "estimator": estimator, "quantity": quantity, "value": float(value)}


def interval(model: str, estimator: str, quantity: str, value, lower, upper) -> dict:
    """One row for an estimate with an interval (for posteriors, the 94% HDI).

    Parameters
    ----------
    model, estimator, quantity, value
        As for :func:`point`.
    lower, upper : float
        The interval's bounds (converted to ``float``).

    Returns
    -------
    dict
        The :func:`point` row with ``lower`` and ``upper``.

    Examples
    --------
    >>> interval("coin", "posterior", "p", 0.7, 0.5, 0.9)["lower"]
    0.5
    """
    return {**point(model, estimator, quantity, value), "lower": float(lower), "upper": float(upper)}


def element_labels(idata, name: str) -> list[tuple[tuple, str]]:
    """``(index, label)`` of every scalar element of a posterior variable.

    The elements of ``name`` are labelled by coordinate.

    Parameters
    ----------
    idata : arviz.InferenceData
        With a ``posterior`` group holding ``name``.
    name : str
        The variable.

    Returns
    -------
    list of tuple
        ``(index, label)`` per element: the index into one draw, and the label, e.g.
        ``coef[ear_pointiness]`` (the index where a dimension has no named coordinates; the bare name
        for a scalar).

    Examples
    --------
    >>> import arviz as az
    >>> import numpy as np
    >>> idata = az.from_dict(posterior={"coef": np.zeros((2, 10, 2))}, coords={"feature": ["ear", "tail"]},
    ...                      dims={"coef": ["feature"]})
    >>> element_labels(idata, "coef")
    [((0,), 'coef[ear]'), ((1,), 'coef[tail]')]
    """
    variable = idata.posterior[name].isel(chain=0, draw=0, drop=True)
    labels = []
    for index in np.ndindex(*variable.shape):
        coordinates = [str(variable[dim].values[i]) for dim, i in zip(variable.dims, index)]
        labels.append((index, name + (f"[{','.join(coordinates)}]" if index else "")))
    return labels


def posterior_rows(model: str, idata, var_names, estimator: str = "posterior") -> list[dict]:
    """Posterior mean and 94% HDI of every scalar element of ``var_names``.

    The elements are labelled as :func:`element_labels` does.

    Parameters
    ----------
    model : str
        The model's name.
    idata : arviz.InferenceData
        With a ``posterior`` group.
    var_names : sequence of str
        The variables to summarise.
    estimator : str, default "posterior"
        The rows' ``estimator``.

    Returns
    -------
    list of dict
        One :func:`interval` row per scalar element.

    Examples
    --------
    >>> import arviz as az
    >>> import numpy as np
    >>> idata = az.from_dict(posterior={"p": np.random.default_rng(0).beta(8, 4, size=(2, 500))})
    >>> print(render(posterior_rows("coin", idata, ["p"])))
    model  estimator  quantity  value   94% HDI
    -----  ---------  --------  ------  ----------------
    coin   posterior  p         0.6617  [0.4126, 0.8903]
    """
    rows = []
    hdi = az.hdi(idata, hdi_prob=HDI_PROB, var_names=list(var_names))
    for name in var_names:
        mean = idata.posterior[name].mean(dim=("chain", "draw")).values
        bounds = hdi[name].values
        rows += [interval(model, estimator, label, mean[index], *bounds[index])
                 for index, label in element_labels(idata, name)]
    return rows


def estimate_rows(model: str, estimator: str, estimate: dict, var_names, idata) -> list[dict]:
    """Every scalar element of ``var_names`` at a point ``estimate``.

    Labelled as the posterior's elements in ``idata`` are.

    Parameters
    ----------
    model : str
        The model's name.
    estimator : str
        The rows' ``estimator`` (``"mle"``, ``"map"``, ...).
    estimate : mapping
        name -> array, e.g. an MLE or MAP.
    var_names : sequence of str
        The variables to list.
    idata : arviz.InferenceData
        Its posterior's elements give the labels (:func:`element_labels`).

    Returns
    -------
    list of dict
        One :func:`point` row per scalar element.

    Examples
    --------
    >>> import arviz as az
    >>> import numpy as np
    >>> idata = az.from_dict(posterior={"coef": np.zeros((2, 10, 2))}, coords={"feature": ["ear", "tail"]},
    ...                      dims={"coef": ["feature"]})
    >>> rows = estimate_rows("classes", "mle", {"coef": np.array([0.5, -1.0])}, ["coef"], idata)
    >>> [(row["quantity"], row["value"]) for row in rows]
    [('coef[ear]', 0.5), ('coef[tail]', -1.0)]
    """
    return [point(model, estimator, label, np.asarray(estimate[name])[index])
            for name in var_names for index, label in element_labels(idata, name)]


def diagnostic_rows(model: str, diagnostics, estimator: str = "posterior",
                    ok: bool | None = None) -> list[dict]:
    """Sampler diagnostics (an ``inference.Diagnostics``) as rows, plus ``diagnostics_ok``.

    Parameters
    ----------
    model : str
        The model's name.
    diagnostics : models.diagnostics.Diagnostics
        The sampler's diagnostics.
    estimator : str, default "posterior"
        The rows' ``estimator``.
    ok : bool, optional
        The verdict given by a caller that judges many fits together (SBC); default
        ``diagnostics.ok``.

    Returns
    -------
    list of dict
        :func:`point` rows ``r_hat_max``, ``ess_bulk_min``, ``ess_tail_min``, ``divergences``,
        ``bfmi_min`` and ``diagnostics_ok`` (1 when every check passes, or as ``ok`` says).

    Examples
    --------
    >>> from models.diagnostics import Diagnostics
    >>> rows = diagnostic_rows("coin", Diagnostics(1.002, 812.0, 640.0, 0, 0.9, 4, 1000))
    >>> [(row["quantity"], row["value"]) for row in rows][-2:]
    [('bfmi_min', 0.9), ('diagnostics_ok', 1.0)]
    """
    values = {
        "r_hat_max": diagnostics.max_r_hat,
        "ess_bulk_min": diagnostics.min_ess_bulk,
        "ess_tail_min": diagnostics.min_ess_tail,
        "divergences": diagnostics.divergences,
        "bfmi_min": diagnostics.min_bfmi,
        "diagnostics_ok": int(diagnostics.ok if ok is None else ok),
    }
    return [point(model, estimator, quantity, value) for quantity, value in values.items()]


def render(rows: list[dict]) -> str:
    """The rows as an aligned plain-text table.

    Parameters
    ----------
    rows : list of dict
        Rows of :func:`point` and :func:`interval`.

    Returns
    -------
    str
        A header, a rule and one line per row; numbers with 4 significant digits (whole numbers as
        integers), the interval as ``[lower, upper]``.

    Examples
    --------
    >>> print(render([point("coin", "wmle", "p", 0.75), interval("coin", "posterior", "p", 0.7, 0.5, 0.9)]))
    model  estimator  quantity  value  94% HDI
    -----  ---------  --------  -----  ----------
    coin   wmle       p         0.75
    coin   posterior  p         0.7    [0.5, 0.9]
    """
    header = ("model", "estimator", "quantity", "value", "94% HDI")
    lines = [header]
    for row in rows:
        bounds = ""
        if row.get("lower") is not None:
            bounds = f"[{_number(row['lower'])}, {_number(row['upper'])}]"
        lines.append((row["model"], row["estimator"], row["quantity"], _number(row["value"]), bounds))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = ["  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in lines]
    text.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(text)


def _number(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "nan"
    if float(value).is_integer() and abs(value) < 1e6:
        return str(int(value))
    return f"{value:.4g}"
