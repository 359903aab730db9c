"""PyMC's NUTS on PyTensor's C code, on the log density and gradient compiled once per model.

``pm.sample`` runs with the NUTS step its own ``"jitter+adapt_diag"`` initialisation would build
(:func:`models.compiled.nuts_step`), so the draws are those of a plain ``pm.sample()``, seed for
seed, without compiling again when the same model is fitted after ``pm.set_data``. Chains run in
forked processes, one per core, except in a process where JAX has run (forking it can deadlock):
there they run one after another (``cores`` = 1 is recorded).
"""

from __future__ import annotations

import sys

import arviz as az
import pymc as pm
import pytensor.tensor as pt

from models import compiled

__all__ = ["draw"]


def draw(model: pm.Model, *, draws: int, tune: int, chains: int, cores: int, random_seed: int | None,
         progressbar: bool, target_accept: float) -> tuple[az.InferenceData, dict]:
    """PyMC's NUTS draws of ``model``, and the processes its chains ran in.

    Parameters
    ----------
    model : pymc.Model
    draws, tune, chains, cores, random_seed, progressbar, target_accept
        As :func:`models.sampling.backends.draw`; ``cores`` becomes 1 in a process where JAX has run
        (see the module docstring).

    Returns
    -------
    tuple of (arviz.InferenceData, dict)
        ``posterior`` and ``sample_stats``, and ``{"cores": ...}``: the processes used.

    Examples
    --------
    >>> import models
    >>> from models.sampling.backends import pymc_nuts
    >>> idata, settings = pymc_nuts.draw(models.coin.build_model([1, 0, 1, 1]), draws=200, tune=200,
    ...                                  chains=2, cores=1, random_seed=1, progressbar=False,
    ...                                  target_accept=0.8)
    >>> idata.posterior["p"].shape, settings
    ((2, 200), {'cores': 1})
    """
    if sys.modules.get("jax") is not None:
        # PyMC forks one process per chain, and forking a process in which JAX has run can deadlock
        # (JAX warns so): after a NumPyro fit in this process, the chains run here, one by one.
        cores = 1
    starts, step = compiled.nuts_step(model, chains=chains, random_seed=random_seed,
                                      target_accept=target_accept)
    # The starts as constants: PyMC maps unconstrained starts back symbolically, and its ZeroSum
    # transform cannot take a numpy array there.
    initvals = [{name: pt.constant(value) for name, value in start.items()} for start in starts]
    idata = pm.sample(draws=draws, tune=tune, chains=chains, random_seed=random_seed, progressbar=progressbar,
                      compute_convergence_checks=False, model=model, cores=cores, step=step,
                      initvals=initvals, trace=compiled.trace(model, starts[0]),
                      idata_kwargs={"log_likelihood": False})
    return idata, {"cores": cores}
