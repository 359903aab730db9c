"""Which NUTS back end is fastest for the suite's weighted models, at which size, and at what memory?

    python -m benchmarks.samplers            # every installed back end, every model and size
    python -m benchmarks.samplers --quick    # a smoke run: 100 + 100 draws, 1e3 rows only

The same weighted models, data and seeds go through :func:`models.inference.sample` with each back
end installed ("pymc", "numpyro", "nutpie"):

* ``coin``: 10 tosses, one weighted 10 (the coin analysis);
* ``classes``: weighted logistic regression, 5 standard-normal features, about 20% positives,
  balanced class weights, at 1e3 to 1e6 rows;
* ``policy``: a 16-state, 4-action softmax policy from 1e3 to 1e7 logged steps with log-normal
  weights, one row per step (``collapsed=False``) and one row per (state, action) cell
  (``collapsed=True``, 64 rows whatever the number of steps).

Each fit runs in a fresh Python process, twice: once with 1 tuning step and 1 draw, once with the
full settings (default 2 chains x 1000 tuning + 1000 draws). Wall times exclude imports and the
simulation of the data, and include building the model, compiling, sampling and post-processing
(log-likelihood, conversion to InferenceData), i.e. what a user waits for after ``import``.

* ``compile_s`` is the wall time of the 1-draw run: what does not grow with the iterations (build,
  compilation, initialisation). PyTensor caches its C code on disk, so the full PyMC run after it
  starts warm, as any fit of a model structure seen before does; JAX and Numba compile afresh in
  every process.
* ``sampling_s`` = ``wall_s`` - ``compile_s``, with ``wall_s`` the full run's wall time (``compile_s``
  is capped at ``wall_s``: with very few draws, timing noise can make the 1-draw run the slower).
* ``ess_per_s`` = minimum bulk ESS over all posterior quantities / ``wall_s`` (end to end).
* ``peak_rss_gib``: the full run's peak resident memory (``ru_maxrss``, imports included); for PyMC,
  whose chains run in forked processes, plus each chain process's peak (an upper bound).
* ``default``: whether ``sampler="auto"`` picks this back end for this model.

A series (model, collapsed, back end) stops early, saying so in ``status``, when the next size is
predicted to exceed ``--timeout`` (wall time of the last size, its sampling part scaled by the growth
of the data when the data grow); a run that still exceeds ``--timeout`` is killed and reported.

Writes ``samplers.csv`` (one row per fit), ``samplers.png`` (wall time and ESS/s against rows) and
``targets.csv`` (the performance targets computed from the rows) to ``--out`` (default
``benchmarks/results``), and ``environment.txt`` (command, machine, versions).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import platform
import resource
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
CLASSES_SIZES = (1_000, 10_000, 100_000, 1_000_000)
POLICY_SIZES = (1_000, 10_000, 100_000, 1_000_000, 10_000_000)
N_FEATURES = 5
N_STATES, N_ACTIONS = 16, 4
COLUMNS = ("model", "rows", "collapsed", "sampler", "default", "compile_s", "sampling_s", "wall_s",
           "min_ess_bulk", "ess_per_s", "peak_rss_gib", "max_r_hat", "divergences", "log_likelihood",
           "status")


@dataclass(frozen=True)
class Fit:
    """One (model, size, back end) measurement to run in a child process."""

    model: str
    rows: int
    collapsed: bool
    sampler: str
    draws: int
    tune: int
    chains: int
    seed: int

    @property
    def grows(self) -> bool:
        """Whether the model's data grow with ``rows`` (not for the collapsed policy)."""
        return not (self.model == "policy" and self.collapsed)


# --------------------------------------------------------------------------- child process


