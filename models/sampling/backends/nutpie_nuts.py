"""nutpie's Rust NUTS on a Numba translation of the log density (the ``nutpie`` extra)."""

from __future__ import annotations

import arviz as az
import pymc as pm

__all__ = ["draw"]


def draw(model: pm.Model, *, draws: int, tune: int, chains: int, cores: int, random_seed: int | None,
         progressbar: bool, target_accept: float) -> tuple[az.InferenceData, dict]:
    """nutpie's NUTS draws of ``model``; no settings to record.

    Parameters
    ----------
    model : pymc.Model
    draws, tune, chains, cores, random_seed, progressbar, target_accept
        As :func:`models.sampling.backends.draw`.

    Returns
    -------
    tuple of (arviz.InferenceData, dict)
        ``posterior`` (the model's variables and deterministics only: nutpie's transformed ones are
        dropped, as PyMC keeps them) and ``sample_stats``, and ``{}``.

    Examples
    --------
    >>> import models
    >>> from models.sampling.backends import nutpie_nuts
    >>> idata, settings = nutpie_nuts.draw(  # doctest: +SKIP
    ...     models.coin.build_model([1, 0, 1, 1]), draws=200, tune=200, chains=2, cores=1,
    ...     random_seed=1, progressbar=False, target_accept=0.8)
    >>> list(idata.posterior.data_vars), settings  # doctest: +SKIP
    (['p'], {})
    """
    idata = pm.sample(draws=draws, tune=tune, chains=chains, random_seed=random_seed, progressbar=progressbar,
                      target_accept=target_accept, compute_convergence_checks=False, model=model,
                      nuts_sampler="nutpie", nuts_sampler_kwargs={"cores": cores, "save_warmup": False})
    # nutpie also stores the transformed (unconstrained) variables: keep what PyMC keeps.
    idata.posterior = idata.posterior[[rv.name for rv in [*model.free_RVs, *model.deterministics]]]
    return idata, {}
