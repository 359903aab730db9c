"""One look for every figure of the suite, and the marks shared by all analyses."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

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