def build(fit: Fit):
    """The model of ``fit``, with data simulated from ``fit.seed`` (not timed: done before the clock)."""
    from models import classes, coin, policy, weights

    rng = np.random.default_rng(fit.seed)
    if fit.model == "coin":
        flips = np.array([1, 0, 1, 1, 0, 1, 1, 0, 1, 1])
        return lambda: coin.build_model(flips, np.where(np.arange(10) == 2, 10.0, 1.0), prior=(2, 2))
    if fit.model == "classes":
        X = rng.normal(size=(fit.rows, N_FEATURES))
        eta = -1.5 + X @ np.array([1.0, -0.5, 0.25, 0.0, 0.75])
        y = (rng.random(fit.rows) < 1 / (1 + np.exp(-eta))).astype(np.int64)
        w = weights.balanced(y)
        return lambda: classes.build_model(X, y, w)
    if fit.model == "policy":
        states = rng.integers(N_STATES, size=fit.rows)
        behaviour = rng.dirichlet(np.ones(N_ACTIONS), size=N_STATES)
        actions = (rng.random(fit.rows)[:, None] > np.cumsum(behaviour[states], axis=1)).sum(axis=1)
        actions = np.minimum(actions, N_ACTIONS - 1)
        w = rng.lognormal(0.0, 0.5, size=fit.rows)
        return lambda: policy.build_model(states, actions, w, n_states=N_STATES, n_actions=N_ACTIONS,
                                          collapse=fit.collapsed)
    raise ValueError(f"unknown model {fit.model!r}")


