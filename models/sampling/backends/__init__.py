"""NUTS back ends, one module each behind one interface.

Three implementations of the same sampler (NUTS with a diagonal mass matrix adapted during tuning),
all run through ``pm.sample`` on the model's own log density:

* :mod:`~models.sampling.backends.pymc_nuts`: PyMC's sampler on PyTensor's C code (always installed);
* :mod:`~models.sampling.backends.numpyro_nuts`: PyMC's JAX translation sampled by NumPyro (the
  ``jax`` extra);
* :mod:`~models.sampling.backends.nutpie_nuts`: nutpie's Rust sampler on a Numba translation (the
  ``nutpie`` extra).

Each module has ``draw(model, *, draws, tune, chains, cores, random_seed, progressbar,
target_accept) -> (idata, settings)``: the ``posterior`` (the model's variables and deterministics,
not the transformed ones) and ``sample_stats`` (with ``diverging`` and ``energy``), and the settings
worth recording. :func:`draw` adds the rest of the groups every back end shares
(:mod:`models.sampling.idata`). Which back end ``"auto"`` means is decided in
:mod:`models.sampling.dispatch`.
"""

from __future__ import annotations

import arviz as az
import pymc as pm

from models.errors import InputError
from models.sampling import idata as idata_builder
from models.sampling.backends import numpyro_nuts, nutpie_nuts, pymc_nuts

__all__ = ["draw"]

_MODULES = {"pymc": pymc_nuts, "numpyro": numpyro_nuts, "nutpie": nutpie_nuts}


def draw(model: pm.Model, backend: str, *, draws: int, tune: int, chains: int, cores: int,
         random_seed: int | None, progressbar: bool, target_accept: float,
         log_likelihood: bool = True) -> tuple[az.InferenceData, dict]:
    """NUTS draws of ``model`` from ``backend``, with the groups every back end shares.

    Parameters
    ----------
    model : pymc.Model
    backend : {"pymc", "numpyro", "nutpie"}
        A name of :data:`models.sampling.dispatch.BACKENDS` (``"auto"`` is resolved before, by
        :func:`models.sampling.dispatch.resolve`).
    draws, tune, chains, cores : int
        Draws kept and tuning iterations per chain, chains, and processes for them.
    random_seed : int or None
    progressbar : bool
    target_accept : float
        As :func:`models.sampling.nuts.sample` takes them (checked there).
    log_likelihood : bool, default True
        Add the pointwise log-likelihood groups (:func:`models.sampling.idata.add_log_likelihood`).

    Returns
    -------
    tuple of (arviz.InferenceData, dict)
        The draws (with the pointwise log-likelihood groups when ``log_likelihood``) and the settings
        worth recording (PyMC's ``cores``, NumPyro's ``chain_method``).

    Raises
    ------
    InputError
        For an unknown back end.

    Examples
    --------
    >>> import models
    >>> from models.sampling.backends import draw
    >>> idata, settings = draw(models.coin.build_model([1, 0, 1, 1]), "pymc", draws=200, tune=200,
    ...                        chains=2, cores=1, random_seed=1, progressbar=False, target_accept=0.8)
    >>> idata.log_likelihood["heads"].shape, settings
    ((2, 200, 4), {'cores': 1})
    """
    if backend not in _MODULES:
        raise InputError(f"unknown back end {backend!r}; expected one of {tuple(_MODULES)}")
    idata, settings = _MODULES[backend].draw(model, draws=draws, tune=tune, chains=chains, cores=cores,
                                             random_seed=random_seed, progressbar=progressbar,
                                             target_accept=target_accept)
    if log_likelihood:
        idata_builder.add_log_likelihood(idata, model)
    return idata, settings
