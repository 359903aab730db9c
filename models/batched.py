"""Many fits of one model structure at once: NUTS compiled once, every data set and chain in one program.

Simulation studies, weight sweeps and schemes that share a model fit the same log density to many
data sets. Fitting them one at a time pays PyMC's Python overhead at every leapfrog step; here the
model's own log density (PyMC's JAX translation, with every ``pm.Data`` an input) is handed to
NumPyro's NUTS kernel (``numpyro.infer.hmc.hmc``), and one XLA program runs all (fit, chain) lanes:
``vmap`` over lanes, ``pmap`` over the CPU cores (as XLA host devices).

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
holds about :data:`LANE_DATA_BUDGET` numbers of data per core (the coin: 64 lanes; 12 policy cells:
32; a 300-row logistic regression: 1), measured on the 2-core machine, where a 300-row logistic
batch ran 1.4x faster with 2 lanes per core than with 128 and the coin 3.4x slower.

Compilation: one program per model structure, data shapes and sampler settings, a few seconds
(tracing, then XLA). XLA's output is cached on disk (``WMLE_JAX_CACHE``, default
``~/.cache/wmle/jax``), so later processes skip that part.

The log density is the model's, Jacobian included: the same target as ``pm.sample``. Draws differ from
PyMC's (another random stream, another warm-up schedule), not in distribution.
"""

from __future__ import annotations

import math
import os
import weakref
from dataclasses import dataclass
from pathlib import Path

import arviz as az
import numpy as np
import pymc as pm
import pytensor.tensor as pt
from pytensor.graph.replace import clone_replace

from models import compiled
from models.diagnostics import diagnose_draws
from models.errors import InputError

__all__ = ["BatchResult", "BatchedNUTS", "BatchedWLB", "available", "resolve_datasets"]

JITTER_RETRIES = 10
LANE_DATA_BUDGET = 2048   # numbers of data per core and chunk (see the module docstring)
MAX_LANES_PER_DEVICE = 128


def available() -> bool:
    """Whether JAX and NumPyro can be imported (the ``jax`` extra)."""
    import importlib.util

    return all(importlib.util.find_spec(name) is not None for name in ("jax", "numpyro"))


def resolve_datasets(model: pm.Model, datasets) -> list[dict]:
    """Each data set (``pm.Data`` name -> values) completed with the model's current values of the
    names it leaves out, read once before any is set: ``{}`` is the model's data as it is now."""
    current = {d.name: np.asarray(d.get_value()) for d in model.data_vars}
    datasets = [dict(d) for d in datasets]
    for index, data in enumerate(datasets):
        unknown = set(data) - set(current)
        if unknown:
            raise InputError(f"data set {index} names {sorted(unknown)}, which are not pm.Data of the model")
    return [{**current, **data} for data in datasets]


def _configure_jax(cores: int):
    """x64, one XLA host device per core (unless JAX has started already) and the on-disk cache."""
    import sys

    if "jax" not in sys.modules or not _jax_started():
        flags = [f for f in os.environ.get("XLA_FLAGS", "").split()
                 if not f.startswith("--xla_force_host_platform_device_count")]
        os.environ["XLA_FLAGS"] = " ".join([*flags, f"--xla_force_host_platform_device_count={cores}"])
    import jax

    jax.config.update("jax_enable_x64", True)
    cache = Path(os.environ.get("WMLE_JAX_CACHE", Path.home() / ".cache" / "wmle" / "jax"))
    cache.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(cache))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
    return jax


def _jax_started() -> bool:
    try:
        from jax._src import xla_bridge

        return bool(xla_bridge._backends)
    except (ImportError, AttributeError):
        return True


def _jaxified(model: pm.Model, outputs, data_vars):
    """``f(*value vars, *data) -> outputs`` in JAX, every ``pm.Data`` of the model an input."""
    from pymc.sampling.jax import get_jaxified_graph

    placeholders = [pt.tensor(f"{d.name}_input", dtype=d.dtype, shape=d.type.shape) for d in data_vars]
    replaced = clone_replace(list(outputs), replace=dict(zip(data_vars, placeholders)))
    return get_jaxified_graph(inputs=[*model.value_vars, *placeholders], outputs=replaced)