def peak_memory_gib(chain_processes: int) -> float:
    """Peak resident memory of this process plus, when PyMC ran chains in forked processes, that many
    times the largest child's peak: an upper bound (forked processes share pages), exact otherwise."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss if chain_processes > 1 else 0
    return (own + chain_processes * children) * 1024 / 2**30  # ru_maxrss is in KiB on Linux


def measure(fit: Fit) -> dict:
    """Build and sample ``fit`` in this process; wall time, diagnostics and peak memory."""
    import warnings

    import models  # noqa: F401  (links PyTensor to OpenBLAS)
    from models import inference
    from models.sampling import dispatch

    make = build(fit)
    started = time.perf_counter()
    model = make()
    with warnings.catch_warnings(record=True):  # "log_likelihood left out" at large sizes: recorded below
        warnings.simplefilter("always")
        idata = inference.sample(model, draws=fit.draws, tune=fit.tune, chains=fit.chains,
                                 random_seed=fit.seed, sampler=fit.sampler, progressbar=False)
    wall = time.perf_counter() - started
    result = {
        "wall_s": wall,
        "log_likelihood": idata.attrs["log_likelihood"],
        "default": dispatch.resolve("auto", model) == fit.sampler,
        "peak_rss_gib": peak_memory_gib(idata.attrs.get("cores", 1)),
    }
    if fit.draws > 1:  # the 1-draw run only times the fixed costs: no ESS from one draw
        diagnostics = inference.diagnose(idata)
        result.update(min_ess_bulk=diagnostics.min_ess_bulk, max_r_hat=diagnostics.max_r_hat,
                      divergences=diagnostics.divergences)
    return result


# --------------------------------------------------------------------------- parent process


def run_child(fit: Fit, timeout: float) -> tuple[dict | None, str]:
    """``measure(fit)`` in a fresh interpreter: (result, "ok") or (None, why it failed)."""
    command = [sys.executable, "-m", "benchmarks.samplers", "--child", json.dumps(asdict(fit))]
    root = Path(__file__).resolve().parents[1]
    # Its own session, so that a fit over the limit is killed with the chain processes it forked.
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=root,
                          start_new_session=True) as child:
        try:
            stdout, stderr = child.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.communicate()
            return None, f"killed: over the {timeout:.0f} s limit"
    done = subprocess.CompletedProcess(command, child.returncode, stdout, stderr)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode or not lines:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return None, f"failed (exit {done.returncode}): {last[:200]}"
    return json.loads(lines[-1][len("RESULT "):]), "ok"


def measure_fit(fit: Fit, timeout: float) -> dict:
    """One row of the table: the 1-draw run, then the full run, each in its own process."""
    row = {"model": fit.model, "rows": fit.rows, "collapsed": fit.collapsed, "sampler": fit.sampler}
    fixed, status = run_child(Fit(**{**asdict(fit), "draws": 1, "tune": 1}), timeout)
    if fixed is None:
        return {**row, "status": f"1-draw run {status}"}
    full, status = run_child(fit, timeout)
    if full is None:
        return {**row, "compile_s": fixed["wall_s"], "status": status}
    compile_s = min(fixed["wall_s"], full["wall_s"])
    return {**row, **full, "compile_s": compile_s, "sampling_s": full["wall_s"] - compile_s,
            "ess_per_s": full["min_ess_bulk"] / full["wall_s"], "status": "ok"}


def predicted_wall(previous: dict, fit: Fit) -> float:
    """Wall time expected at ``fit.rows`` from the row of the previous size of the same series."""
    if not fit.grows:
        return previous["wall_s"]
    return previous["compile_s"] + previous["sampling_s"] * fit.rows / previous["rows"]


def run_series(fits: list[Fit], timeout: float, log) -> list[dict]:
    """Sizes in increasing order; stop (and say why) once the next size is predicted to take too long."""
    rows, previous = [], None
    for fit in fits:
        key = {"model": fit.model, "rows": fit.rows, "collapsed": fit.collapsed, "sampler": fit.sampler}
        if previous is not None and previous.get("status") != "ok":
            rows.append({**key, "status": f"skipped: {previous['rows']:.0e} rows did not finish"})
            continue
        if previous is not None and (expected := predicted_wall(previous, fit)) > timeout:
            rows.append({**key, "status": f"skipped: predicted {expected:.0f} s > limit {timeout:.0f} s "
                                          f"(from {previous['rows']:.0e} rows)"})
            continue
        row = measure_fit(fit, timeout)
        log(row)
        rows.append(row)
        if row["status"] == "ok":
            previous = row
        else:
            previous = {"rows": fit.rows, "status": row["status"]}
    return rows


# --------------------------------------------------------------------------- targets, table, figure


def _find(rows, model, size, collapsed, sampler=None, default=None):
    for row in rows:
        if (row["model"], row["rows"], row["collapsed"]) == (model, size, collapsed) \
                and row.get("status") == "ok" \
                and (sampler is None or row["sampler"] == sampler) \
                and (default is None or bool(row.get("default")) == default):
            return row
    return None


def targets(rows: list[dict]) -> list[dict]:
    """The issue's measurable targets, computed from the measured rows (NaN: not measured)."""
    out = []

    def add(name, value, goal, met, basis):
        out.append({"target": name, "value": value, "goal": goal,
                    "met": "not measured" if math.isnan(value) else ("yes" if met(value) else "no"),
                    "basis": basis})

    default = _find(rows, "classes", 100_000, False, default=True)
    numpyro = _find(rows, "classes", 100_000, False, sampler="numpyro")
    ratio = default["ess_per_s"] / numpyro["ess_per_s"] if default and numpyro else float("nan")
    add("classes 1e5 rows: ESS/s of the default back end / NumPyro's", ratio, ">= 1.0 (aim 1.2)",
        lambda v: v >= 1.0, f"default = {default['sampler'] if default else '?'}")
    small = _find(rows, "policy", 1_000, True, default=True)
    large = _find(rows, "policy", 1_000_000, True, default=True)
    ratio = large["wall_s"] / small["wall_s"] if small and large else float("nan")
    add("collapsed policy: wall time at 1e6 steps / at 1e3 steps (default back end)", ratio, "<= 2",
        lambda v: v <= 2, f"default = {large['sampler'] if large else '?'}")
    done = [r for r in rows if r.get("status") == "ok"]
    misses, compared = [], 0
    for point in sorted({(r["model"], r["rows"], r["collapsed"]) for r in done}):
        measured = [r for r in done if (r["model"], r["rows"], r["collapsed"]) == point]
        chosen = [r for r in measured if r.get("default")]
        if len(measured) < 2 or not chosen:
            continue
        compared += 1
        fastest = min(measured, key=lambda r: r["wall_s"])
        if chosen[0]["wall_s"] > 1.1 * fastest["wall_s"]:
            misses.append(f"{point[0]} {point[1]:.0e}{' collapsed' if point[2] else ''}: "
                          f"{chosen[0]['sampler']} {chosen[0]['wall_s']:.0f} s, {fastest['sampler']} "
                          f"{fastest['wall_s']:.0f} s")
    add("auto: sizes where its back end is more than 10% slower than the fastest", float(len(misses))
        if compared else float("nan"), "0", lambda v: v == 0,
        f"of {compared} compared; " + "; ".join(misses) if misses else f"of {compared} compared")
    at_million = [r for r in done if r["rows"] == 1_000_000]
    for row in at_million:
        add(f"peak memory (GiB) at 1e6 rows: {row['model']}{' collapsed' if row['collapsed'] else ''}, "
            f"{row['sampler']}", row["peak_rss_gib"], "< 4", lambda v: v < 4,
            "default back end" if row.get("default") else "not the default")
    if not at_million:
        add("peak memory (GiB) at 1e6 rows", float("nan"), "< 4", lambda v: v < 4, "")
    return out


