"""What a batched JAX program needs of a PyMC model: JAX configured, the model's graphs in JAX with
every ``pm.Data`` an input, and the flat unconstrained vector NUTS and Newton's method work on.

XLA's compiled programs are cached on disk (``WMLE_JAX_CACHE``, default ``~/.cache/wmle/jax``), so
later processes skip compiling a program seen before.
"""

from __future__ import annotations

import os
import sys
import weakref
from pathlib import Path

import numpy as np
import pymc as pm
import pytensor.tensor as pt
from pytensor.graph.replace import clone_replace

from models import compiled
from models.sampling.dispatch import available_cores

__all__ = ["JaxModel", "configure_jax", "device_count", "jaxified", "over_lanes"]


def configure_jax(cores: int):
    """Configure JAX for the batched programs and return it.

    Sets x64, one XLA host device per core (through ``XLA_FLAGS``, keeping the user's other XLA
    flags; unless JAX has started already) and the on-disk compilation cache (``WMLE_JAX_CACHE``,
    default ``~/.cache/wmle/jax``).

    Parameters
    ----------
    cores : int
        XLA host devices to ask for.

    Returns
    -------
    module
        The ``jax`` module, configured.

    Examples
    --------
    >>> from models.sampling.jax_model import configure_jax
    >>> jax = configure_jax(2)  # doctest: +SKIP
    >>> jax.config.jax_enable_x64  # doctest: +SKIP
    True
    """
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


def device_count(jax) -> int:
    """The devices :func:`over_lanes` spreads lanes over: every device of JAX's default backend.

    Parameters
    ----------
    jax : module
        The configured ``jax`` (:func:`configure_jax`).

    Returns
    -------
    int
    """
    return len(jax.devices())


def over_lanes(jax, per_lane):
    """``per_lane`` mapped over the leading (lane) axis of every argument and output, the lanes split
    evenly over the devices of a one-axis mesh.

    One program whatever the devices: CPU cores as XLA host devices here, GPUs elsewhere (JAX's
    default backend). Each device runs ``vmap(per_lane)`` on its block of lanes (``shard_map``), so a
    lane computes the same whatever the number of devices; the lanes' count must be a multiple of
    :func:`device_count`.

    Parameters
    ----------
    jax : module
        The configured ``jax`` (:func:`configure_jax`).
    per_lane : callable
        The computation of one lane, of arrays without the lane axis.

    Returns
    -------
    callable
        Jitted; takes and returns arrays with a leading lane axis.

    Examples
    --------
    >>> import numpy as np
    >>> from models.sampling.jax_model import configure_jax, device_count, over_lanes
    >>> jax = configure_jax(2)  # doctest: +SKIP
    >>> square = over_lanes(jax, lambda x: x**2)  # doctest: +SKIP
    >>> square(np.arange(2.0 * device_count(jax)))[:2]  # doctest: +SKIP
    Array([0., 1.], dtype=float64)
    """
    from jax.sharding import Mesh, PartitionSpec

    mesh = Mesh(np.array(jax.devices()), ("lanes",))
    lanes = PartitionSpec("lanes")
    # check_vma=False: NumPyro's kernels mix per-lane and constant values in lax.cond branches,
    # which shard_map's check of varying axes would refuse; every value here is per lane anyway.
    return jax.jit(jax.shard_map(jax.vmap(per_lane), mesh=mesh, in_specs=lanes, out_specs=lanes,
                                 check_vma=False))


def _jax_started() -> bool:
    try:
        from jax._src import xla_bridge

        return bool(xla_bridge._backends)
    except (ImportError, AttributeError):
        return True


def jaxified(model: pm.Model, outputs, data_vars):
    """The model's graphs ``outputs`` as a JAX function, every ``pm.Data`` of the model an input.

    Parameters
    ----------
    model : pymc.Model
    outputs : sequence of variables
        Graphs of the model's value variables (e.g. ``[model.logp()]``).
    data_vars : sequence of variables
        The model's ``pm.Data``, in the order the function takes them.

    Returns
    -------
    callable
        ``f(*value vars, *data) -> list of outputs``, in JAX.

    Examples
    --------
    >>> import numpy as np, models
    >>> from models.sampling.jax_model import jaxified
    >>> model = models.coin.build_model([1, 0, 1, 1])
    >>> logp = jaxified(model, [model.logp()], model.data_vars)  # doctest: +SKIP
    >>> data = [d.get_value() for d in model.data_vars]  # doctest: +SKIP
    >>> round(float(logp(np.array(0.0), *data)[0]), 4)  # doctest: +SKIP
    -4.1589
    """
    from pymc.sampling.jax import get_jaxified_graph

    placeholders = [pt.TensorType(d.dtype, shape=d.type.shape)(name=f"{d.name}_input") for d in data_vars]
    replaced = clone_replace(list(outputs), replace=dict(zip(data_vars, placeholders)))
    return get_jaxified_graph(inputs=[*model.value_vars, *placeholders], outputs=replaced)


class JaxModel:
    """What both batched programs need of a model, in JAX.

    JAX on (:func:`configure_jax`, one host device per available core), the model's ``pm.Data`` as
    inputs, the flat unconstrained vector (``x0``: the initial point) and its split into value
    variables, and the free variables and deterministics as a JAX function of it. The base of
    :class:`~models.sampling.batched.BatchedNUTS` and :class:`~models.calibrate.wlb.BatchedWLB`.

    Parameters
    ----------
    model : pymc.Model
        Held by a weak reference: the engines are cached per model, and must not keep it alive.

    Attributes
    ----------
    data_vars : list
        The model's ``pm.Data``, in the order the JAX functions take them.
    names : list of str
        Their names.
    shapes, sizes : list
        Shape and size of each value variable in the flat vector.
    x0 : numpy.ndarray
        The model's initial point, raveled.
    output_names : list of str
        The free variables and deterministics, in the order the JAX function returns them.
    model : pymc.Model
        The model (a property).

    Raises
    ------
    ReferenceError
        On reading ``model`` once the model no longer exists: keep a reference to the model while
        using the engine.

    Examples
    --------
    >>> import models
    >>> from models.sampling.jax_model import JaxModel
    >>> engine = JaxModel(models.coin.build_model([1, 0, 1, 1]))  # doctest: +SKIP
    >>> engine.names, engine.x0  # doctest: +SKIP
    (['flips', 'weights', 'prior_a', 'prior_b'], array([0.]))
    """

    def __init__(self, model: pm.Model):
        # No strong reference: the engines are cached per model in weak-keyed dictionaries
        # (models.inference, models.calibrate), whose values must not keep their keys alive.
        self._model = weakref.ref(model)
        self._jax = configure_jax(available_cores())
        self.data_vars = list(model.data_vars)
        self.names = [d.name for d in self.data_vars]
        start = compiled.initial_point(model)
        self.shapes = [tuple(np.shape(start[v.name])) for v in model.value_vars]
        self.sizes = [int(np.prod(s)) for s in self.shapes]
        self.x0 = np.concatenate([np.ravel(start[v.name]) for v in model.value_vars]).astype(float)
        self.output_names = [v.name for v in [*model.free_RVs, *model.deterministics]]
        outputs = model.replace_rvs_by_values([*model.free_RVs, *model.deterministics])
        self._outputs = jaxified(model, outputs, self.data_vars)

    @property
    def model(self) -> pm.Model:
        """The model; ``ReferenceError`` once it no longer exists."""
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


