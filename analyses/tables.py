"""The tidy summary every analysis writes: one row per (model, estimator, quantity).

Columns ``model, estimator, quantity, value, lower, upper``; ``lower``/``upper`` are empty for point
estimates and bound the 94% highest-density interval for posteriors.
"""

from __future__ import annotations

import math

import arviz as az
import numpy as np

from models.inference import Diagnostics

HDI_PROB = 0.94


def point(model: str, estimator: str, quantity: str, value) -> dict:
    return {"model": model, "estimator": estimator, "quantity": quantity, "value": float(value)}


def interval(model: str, estimator: str, quantity: str, value, lower, upper) -> dict:
    return {**point(model, estimator, quantity, value), "lower": float(lower), "upper": float(upper)}


def posterior_rows(model: str, idata, var_names, estimator: str = "posterior") -> list[dict]:
    """Posterior mean and 94% HDI of every scalar element of ``var_names``, labelled by coordinate
    (``coef[ear_pointiness]``; the index where a dimension has no named coordinates)."""
    rows = []
    hdi = az.hdi(idata, hdi_prob=HDI_PROB, var_names=list(var_names))
    for name in var_names:
        mean = idata.posterior[name].mean(dim=("chain", "draw"))
        bounds = hdi[name].values
        for index in np.ndindex(*mean.shape):
            coordinates = [str(mean[dim].values[i]) for dim, i in zip(mean.dims, index)]
            label = name + (f"[{','.join(coordinates)}]" if index else "")
            rows.append(interval(model, estimator, label, mean.values[index], *bounds[index]))
    return rows


def diagnostic_rows(model: str, diagnostics: Diagnostics, estimator: str = "posterior",
                    ok: bool | None = None) -> list[dict]:
    """Sampler diagnostics as rows, plus ``diagnostics_ok``: 1 when every check passes, or the
    verdict ``ok`` given by a caller that judges many fits together (SBC)."""
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
