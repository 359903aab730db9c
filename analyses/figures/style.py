"""One look for every figure of the suite, and the marks shared by all analyses."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from analyses.study import pooled, thin  # noqa: E402

# Estimators keep their line style everywhere: MLE dashed, MAP dotted, posterior mean solid.
ESTIMATOR_STYLE = {
    "mle": {"color": "black", "linestyle": "--"},
    "map": {"color": "0.35", "linestyle": ":"},
    "posterior_mean": {"color": "black", "linestyle": "-"},
}


def apply_style() -> None:
    plt.rcParams.update(
        {
            "figure.dpi": 110,
            "font.size": 10,
            "axes.titlesize": 11,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.grid": True,
            "grid.alpha": 0.25,
            "legend.frameon": False,
        }
    )


def mark(ax, value: float, estimator: str, label: str | None = None) -> None:
    """A vertical line at an estimate, styled by ``estimator`` (``mle``, ``map``, ``posterior_mean``)."""
    ax.axvline(value, linewidth=1.4, label=label, **ESTIMATOR_STYLE[estimator])


def boundary_line(intercept, coef, x1):
    """x2 on the P = 0.5 line of a two-feature logistic model, for each x1 (last axis)."""
    intercept, coef = np.asarray(intercept)[..., None], np.asarray(coef)
    return -(intercept + coef[..., :1] * x1) / coef[..., 1:2]


BAND_DRAWS = 1000


def decision_boundary(ax, idata, x1, *, color, estimates=(), references=()) -> None:
    """The P = 0.5 boundary of a two-feature logistic posterior on ``ax``, over ``x1`` on both axes.

    A band where between 3% and 97% of the posterior draws (``BAND_DRAWS`` thinned ones) predict the
    minority class (robust where the boundary's slope is uncertain, unlike quantiles of the lines);
    the posterior mean's boundary (solid, ``color``); each of ``estimates``, ``(estimate, label,
    style)`` with ``estimate`` holding ``intercept`` and ``coef``; each of ``references``,
    ``(intercept, coef, label, style)`` (truth, an unweighted fit).
    """
    grid = np.stack(np.meshgrid(x1, x1), axis=-1).reshape(-1, 2)  # rows: (x1[j], x2[i]), as contourf expects
    intercept, coef = (thin(pooled(idata, name), BAND_DRAWS) for name in ("intercept", "coef"))
    share = np.mean(intercept[:, None] + coef @ grid.T > 0, axis=0).reshape(x1.size, x1.size)
    ax.contourf(x1, x1, share, levels=[0.03, 0.97], colors=[color], alpha=0.25)
    mean = {name: idata.posterior[name].mean(dim=("chain", "draw")).values for name in ("intercept", "coef")}
    ax.plot(x1, boundary_line(mean["intercept"], mean["coef"], x1), color=color, linewidth=2,
            label="posterior mean")
    for estimate, label, style in estimates:
        ax.plot(x1, boundary_line(estimate["intercept"], estimate["coef"], x1), label=label, **style)
    for intercept_value, coef_value, label, style in references:
        ax.plot(x1, boundary_line(intercept_value, coef_value, x1), label=label, **style)
