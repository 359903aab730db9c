"""Every choice of how to run a fit, and every threshold behind it, in one place.

* which NUTS back end ``sampler="auto"`` means for a model (:func:`resolve`);
* whether a fit's chains run in this process or in one process per core (:func:`cores_for`);
* whether many fits run in one batched JAX program or one after another (:func:`many_route`);
* how many lanes of the batched program share a core (:func:`lanes_per_device`);
* whether the pointwise log-likelihood is stored by default (:data:`LOG_LIKELIHOOD_MAX_GIB`).

The thresholds were measured on the 2-core reference machine with the benchmarks in
``benchmarks/`` (``docs/performance.md`` has the tables and the commands that produce them).
"""

from __future__ import annotations

import importlib.util
import math
import os

import numpy as np
import pymc as pm
from pytensor.graph.basic import Constant

from models import compiled
from models.errors import InputError

__all__ = ["AUTO_MIN_DATA_SIZE", "BACKENDS", "BATCH_MIN_ITERATIONS", "BATCH_MIN_OPTIMISATIONS",
           "DATA_NUMBERS_PER_OVERHEAD", "IN_PROCESS_ITERATIONS", "LANE_DATA_BUDGET", "LOG_LIKELIHOOD_MAX_GIB",
           "MAX_LANES_PER_DEVICE", "SAMPLERS", "available_cores", "batched_available", "cores_for",
           "data_size", "installed", "is_installed", "iteration_cost", "lanes_per_device",
           "log_likelihood_bytes", "many_route", "resolve"]

BACKENDS = ("pymc", "numpyro", "nutpie")
SAMPLERS = ("auto", *BACKENDS)

REQUIREMENTS = {"pymc": ("pymc",), "numpyro": ("numpyro", "jax"), "nutpie": ("nutpie", "numba")}
EXTRAS = {"numpyro": "jax", "nutpie": "nutpie"}

AUTO_MIN_DATA_SIZE = 50_000
"""``"auto"`` takes NumPyro for a model whose data hold at least this many numbers: below it PyMC's
C code, cached across runs, beats JAX's compilation on every call; above it NumPyro's cheaper
gradients win (``python -m benchmarks.samplers``: weighted logistic regression, 5 features)."""

LOG_LIKELIHOOD_MAX_GIB = 2.0
"""``sample`` stores the pointwise log-likelihood by default only up to this size (one float64 per
observation and draw, twice: weighted and unweighted)."""

DATA_NUMBERS_PER_OVERHEAD = 1000
"""PyMC's cost per NUTS iteration is a fixed Python overhead plus a part that grows with the data;
about this many numbers of data cost as much as the overhead."""

IN_PROCESS_ITERATIONS = 5_000
"""A fit shorter than this (chains x (tune + draws) x :func:`iteration_cost`) runs its chains one
after another in this process when ``cores`` is not given: starting chain processes would cost more
than running the chains side by side saves."""

BATCH_MIN_ITERATIONS = 50_000
"""``sample_many(sampler="auto")`` batches when fits x chains x (tune + draws) x :func:`iteration_cost`
reaches this: below it, compiling the JAX program costs more than PyMC spends on the whole job."""

BATCH_MIN_OPTIMISATIONS = 5_000
"""The batched weighted likelihood bootstrap runs when data sets x draws reaches this; below it,
compiling the JAX program costs more than the optimisations one after another."""

LANE_DATA_BUDGET = 2048
"""Numbers of data per core in one chunk of the batched program's lanes: wide chunks pay while a
lane's own arithmetic is small (the coin), and not when each lane is a regression over hundreds of rows."""

MAX_LANES_PER_DEVICE = 128


def available_cores() -> int:
    """CPU cores this process may use.

    The cores of the process's CPU affinity where the platform has one, else ``os.cpu_count()``
    (PyMC's own default halves the count to guess at SMT).

    Returns
    -------
    int
        At least 1.

    Examples
    --------
    >>> from models.sampling.dispatch import available_cores
    >>> available_cores() >= 1
    True
    """
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def is_installed(backend: str) -> bool:
    """Whether the packages ``backend`` needs can be imported (without importing them).

    Parameters
    ----------
    backend : {"pymc", "numpyro", "nutpie"}

    Returns
    -------
    bool

    Raises
    ------
    KeyError
        For a name not in :data:`BACKENDS`.

    Examples
    --------
    >>> from models.sampling.dispatch import is_installed
    >>> is_installed("pymc")
    True
    """
    return all(importlib.util.find_spec(package) is not None for package in REQUIREMENTS[backend])


