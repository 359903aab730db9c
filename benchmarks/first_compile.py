"""A model's first fit from an empty PyTensor compile cache, with and without the precompiled header
and ``-g0`` of :mod:`models._config.cxx`.

    python -m benchmarks.first_compile [--repeats 2]

What a new user's first run and the test suite's cold run pay for every new model structure. Each
measurement runs in a fresh Python process with its own empty ``base_compiledir`` and times

* ``import_s``: ``import models`` (PyMC, PyTensor; with the header on, building it: once per compile
  directory);
* ``fit_s``: building the model, then its MLE, MAP and NUTS draws (2 chains x (200 + 200), one after
  another in the process), as an analysis fits a model;

and counts the C modules g++ built (``modules``). ``header`` is ``on`` (the default,
``WMLE_PRECOMPILED_HEADER=1``) or ``off`` (``0``: PyTensor's own flags). The cases alternate on and
off so that a drift in the machine's speed falls on both.

Writes ``benchmarks/results/first_compile.csv`` and ``environment_first_compile.txt``, and prints
the medians.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.samplers import RESULTS, describe_machine, render, write_csv

CASES = ("coin", "classes", "policy")
NUTS = {"draws": 200, "tune": 200, "chains": 2, "cores": 1}


def build(case: str):
    """The model of ``case``: the seed's coin, a 1000-row weighted logistic regression, or a
    4-state x 3-action softmax policy fitted to 200 logged steps with positive weights."""
    import numpy as np

    from models import classes, coin, policy

    rng = np.random.default_rng(0)
    if case == "coin":
        return coin.build_model(np.array([1, 0, 1, 1, 0, 1, 1, 0, 1, 1]),
                                np.array([1, 1, 10, 1, 1, 1, 1, 1, 1, 1], dtype=float))
    if case == "classes":
        X = rng.normal(size=(1000, 2))
        y = (rng.uniform(size=1000) < 1 / (1 + np.exp(-(X @ [1.5, -1.0] - 2.0)))).astype(int)
        return classes.build_model(X, y, np.where(y == 1, 5.0, 1.0))
    if case == "policy":
        states, actions = rng.integers(4, size=200), rng.integers(3, size=200)
        return policy.build_model(states, actions, rng.lognormal(size=200), n_states=4, n_actions=3)
    raise ValueError(f"unknown case {case!r}")


def child(case: str) -> dict:
    """One measurement, in this (fresh) process."""
    started = time.perf_counter()
    import models  # noqa: F401  (BLAS and compiler flags; the header is built here)
    from models import inference
    imported = time.perf_counter()
    model = build(case)
    inference.mle(model)
    inference.map_estimate(model)
    inference.sample(model, random_seed=1, progressbar=False, **NUTS)
    return {"import_s": imported - started, "fit_s": time.perf_counter() - imported}


def measure(case: str, header: bool) -> dict:
    with tempfile.TemporaryDirectory() as compiledir:
        environment = {**os.environ, "PYTENSOR_FLAGS": f"base_compiledir={compiledir}",
                       "WMLE_PRECOMPILED_HEADER": "1" if header else "0"}
        done = subprocess.run([sys.executable, "-m", "benchmarks.first_compile", "--child", case],
                              capture_output=True, text=True, env=environment, timeout=600)
        if done.returncode != 0:
            raise RuntimeError(f"{case} (header {'on' if header else 'off'}) failed:\n{done.stderr}")
        result = json.loads(done.stdout.strip().splitlines()[-1])
        modules = sum(1 for _ in Path(compiledir).rglob("*.so"))
    return {"case": case, "header": "on" if header else "off", **result,
            "total_s": result["import_s"] + result["fit_s"], "modules": modules}


def environment(argv: list[str]) -> str:
    compiler = subprocess.run(["g++", "--version"], capture_output=True, text=True).stdout.splitlines()
    return describe_machine(f"python -m benchmarks.first_compile {' '.join(argv)}",
                            f"NUTS {NUTS}; compiler {compiler[0] if compiler else 'g++ not found'}")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m benchmarks.first_compile",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=2, help="measurements per case and setting")
    parser.add_argument("--child", choices=CASES, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child)))
        return 0
    rows = []
    for repeat in range(args.repeats):
        for case in CASES:
            for header in ((True, False) if repeat % 2 == 0 else (False, True)):
                rows.append({"repeat": repeat, **measure(case, header)})
                print({key: round(v, 2) if isinstance(v, float) else v for key, v in rows[-1].items()},
                      flush=True)
    path = RESULTS / "first_compile.csv"
    write_csv(path, rows, ["case", "header", "repeat", "import_s", "fit_s", "total_s", "modules"])
    (RESULTS / "environment_first_compile.txt").write_text(environment(argv))
    medians = [{"case": case, "header": header,
                **{key: statistics.median(row[key] for row in rows if (row["case"], row["header"]) ==
                                          (case, header))
                   for key in ("import_s", "fit_s", "total_s", "modules")}}
               for case in CASES for header in ("on", "off")]
    print("\nmedians\n" + render(medians, ["case", "header", "import_s", "fit_s", "total_s", "modules"]))
    print(f"written: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
