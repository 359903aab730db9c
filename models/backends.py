"""NUTS back ends behind :func:`models.inference.sample`, and the rule that picks one.

Three implementations of the same sampler (NUTS with a diagonal mass matrix adapted during tuning),
all run through ``pm.sample`` on the model's own log density:

* ``"pymc"``: PyMC's sampler on PyTensor's C code (always installed). Compiled code is cached in
  ``~/.pytensor``, so a model structure seen before starts within a second or two. Chains run in
  forked processes, one per core, except in a process where JAX has run (forking it can deadlock):
  there they run one after another (``attrs["cores"]`` = 1).
* ``"numpyro"``: PyMC's JAX translation of the log density, sampled by NumPyro (the ``jax`` extra:
  ``pip install -e ".[jax]"``). JAX compiles the whole NUTS loop into one program: seconds of
  compilation on every call (nothing is cached across processes), then the fastest gradients on large
  data (the 100k-row logistic model: 47 s against PyMC's 71 s on 2 cores, README "Speed"). Chains
  run in parallel on host "devices": importing ``pymc.sampling.jax`` sets
  ``XLA_FLAGS=--xla_force_host_platform_device_count=100`` (keeping the user's other XLA flags), which
  takes effect unless JAX's CPU back end was initialised earlier in the process; with fewer devices
  than chains, chains run one after another (recorded in ``attrs["chain_method"]``).
* ``"nutpie"``: nutpie's Rust sampler on a Numba translation of the log density
  (the ``nutpie`` extra: ``pip install -e ".[nutpie]"``).

Whatever the back end, the ``InferenceData`` has the same groups: ``posterior`` (the model's
variables and deterministics, not the transformed ones), ``sample_stats`` (with ``diverging`` and
``energy``), ``log_likelihood`` (pointwise *weighted*: the model's own observed terms evaluated at
every draw, in blocks of draws by one vectorised function compiled once per model,
:func:`models.compiled.pointwise_log_likelihood`), ``observed_data`` and ``constant_data``.

PyMC's back end runs ``pm.sample`` with the NUTS step its own initialisation would build, on the log
density and gradient compiled once per model (:mod:`models.compiled`): the same draws, seed for seed,
without compiling again when the same model is fitted after ``pm.set_data``.

``"auto"`` (see :func:`resolve`) takes NumPyro for models whose data hold at least
:data:`AUTO_MIN_DATA_SIZE` numbers, when NumPyro and JAX are installed, and PyMC otherwise.
"""

from __future__ import annotations

import importlib.util
import sys
import warnings

import arviz as az
import numpy as np
import pymc as pm
import pytensor.tensor as pt
import xarray as xr
from pytensor.graph.basic import Constant

from models import compiled
from models.errors import InputError

BACKENDS = ("pymc", "numpyro", "nutpie")
SAMPLERS = ("auto", *BACKENDS)

# Below this many numbers in the model's data, PyMC's cached C code beats JAX's per-call compilation;
# above it NumPyro's cheaper gradients win. Measured with ``python -m benchmarks.samplers`` (weighted
# logistic regression, 5 features, 2 chains x 1000 + 1000, 2 cores): see the README's "Speed".
AUTO_MIN_DATA_SIZE = 50_000

# ``inference.sample`` stores the pointwise log-likelihood by default only up to this size: it has one
# float64 per observation and draw (1e6 rows x 2 chains x 1000 draws: 15 GiB).
LOG_LIKELIHOOD_MAX_GIB = 2.0

_REQUIREMENTS = {"pymc": ("pymc",), "numpyro": ("numpyro", "jax"), "nutpie": ("nutpie", "numba")}
_EXTRAS = {"numpyro": "jax", "nutpie": "nutpie"}


def is_installed(backend: str) -> bool:
    """Whether the packages ``backend`` needs can be imported (without importing them)."""
    return all(importlib.util.find_spec(package) is not None for package in _REQUIREMENTS[backend])