@dataclass(frozen=True)
class BatchResult:
    """Draws of a batch of fits of one model: ``posterior`` maps every free variable and deterministic
    to an array (fits, chains, draws, *shape); ``stats`` maps ``diverging``, ``energy``, ``tree_depth``,
    ``n_steps``, ``step_size`` and ``acceptance_rate`` to (fits, chains, draws); ``diagnostics`` has one
    ``Diagnostics`` per fit; ``data`` the ``pm.Data`` values of each fit; ``seeds``, ``settings`` and
    ``sampler`` what made them."""

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
        """Fit ``index``'s draws, (chains, draws, *shape) per variable."""
        return {name: values[index] for name, values in self.posterior.items()}

    def idata(self, index: int, *, log_likelihood: bool = True) -> az.InferenceData:
        """Fit ``index`` as ``InferenceData`` with the groups ``inference.sample`` gives (``posterior``
        with the model's dims, ``sample_stats``, ``log_likelihood`` (pointwise weighted, unless
        ``log_likelihood=False``), ``observed_data``, ``constant_data``) and its settings in ``attrs``.
        Leaves the model holding the fit's data (``pm.set_data``)."""
        from models import backends
        from models.calibrate import _posterior_dims

        model = self.model
        pm.set_data(self.data[index], model=model)
        posterior = self.draws(index)
        dims, coords = _posterior_dims(model, posterior)
        observed_data = {model.rvs_to_values[rv] for rv in model.observed_RVs}
        constant = {d.name: np.asarray(d.get_value()) for d in model.data_vars if d not in observed_data}
        observed = {rv.name: np.asarray(model.rvs_to_values[rv].eval()) for rv in model.observed_RVs}
        data_dims = {name: list(model.named_vars_to_dims[name]) for name in [*constant, *observed]
                     if name in model.named_vars_to_dims}
        for names in data_dims.values():
            coords.update({d: np.asarray(model.coords[d]) for d in names if model.coords.get(d) is not None})
        idata = az.from_dict(posterior=posterior, sample_stats={k: v[index] for k, v in self.stats.items()},
                             observed_data=observed, constant_data=constant, dims={**dims, **data_dims},
                             coords=coords)
        if log_likelihood:
            backends.add_log_likelihood(idata, model)
        idata.attrs.update(method="nuts", sampler=self.sampler, random_seed=self.seeds[index],
                           **self.settings)
        return idata


class _JaxModel:
    """What both batched programs need of a model: JAX on, its ``pm.Data`` as inputs, the flat
    unconstrained vector (``x0``: the initial point) and its split into value variables, and the free
    variables and deterministics as a JAX function of it."""

    def __init__(self, model: pm.Model):
        from models.inference import available_cores

        # No strong reference: the engines are cached per model in weak-keyed dictionaries
        # (models.inference, models.calibrate), whose values must not keep their keys alive.
        self._model = weakref.ref(model)
        self._jax = _configure_jax(available_cores())
        self.data_vars = list(model.data_vars)
        self.names = [d.name for d in self.data_vars]
        start = compiled.initial_point(model)
        self.shapes = [tuple(np.shape(start[v.name])) for v in model.value_vars]
        self.sizes = [int(np.prod(s)) for s in self.shapes]
        self.x0 = np.concatenate([np.ravel(start[v.name]) for v in model.value_vars]).astype(float)
        self.output_names = [v.name for v in [*model.free_RVs, *model.deterministics]]
        outputs = model.replace_rvs_by_values([*model.free_RVs, *model.deterministics])
        self._outputs = _jaxified(model, outputs, self.data_vars)

    @property
    def model(self) -> pm.Model:
        model = self._model()
        if model is None:
            raise ReferenceError("the engine's model no longer exists: an engine holds its model weakly, "
                                 "keep a reference to the model while using the engine")
        return model

    def _unravel(self, z):
        parts, offset = [], 0
        for shape, size in zip(self.shapes, self.sizes):
            parts.append(z[offset:offset + size].reshape(shape))
            offset += size
        return parts


