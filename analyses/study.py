"""What every analysis shares around its fits: the settings it runs with and the report it returns,
seeds keyed by what they seed, progress (lines, and bars on a terminal), thinned draws, and the
statistics of many fits (coverage intervals, diagnostics summarised over fits). Many fits of one
model run through ``models.inference.sample_many`` / ``compare_many`` (batched in one compiled
program).

An analysis module states its question; this module is the machinery, written once.
"""

from __future__ import annotations

import sys
import zlib
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
from scipy import stats
from tqdm.auto import tqdm

from models.diagnostics import Diagnostics


@dataclass(frozen=True)
class Settings:
    """What every analysis is run with; ``quick`` asks for a seconds-long smoke run."""

    draws: int
    tune: int
    chains: int
    seed: int
    sampler: str
    quick: bool

    def sampling(self) -> dict:
        """The keyword arguments of ``inference.sample`` and ``inference.compare`` these settings fix."""
        return {"draws": self.draws, "tune": self.tune, "chains": self.chains, "sampler": self.sampler}


@dataclass(frozen=True)
class Report:
    """What an analysis hands back: its summary rows and, per fit or group of fits, an object with
    ``ok`` and ``problems`` (``Diagnostics``, or :class:`FitsSummary` for many fits)."""

    rows: list[dict]
    fits: dict


def _key(part) -> int:
    """An integer for one part of a key: itself, or a stable CRC-32 of its text (the same on every
    machine and run, unlike ``hash``)."""
    if isinstance(part, (int, np.integer)) and not isinstance(part, bool):
        return int(part)
    return zlib.crc32(str(part).encode())


def rng_for(seed: int, *keys) -> np.random.Generator:
    """A random stream keyed by what it is for (``rng_for(seed, "data", "bandit")``): adding or
    removing a fit, a scheme or a simulation leaves every other stream as it was."""
    return np.random.default_rng([seed, *(_key(k) for k in keys)])


def seed_for(seed: int, *keys) -> int:
    """A sampler seed keyed by what it seeds (:func:`rng_for`)."""
    return int(rng_for(seed, *keys).integers(2**31 - 1))


class Console:
    """Where progress goes: standard error, or nowhere once ``--quiet`` set ``quiet``."""

    quiet = False


def progress(analysis: str, message: str) -> None:
    """One line of progress on standard error, ``analysis: message`` (nothing under ``--quiet``)."""
    if not Console.quiet:
        print(f"{analysis}: {message}", file=sys.stderr, flush=True)


@contextmanager
def progress_bar(analysis: str, label: str, total: int, unit: str = "fit"):
    """A progress bar on standard error for ``total`` pieces of work: done, rate and time left.

    Yields ``update(done, total=None)``, the callback ``sample_many`` and ``compare_many`` take
    (``done`` counts what is finished so far). Shown on a terminal only (a log gets the progress
    lines), and never under ``--quiet``.
    """
    with tqdm(total=total, desc=f"{analysis}: {label}", unit=unit, file=sys.stderr, leave=False,
              disable=True if Console.quiet else None, mininterval=0.5, dynamic_ncols=True) as bar:
        def update(done: int, _total: int | None = None) -> None:
            bar.update(done - bar.n)

        yield update


# --------------------------------------------------------------------------- draws


def pooled(idata, name: str) -> np.ndarray:
    """All posterior draws of ``name``, chains pooled: shape (draws, *the variable's shape)."""
    return idata.posterior[name].stack(sample=("chain", "draw")).transpose("sample", ...).values


def thin(draws: np.ndarray, count: int) -> np.ndarray:
    """``count`` draws evenly spaced through ``draws`` (all of them when there are fewer)."""
    return draws[np.linspace(0, len(draws) - 1, min(count, len(draws))).astype(int)]


# --------------------------------------------------------------------------- statistics of many fits


def mean_interval(values, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Mean over ``axis`` (seeds, data sets) and the half-width of its 95% normal interval, 1.96
    standard errors (NaN with fewer than two values)."""
    values = np.asarray(values, dtype=float)
    count = values.shape[axis]
    mean = values.mean(axis=axis)
    if count < 2:
        return mean, np.full_like(mean, np.nan)
    return mean, 1.96 * values.std(axis=axis, ddof=1) / np.sqrt(count)


def jeffreys_interval(successes: int, trials: int, level: float = 0.95) -> tuple[float, float]:
    """Jeffreys interval of a binomial proportion (Monte Carlo error of an empirical coverage)."""
    tail = (1 - level) / 2
    posterior = stats.beta(successes + 0.5, trials - successes + 0.5)
    return float(posterior.ppf(tail)), float(posterior.ppf(1 - tail))


def coverage_interval(covered: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Monte Carlo interval of an empirical coverage from a (simulations, parameters) 0/1 array.

    One parameter: the Jeffreys interval. Several: the parameters of one fit are not independent,
    so the interval comes from the spread of the per-simulation coverage (clustered normal interval).
    """
    simulations, parameters = covered.shape
    if parameters == 1:
        return jeffreys_interval(int(covered.sum()), simulations, level)
    per_simulation = covered.mean(axis=1)
    half = stats.norm.ppf(0.5 + level / 2) * per_simulation.std(ddof=1) / np.sqrt(simulations)
    return float(max(0.0, per_simulation.mean() - half)), float(min(1.0, per_simulation.mean() + half))


@dataclass(frozen=True)
class FitsSummary:
    """Diagnostics of many fits of one scenario; ``ok`` unless more than 5% of the fits fail.

    With 100 fits some will cross a single-fit threshold (r_hat 1.01, ESS 400) by chance; a share
    above 5% (or any divergence) is a problem of the sampler, not chance.
    """

    fits: int
    failing: int
    divergences: int
    worst: Diagnostics

    ALLOWED_SHARE = 0.05

    @property
    def problems(self) -> list[str]:
        found = []
        if self.failing > self.ALLOWED_SHARE * self.fits:
            found.append(f"{self.failing} of {self.fits} fits fail a diagnostic "
                         f"(worst: {'; '.join(self.worst.problems)})")
        if self.divergences:
            found.append(f"{self.divergences} divergent transition(s) over all fits")
        return found

    @property
    def ok(self) -> bool:
        return not self.problems


def summarise_fits(diagnostics: list[Diagnostics]) -> FitsSummary:
    """The worst value of every diagnostic over many fits, and how many fits fail one."""
    worst = Diagnostics(
        max_r_hat=max(d.max_r_hat for d in diagnostics),
        min_ess_bulk=min(d.min_ess_bulk for d in diagnostics),
        min_ess_tail=min(d.min_ess_tail for d in diagnostics),
        divergences=sum(d.divergences for d in diagnostics),
        min_bfmi=min(d.min_bfmi for d in diagnostics),
        chains=diagnostics[0].chains,
        draws=diagnostics[0].draws,
        nonfinite_draws=sum(d.nonfinite_draws for d in diagnostics),
    )
    return FitsSummary(fits=len(diagnostics), failing=sum(not d.ok for d in diagnostics),
                       divergences=worst.divergences, worst=worst)
