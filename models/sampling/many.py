"""NUTS fits of one model structure to many data sets: :func:`sample_many`."""

from __future__ import annotations

import warnings

import numpy as np
import pymc as pm

from models import compiled
from models._graph import check_model, data_kept
from models.diagnostics import diagnose
from models.errors import InputError
from models.likelihood import check_weights
from models.sampling import dispatch
from models.sampling.batched import KERNELS, BatchedNUTS, BatchResult, resolve_datasets
from models.sampling.nuts import sample

__all__ = ["sample_many"]

STAT_NAMES = ("diverging", "energy", "tree_depth", "n_steps", "step_size", "acceptance_rate")


def sample_many(model: pm.Model, datasets, *, random_seeds, draws: int = 1000, tune: int = 1000,
                chains: int = 4, sampler: str = "auto", target_accept: float = 0.8,
                progress=None, kernel: str = "nuts") -> BatchResult:
    """NUTS fits of one model structure to many data sets, in one batch when that pays.

    Parameters
    ----------
    model : pymc.Model
        The structure; its ``pm.Data`` are what the data sets change.
    datasets : iterable of dict
        ``pm.Data`` name -> values (shapes as the model's); names left out keep the model's values.
    random_seeds : iterable of int
        One seed per data set.
    draws, tune, chains, target_accept
        As :func:`models.sampling.nuts.sample`.
    sampler : {"auto", "pymc", "numpyro", "nutpie"}
        ``"numpyro"`` runs every fit in one compiled JAX program
        (:class:`~models.sampling.batched.BatchedNUTS`); ``"pymc"`` or ``"nutpie"`` one after another
        through :func:`~models.sampling.nuts.sample` on the model compiled once; ``"auto"`` batches
        when JAX is installed and the job is large enough (:func:`models.sampling.dispatch.many_route`).
    progress : callable, optional
        ``progress(done, total)``, called as fits finish (per chunk of lanes when batched).
    kernel : {"nuts", "jittered_hmc"}, default "nuts"
        The batched engine's transition (:class:`~models.sampling.batched.BatchedNUTS`); fits run
        through PyMC or nutpie use NUTS whatever it says.

    Returns
    -------
    BatchResult
        Draws, sampler statistics and diagnostics of every fit; ``.idata_of(i)`` is fit ``i`` as
        ``InferenceData``.

    Raises
    ------
    InputError
        For a data set naming something that is not ``pm.Data`` of the model, or not one seed per
        data set.

    Examples
    --------
    >>> import numpy as np, models
    >>> model = models.coin.build_model([1, 0, 1, 1])
    >>> fits = models.sample_many(model, [{"weights": np.full(4, c)} for c in (1.0, 10.0)],
    ...                           random_seeds=[1, 2], draws=200, tune=200, chains=2)
    >>> fits.posterior["p"].shape
    (2, 2, 200)
    """
    check_model(model)
    if kernel not in KERNELS:
        raise InputError(f"kernel must be one of {KERNELS}, got {kernel!r}")
    datasets, seeds = resolve_datasets(model, datasets), list(random_seeds)
    if not datasets or len(datasets) != len(seeds):
        raise InputError(f"need one seed per data set, got {len(datasets)} data sets and {len(seeds)} seeds")
    for index, data in enumerate(datasets):
        try:
            check_weights(model, data)
        except InputError as err:
            raise InputError(f"data set {index}: {err}") from None
    route = dispatch.many_route(sampler, model, fits=len(datasets), chains=chains, tune=tune, draws=draws)
    if route == "batched":
        key = ("batched_nuts", draws, tune, chains, float(target_accept), kernel)
        try:
            engine = compiled.cached(model, key, lambda: BatchedNUTS(
                model, draws=draws, tune=tune, chains=chains, target_accept=target_accept, kernel=kernel))
        except NotImplementedError as err:   # an operation JAX cannot run (PyTensor says which)
            if sampler != "auto":
                raise InputError(f"the batched engine cannot run this model in JAX: {err}") from None
            warnings.warn(f"sample_many: the batched engine cannot run this model in JAX ({err}); "
                          "fitting one data set after another with PyMC", RuntimeWarning, stacklevel=2)
            sampler = "pymc"
        else:
            return engine(datasets, seeds, progress=progress)
    fits = []
    with data_kept(model):
        for data, seed in zip(datasets, seeds):
            pm.set_data(data, model=model)
            fits.append(sample(model, draws=draws, tune=tune, chains=chains, random_seed=seed,
                               sampler=sampler, target_accept=target_accept, log_likelihood=False))
            if progress is not None:
                progress(len(fits), len(datasets))
    names = [v.name for v in [*model.free_RVs, *model.deterministics]]
    stat_names = [name for name in STAT_NAMES if all(name in f.sample_stats for f in fits)]
    return BatchResult(
        model, {name: np.stack([f.posterior[name].values for f in fits]) for name in names},
        {name: np.stack([f.sample_stats[name].values for f in fits]) for name in stat_names},
        [diagnose(f) for f in fits], datasets, seeds,
        {"draws": draws, "tune": tune, "chains": chains, "target_accept": float(target_accept)},
        fits[0].attrs["sampler"])