class BatchedNUTS(_JaxModel):
    """NUTS for one model structure and many data sets, compiled once (see the module docstring).

    ``model``'s ``pm.Data`` are the inputs: a data set gives new values for some of them (shapes as
    the model's), the others keep the model's current values. Call with the data sets and one seed
    per fit; every fit gets ``chains`` chains of ``tune`` + ``draws`` iterations.
    """

    def __init__(self, model: pm.Model, *, draws: int = 1000, tune: int = 1000, chains: int = 4,
                 target_accept: float = 0.8, max_tree_depth: int = 10, lanes_per_device: int | None = None):
        from models.inference import _check_count, _check_model

        if not available():
            raise InputError('batched NUTS needs JAX and NumPyro: pip install -e ".[jax]"')
        if _check_model(model).discrete_value_vars:
            raise InputError("batched NUTS needs continuous free variables")
        self.draws, self.tune = _check_count("draws", draws, 1), _check_count("tune", tune, 0)
        self.chains = _check_count("chains", chains, 1)
        self.max_tree_depth = _check_count("max_tree_depth", max_tree_depth, 1)
        data_numbers = sum(int(np.size(d.get_value())) for d in model.data_vars)
        if lanes_per_device is None:
            lanes_per_device = 2 ** int(math.log2(max(1.0, LANE_DATA_BUDGET / max(data_numbers, 1))))
            lanes_per_device = min(lanes_per_device, MAX_LANES_PER_DEVICE)
        self.lanes_per_device = _check_count("lanes_per_device", lanes_per_device, 1)
        if isinstance(target_accept, bool) or not 0 < float(target_accept) < 1:
            raise InputError(f"target_accept must be a number in (0, 1), got {target_accept!r}")
        self.target_accept = float(target_accept)
        super().__init__(model)
        self._logp = _jaxified(model, [model.logp()], self.data_vars)
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

        program = jax.pmap(jax.vmap(one_lane))
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
        """Fit every data set (a dict ``pm.Data`` name -> values) with its seed; see :class:`BatchResult`.
        ``progress(done, total)`` is called after each chunk of lanes with the fits done so far."""
        from models.inference import _check_count

        model = self.model   # fails now, not after sampling, if the model was dropped
        datasets = [dict(d) for d in datasets]
        seeds = [_check_count("random_seed", s, 0) for s in random_seeds]
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
        devices = jax.local_device_count()
        # Lanes per device: a power of two up to lanes_per_device, so few programs serve all batch sizes.
        needed = max(1, -(-fits * chains // devices))
        per_device = min(self.lanes_per_device, 2 ** math.ceil(math.log2(needed)))
        chunk = devices * per_device
        program = self._program(per_device)
        outputs = None
        for first in range(0, fits * chains, chunk):
            lanes = np.arange(first, first + chunk) % (fits * chains)   # the last chunk wraps round: padding
            shard = lambda x: np.reshape(x, (devices, per_device, *np.shape(x)[1:]))  # noqa: E731
            values, stats = program(tuple(shard(d[lane_fit[lanes]]) for d in data), shard(keys[lanes]),
                                    shard(starts[lanes]))
            piece = [np.asarray(v).reshape(chunk, *np.shape(v)[2:]) for v in [*values, *stats]]
            kept = min(chunk, fits * chains - first)
            piece = [p[:kept] for p in piece]
            outputs = piece if outputs is None else [np.concatenate([o, p]) for o, p in zip(outputs, piece)]
            if progress is not None:
                progress((first + kept) // chains, fits)
        by_fit = [o.reshape(fits, chains, *o.shape[1:]) for o in outputs]
        posterior = dict(zip(self.output_names, by_fit[:len(self.output_names)]))
        diverging, energy, n_steps, step_size, accept = by_fit[len(self.output_names):]
        stats = {"diverging": diverging.astype(bool), "energy": energy, "n_steps": n_steps,
                 "tree_depth": np.floor(np.log2(n_steps)).astype(int) + 1, "step_size": step_size,
                 "acceptance_rate": accept}
        free = [rv.name for rv in model.free_RVs]
        diagnostics = diagnose_draws({name: posterior[name] for name in free}, stats["diverging"], energy)
        settings = {"draws": self.draws, "tune": self.tune, "chains": chains,
                    "target_accept": self.target_accept, "max_tree_depth": self.max_tree_depth}
        per_fit = [dict(zip(self.names, (d[i] for d in data))) for i in range(fits)]
        return BatchResult(model, posterior, stats, diagnostics, per_fit, seeds, settings,
                           "numpyro (batched)")


class BatchedWLB(_JaxModel):
    """Newton & Raftery's weighted likelihood bootstrap for many data sets of one model, every draw's
    optimisation at once (the batched counterpart of ``calibrate.WeightedLikelihoodBootstrap``).

    A draw maximises ``sum_i g_i w_i log p(y_i | theta)`` with ``g = n e / sum e``, ``e ~ Exp(1)``, in
    the unconstrained space. Here each data set's weighted log-likelihood (the model's likelihood
    terms, priors dropped, every ``pm.Data`` an input) is maximised by damped Newton (the step halved
    until the objective rises, the Hessian shifted where it is not negative definite), first at the
    data set's own weights (its WMLE, from the model's initial point), then at every draw's (from
    that WMLE), all draws of all data sets in one program. A draw counts as converged when its Newton
    decrement is below ``tolerance`` times the objective's size; otherwise it is NaN (failed), never a
    number. The multipliers come from ``np.random.default_rng(seed).standard_exponential((draws, n))``,
    the stream the one-at-a-time WLB draws from, so both give the same draws to optimiser tolerance.
    The WMLE must exist (a separated data set has none): the caller decides that, exactly.
    """

    def __init__(self, model: pm.Model, *, iterations: int = 40, tolerance: float = 1e-12,
                 datasets_per_call: int = 32):
        from models.inference import _check_count, _check_model

        if not available():
            raise InputError('the batched WLB needs JAX: pip install -e ".[jax]"')
        _check_model(model)
        self.iterations = _check_count("iterations", iterations, 1)
        self.tolerance = float(tolerance)
        self.datasets_per_call = _check_count("datasets_per_call", datasets_per_call, 1)
        if "weights" not in {d.name for d in model.data_vars}:
            raise InputError("the model keeps no weights in pm.Data('weights'): build it with a "
                             "models.* builder")
        super().__init__(model)
        likelihood = model.logp(vars=[*model.observed_RVs, *model.potentials], jacobian=False)
        self._likelihood = _jaxified(model, [likelihood], self.data_vars)
        self._program = None

    def _build(self):
        jax = self._jax
        jnp = jax.numpy
        weight_index = self.names.index("weights")

        def objective(z, data):
            return self._likelihood(*self._unravel(z), *data)[0]

        gradient, hessian = jax.grad(objective), jax.hessian(objective)

        def ascent(z, data):
            """Gradient, Newton direction (the negative Hessian's Cholesky factor, shifted by its
            diagonal's size until it exists) and Newton decrement at z."""
            g, h = gradient(z, data), -hessian(z, data)
            scale = 1.0 + jnp.abs(jnp.diag(h)).max()

            def factor(shift):
                return jnp.linalg.cholesky(h + shift * scale * jnp.eye(z.size))

            def failed(state):
                shift, chol = state
                return jnp.isnan(chol).any() & (shift < 1e8)

            _, chol = jax.lax.while_loop(failed, lambda s: (s[0] * 10 + 1e-8, factor(s[0] * 10 + 1e-8)),
                                         (0.0, factor(0.0)))
            direction = jax.scipy.linalg.cho_solve((chol, True), g)
            return direction, g @ direction

        def done(value, decrement):
            return decrement <= self.tolerance * jnp.maximum(1.0, jnp.abs(value))

        def newton(z, data):
            def unfinished(state):
                i, _, value, _, decrement = state
                return (i < self.iterations) & ~done(value, decrement)

            def step(state):
                i, z, value, direction, _ = state

                def shorter(line):
                    t, _ = line
                    return t / 2.0, objective(z + (t / 2.0) * direction, data)

                def worse(line):
                    t, candidate = line
                    return (t > 2.0**-30) & ~(candidate >= value)

                t, candidate = jax.lax.while_loop(worse, shorter, (1.0, objective(z + direction, data)))
                moved = candidate >= value
                z = jnp.where(moved, z + t * direction, z)
                return (i + 1, z, jnp.where(moved, candidate, value), *ascent(z, data))

            state = (0, z, objective(z, data), *ascent(z, data))
            _, z, value, _, decrement = jax.lax.while_loop(unfinished, step, state)
            converged = jnp.isfinite(value) & done(value, decrement)
            return z, converged, self._outputs(*self._unravel(z), *data)

        def one_dataset(data, multipliers):
            z_hat, fitted, _ = newton(jnp.asarray(self.x0), data)

            def one_draw(g):
                reweighted = list(data)
                reweighted[weight_index] = data[weight_index] * g
                return newton(z_hat, tuple(reweighted))

            _, converged, outputs = jax.vmap(one_draw)(multipliers)
            return fitted, converged, outputs

        self._program = jax.pmap(jax.vmap(one_dataset))   # data sets over the cores, draws within
        return self._program

    def __call__(self, datasets, draws: int, random_seeds) -> tuple[dict, np.ndarray, np.ndarray]:
        """``(posterior, failed, fitted)``: per output variable the draws (data sets, draws, *shape),
        NaN where a draw failed; the failed draws per data set; and whether each data set's own WMLE
        converged (where it did not, all its draws are NaN)."""
        from models.inference import _check_count

        draws = _check_count("draws", draws, 1)
        seeds = [_check_count("random_seed", s, 0) for s in random_seeds]
        datasets = [dict(d) for d in datasets]
        if len(seeds) != len(datasets):
            raise InputError(f"need one seed per data set, got {len(datasets)} and {len(seeds)}")
        program = self._program or self._build()
        current = {d.name: np.asarray(d.get_value()) for d in self.data_vars}
        n = current["weights"].size
        devices = self._jax.local_device_count()
        per_call = devices * -(-self.datasets_per_call // devices)
        results = []
        for first in range(0, len(datasets), per_call):
            chunk = datasets[first:first + per_call]
            chunk_seeds = seeds[first:first + per_call]
            padded = chunk + [chunk[0]] * (per_call - len(chunk))   # one program shape
            padded_seeds = chunk_seeds + [chunk_seeds[0]] * (per_call - len(chunk))
            data = tuple(np.stack([np.asarray(d.get(name, current[name]), dtype=var.dtype) for d in padded])
                         for name, var in zip(self.names, self.data_vars))
            if np.any(data[self.names.index("weights")] < 0):
                raise InputError("the weighted likelihood bootstrap needs non-negative weights")
            exponential = np.stack([np.random.default_rng(s).standard_exponential((draws, n))
                                    for s in padded_seeds])
            multipliers = n * exponential / exponential.sum(axis=2, keepdims=True)
            shard = lambda x: np.reshape(x, (devices, -1, *np.shape(x)[1:]))  # noqa: E731
            fitted, converged, outputs = program(tuple(shard(d) for d in data), shard(multipliers))
            flat = lambda x: np.asarray(x).reshape(per_call, *np.shape(x)[2:])[:len(chunk)]  # noqa: E731
            results.append((flat(fitted), flat(converged), [flat(o) for o in outputs]))
        fitted = np.concatenate([r[0] for r in results])
        converged = np.concatenate([r[1] for r in results]) & fitted[:, None]
        posterior = {}
        for k, name in enumerate(self.output_names):
            values = np.concatenate([r[2][k] for r in results]).astype(float)
            mask = converged.reshape(converged.shape + (1,) * (values.ndim - 2))
            posterior[name] = np.where(mask, values, np.nan)
        return posterior, (~converged).sum(axis=1), fitted
