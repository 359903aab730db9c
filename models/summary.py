"""Tidy summary rows: one row per (model, estimator, quantity).

Columns ``model, estimator, quantity, value, lower, upper``; ``lower``/``upper`` are empty for point
estimates and bound the 94% highest-density interval for posteriors. ``inference.Comparison.rows``
and every analysis's ``summary.csv`` are made of them; :func:`render` prints them as a table.
"""

from __future__ import annotations

import math

import arviz as az
import numpy as np

HDI_PROB = 0.94


def point(model: str, estimator: str, quantity: str, value) -> dict:
    return {"model": model, "estimator": estimator, "quantity": quantity, "value": float(value)}


def interval(model: str, estimator: str, quantity: str, value, lower, upper) -> dict:
    return {**point(model, estimator, quantity, value), "lower": float(lower), "upper": float(upper)}


def element_labels(idata, name: str) -> list[tuple[tuple, str]]:
    """``(index, label)`` of every scalar element of posterior variable ``name``, labelled by
    coordinate (``coef[ear_pointiness]``; the index where a dimension has no named coordinates)."""
    variable = idata.posterior[name].isel(chain=0, draw=0, drop=True)
    labels = []
    for index in np.ndindex(*variable.shape):
        coordinates = [str(variable[dim].values[i]) for dim, i in zip(variable.dims, index)]
        labels.append((index, name + (f"[{','.join(coordinates)}]" if index else "")))
    return labels


def posterior_rows(model: str, idata, var_names, estimator: str = "posterior") -> list[dict]:
    """Posterior mean and 94% HDI of every scalar element of ``var_names`` (:func:`element_labels`)."""
    rows = []
    hdi = az.hdi(idata, hdi_prob=HDI_PROB, var_names=list(var_names))
    for name in var_names:
        mean = idata.posterior[name].mean(dim=("chain", "draw")).values
        bounds = hdi[name].values
        rows += [interval(model, estimator, label, mean[index], *bounds[index])
                 for index, label in element_labels(idata, name)]
    return rows


def estimate_rows(model: str, estimator: str, estimate: dict, var_names, idata) -> list[dict]:
    """Every scalar element of ``var_names`` at a point ``estimate`` (name -> array), labelled as the
    posterior's elements in ``idata`` are."""
    return [point(model, estimator, label, np.asarray(estimate[name])[index])
            for name in var_names for index, label in element_labels(idata, name)]


def diagnostic_rows(model: str, diagnostics, estimator: str = "posterior",
                    ok: bool | None = None) -> list[dict]:
    """Sampler diagnostics (an ``inference.Diagnostics``) as rows, plus ``diagnostics_ok``: 1 when
    every check passes, or the verdict ``ok`` given by a caller that judges many fits together (SBC)."""
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
    """The rows as an aligned plain-text table."""
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
