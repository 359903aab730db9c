"""GPC's answer and its Monte Carlo interval on 60 coin tosses: seeds, and a common factor on the weights.

``models.gpc`` with its defaults (B = 200 bootstrap resamples, 2 chains x (500 + 1000) per fit) on the
tosses ``tests/test_gpc.py`` uses, with unit weights under several seeds and with every weight x10.
A common factor changes only the scale, so every row's effective sample size (omega x sum w) should
agree with the others within their intervals; with unit weights the Bayesian posterior is already
calibrated to first order (Bernstein-von Mises), so about 60.

    python -m benchmarks.gpc_interval [--seeds 1 2 3] [--factor 10]

writes ``benchmarks/results/gpc_interval.csv`` and prints it.
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import numpy as np

import models
from models import coin

RESULTS = Path(__file__).resolve().parent / "results"
FLIPS = np.random.default_rng(11).binomial(1, 0.35, 60)   # as tests/test_gpc.py
FIELDS = ["seed", "weight_factor", "scale", "scale_low", "scale_high", "effective_sample_size", "ess_low",
          "ess_high", "coverage", "iterations", "converged", "seconds"]


def run(seed: int, factor: float) -> dict:
    """One GPC run at weights ``factor``, as a row of the table."""
    model = coin.build_model(FLIPS, np.full(FLIPS.size, factor))
    start = time.perf_counter()
    result = models.gpc(model, random_seed=seed)
    low, high = result.effective_sample_size_interval
    return {"seed": seed, "weight_factor": factor, "scale": result.scale,
            "scale_low": result.scale_interval[0], "scale_high": result.scale_interval[1],
            "effective_sample_size": result.effective_sample_size,
            "ess_low": low, "ess_high": high, "coverage": result.coverage, "iterations": len(result.path),
            "converged": result.converged, "seconds": time.perf_counter() - start}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--factor", type=float, default=10.0, help="the common weight factor (run at seed 1)")
    args = parser.parse_args()
    models.configure(creation_backtraces=False)
    rows = [run(seed, 1.0) for seed in args.seeds] + [run(args.seeds[0], args.factor)]
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / "gpc_interval.csv"
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=FIELDS)
        writer.writeheader()
        for row in rows:
            writer.writerow({key: round(value, 4) if isinstance(value, float) else value
                             for key, value in row.items()})
    print(path.read_text())


if __name__ == "__main__":
    main()