def installed() -> tuple[str, ...]:
    """The back ends usable here, in the order of :data:`BACKENDS`.

    Returns
    -------
    tuple of str
        ``"pymc"`` always, then ``"numpyro"`` and ``"nutpie"`` where installed.

    Examples
    --------
    >>> from models.sampling.dispatch import installed
    >>> installed()[0]
    'pymc'
    """
    return tuple(backend for backend in BACKENDS if is_installed(backend))


def batched_available() -> bool:
    """Whether JAX and NumPyro can be imported (the ``jax`` extra), which the batched engine needs.

    Returns
    -------
    bool

    Examples
    --------
    >>> from models.sampling.dispatch import batched_available, is_installed
    >>> batched_available() == is_installed("numpyro")
    True
    """
    return is_installed("numpyro")


def data_size(model: pm.Model) -> int:
    """How many numbers the model's data hold: its ``pm.Data`` and constant observed values.

    The cost of one log-density gradient grows with it (rows x features for a regression; logged
    steps for the policy model, or (state, action) cells once collapsed).

    Parameters
    ----------
    model : pymc.Model

    Returns
    -------
    int

    Examples
    --------
    >>> import models
    >>> from models.sampling.dispatch import data_size
    >>> data_size(models.coin.build_model([1, 0, 1, 1]))   # flips, weights, the prior's a and b
    10
    """
    size = sum(int(np.size(data.get_value())) for data in model.data_vars)
    constants = [model.rvs_to_values[rv] for rv in model.observed_RVs]
    return size + sum(int(np.size(value.data)) for value in constants if isinstance(value, Constant))


def iteration_cost(model: pm.Model) -> float:
    """The cost of one NUTS iteration of ``model`` in PyMC, in units of a tiny model's.

    ``1 + data_size(model) / DATA_NUMBERS_PER_OVERHEAD``: PyMC's fixed Python overhead plus the part
    that grows with the data (:data:`DATA_NUMBERS_PER_OVERHEAD`).

    Parameters
    ----------
    model : pymc.Model

    Returns
    -------
    float

    Examples
    --------
    >>> import models
    >>> from models.sampling.dispatch import iteration_cost
    >>> iteration_cost(models.coin.build_model([1, 0, 1, 1]))
    1.01
    """
    return 1.0 + data_size(model) / DATA_NUMBERS_PER_OVERHEAD


def log_likelihood_bytes(model: pm.Model, chains: int, draws: int) -> int:
    """Memory of the ``log_likelihood`` and ``unweighted_log_likelihood`` groups, in bytes.

    In float64: 2 x observations x chains x draws x 8.

    Parameters
    ----------
    model : pymc.Model
    chains, draws : int

    Returns
    -------
    int

    Examples
    --------
    >>> import models
    >>> from models.sampling.dispatch import log_likelihood_bytes
    >>> log_likelihood_bytes(models.coin.build_model([1, 0, 1, 1]), chains=2, draws=200)
    25600
    """
    return 2 * compiled.observations(model) * chains * draws * 8


def _continuous(model: pm.Model) -> bool:
    return all(rv.type.dtype.startswith("float") for rv in model.free_RVs)


