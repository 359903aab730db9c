"""What a model compiles once and every later fit of it reuses: NUTS's log density and gradient, and
the pointwise weighted log-likelihood evaluated for many draws at once.

Compilation, not sampling, is most of the cost of a fit of this suite's small models, and every
value a refit changes (weights, data, prior scales) lives in ``pm.Data``, which compiled functions read
when called. So the pieces are kept per model object, for as long as the model lives (a weak reference:
the cache never keeps a model alive), and a sweep that calls ``pm.set_data`` between fits compiles once.

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
from pymc.logprob.utils import replace_rvs_by_values
from pymc.model.core import Point
from pymc.step_methods.hmc import quadpotential
from pymc.util import get_random_generator
from pytensor.compile.sharedvalue import SharedVariable
from pytensor.graph.replace import graph_replace, vectorize_graph
from pytensor.tensor.variable import TensorConstant

__all__ = ["cached", "chain_seeds", "initial_point", "jittered_starts", "logp_dlogp", "nuts_step",
           "observations", "pointwise_log_likelihood", "trace"]

_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

# Draws per call of the vectorised log-likelihood: at most this many float64 numbers per block.
BLOCK_NUMBERS = 2**24


def cached(model: pm.Model, key, build):
    """``build()``'s result, made once per model object and ``key`` and kept while the model lives.

    The one per-model cache of the suite: compiled functions, optimisers, batched engines. The cache
    holds the model by a weak reference: it never keeps a model alive.

    Parameters
    ----------
    model : pymc.Model
    key : hashable
        What is cached, within the model.
    build : callable
        ``build()`` makes the value, called only when it is not cached yet.

    Returns
    -------
    object
        The cached value.

    Examples
    --------
    >>> import models
    >>> from models.compiled import cached
    >>> model = models.coin.build_model([1, 0, 1, 1])
    >>> cached(model, "answer", lambda: 42), cached(model, "answer", lambda: 0)
    (42, 42)
    """
    per_model = _CACHE.setdefault(model, {})
    if key not in per_model:
        per_model[key] = build()
    return per_model[key]


def initial_point(model: pm.Model) -> dict[str, np.ndarray]:
    """``model.initial_point()``, its function compiled once per model.

    Compiled once per model (``model.initial_point()`` compiles one on every call) and per set of
    initial values (``model.set_initval``); evaluated at each call, so it follows ``pm.Data``.

    Parameters
    ----------
    model : pymc.Model

    Returns
    -------
    dict
        The start of every unconstrained value variable, name -> array.

    Examples
    --------
    >>> import models
    >>> from models.compiled import initial_point
    >>> initial_point(models.coin.build_model([1, 0, 1, 1]))
    {'p_logodds__': array(0.)}
    """
    initial_values = tuple(model.rvs_to_initial_values.get(rv) for rv in model.free_RVs)

    def build():   # the initial values are kept with the function: their ids stay theirs
        return make_initial_point_fn(model=model, return_transformed=True), initial_values

    key = ("initial_point", tuple(model.free_RVs), tuple(id(value) for value in initial_values))
    function, _ = cached(model, key, build)
    return Point(function(None), model=model)


def logp_dlogp(model: pm.Model):
    """NUTS's log density (with Jacobian) and gradient on the raveled unconstrained vector.

    The function PyMC's ``init_nuts`` compiles, compiled once per model. Its PyTensor function trusts
    its input (no conversion or check of the float64 vector on each call;
    ``ValueGradFunction.trust_input``, which PyMC's steps set, is not passed on to it): pass a
    contiguous float64 array.

    Parameters
    ----------
    model : pymc.Model

    Returns
    -------
    pymc.model.core.ValueGradFunction
        ``f(z, extra_vars={}) -> [log density, gradient]``.

    Examples
    --------
    >>> import numpy as np, models
    >>> from models.compiled import logp_dlogp
    >>> log_density, gradient = logp_dlogp(models.coin.build_model([1, 0, 1, 1]))(np.zeros(1), extra_vars={})
    >>> round(float(log_density), 4), gradient
    (-4.1589, array([1.]))
    """
    def build():
        return model.logp_dlogp_function(ravel_inputs=True, initial_point=initial_point(model),
                                         trust_input=True)

    return cached(model, ("logp_dlogp", tuple(model.value_vars)), build)


def chain_seeds(random_seed: int | None, chains: int) -> list[int]:
    """The per-chain seeds ``pm.sample`` derives from ``random_seed``.

    Parameters
    ----------
    random_seed : int or None
    chains : int

    Returns
    -------
    list of int
        One per chain.

    Examples
    --------
    >>> from models.compiled import chain_seeds
    >>> chain_seeds(1, 2)
    [16503759, 1010599358]
    """
    return [int(rng.integers(2**30)) for rng in get_random_generator(random_seed).spawn(chains)]


def jittered_starts(model: pm.Model, seeds: list[int], log_density, retries: int = 10) -> list[dict]:
    """One start per seed as ``init_nuts(init="jitter")`` draws them.

    The model's initial point jittered by U(-1, 1) on the unconstrained scale, redrawn with a new
    seed from ``default_rng(seed)`` while ``log_density(point)`` is not finite. The jittered
    initial-point function is compiled once per model (``pm.sample`` compiles one on every call).

    Parameters
    ----------
    model : pymc.Model
    seeds : list of int
        One per start (:func:`chain_seeds`).
    log_density : callable
        ``log_density(point) -> float`` of a point (name -> unconstrained value).
    retries : int, default 10
        Redraws at most.

    Returns
    -------
    list of dict
        One point per seed, name -> unconstrained value.

    Raises
    ------
    pymc.exceptions.SamplingError
        From ``model.check_start_vals`` when a start is still not finite after ``retries`` redraws:
        it says which variable is at fault.

    Examples
    --------
    >>> import models
    >>> from models.compiled import chain_seeds, jittered_starts
    >>> model = models.coin.build_model([1, 0, 1, 1])
    >>> starts = jittered_starts(model, chain_seeds(1, 2), lambda point: 0.0)
    >>> len(starts), sorted(starts[0])
    (2, ['p_logodds__'])
    """
    def build():
        return make_initial_point_fns_per_chain(model=model, overrides=None, jitter_rvs=set(model.free_RVs),
                                                chains=1)[0]

    start_at = cached(model, ("jittered_start", tuple(model.free_RVs)), build)
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
    """``(initial_points, step)`` as ``init_nuts(init="jitter+adapt_diag")`` makes them.

    On the cached :func:`logp_dlogp`: each chain starts at :func:`jittered_starts`, and the diagonal
    mass matrix adapts from the starts' mean. ``pm.sample(step=step, initvals=...)`` then draws
    exactly what ``pm.sample()`` would, seed for seed.

    Parameters
    ----------
    model : pymc.Model
    chains : int
    random_seed : int or None
        The seed ``pm.sample`` is given.
    target_accept : float
        NUTS's target acceptance rate.

    Returns
    -------
    tuple of (list of dict, pymc.NUTS)
        One start per chain and the NUTS step.

    Examples
    --------
    >>> import models
    >>> from models.compiled import nuts_step
    >>> starts, step = nuts_step(models.coin.build_model([1, 0, 1, 1]), chains=2, random_seed=1,
    ...                          target_accept=0.8)
    >>> len(starts), type(step).__name__, step.target_accept
    (2, 'NUTS', 0.8)
    """
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
    """The recorder ``pm.sample`` would make for each chain, for its ``trace`` argument.

    Its point function is compiled once per model; the shapes it records come from evaluating it at
    ``start`` on every call (a deterministic's shape can follow the data's). Its copies (one per
    chain) share the point function and have arrays of their own.

    Parameters
    ----------
    model : pymc.Model
    start : dict
        A point, name -> unconstrained value (e.g. a start of :func:`nuts_step`).

    Returns
    -------
    pymc.backends.NDArray
        Recording every free variable and deterministic (and the transformed value variables, as
        PyMC records them).

    Examples
    --------
    >>> import models
    >>> from models.compiled import initial_point, trace
    >>> model = models.coin.build_model([1, 0, 1, 1])
    >>> trace(model, initial_point(model)).varnames
    ['p_logodds__', 'p']
    """
    def build():
        template = NDArray(model=model, test_point=start)
        return template.vars, template.fn

    vars_, fn = cached(model, ("trace", tuple(model.value_vars), tuple(model.deterministics)), build)
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
        values = [rv.type(f"{rv.name}_value") for rv in free]   # constrained: no transform
        # TensorType(...)(name=): pt.tensor would read a name like "1|g_sigma_draws" as a dtype
        batched = [pt.TensorType(rv.dtype, shape=(None, *rv.type.shape))(name=f"{rv.name}_draws")
                   for rv in free]
        # The observed variables as functions of the free variables' values, with no random variable
        # left upstream: deriving the log density of a censored or mixture term rewrites its graph and
        # would clone (and so lose) a free variable it depends on.
        observed = replace_rvs_by_values(model.observed_RVs, rvs_to_values=dict(zip(free, values)),
                                         rvs_to_transforms={})
        pointwise = [pm.logp(term, model.rvs_to_values[rv]) for term, rv in zip(observed, model.observed_RVs)]
        weights = {term.tag.weighted_term.weights for term in model.observed_RVs
                   if getattr(term.tag, "weighted_term", None) is not None}
        pointwise = graph_replace(pointwise, {w: pt.ones_like(w) for w in weights}, strict=False)
        vectorised = vectorize_graph(pointwise, replace=dict(zip(values, batched)))
        return pytensor.function(batched, vectorised, on_unused_input="ignore")

    key = ("log_likelihood", tuple(model.free_RVs), tuple(model.observed_RVs))
    return cached(model, key, build)


def observations(model: pm.Model) -> int:
    """Number of pointwise terms of all observed variables.

    The sizes of their observed values, read from the data (``pm.Data`` or constants), else
    evaluated by a function of their shapes compiled once per model (in Python mode: no C module for
    a few integers) that reads the current data.

    Parameters
    ----------
    model : pymc.Model

    Returns
    -------
    int

    Examples
    --------
    >>> import models
    >>> from models.compiled import observations
    >>> observations(models.coin.build_model([1, 0, 1, 1]))
    4
    """
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

        sizes = cached(model, ("observed_sizes", *computed), build)()
        total += int(sum(sizes))
    return total


def pointwise_log_likelihood(model: pm.Model, posterior: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The pointwise unweighted log-likelihood of every observed variable at every draw.

    Every weight 1 (:func:`models.sampling.idata.add_log_likelihood` weights it), evaluated in one
    call of a vectorised graph (the draws as a leading axis) per block of draws of at most
    :data:`BLOCK_NUMBERS` numbers.

    Parameters
    ----------
    model : pymc.Model
    posterior : dict
        Each free variable's name -> its draws, shape ``(chain, draw, *shape)``.

    Returns
    -------
    dict
        Each observed variable's name -> ``(chain, draw, *observed shape)``.

    Examples
    --------
    >>> import numpy as np, models
    >>> from models.compiled import pointwise_log_likelihood
    >>> model = models.coin.build_model([1, 0, 1, 1], [1, 1, 2, 0])   # the weights are left out
    >>> pointwise_log_likelihood(model, {"p": np.full((1, 2), 0.5)})["heads"].round(4)
    array([[[-0.6931, -0.6931, -0.6931, -0.6931],
            [-0.6931, -0.6931, -0.6931, -0.6931]]])
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
