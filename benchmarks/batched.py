"""Many fits of one model: the batched engine against the one-at-a-time path and against simuk.

    python -m benchmarks.batched             # 100 and 1000 fits; the slow paths at 100 (see below)
    python -m benchmarks.batched --quick     # a smoke run: 10 fits, 100 + 100 draws
    python -m benchmarks.batched --large     # also the single 1e5-row fit, log-likelihood stored
    python -m benchmarks.batched --models "" --large   # that fit alone

Three model structures, each fitted to ``fits`` data sets simulated from its prior, every fit with
2 chains x (500 tuning + 1000 draws):

* ``coin``: the weighted coin, 10 tosses, the 3rd weighted 10, Beta(2, 2) prior;
* ``logistic``: weighted logistic regression with 300 rows and 2 standard-normal features, priors
  N(0, 1), balanced class weights;
* ``policy``: the collapsed softmax policy, 4 states x 3 actions (12 cells), 200 logged steps with
  log-normal weights.

Ways of running them, each in a fresh Python process (imports and simulation not timed; model
building, compilation, sampling and the per-fit diagnostics timed):

* ``batched``: :func:`models.inference.sample_many` with ``sampler="numpyro"``, one XLA program
  (:mod:`models.sampling.batched`), with an empty JAX compilation cache: compilation is included;
* ``batched_hmc``: the same with ``kernel="jittered_hmc"`` (:mod:`models.sampling.hmc`);
* ``one_at_a_time``: the same call with ``sampler="pymc"``: PyMC's NUTS fit by fit on the model
  compiled once (PyTensor's C cache is warm: each structure is compiled once before timing);
* ``simuk``: simuk 0.2's ``SBC`` (ArviZ's SBC package, PyMC back end, ``pm.sample`` per simulation)
  on the same structure without weights (simuk simulates the observations from the model, and a
  weighted likelihood has no generative form; the weights cost nothing in the sampler).

The slow paths run at 100 fits only unless ``--full``: their time per fit does not fall with more
fits (compilation is paid once either way), and 1000 fits of them take most of an hour.

``median_ess`` is the median over fits of their smallest bulk ESS, ``ess_per_s`` that divided by the
time per fit (the kernels differ in ESS per draw, so time per fit alone does not compare them).

For the coin, every fit's posterior mean is compared with its exact Beta posterior: ``max_mcse``
is the largest |mean - exact| / MCSE over the batch, ``share_3_mcse`` the share of fits beyond 3 MCSE
(0.27% by chance).

Writes ``batched.csv`` and ``environment_batched.txt`` to ``--out`` (default ``benchmarks/results``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.samplers import RESULTS, environment, render, write_csv

MODELS = ("coin", "logistic", "policy")
PATHS = ("batched", "batched_hmc", "one_at_a_time", "simuk")
SETTINGS = {"chains": 2, "tune": 500, "draws": 1000}
COLUMNS = ("model", "path", "fits", "wall_s", "per_fit_s", "speedup_vs_one_at_a_time", "median_ess",
           "ess_per_s", "max_mcse", "share_3_mcse", "divergent_fits", "passing_diagnostics", "status")
KEY_WEIGHTS = np.where(np.arange(10) == 2, 10.0, 1.0)
LOGISTIC_ROWS, STATES, ACTIONS, STEPS = 300, 4, 3, 200


def simulate(name: str, fits: int, seed: int):
    """``(model, datasets, truths)``: the structure's model and ``fits`` data sets from its prior."""
    from scipy import special

    from models import classes, coin, policy, weights

    rng = np.random.default_rng(seed)
    datasets = []
    if name == "coin":
        for _ in range(fits):
            datasets.append({"flips": rng.binomial(1, rng.beta(2, 2), 10), "weights": KEY_WEIGHTS})
        model = coin.build_model(datasets[0]["flips"], KEY_WEIGHTS, prior=(2, 2))
    elif name == "logistic":
        for _ in range(fits):
            X = rng.normal(size=(LOGISTIC_ROWS, 2))
            eta = rng.normal() + X @ rng.normal(size=2)
            y = (rng.random(LOGISTIC_ROWS) < special.expit(eta)).astype(np.int64)
            w = weights.balanced(y) if 0 < y.sum() < y.size else np.ones(y.size)
            datasets.append({"X": X, "y": y, "weights": w})
        first = datasets[0]
        model = classes.build_model(first["X"], first["y"], first["weights"], coef_sd=1.0, intercept_sd=1.0)
    elif name == "policy":
        for _ in range(fits):
            preference = rng.normal(size=(STATES, ACTIONS))
            probabilities = special.softmax(preference - preference.mean(1, keepdims=True), axis=1)
            states = rng.integers(STATES, size=STEPS)
            actions = np.array([rng.choice(ACTIONS, p=probabilities[s]) for s in states])
            w = rng.lognormal(-0.5, 1.0, STEPS)
            datasets.append({"weights": policy.cell_weights(states, actions, w, n_states=STATES,
                                                            n_actions=ACTIONS).ravel()})
        model = policy.build_model(np.arange(STATES).repeat(ACTIONS), np.tile(np.arange(ACTIONS), STATES),
                                   datasets[0]["weights"], n_states=STATES, n_actions=ACTIONS, collapse=True)
    else:
        raise ValueError(f"unknown model {name!r}")
    return model, datasets


