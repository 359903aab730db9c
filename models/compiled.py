"""What a model compiles once and every later fit of it reuses: NUTS's log density and gradient, and
the pointwise weighted log-likelihood evaluated for many draws at once.

Compilation, not sampling, is most of the cost of a fit of this suite's small models (a coin: 1.7 s
for a new model, 0.3 s for a compiled one), and every value a refit changes (weights, data, prior
scales) lives in ``pm.Data``, which compiled functions read when called. So the pieces are kept per
model object, for as long as the model lives (a weak reference: the cache never keeps a model
alive), and a sweep that calls ``pm.set_data`` between fits compiles once.

* :func:`logp_dlogp` is the function PyMC's ``init_nuts`` compiles; :func:`nuts_step` repeats
  ``init_nuts``'s ``"jitter+adapt_diag"`` initialisation around it, on a jittered initial-point
  function also compiled once per model, so ``pm.sample(step=...)`` draws exactly what
  ``pm.sample()`` would, seed for seed.
* :func:`trace` gives ``pm.sample(trace=...)`` the chains' recorder with its point function
  compiled once per model (``pm.sample`` otherwise compiles one per chain on every call).
* :func:`pointwise_log_likelihood` evaluates every observed term (unweighted) at a block of draws in one
  call of a vectorised graph (the draws as a leading axis), where ``pm.compute_log_likelihood`` compiles anew
  on every call and loops over the draws one at a time.
"""

from __future__ import annotations

import weakref

import numpy as np
import pymc as pm
import pytensor
import pytensor.tensor as pt
from pymc.backends import NDArray
from pymc.blocking import DictToArrayBijection
from pymc.initial_point import make_initial_point_fn, make_initial_point_fns_per_chain
from pymc.model.core import Point
from pymc.step_methods.hmc import quadpotential
from pymc.util import get_random_generator
from pytensor.compile.sharedvalue import SharedVariable
from pytensor.graph.replace import graph_replace, vectorize_graph
from pytensor.tensor.variable import TensorConstant

_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

# Draws per call of the vectorised log-likelihood: at most this many float64 numbers per block.
BLOCK_NUMBERS = 2**24


def _cached(model: pm.Model, key, build):
    per_model = _CACHE.setdefault(model, {})
    if key not in per_model:
        per_model[key] = build()
    return per_model[key]


def initial_point(model: pm.Model) -> dict[str, np.ndarray]:
    """``model.initial_point()``: the start of every unconstrained value variable, its function
    compiled once per model (``model.initial_point()`` compiles one on every call) and per set of
    initial values (``model.set_initval``); evaluated at each call, so it follows ``pm.Data``."""
    initial_values = tuple(model.rvs_to_initial_values.get(rv) for rv in model.free_RVs)

    def build():   # the initial values are kept with the function: their ids stay theirs
        return make_initial_point_fn(model=model, return_transformed=True), initial_values

    key = ("initial_point", tuple(model.free_RVs), tuple(id(value) for value in initial_values))
    function, _ = _cached(model, key, build)
    return Point(function(None), model=model)


def logp_dlogp(model: pm.Model):
    """NUTS's log density (with Jacobian) and gradient on the raveled unconstrained vector. Its
    PyTensor function trusts its input (no conversion or check of the float64 vector on each call;
    ``ValueGradFunction.trust_input``, which PyMC's steps set, is not passed on to it)."""
    def build():
        return model.logp_dlogp_function(ravel_inputs=True, initial_point=initial_point(model),
                                         trust_input=True)

    return _cached(model, ("logp_dlogp", tuple(model.value_vars)), build)


def chain_seeds(random_seed: int | None, chains: int) -> list[int]:
    """The per-chain seeds ``pm.sample`` derives from ``random_seed``."""
    return [int(rng.integers(2**30)) for rng in get_random_generator(random_seed).spawn(chains)]


def jittered_starts(model: pm.Model, seeds: list[int], log_density, retries: int = 10) -> list[dict]:
    """One start per seed as ``init_nuts(init="jitter")`` draws them: the model's initial point
    jittered by U(-1, 1) on the unconstrained scale, redrawn with a new seed from
    ``default_rng(seed)`` while ``log_density(point)`` is not finite (after ``retries`` redraws
    ``model.check_start_vals`` says which variable is at fault). The jittered initial-point function
    is compiled once per model (``pm.sample`` compiles one on every call)."""
    def build():
        return make_initial_point_fns_per_chain(model=model, overrides=None, jitter_rvs=set(model.free_RVs),
                                                chains=1)[0]

    start_at = _cached(model, ("jittered_start", tuple(model.free_RVs)), build)
    starts = []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        for attempt in range(retries + 1):
            point = start_at(seed)
            if np.isfinite(log_density(point)):
                break
            if attempt == retries:
                model.check_start_vals(point)
            seed = rng.integers(2**30, dtype=np.int64)
        starts.append(point)
    return starts