def installed() -> tuple[str, ...]:
    """The back ends usable here, in the order of :data:`BACKENDS` (``"pymc"`` always)."""
    return tuple(backend for backend in BACKENDS if is_installed(backend))


def log_likelihood_bytes(model: pm.Model, chains: int, draws: int) -> int:
    """Memory the ``log_likelihood`` and ``unweighted_log_likelihood`` groups take in float64:
    2 x observations x chains x draws x 8."""
    return 2 * compiled.observations(model) * chains * draws * 8


def data_size(model: pm.Model) -> int:
    """How many numbers the model's data hold: its ``pm.Data`` and constant observed values.

    The cost of one log-density gradient grows with it (e.g. rows x features for a regression;
    logged steps for the policy model, or (state, action) cells once collapsed).
    """
    size = sum(int(np.size(data.get_value())) for data in model.data_vars)
    constants = [model.rvs_to_values[rv] for rv in model.observed_RVs]
    return size + sum(int(np.size(value.data)) for value in constants if isinstance(value, Constant))


def _continuous(model: pm.Model) -> bool:
    return all(rv.type.dtype.startswith("float") for rv in model.free_RVs)


def resolve(sampler: str, model: pm.Model) -> str:
    """The back end that ``sampler`` means for ``model``.

    An explicit back end is returned as it is, after checking that it is installed (``InputError``
    saying what to install otherwise). ``"auto"`` returns ``"numpyro"`` when NumPyro and JAX are
    installed, every free variable is continuous and :func:`data_size` is at least
    :data:`AUTO_MIN_DATA_SIZE`; otherwise ``"pymc"``. Why: the cost of a fit is compilation plus
    (gradient evaluations x cost per gradient). JAX compiles for seconds on every call, PyTensor's C
    code is cached across runs, so small models (all the tests and analyses of this suite) stay on
    PyMC; the cost per gradient is what NumPyro cuts, and it grows with the data. The threshold is
    where the two measured wall times cross (README, "Speed").
    """
    if sampler not in SAMPLERS:
        raise InputError(f"sampler must be one of {SAMPLERS}, got {sampler!r}")
    if sampler == "auto":
        large = data_size(model) >= AUTO_MIN_DATA_SIZE
        return "numpyro" if large and _continuous(model) and is_installed("numpyro") else "pymc"
    if not is_installed(sampler):
        packages = " and ".join(_REQUIREMENTS[sampler])
        raise InputError(f"sampler {sampler!r} needs {packages}: pip install -e \".[{_EXTRAS[sampler]}]\" "
                         f"in the repository (installed back ends: {', '.join(installed())})")
    return sampler


def _jax_chain_method(chains: int) -> str:
    """"parallel" (one host device per chain) when JAX has enough devices, else "sequential"."""
    import jax  # reads XLA_FLAGS when its CPU back end first starts, not on import
    import pymc.sampling.jax  # noqa: F401  (sets XLA_FLAGS, see the module docstring)

    return "parallel" if jax.local_device_count() >= chains else "sequential"


