"""NumPyro's NUTS on PyMC's JAX translation of the log density (the ``jax`` extra).

JAX compiles the whole NUTS loop into one program: a compilation on every call
(``docs/performance.md`` has what it costs), then the fastest gradients on large data. Chains run in
parallel on host "devices": importing ``pymc.sampling.jax`` sets
``XLA_FLAGS=--xla_force_host_platform_device_count=100`` (keeping the user's other XLA flags), which
takes effect unless JAX's CPU back end started earlier in the process; with fewer devices than
chains, chains run one after another (``chain_method`` is recorded).
"""

from __future__ import annotations

import arviz as az
import pymc as pm

__all__ = ["draw"]


def _chain_method(chains: int) -> str:
    """"parallel" (one host device per chain) when JAX has enough devices, else "sequential"."""
    import jax  # reads XLA_FLAGS when its CPU back end first starts, not on import
    import pymc.sampling.jax  # noqa: F401  (sets XLA_FLAGS, see the module docstring)

    return "parallel" if jax.local_device_count() >= chains else "sequential"


def draw(model: pm.Model, *, draws: int, tune: int, chains: int, cores: int, random_seed: int | None,
         progressbar: bool, target_accept: float) -> tuple[az.InferenceData, dict]:
    """NumPyro's NUTS draws of ``model``, and the chain method used.

    Parameters
    ----------
    model : pymc.Model
    draws, tune, chains, cores, random_seed, progressbar, target_accept
        As :func:`models.sampling.backends.draw`; ``cores`` is not used (chains run on JAX's host
        devices).

    Returns
    -------
    tuple of (arviz.InferenceData, dict)
        ``posterior`` and ``sample_stats``, and ``{"chain_method": ...}``: ``"parallel"`` (one host
        device per chain) when JAX has enough devices, else ``"sequential"``.

    Examples
    --------
    >>> import models
    >>> from models.sampling.backends import numpyro_nuts
    >>> idata, settings = numpyro_nuts.draw(  # doctest: +SKIP
    ...     models.coin.build_model([1, 0, 1, 1]), draws=200, tune=200, chains=2, cores=1,
    ...     random_seed=1, progressbar=False, target_accept=0.8)
    >>> idata.posterior["p"].shape  # doctest: +SKIP
    (2, 200)
    """
    chain_method = _chain_method(chains)
    idata = pm.sample(draws=draws, tune=tune, chains=chains, random_seed=random_seed, progressbar=progressbar,
                      target_accept=target_accept, compute_convergence_checks=False, model=model,
                      nuts_sampler="numpyro", idata_kwargs={"log_likelihood": False},
                      nuts_sampler_kwargs={"chain_method": chain_method})
    return idata, {"chain_method": chain_method}
