"""Many fits of one model structure at once: NUTS compiled once, every data set and chain in one program.

Simulation studies, weight sweeps and schemes that share a model fit the same log density to many
data sets. Fitting them one at a time pays PyMC's Python overhead at every leapfrog step; here the
model's own log density (PyMC's JAX translation, with every ``pm.Data`` an input) is handed to
NumPyro's NUTS kernel (``numpyro.infer.hmc.hmc``), and one XLA program runs all (fit, chain) lanes:
``vmap`` over lanes within a device, the lanes split over the devices of a one-axis mesh
(:func:`~models.sampling.jax_model.over_lanes`: the CPU cores as XLA host devices here, GPUs where JAX
has them), so the same program runs on one core, several, or several GPUs.

Per lane it is the usual NUTS: the model's initial point jittered by U(-1, 1) in the unconstrained
space (redrawn while the log density is not finite, as PyMC does), ``tune`` warm-up iterations of
step-size and diagonal mass-matrix adaptation of its own (NumPyro's windowed schedule), then
``draws`` draws. Chains of one fit and different fits share nothing.

Fits that need deep trees do not distort the others: under ``vmap`` each NUTS iteration's tree is
built in a ``while_loop`` that runs until every lane's tree is done, and a lane whose tree is done
keeps its state unchanged (JAX selects, per lane, between the old and the new state). Each lane's
draws are therefore those it would have drawn alone; the deeper lanes only cost the others waiting
time. Lanes run in chunks of ``lanes_per_device`` per core, so that one hard fit holds up a chunk,
not the batch. Wide chunks pay off only while a lane's own arithmetic is small: by default a chunk
holds about :data:`~models.sampling.dispatch.LANE_DATA_BUDGET` numbers of data per core (the coin:
64 lanes; 12 policy cells: 32; a 300-row logistic regression: 1).

Compilation: one program per model structure, data shapes and sampler settings (tracing, then XLA;
``docs/performance.md`` has what it costs). XLA's output is cached on disk (``WMLE_JAX_CACHE``,
default ``~/.cache/wmle/jax``), so later processes skip that part.

The log density is the model's, Jacobian included: the same target as ``pm.sample``. Draws differ from
PyMC's (another random stream, another warm-up schedule), not in distribution.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import arviz as az
import numpy as np
import pymc as pm

from models._graph import check_model, data_kept
from models._validate import check_count, check_open_unit
from models.diagnostics import diagnose_draws
from models.errors import InputError
from models.sampling import dispatch
from models.sampling import hmc as jittered_hmc
from models.sampling import idata as idata_builder
from models.sampling.jax_model import JaxModel, device_count, jaxified, over_lanes

__all__ = ["KERNELS", "BatchResult", "BatchedNUTS", "resolve_datasets"]

JITTER_RETRIES = 10
KERNELS = ("nuts", "jittered_hmc")


def resolve_datasets(model: pm.Model, datasets) -> list[dict]:
    """Each data set completed with the model's current values of the names it leaves out.

    The model's values are read once, before any data set is set: ``{}`` is the model's data as it
    is now.

    Parameters
    ----------
    model : pymc.Model
    datasets : iterable of dict
        ``pm.Data`` name -> values.

    Returns
    -------
    list of dict
        One per data set, naming every ``pm.Data`` of the model.

    Raises
    ------
    InputError
        When a data set names something that is not ``pm.Data`` of the model.

    Examples
    --------
    >>> import numpy as np, models
    >>> from models.sampling.batched import resolve_datasets
    >>> model = models.coin.build_model([1, 0, 1, 1])
    >>> first, second = resolve_datasets(model, [{}, {"weights": np.full(4, 2.0)}])
    >>> sorted(first), second["weights"], second["flips"].tolist()
    (['flips', 'prior_a', 'prior_b', 'weights'], array([2., 2., 2., 2.]), [1, 0, 1, 1])
    """
    current = {d.name: np.asarray(d.get_value()) for d in model.data_vars}
    datasets = [dict(d) for d in datasets]
    for index, data in enumerate(datasets):
        unknown = set(data) - set(current)
        if unknown:
            raise InputError(f"data set {index} names {sorted(unknown)}, which are not pm.Data of the model")
    return [{**current, **data} for data in datasets]


@dataclass(frozen=True)
class BatchResult:
    """Draws of a batch of fits of one model (what :func:`models.sample_many` returns).

    ``len(result)`` is the number of fits.

    Attributes
    ----------
    model : pymc.Model
        The model fitted.
    posterior : dict
        Every free variable and deterministic -> an array ``(fits, chains, draws, *shape)``.
    stats : dict
        ``diverging``, ``energy``, ``tree_depth``, ``n_steps``, ``step_size`` and
        ``acceptance_rate`` -> (fits, chains, draws) (those the back end records, when the fits ran
        one by one).
    diagnostics : list of Diagnostics
        One per fit.
    data : list of dict
        The ``pm.Data`` values of each fit.
    seeds : list of int
        One per fit.
    settings : dict
        ``draws``, ``tune``, ``chains``, ``target_accept`` (and, batched, ``max_tree_depth``).
    sampler : str
        The back end that made the draws.

    Examples
    --------
    >>> import numpy as np, models
    >>> model = models.coin.build_model([1, 0, 1, 1])
    >>> fits = models.sample_many(model, [{}, {"weights": np.full(4, 10.0)}], random_seeds=[1, 2],
    ...                           draws=200, tune=200, chains=2, sampler="pymc")
    >>> len(fits), fits.sampler, fits.draws(1)["p"].shape
    (2, 'pymc', (2, 200))
    >>> fits.idata_of(1).constant_data["weights"].values
    array([10., 10., 10., 10.])
    """

    model: pm.Model
    posterior: dict
    stats: dict
    diagnostics: list
    data: list
    seeds: list
    settings: dict
    sampler: str

    def __len__(self) -> int:
        return len(self.seeds)

    def draws(self, index: int) -> dict[str, np.ndarray]:
        """Fit ``index``'s draws.

        Parameters
        ----------
        index : int
            The fit.

        Returns
        -------
        dict
            Name -> ``(chains, draws, *shape)``, per variable.
        """
        return {name: values[index] for name, values in self.posterior.items()}

    def idata_of(self, index: int, *, log_likelihood: bool = True) -> az.InferenceData:
        """Fit ``index`` as ``InferenceData``, with the groups ``inference.sample`` gives.

        The model keeps its own data (the fit's are set only while its groups are built).

        Parameters
        ----------
        index : int
            The fit.
        log_likelihood : bool, default True
            Add the pointwise log-likelihood groups.

        Returns
        -------
        arviz.InferenceData
            ``posterior`` with the model's dims, ``sample_stats``, ``log_likelihood`` (pointwise
            weighted) and ``unweighted_log_likelihood`` (unless ``log_likelihood=False``),
            ``observed_data``, ``constant_data``, and the fit's settings in ``attrs``.
        """
        model = self.model
        with data_kept(model):
            pm.set_data(self.data[index], model=model)
            return idata_builder.from_draws(
                model, self.draws(index), sample_stats={k: v[index] for k, v in self.stats.items()},
                log_likelihood=log_likelihood,
                attrs={"method": "nuts", "sampler": self.sampler, "random_seed": self.seeds[index],
                       **self.settings})


class BatchedNUTS(JaxModel):
    """NUTS for one model structure and many data sets, compiled once (see the module docstring).

    ``model``'s ``pm.Data`` are the inputs: a data set gives new values for some of them (shapes as
    the model's), the others keep the model's current values. Call with the data sets and one seed
    per fit; every fit gets ``chains`` chains of ``tune`` + ``draws`` iterations. The engine holds
    the model by a weak reference: keep the model while using it.

    Parameters
    ----------
    model : pymc.Model
        The structure, with continuous free variables.
    draws, tune, chains : int, default 1000, 1000, 4
        Draws kept and warm-up iterations per chain, and chains per fit.
    target_accept : float, default 0.8
        NUTS's target acceptance rate.
    max_tree_depth : int, default 10
        NUTS's largest tree depth; for ``kernel="jittered_hmc"`` the longest trajectory is
        ``2**max_tree_depth - 1`` leapfrog steps, as NUTS's.
    lanes_per_device : int, optional
        Lanes per core in one chunk; default :func:`models.sampling.dispatch.lanes_per_device` of the
        model's data.
    kernel : {"nuts", "jittered_hmc"}, default "nuts"
        NumPyro's NUTS, or jittered HMC with Stan's warm-up (:mod:`models.sampling.hmc`): no tree to
        build, so cheaper per draw on near-Gaussian posteriors (GLMs), less robust on funnels.

    Raises
    ------
    InputError
        Without JAX and NumPyro, for discrete free variables, or settings out of range.

    Examples
    --------
    >>> import numpy as np, models
    >>> from models.sampling.batched import BatchedNUTS
    >>> model = models.coin.build_model([1, 0, 1, 1])
    >>> engine = BatchedNUTS(model, draws=200, tune=200, chains=2)  # doctest: +SKIP
    >>> fits = engine([{}, {"weights": np.full(4, 10.0)}], [1, 2])  # doctest: +SKIP
    >>> fits.posterior["p"].shape  # doctest: +SKIP
    (2, 2, 200)
    """

    def __init__(self, model: pm.Model, *, draws: int = 1000, tune: int = 1000, chains: int = 4,
                 target_accept: float = 0.8, max_tree_depth: int = 10, lanes_per_device: int | None = None,
                 kernel: str = "nuts"):
        if not dispatch.batched_available():
            raise InputError('batched NUTS needs JAX and NumPyro: pip install -e ".[jax]"')
        if check_model(model).discrete_value_vars:
            raise InputError("batched NUTS needs continuous free variables")
        self.draws, self.tune = check_count(draws, "draws", 1), check_count(tune, "tune", 0)
        self.chains = check_count(chains, "chains", 1)
        self.max_tree_depth = check_count(max_tree_depth, "max_tree_depth", 1)
        if kernel not in KERNELS:
            raise InputError(f"kernel must be one of {KERNELS}, got {kernel!r}")
        self.kernel = kernel
        data_numbers = sum(int(np.size(d.get_value())) for d in model.data_vars)
        if lanes_per_device is None:
            lanes_per_device = dispatch.lanes_per_device(data_numbers)
        self.lanes_per_device = check_count(lanes_per_device, "lanes_per_device", 1)
        self.target_accept = check_open_unit(target_accept, "target_accept")
        super().__init__(model)
        self._logp = jaxified(model, [model.logp()], self.data_vars)
        self._programs: dict = {}

    # ------------------------------------------------------------------ the program

    def _log_density(self, z, data):
        return self._logp(*self._unravel(z), *data)[0]

    def _program(self, lanes: int):
        """The compiled program for ``lanes`` lanes per device: (data, keys, starts) -> draws, stats."""
        if lanes in self._programs:
            return self._programs[lanes]
        jax = self._jax
        from numpyro.infer.hmc import hmc

        def potential(*data):
            return lambda z: -self._log_density(z, data)

        init_kernel, sample_kernel = hmc(potential_fn_gen=potential, algo="NUTS")
        tune, draws = self.tune, self.draws

        def one_lane_hmc(data, key, z0):
            z, stats = jittered_hmc.run_lane(jax, lambda z: self._log_density(z, data), z0, key, tune=tune,
                                             draws=draws, target_accept=self.target_accept,
                                             max_steps=2**self.max_tree_depth - 1)
            values = jax.vmap(lambda zi: self._outputs(*self._unravel(zi), *data))(z)
            return values, list(stats)

        def one_lane(data, key, z0):
            state = init_kernel(z0, tune, model_args=data, rng_key=key, target_accept_prob=self.target_accept,
                                max_tree_depth=self.max_tree_depth)

            def step(state, _):
                state = sample_kernel(state, model_args=data)
                return state, (state.z, state.diverging, state.energy, state.num_steps,
                               state.adapt_state.step_size, state.accept_prob)

            _, out = jax.lax.scan(step, state, None, length=tune + draws)
            z, *stats = (x[tune:] for x in out)
            values = jax.vmap(lambda zi: self._outputs(*self._unravel(zi), *data))(z)
            return values, stats

        program = over_lanes(jax, one_lane if self.kernel == "nuts" else one_lane_hmc)
        self._programs[lanes] = program
        return program

    # ------------------------------------------------------------------ running

    def _stack(self, datasets) -> list[np.ndarray]:
        """Per data input, the values of every fit stacked on a new first axis."""
        current = {d.name: np.asarray(d.get_value()) for d in self.data_vars}
        stacked = []
        for name, var in zip(self.names, self.data_vars):
            values = []
            for i, dataset in enumerate(datasets):
                value = np.asarray(dataset.get(name, current[name]), dtype=var.dtype)
                if value.shape != current[name].shape:
                    raise InputError(f"data set {i}: {name} has shape {value.shape}, the model's has "
                                     f"{current[name].shape}; a batch shares one structure")
                values.append(value)
            stacked.append(np.stack(values))
        return stacked

    def _starts(self, data: list[np.ndarray], seeds: list[int]) -> np.ndarray:
        """Jittered starts (fits, chains, dim), redrawn where the log density is not finite."""
        jax = self._jax
        log_density = jax.jit(jax.vmap(jax.vmap(self._log_density, in_axes=(0, None)), in_axes=(0, 0)))
        rngs = [np.random.default_rng([seed, 1]) for seed in seeds]
        starts = np.stack([self.x0 + rng.uniform(-1, 1, (self.chains, self.x0.size)) for rng in rngs])
        for _ in range(JITTER_RETRIES):
            bad = ~np.isfinite(np.asarray(log_density(starts, tuple(data))))
            if not bad.any():
                return starts
            for fit, chain in zip(*np.nonzero(bad)):
                starts[fit, chain] = self.x0 + rngs[fit].uniform(-1, 1, self.x0.size)
        raise InputError(f"{int(bad.sum())} chain start(s) have a non-finite log density after "
                         f"{JITTER_RETRIES} jitters: check the data and the model's initial point")

    def __call__(self, datasets, random_seeds, *, progress=None) -> BatchResult:
        """Fit every data set with its seed.

        Parameters
        ----------
        datasets : iterable of dict
            ``pm.Data`` name -> values (shapes as the model's); names left out keep the model's values.
        random_seeds : iterable of int
            One per data set.
        progress : callable, optional
            ``progress(done, total)``, called after each chunk of lanes with the fits done so far.

        Returns
        -------
        BatchResult

        Raises
        ------
        InputError
            For not one seed per data set, a name that is not ``pm.Data`` of the model, a shape other
            than the model's, or chain starts whose log density stays non-finite after jittering.
        ReferenceError
            When the model no longer exists.
        """
        model = self.model   # fails now, not after sampling, if the model was dropped
        datasets = [dict(d) for d in datasets]
        seeds = [check_count(s, "random_seed", 0) for s in random_seeds]
        if not datasets or len(datasets) != len(seeds):
            raise InputError(f"need one seed per data set, got {len(datasets)} data sets and "
                             f"{len(seeds)} seeds")
        unknown = {k for d in datasets for k in d} - set(self.names)
        if unknown:
            raise InputError(f"data sets name {sorted(unknown)}, which are not pm.Data of the model")
        jax, fits, chains = self._jax, len(datasets), self.chains
        data = self._stack(datasets)
        starts = self._starts(data, seeds).reshape(fits * chains, -1)
        keys = np.stack([np.asarray(jax.random.split(jax.random.PRNGKey(seed), chains)) for seed in seeds])
        keys = keys.reshape(fits * chains, -1)
        lane_fit = np.repeat(np.arange(fits), chains)
        devices = device_count(jax)
        # Lanes per device: a power of two up to lanes_per_device, so few programs serve all batch sizes.
        needed = max(1, -(-fits * chains // devices))
        per_device = min(self.lanes_per_device, 2 ** math.ceil(math.log2(needed)))
        chunk = devices * per_device
        program = self._program(per_device)
        pieces = []
        for first in range(0, fits * chains, chunk):
            lanes = np.arange(first, first + chunk) % (fits * chains)   # the last chunk wraps round: padding
            values, stats = program(tuple(d[lane_fit[lanes]] for d in data), keys[lanes], starts[lanes])
            piece = [np.asarray(v) for v in [*values, *stats]]
            kept = min(chunk, fits * chains - first)
            pieces.append([p[:kept] for p in piece])
            if progress is not None:
                progress((first + kept) // chains, fits)
        outputs = [np.concatenate(parts) for parts in zip(*pieces)]   # once: not a copy per chunk
        by_fit = [o.reshape(fits, chains, *o.shape[1:]) for o in outputs]
        posterior = dict(zip(self.output_names, by_fit[:len(self.output_names)]))
        diverging, energy, n_steps, step_size, accept = by_fit[len(self.output_names):]
        stats = {"diverging": diverging.astype(bool), "energy": energy, "n_steps": n_steps,
                 "step_size": step_size, "acceptance_rate": accept}
        if self.kernel == "nuts":
            stats["tree_depth"] = np.floor(np.log2(n_steps)).astype(int) + 1
        free = [rv.name for rv in model.free_RVs]
        diagnostics = diagnose_draws({name: posterior[name] for name in free}, stats["diverging"], energy)
        settings = {"draws": self.draws, "tune": self.tune, "chains": chains,
                    "target_accept": self.target_accept, "max_tree_depth": self.max_tree_depth,
                    "kernel": self.kernel}
        per_fit = [dict(zip(self.names, (d[i] for d in data))) for i in range(fits)]
        sampler = "numpyro (batched)" if self.kernel == "nuts" else "jittered HMC (batched)"
        return BatchResult(model, posterior, stats, diagnostics, per_fit, seeds, settings, sampler)


