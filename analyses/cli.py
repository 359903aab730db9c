"""Command line: ``python -m analyses NAME [options]`` with NAME one analysis or ``all``.

Every analysis writes ``OUT/figures/NAME/*.png``, ``OUT/results/NAME/*.nc`` and
``OUT/results/NAME/summary.csv`` and prints the summary. Exit codes: 0 done; 1 with ``--strict``
when a fit failed its diagnostics; 2 bad arguments or bad input data (``InputError``: one line on
stderr, checked before anything is written). Any other error is a bug and shows its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import time
from pathlib import Path

import models
from analyses import ANALYSES
from analyses.output import Output
from analyses.study import Console, Report, Settings
from models import summary
from models.errors import InputError
from models.sampling.dispatch import SAMPLERS

FULL = {"draws": 1000, "tune": 1000, "chains": 4}
QUICK = {"draws": 100, "tune": 100, "chains": 2}
DEFAULT_SEED = 2026


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage dump
        self.exit(2, f"{self.prog}: error: {message}\n")


def _count(minimum: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value

    return parse


def _default_root() -> Path:
    repository = Path(__file__).resolve().parents[1]
    return repository if (repository / "pyproject.toml").exists() else Path.cwd()


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m analyses",
                description="Run one wmle analysis, or all: figures go to OUT/figures/NAME/, posteriors "
                            "and the summary table to OUT/results/NAME/.")
    p.add_argument("name", choices=[*ANALYSES, "all"], help="which analysis to run")
    p.add_argument("--draws", type=_count(1),
                   help=f"posterior draws per chain (default {FULL['draws']})")
    p.add_argument("--tune", type=_count(0),
                   help=f"tuning steps per chain (default {FULL['tune']}; curriculum, calibration, sbc: 500)")
    p.add_argument("--chains", type=_count(1), help=f"chains (default {FULL['chains']}; calibration, sbc: 2)")
    p.add_argument("--seed", type=_count(0), default=DEFAULT_SEED, help="seed of every random step")
    p.add_argument("--sampler", choices=SAMPLERS, default="auto",
                   help="NUTS back end (default auto: NumPyro for large data when installed, else PyMC)")
    p.add_argument("--quick", action="store_true", help="seconds-long smoke run (fewer draws, fits)")
    p.add_argument("--strict", action="store_true", help="exit 1 when a fit fails its diagnostics")
    p.add_argument("--out", type=Path, default=None, help="output root (default: the repository)")
    p.add_argument("--quiet", action="store_true",
                   help="no progress lines or bars (summaries and warnings stay)")
    return p


def settings_for(args: argparse.Namespace, module) -> Settings:
    """Options given on the command line, else the quick or full defaults (an analysis may set its
    own full defaults in ``SAMPLER_DEFAULTS``)."""
    base = QUICK if args.quick else {**FULL, **getattr(module, "SAMPLER_DEFAULTS", {})}
    chosen = {key: getattr(args, key) if getattr(args, key) is not None else base[key] for key in base}
    return Settings(**chosen, seed=args.seed, sampler=args.sampler, quick=args.quick)


def run(name: str, module, settings: Settings, root: Path) -> Report:
    output = Output(root, name)
    started = time.perf_counter()
    report = module.main(settings, output)
    output.table(report.rows)
    print(f"\n== {name}: summary ({output.results / 'summary.csv'})")
    print(summary.render(report.rows))
    for label, diagnostics in report.fits.items():
        if not diagnostics.ok:
            print(f"warning: {name}/{label}: {'; '.join(diagnostics.problems)}", file=sys.stderr)
    elapsed = time.perf_counter() - started
    print(f"{name}: {len(output.written)} files written in {elapsed:.0f} s", file=sys.stderr)
    return report


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    root = args.out if args.out is not None else _default_root()
    if root.exists() and not (root.is_dir() and os.access(root, os.W_OK)):
        print(f"python -m analyses: error: --out {root} is not a writable directory", file=sys.stderr)
        return 2
    logging.getLogger("pymc").setLevel(logging.WARNING)
    quiet_before = Console.quiet
    Console.quiet = args.quiet
    try:
        return _run_all(args, root)
    finally:
        Console.quiet = quiet_before


def _run_all(args: argparse.Namespace, root: Path) -> int:
    """Check every analysis's settings, then run each; the exit code."""
    models.configure(creation_backtraces=False)
    names = ANALYSES if args.name == "all" else (args.name,)
    modules = {name: importlib.import_module(f"analyses.{name}") for name in names}
    settings = {name: settings_for(args, module) for name, module in modules.items()}
    failed = []
    try:
        for name, module in modules.items():  # every check before anything is written
            getattr(module, "check_settings", lambda _: None)(settings[name])
        for name, module in modules.items():
            report = run(name, module, settings[name], root)
            failed += [f"{name}/{label}" for label, d in report.fits.items() if not d.ok]
    except InputError as err:
        print(f"python -m analyses {args.name}: error: {err}", file=sys.stderr)
        return 2
    if args.strict and failed:
        print(f"--strict: {len(failed)} fit(s) failed diagnostics: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0