def _format(value) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.4g}"
    return "" if value is None else str(value)


def write_csv(path: Path, rows: list[dict], columns) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({key: _format(row.get(key)) for key in columns})


def render(rows: list[dict], columns) -> str:
    """A plain-text table of ``rows``."""
    cells = [[_format(row.get(key)) for key in columns] for row in rows]
    widths = [max(len(key), *(len(c[i]) for c in cells)) for i, key in enumerate(columns)]
    lines = ["  ".join(key.ljust(w) for key, w in zip(columns, widths))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(cell, widths)) for cell in cells]
    return "\n".join(lines)


def plot(rows: list[dict], path: Path, title: str) -> None:
    """Wall time and ESS per second against rows: colour per back end, line style per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    samplers = sorted({r["sampler"] for r in rows})
    colours = dict(zip(samplers, plt.rcParams["axes.prop_cycle"].by_key()["color"]))
    styles = {("coin", False): "o", ("classes", False): "-", ("policy", False): "--", ("policy", True): ":"}
    fig, axs = plt.subplots(1, 2, figsize=(11, 4.5), constrained_layout=True)
    for (model, collapsed), style in styles.items():
        for sampler in samplers:
            series = sorted((r for r in rows if r.get("status") == "ok" and
                             (r["model"], r["collapsed"], r["sampler"]) == (model, collapsed, sampler)),
                            key=lambda r: r["rows"])
            if not series:
                continue
            x = [r["rows"] for r in series]
            label = f"{sampler}: {model}{' collapsed' if collapsed else ''}"
            marker = "o" if style == "o" else "."
            line = "none" if style == "o" else style
            for ax, key in zip(axs, ("wall_s", "ess_per_s")):
                ax.plot(x, [r[key] for r in series], linestyle=line, marker=marker, color=colours[sampler],
                        label=label)
    for ax, ylabel in zip(axs, ("wall time (s): build + compile + sample", "min bulk ESS per second")):
        ax.set(xscale="log", yscale="log", xlabel="rows (logged steps for policy)", ylabel=ylabel)
        ax.grid(True, which="major", alpha=0.3)
    if axs[1].get_legend_handles_labels()[0]:
        axs[1].legend(fontsize=7, loc="best")
    fig.suptitle(title, fontsize=10)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def describe_machine(command: str, settings: str) -> str:
    """What a benchmark's environment file records: the command, the date, the machine, the settings
    and the package versions."""
    versions = []
    for package in ("pymc", "pytensor", "arviz", "numpyro", "jax", "nutpie", "numba"):
        try:
            versions.append(f"{package} {metadata.version(package)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{package} not installed")
    return "\n".join([
        f"command: {command}".rstrip(),
        f"date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"machine: {platform.machine()}, {len(os.sched_getaffinity(0))} cores usable, "
        f"Python {platform.python_version()}, {platform.platform()}",
        f"settings: {settings}",
        "versions: " + ", ".join(versions),
    ]) + "\n"


def environment(args: argparse.Namespace, argv: list[str]) -> str:
    return describe_machine(f"python -m benchmarks.samplers {' '.join(argv)}",
                            f"{args.chains} chains x ({args.tune} tuning + {args.draws} draws), seed "
                            f"{args.seed}, limit {args.timeout:.0f} s per run")


# --------------------------------------------------------------------------- command line


def _sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(float(s)) for s in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers such as 1e3,1e4; got {text!r}")
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"sizes must be positive, got {text!r}")
    return tuple(sorted(set(sizes)))


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.samplers", description=__doc__.splitlines()[0])
    p.add_argument("--samplers", help="comma-separated back ends (default: every installed one)")
    p.add_argument("--models", default="coin,classes,policy", help="comma-separated: coin, classes, policy")
    p.add_argument("--sizes", type=_sizes, help="rows for classes and policy (default: classes 1e3..1e6, "
                                                "policy 1e3..1e7)")
    p.add_argument("--draws", type=_positive, default=1000, help="draws per chain (default 1000)")
    p.add_argument("--tune", type=_positive, default=1000, help="tuning steps per chain (default 1000)")
    p.add_argument("--chains", type=_positive, default=2, help="chains (default 2)")
    p.add_argument("--seed", type=int, default=2026, help="seed of the data and of every sampler")
    p.add_argument("--timeout", type=float, default=1200.0,
                   help="limit in seconds for one run (default 1200)")
    p.add_argument("--quick", action="store_true", help="smoke run: 100 + 100 draws, 1e3 rows only")
    p.add_argument("--out", type=Path, default=RESULTS, help=f"output folder (default {RESULTS})")
    p.add_argument("--child", help=argparse.SUPPRESS)
    return p


def plan(args: argparse.Namespace, samplers: list[str]) -> list[list[Fit]]:
    """The series to run: per (model, collapsed, back end), its fits in increasing size."""
    models = [m.strip() for m in args.models.split(",")]
    unknown = set(models) - {"coin", "classes", "policy"}
    if unknown:
        raise SystemExit(f"python -m benchmarks.samplers: error: unknown model(s) {sorted(unknown)}")
    settings = dict(draws=args.draws, tune=args.tune, chains=args.chains, seed=args.seed)
    series = []
    for model in models:
        if model == "coin":
            shapes = [((10,), False)]
        elif model == "classes":
            shapes = [(args.sizes or CLASSES_SIZES, False)]
        else:
            shapes = [(args.sizes or POLICY_SIZES, collapsed) for collapsed in (False, True)]
        for sizes, collapsed in shapes:
            for sampler in samplers:
                series.append([Fit(model, n, collapsed, sampler, **settings) for n in sizes])
    return series


def progress(row: dict) -> None:
    """One line per finished fit on stderr."""
    print(f"{row['model']:8} {row['rows']:>9} {'collapsed' if row['collapsed'] else '':9} "
          f"{row['sampler']:8} wall {_format(row.get('wall_s')):>7} s  "
          f"ESS/s {_format(row.get('ess_per_s')):>7}  {row['status']}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parser().parse_args(argv)
    if args.child:
        print("RESULT " + json.dumps(measure(Fit(**json.loads(args.child)))), flush=True)
        return 0
    from models.sampling import dispatch

    if args.quick:
        args.draws, args.tune, args.sizes = 100, 100, args.sizes or (1_000,)
    available = dispatch.installed()
    samplers = [s.strip() for s in args.samplers.split(",")] if args.samplers else list(available)
    missing = [s for s in samplers if s not in available]
    if missing:
        raise SystemExit(f"python -m benchmarks.samplers: error: not installed or unknown: {missing}; "
                         f"installed: {list(available)}")
    started = time.perf_counter()
    rows = []
    for fits in plan(args, samplers):
        rows += run_series(fits, args.timeout, progress)
    args.out.mkdir(parents=True, exist_ok=True)
    write_csv(args.out / "samplers.csv", rows, COLUMNS)
    goals = targets(rows)
    write_csv(args.out / "targets.csv", goals, ("target", "value", "goal", "met", "basis"))
    (args.out / "environment.txt").write_text(environment(args, argv))
    plot(rows, args.out / "samplers.png",
         f"{args.chains} chains x ({args.tune} + {args.draws}), {len(os.sched_getaffinity(0))} cores")
    print(render(rows, COLUMNS))
    print()
    print(render(goals, ("target", "value", "goal", "met", "basis")))
    elapsed = time.perf_counter() - started
    print(f"\n{len(rows)} rows in {elapsed:.0f} s; written to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