def nuts_step(model: pm.Model, *, chains: int, random_seed: int | None, target_accept: float):
    """``(initial_points, step)`` as ``init_nuts(init="jitter+adapt_diag")`` makes them, on the cached
    :func:`logp_dlogp`: each chain starts at :func:`jittered_starts`, and the diagonal mass matrix
    adapts from the starts' mean."""
    function = logp_dlogp(model)
    seeds = chain_seeds(random_seed, chains)

    def log_density(point) -> float:
        return function([DictToArrayBijection.map(point).data], extra_vars={})[0]

    starts = jittered_starts(model, seeds, log_density)
    mean = np.mean([DictToArrayBijection.map(point).data for point in starts], axis=0)
    potential = quadpotential.QuadPotentialDiagAdapt(mean.size, mean, np.ones_like(mean), 10, rng=seeds[0])
    step = pm.NUTS(potential=potential, model=model, rng=seeds[0], initial_point=starts[0],
                   logp_dlogp_func=function, target_accept=target_accept)
    return starts, step


class _ChainTrace(NDArray):
    """An empty NDArray recorder whose copies (``pm.sample`` copies the ``trace`` it is given, once
    per chain) share its compiled point function but have arrays of their own."""

    def __copy__(self):
        return NDArray(model=self.model, vars=self.vars, fn=self.fn, var_shapes=self.var_shapes,
                       var_dtypes=self.var_dtypes)


def trace(model: pm.Model, start: dict) -> NDArray:
    """The recorder ``pm.sample`` would make for each chain (``NDArray``: every free variable and
    deterministic), for its ``trace`` argument. Its point function is compiled once per model; the
    shapes it records come from evaluating it at ``start`` on every call (a deterministic's shape can
    follow the data's)."""
    def build():
        template = NDArray(model=model, test_point=start)
        return template.vars, template.fn

    vars_, fn = _cached(model, ("trace", tuple(model.value_vars), tuple(model.deterministics)), build)
    values = fn(**start)
    return _ChainTrace(model=model, vars=vars_, fn=fn,
                       var_shapes={var.name: value.shape for var, value in zip(vars_, values)},
                       var_dtypes={var.name: value.dtype for var, value in zip(vars_, values)})


def _log_likelihood_function(model: pm.Model):
    """``f(*batched free variables) -> [pointwise unweighted log-likelihood of each observed variable]``
    with the draws on the leading axis of every input and output: every weighted term
    (``models.likelihood``) with its weights replaced by ones, ``log p(y_i | theta)``."""
    def build():
        free = model.free_RVs
        batched = [pt.tensor(f"{rv.name}_draws", dtype=rv.dtype, shape=(None, *rv.type.shape)) for rv in free]
        pointwise = [pm.logp(rv, model.rvs_to_values[rv]) for rv in model.observed_RVs]
        weights = {term.tag.weighted_term.weights for term in model.observed_RVs
                   if getattr(term.tag, "weighted_term", None) is not None}
        pointwise = graph_replace(pointwise, {w: pt.ones_like(w) for w in weights}, strict=False)
        vectorised = vectorize_graph(pointwise, replace=dict(zip(free, batched)))
        return pytensor.function(batched, vectorised, on_unused_input="ignore")

    key = ("log_likelihood", tuple(model.free_RVs), tuple(model.observed_RVs))
    return _cached(model, key, build)


def observations(model: pm.Model) -> int:
    """Number of pointwise terms of all observed variables: the sizes of their observed values, read
    from the data (``pm.Data`` or constants), else evaluated by a function of their shapes compiled
    once per model (in Python mode: no C module for a few integers) that reads the current data."""
    total, computed = 0, []
    for rv in model.observed_RVs:
        value = model.rvs_to_values[rv]
        if isinstance(value, SharedVariable):
            total += int(np.size(value.get_value()))
        elif isinstance(value, TensorConstant):
            total += int(np.size(value.data))
        else:
            computed.append(value)
    if computed:
        def build():
            return pytensor.function([], [pt.prod(value.shape) for value in computed], mode="FAST_COMPILE")

        sizes = _cached(model, ("observed_sizes", *computed), build)()
        total += int(sum(sizes))
    return total


def pointwise_log_likelihood(model: pm.Model, posterior: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The pointwise unweighted log-likelihood (every weight 1) of every observed variable at every
    draw; :func:`models.backends.add_log_likelihood` weights it.

    ``posterior`` maps each free variable's name to its draws, shape ``(chain, draw, *shape)``; the
    result maps each observed variable's name to ``(chain, draw, *observed shape)``, in blocks of
    draws of at most :data:`BLOCK_NUMBERS` numbers.
    """
    function = _log_likelihood_function(model)
    names = [rv.name for rv in model.free_RVs]
    chains, draws = np.shape(posterior[names[0]])[:2]
    flat = [np.reshape(posterior[name], (chains * draws, *np.shape(posterior[name])[2:])) for name in names]
    per_draw = max(1, observations(model))
    block = max(1, BLOCK_NUMBERS // per_draw)
    pieces = [function(*(values[start:start + block] for values in flat))
              for start in range(0, chains * draws, block)]
    return {rv.name: np.concatenate([piece[i] for piece in pieces]).reshape(chains, draws, -1).reshape(
                chains, draws, *np.shape(pieces[0][i])[1:])
            for i, rv in enumerate(model.observed_RVs)}
