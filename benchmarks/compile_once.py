"""What compiling once saves when the same model structure is refitted with new weights.

Sweeps, curriculum phases and repeated simulations fit one model structure many times, changing
only ``pm.Data`` (the weights). Two ways to do that, timed per fit after one warm-up fit (so the
PyTensor C cache in ``~/.pytensor`` is warm for both, as on a user's second run):

* ``rebuild``: ``build_model(...)`` then the estimator, every time (graph rewriting and the compile
  cache lookup each time);
* ``reuse``: one model; ``pm.set_data({"weights": w})`` then the estimator. The compiled objective
  of ``mle`` and ``map_estimate`` and NUTS's log density and gradient are cached per model object
  (:mod:`models.compiled`).

NUTS settings: 2 chains x (500 tune + 500 draws), through ``inference.sample`` both ways (chains in
parallel processes, as a single fit would).

    python -m benchmarks.compile_once [--fits 10]

writes ``benchmarks/results/compile_once.csv`` and prints it.
"""

from __future__ import annotations

import argparse
import csv
import logging
import time
from pathlib import Path

import numpy as np
import pymc as pm

import models  # noqa: F401  (BLAS before anything compiles)
from models import classes, coin, inference

RESULTS = Path(__file__).resolve().parent / "results"
NUTS = {"draws": 500, "tune": 500, "chains": 2}


def _classes_data(rng, n: int = 1000):
    X = rng.normal(size=(n, 2))
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-(X @ [1.5, -1.0] - 2.0)))).astype(int)
    return X, y


def _cases(rng):
    """(name, builder(weights) -> model, number of observations)."""
    flips = np.array([1, 0, 1, 1, 0, 1, 1, 0, 1, 1])
    X, y = _classes_data(rng)
    return [
        ("coin (10 tosses)", lambda w: coin.build_model(flips, w, prior=(2.0, 2.0)), flips.size),
        ("classes (1000 rows)", lambda w: classes.build_model(X, y, w), y.size),
    ]


def _per_fit(fit, weights_list) -> float:
    fit(weights_list[0])  # warm-up: first compilation, not counted
    started = time.perf_counter()
    for w in weights_list[1:]:
        fit(w)
    return (time.perf_counter() - started) / (len(weights_list) - 1)


def measure(fits: int, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    rows = []
    for name, build, n in _cases(rng):
        weights_list = [n * rng.dirichlet(np.ones(n)) for _ in range(fits + 1)]
        model = build(weights_list[0])

        def reuse_nuts(w, model=model):
            pm.set_data({"weights": w}, model=model)
            inference.sample(model, **NUTS, random_seed=1, progressbar=False)

        def reuse_optimiser(estimator, model=model):
            def fit(w):
                pm.set_data({"weights": w}, model=model)
                estimator(model)
            return fit

        def rebuild_nuts(w, build=build):
            inference.sample(build(w), **NUTS, random_seed=1, progressbar=False)

        for estimator in (inference.mle, inference.map_estimate):
            rebuild = _per_fit(lambda w, estimator=estimator, build=build: estimator(build(w)), weights_list)
            reuse = _per_fit(reuse_optimiser(estimator), weights_list)
            rows.append({"model": name, "estimator": estimator.__name__, "rebuild_s": rebuild,
                         "reuse_s": reuse})
            print(rows[-1], flush=True)
        rows.append({"model": name, "estimator": "nuts", "rebuild_s": _per_fit(rebuild_nuts, weights_list),
                     "reuse_s": _per_fit(reuse_nuts, weights_list)})
        print(rows[-1], flush=True)
    for row in rows:
        row["speedup"] = row["rebuild_s"] / row["reuse_s"]
        row["fits"] = fits
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.compile_once",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--fits", type=int, default=10, help="timed refits per case (after one warm-up)")
    args = parser.parse_args(argv)
    logging.getLogger("pymc").setLevel(logging.ERROR)
    rows = measure(args.fits)
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / "compile_once.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["model", "estimator", "fits", "rebuild_s", "reuse_s",
                                                    "speedup"])
        writer.writeheader()
        for row in rows:
            writer.writerow({key: f"{value:.4f}" if isinstance(value, float) else value
                             for key, value in row.items()})
    print(f"\n{'model':<22}{'estimator':<14}{'rebuild s/fit':>14}{'reuse s/fit':>13}{'speedup':>9}")
    for row in rows:
        print(f"{row['model']:<22}{row['estimator']:<14}{row['rebuild_s']:>14.3f}{row['reuse_s']:>13.3f}"
              f"{row['speedup']:>8.1f}x")
    print(f"written: {path}")


if __name__ == "__main__":
    main()