def draw(model: pm.Model, backend: str, *, draws: int, tune: int, chains: int, cores: int,
         random_seed: int | None, progressbar: bool, target_accept: float,
         log_likelihood: bool = True) -> tuple[az.InferenceData, dict]:
    """NUTS draws from one back end with the groups listed in the module docstring
    (``log_likelihood`` only when asked for).

    Returns the draws and the settings worth recording (PyMC's ``cores``, NumPyro's ``chain_method``).
    """
    common = dict(draws=draws, tune=tune, chains=chains, random_seed=random_seed, progressbar=progressbar,
                  target_accept=target_accept, compute_convergence_checks=False, model=model)
    if backend == "pymc":
        if sys.modules.get("jax") is not None:
            # PyMC forks one process per chain, and forking a process in which JAX has run can deadlock
            # (JAX warns so): after a NumPyro fit in this process, the chains run here, one by one.
            cores = 1
        starts, step = compiled.nuts_step(model, chains=chains, random_seed=random_seed,
                                          target_accept=target_accept)
        common.pop("target_accept")
        # The starts as constants: PyMC maps unconstrained starts back symbolically, and its ZeroSum
        # transform cannot take a numpy array there.
        initvals = [{name: pt.constant(value) for name, value in start.items()} for start in starts]
        idata = pm.sample(cores=cores, step=step, initvals=initvals, trace=compiled.trace(model, starts[0]),
                          idata_kwargs={"log_likelihood": False}, **common)
        settings = {"cores": cores}
    elif backend == "numpyro":
        chain_method = _jax_chain_method(chains)
        idata = pm.sample(nuts_sampler="numpyro", idata_kwargs={"log_likelihood": False},
                          nuts_sampler_kwargs={"chain_method": chain_method}, **common)
        settings = {"chain_method": chain_method}
    elif backend == "nutpie":
        idata = pm.sample(nuts_sampler="nutpie", nuts_sampler_kwargs={"cores": cores, "save_warmup": False},
                          **common)
        # nutpie also stores the transformed (unconstrained) variables: keep what PyMC keeps.
        keep = [rv.name for rv in [*model.free_RVs, *model.deterministics]]
        idata.posterior = idata.posterior[keep]
        settings = {}
    else:
        raise InputError(f"unknown back end {backend!r}; expected one of {BACKENDS}")
    if log_likelihood:
        add_log_likelihood(idata, model)
    return idata, settings


def add_log_likelihood(idata: az.InferenceData, model: pm.Model) -> az.InferenceData:
    """Add the ``log_likelihood`` group, every observed term at every posterior draw with the observed
    variables' own dims (as ``pm.compute_log_likelihood`` names them), and beside it
    ``unweighted_log_likelihood``, the same terms with every weight 1 (``log p(y_i | theta)``, what
    :func:`models.loo.loo` needs). ``az.loo`` reads ``log_likelihood``: the terms the sampler's target
    sums.

    The unweighted terms are evaluated once; a weighted term (``models.likelihood``) is linear in its
    weights, so its pointwise values are ``w_i`` times the unweighted ones (0 where ``w_i = 0``, as
    the term itself gives), which halves the work at 1e5 rows and more.
    """
    from models.existence import value_of
    from models.loo import UNWEIGHTED_GROUP

    posterior = idata.posterior
    draws = {rv.name: posterior[rv.name].values for rv in model.free_RVs}
    unweighted = compiled.pointwise_log_likelihood(model, draws)
    groups = {"log_likelihood": {}, UNWEIGHTED_GROUP: {}}
    for rv in model.observed_RVs:
        array = unweighted[rv.name]
        marker = getattr(rv.tag, "weighted_term", None)
        weighted = array
        if marker is not None:
            weights = value_of(marker.weights, model)
            if weights is None:
                raise InputError(f"the weights of {rv.name!r} depend on random variables: weights are data")
            weights = np.broadcast_to(weights, array.shape[2:])
            weighted = np.where(weights == 0, 0.0, weights * array)
        dims = list(model.named_vars_to_dims.get(rv.name) or
                    [f"{rv.name}_dim_{i}" for i in range(array.ndim - 2)])
        coords = {"chain": posterior["chain"], "draw": posterior["draw"],
                  **{dim: np.asarray(model.coords[dim]) for dim in dims if model.coords.get(dim) is not None}}
        for group, values in (("log_likelihood", weighted), (UNWEIGHTED_GROUP, array)):
            groups[group][rv.name] = xr.DataArray(values, dims=["chain", "draw", *dims], coords=coords)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is not defined in the InferenceData scheme")
        idata.add_groups({name: xr.Dataset(variables) for name, variables in groups.items()})
    return idata