def _simuk_model(name: str, datasets):
    """The structure without weights, as a generative PyMC model for simuk (which replaces the
    observations by draws from the prior predictive; the ones given only fix the shapes)."""
    import pymc as pm

    with pm.Model() as model:
        if name == "coin":
            p = pm.Beta("p", 2, 2)
            pm.Bernoulli("heads", p=p, observed=datasets[0]["flips"])
        elif name == "logistic":
            X = datasets[0]["X"]
            intercept, coef = pm.Normal("intercept", 0, 1), pm.Normal("coef", 0, 1, shape=2)
            pm.Bernoulli("y", logit_p=intercept + X @ coef, observed=datasets[0]["y"])
        else:
            preference = pm.ZeroSumNormal("preference", sigma=1.0, shape=(STATES, ACTIONS))
            pm.Multinomial("counts", n=STEPS // STATES, p=pm.math.softmax(preference, axis=1),
                           observed=np.tile(np.eye(ACTIONS, dtype=int)[0] * (STEPS // STATES), (STATES, 1)))
    return model


def measure(name: str, path: str, fits: int, settings: dict, seed: int) -> dict:
    """One timed run (in this process); the row of :data:`COLUMNS`."""
    from models import coin, inference

    model, datasets = simulate(name, fits, seed)
    seeds = list(range(seed, seed + fits))
    if path == "one_at_a_time":   # PyTensor's C cache warm, as for any structure fitted before
        inference.sample_many(model, datasets[:1], random_seeds=seeds[:1], sampler="pymc",
                              **{**settings, "draws": 10, "tune": 10})
    start = time.perf_counter()
    if path == "simuk":
        import simuk

        sbc = simuk.SBC(_simuk_model(name, datasets), num_simulations=fits, seed=seed,
                        sample_kwargs={**settings, "progressbar": False, "compute_convergence_checks": False})
        sbc.run_simulations()
        wall = time.perf_counter() - start
        return {"model": name, "path": path, "fits": fits, "wall_s": wall, "per_fit_s": wall / fits,
                "status": "ok"}
    result = inference.sample_many(model, datasets, random_seeds=seeds,
                                   sampler="numpyro" if path.startswith("batched") else "pymc",
                                   kernel="jittered_hmc" if path == "batched_hmc" else "nuts", **settings)
    wall = time.perf_counter() - start
    ess = float(np.median([d.min_ess_bulk for d in result.diagnostics]))
    row = {"model": name, "path": path, "fits": fits, "wall_s": wall, "per_fit_s": wall / fits,
           "median_ess": ess, "ess_per_s": ess * fits / wall,
           "divergent_fits": sum(d.divergences > 0 for d in result.diagnostics),
           "passing_diagnostics": float(np.mean([d.ok for d in result.diagnostics])), "status": "ok"}
    if name == "coin":
        z = []
        for index, data in enumerate(datasets):
            draws = result.posterior["p"][index].ravel()
            mcse = draws.std() / np.sqrt(result.diagnostics[index].min_ess_bulk)
            exact = coin.exact_posterior(data["flips"], data["weights"], prior=(2, 2))
            z.append(abs(draws.mean() - exact.mean()) / mcse)
        row.update(max_mcse=float(np.max(z)), share_3_mcse=float(np.mean(np.array(z) > 3)))
    return row


def run_child(name: str, path: str, fits: int, args) -> dict:
    """``measure`` in a fresh process with an empty JAX compilation cache."""
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "WMLE_JAX_CACHE": cache}
        command = [sys.executable, "-m", "benchmarks.batched", "--child", f"{name},{path},{fits}",
                   "--draws", str(args.draws), "--tune", str(args.tune), "--seed", str(args.seed)]
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=args.timeout)
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"model": name, "path": path, "fits": fits, "status": f"failed: {tail}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def large_fit(seed: int, rows: int = 100_000) -> list[dict]:
    """The single large fit: the default path (``inference.sample``, weighted pointwise
    log-likelihood stored) against a bare ``pm.sample(nuts_sampler="numpyro")``, in one process,
    2 chains x (1000 + 1000); ESS/s = minimum bulk ESS / wall time."""
    import arviz as az
    import pymc as pm

    from benchmarks.samplers import Fit, build
    from models import inference

    make = build(Fit("classes", rows, False, "auto", seed, 2, 1000, 1000))
    results = []
    for path in ("bare_numpyro", "default_with_log_likelihood"):
        model = make()
        start = time.perf_counter()
        if path == "bare_numpyro":
            with model:
                idata = pm.sample(draws=1000, tune=1000, chains=2, nuts_sampler="numpyro", random_seed=seed,
                                  progressbar=False)
        else:
            idata = inference.sample(model, draws=1000, tune=1000, chains=2, random_seed=seed,
                                     log_likelihood=True)   # both groups, 3 GB: above the default 2 GiB
        wall = time.perf_counter() - start
        ess = float(min(az.ess(idata, method="bulk")[v].min() for v in ("intercept", "coef")))
        results.append({"model": f"classes {rows:.0e} rows", "path": path, "wall_s": wall,
                        "ess_per_s": ess / wall, "sampler": idata.attrs.get("sampler", "numpyro"),
                        "log_likelihood": "log_likelihood" in idata.groups()})
    return results


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.batched", description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default=",".join(MODELS), help="comma-separated: coin, logistic, policy")
    p.add_argument("--paths", default=",".join(PATHS),
                   help="comma-separated: batched, batched_hmc, one_at_a_time, simuk")
    p.add_argument("--fits", default="100,1000", help="comma-separated numbers of fits (default 100,1000)")
    p.add_argument("--full", action="store_true", help="the slow paths at every number of fits too")
    p.add_argument("--large", action="store_true", help="also the single 1e5-row fit")
    p.add_argument("--draws", type=int, default=SETTINGS["draws"])
    p.add_argument("--tune", type=int, default=SETTINGS["tune"])
    p.add_argument("--seed", type=int, default=2026)
    p.add_argument("--timeout", type=float, default=3600.0, help="seconds per run before it is killed")
    p.add_argument("--quick", action="store_true", help="smoke run: 10 fits, 100 + 100 draws")
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.set_defaults(chains=SETTINGS["chains"])
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parser().parse_args(argv)
    if args.quick:
        args.fits, args.draws, args.tune = "10", 100, 100
    settings = {"chains": SETTINGS["chains"], "tune": args.tune, "draws": args.draws}
    if args.child:
        name, path, fits = args.child.split(",")
        print(json.dumps(measure(name, path, int(fits), settings, args.seed)))
        return 0
    sizes = [int(float(f)) for f in args.fits.split(",")]
    paths = [p for p in args.paths.split(",") if p]
    if "simuk" in paths:
        import importlib.util

        if importlib.util.find_spec("simuk") is None:
            print("simuk is not installed (pip install -e '.[benchmark]'): skipping it", file=sys.stderr)
            paths.remove("simuk")
    rows = []
    for name in [m for m in args.models.split(",") if m]:
        for path in paths:
            for fits in sizes:
                if not path.startswith("batched") and fits != min(sizes) and not args.full:
                    continue
                row = run_child(name, path, fits, args)
                rows.append(row)
                print(f"{name:9s} {path:14s} {fits:5d} fits: {row.get('wall_s', float('nan')):8.1f} s  "
                      f"{row['status']}", flush=True)
    for row in rows:
        base = next((r for r in rows if r["model"] == row["model"] and r["path"] == "one_at_a_time"
                     and "per_fit_s" in r), None)
        if base is not None and "per_fit_s" in row:
            row["speedup_vs_one_at_a_time"] = base["per_fit_s"] / row["per_fit_s"]
    args.out.mkdir(parents=True, exist_ok=True)
    if rows:
        write_csv(args.out / "batched.csv", rows, COLUMNS)
        print(render(rows, COLUMNS))
    text = environment(args, argv).replace("benchmarks.samplers", "benchmarks.batched")
    if args.large:
        large = large_fit(args.seed)
        columns = ("model", "path", "wall_s", "ess_per_s", "sampler", "log_likelihood")
        write_csv(args.out / "batched_large.csv", large, columns)
        print(render(large, columns))
        ratio = large[1]["ess_per_s"] / large[0]["ess_per_s"]
        text += f"large fit: default / bare ESS per second = {ratio:.2f}\n"
    (args.out / "environment_batched.txt").write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