def resolve(sampler: str, model: pm.Model) -> str:
    """The back end that ``sampler`` means for ``model``.

    An explicit back end is returned as it is, after checking that it is installed. ``"auto"``
    returns ``"numpyro"`` when NumPyro and JAX are installed, every free variable is continuous and
    :func:`data_size` is at least :data:`AUTO_MIN_DATA_SIZE`; otherwise ``"pymc"``.

    Parameters
    ----------
    sampler : {"auto", "pymc", "numpyro", "nutpie"}
    model : pymc.Model

    Returns
    -------
    str
        A name of :data:`BACKENDS`.

    Raises
    ------
    InputError
        For an unknown sampler, or a back end that is not installed (saying what to install).

    Examples
    --------
    >>> import models
    >>> from models.sampling.dispatch import resolve
    >>> resolve("auto", models.coin.build_model([1, 0, 1, 1]))
    'pymc'
    """
    if sampler not in SAMPLERS:
        raise InputError(f"sampler must be one of {SAMPLERS}, got {sampler!r}")
    if sampler == "auto":
        large = data_size(model) >= AUTO_MIN_DATA_SIZE
        return "numpyro" if large and _continuous(model) and is_installed("numpyro") else "pymc"
    if not is_installed(sampler):
        packages = " and ".join(REQUIREMENTS[sampler])
        raise InputError(f"sampler {sampler!r} needs {packages}: pip install -e \".[{EXTRAS[sampler]}]\" "
                         f"in the repository (installed back ends: {', '.join(installed())})")
    return sampler


def cores_for(model: pm.Model, *, chains: int, tune: int, draws: int) -> int:
    """Processes for one fit's chains when ``cores`` is not given.

    Parameters
    ----------
    model : pymc.Model
    chains, tune, draws : int
        The fit's settings.

    Returns
    -------
    int
        1 for a short fit (chains x (tune + draws) x :func:`iteration_cost` under
        :data:`IN_PROCESS_ITERATIONS`), else one per chain up to :func:`available_cores`.

    Examples
    --------
    >>> import models
    >>> from models.sampling.dispatch import cores_for
    >>> cores_for(models.coin.build_model([1, 0, 1, 1]), chains=2, tune=200, draws=200)
    1
    """
    short = chains * (tune + draws) * iteration_cost(model) < IN_PROCESS_ITERATIONS
    return 1 if short else min(chains, available_cores())


def many_route(sampler: str, model: pm.Model, *, fits: int, chains: int, tune: int, draws: int) -> str:
    """``"batched"`` (one JAX program for every fit) or the back end that runs the fits one by one.

    ``"numpyro"`` always batches; ``"auto"`` batches when JAX is installed and the job's work, fits x
    chains x (tune + draws) x :func:`iteration_cost`, reaches :data:`BATCH_MIN_ITERATIONS`, and
    otherwise runs the fits on ``"pymc"``; ``"pymc"`` and ``"nutpie"`` are returned as they are.

    Parameters
    ----------
    sampler : {"auto", "pymc", "numpyro", "nutpie"}
    model : pymc.Model
    fits, chains, tune, draws : int
        The job: how many fits, and each fit's settings.

    Returns
    -------
    str
        ``"batched"``, ``"pymc"`` or ``"nutpie"``.

    Raises
    ------
    InputError
        For an unknown sampler, or ``"numpyro"`` without JAX and NumPyro.

    Examples
    --------
    >>> import models
    >>> from models.sampling.dispatch import many_route
    >>> many_route("auto", models.coin.build_model([1, 0, 1, 1]), fits=2, chains=2, tune=200, draws=200)
    'pymc'
    """
    if sampler not in SAMPLERS:
        raise InputError(f"sampler must be one of {SAMPLERS}, got {sampler!r}")
    if sampler == "numpyro" and not batched_available():
        raise InputError('sampler "numpyro" needs JAX and NumPyro: pip install -e ".[jax]"')
    work = fits * chains * (tune + draws) * iteration_cost(model)
    if sampler == "numpyro" or (sampler == "auto" and batched_available() and work >= BATCH_MIN_ITERATIONS):
        return "batched"
    return "pymc" if sampler == "auto" else sampler


def lanes_per_device(data_numbers: int) -> int:
    """Lanes per core in one chunk of the batched program.

    Parameters
    ----------
    data_numbers : int
        Numbers of data one lane holds (:func:`data_size`).

    Returns
    -------
    int
        A power of two holding about :data:`LANE_DATA_BUDGET` numbers of data, at least 1 and at most
        :data:`MAX_LANES_PER_DEVICE`.

    Examples
    --------
    >>> from models.sampling.dispatch import lanes_per_device
    >>> lanes_per_device(10), lanes_per_device(24), lanes_per_device(1800)
    (128, 64, 1)
    """
    lanes = 2 ** int(math.log2(max(1.0, LANE_DATA_BUDGET / max(data_numbers, 1))))
    return min(lanes, MAX_LANES_PER_DEVICE)
