"""The weighted likelihood bootstrap (WLB): an approximate sampling distribution of the weighted MLE.

Newton & Raftery (1994). Draw ``g ~ n Dirichlet(1, ..., 1)`` (i.e.
``g_i = n e_i / sum_j e_j`` with ``e_i ~ Exp(1)``), and maximise ``sum_i g_i w_i log p(y_i | theta)``
(priors dropped). The maximisers are draws from an approximate sampling distribution of the WMLE:
with ``w = 1`` and one parameter, the Bayesian bootstrap (Rubin 1981) of the estimator. For the coin
the maximiser is ``sum g w y / sum g w``; with ``w = 1`` its mean is ybar and its variance
``ybar (1 - ybar) / (n + 1)``. The scale of ``w`` cancels, so the WLB ignores it; rows with
frequency weights are treated as one unit each (``k * Exp(1)``, not ``Gamma(k, 1)``), which
overstates the variance when a row stands for k independent copies.
"""

from __future__ import annotations

import warnings

import arviz as az
import numpy as np
import pymc as pm
from threadpoolctl import threadpool_limits

from models import compiled
from models._graph import check_model, data_kept, weights_data
from models._validate import check_count
from models.errors import InputError
from models.estimation.estimators import mle_verdict
from models.estimation.maximise import UnboundedLikelihoodError, argmax, compiled_objective, maximise
from models.sampling import dispatch
from models.sampling import idata as idata_builder
from models.sampling.batched import resolve_datasets
from models.sampling.jax_model import JaxModel, device_count, jaxified, over_lanes

__all__ = ["GRADIENT_TOLERANCE", "BatchedWLB", "WeightedLikelihoodBootstrap", "weighted_likelihood_bootstrap",
           "weighted_likelihood_bootstrap_many"]

# A WLB draw counts as converged when the largest gradient of the weighted log-likelihood, in the
# optimiser's preconditioned units (relative to the size of f and unit curvature at the start), is
# below this: the level at which ``models.estimation.maximise`` warns that an estimate may be inaccurate.
GRADIENT_TOLERANCE = 1e-6


class WeightedLikelihoodBootstrap:
    """The WLB of one model, compiled once (see the module docstring); call it for draws.

    The weighted log-likelihood (observed terms and potentials, priors dropped) and its gradient are
    compiled once per model (:func:`models.estimation.maximise.compiled_objective`, shared with
    :func:`models.estimation.estimators.mle`); each draw sets ``pm.Data("weights")`` to ``w * g`` and
    runs L-BFGS warm-started at the full-data WMLE. After ``pm.set_data`` with new data of the same
    shapes, calling again reuses the compiled code. ``wlb(draws=1000, random_seed=None)`` returns the
    draws as ``InferenceData``, as :func:`weighted_likelihood_bootstrap` does.

    Parameters
    ----------
    model : pymc.Model
        With observed terms or potentials and its weights in ``pm.Data("weights")``.

    Raises
    ------
    InputError
        When ``model`` is not a ``pymc.Model``, has no observed variables or potentials, or keeps no
        weights in ``pm.Data("weights")``; on a call, for negative weights.
    UnboundedLikelihoodError
        On a call, when the full-data WMLE does not exist.

    Examples
    --------
    >>> import models
    >>> from models.calibrate import WeightedLikelihoodBootstrap
    >>> wlb = WeightedLikelihoodBootstrap(models.coin.build_model([1, 0, 1, 1]))
    >>> idata = wlb(draws=200, random_seed=1)
    >>> idata.posterior["p"].shape, idata.attrs["failed_draws"]
    ((1, 200), 0)
    """

    def __init__(self, model: pm.Model):
        self.model = check_model(model)
        self.terms = [*model.observed_RVs, *model.potentials]
        if not self.terms:
            raise InputError("the model has no observed variables or potentials: there is no likelihood")
        self._weights = weights_data(model)
        self._objective = compiled_objective(model, self.terms)

    def __call__(self, draws: int = 1000, random_seed: int | None = None) -> az.InferenceData:
        """``draws`` WLB draws as ``InferenceData`` (one chain).

        Parameters
        ----------
        draws : int, default 1000
            Draws, at least 1.
        random_seed : int, optional
            Seed of the Dirichlet multipliers.

        Returns
        -------
        arviz.InferenceData
            Free variables and deterministics in ``posterior`` with the model's dims and coords, the
            data in ``constant_data``; ``attrs`` record ``method``, ``draws``, ``random_seed`` and
            ``failed_draws``. A draw whose optimiser does not converge (gradient above
            :data:`GRADIENT_TOLERANCE`, or a non-finite value) is stored as NaN, counted in
            ``attrs["failed_draws"]`` and warned about, never returned as a number.

        Raises
        ------
        InputError
            For negative weights (a Dirichlet reweighting of signed weights can make the maximiser
            vanish in some draws and not others), or ``draws`` or ``random_seed`` out of range.
        UnboundedLikelihoodError
            When the full-data WMLE does not exist (separation): Dirichlet multipliers are positive,
            so no draw's maximiser would exist either.

        Warns
        -----
        RuntimeWarning
            When some draws did not converge.
        """
        draws = check_count(draws, "draws", 1)
        if random_seed is not None:
            random_seed = check_count(random_seed, "random_seed", 0)
        w = np.array(self._weights.get_value(), dtype=float)
        if np.any(w < 0):
            raise InputError("the weighted likelihood bootstrap needs non-negative weights; "
                             f"{int(np.sum(w < 0))} are negative")
        try:
            maximise(self.model, self.terms, "weighted log-likelihood", mle_verdict(self.model))
        except UnboundedLikelihoodError as err:
            raise UnboundedLikelihoodError(f"no weighted likelihood bootstrap: {err}") from None
        objective = self._objective
        start_value, start_gradient = objective.value_and_grad(objective.x0)
        scale = max(abs(start_value), float(np.max(np.abs(start_gradient)))) or 1.0
        metric = objective.curvature(objective.x0, scale)
        z_hat = argmax(objective, objective.x0, scale, metric)

        rng = np.random.default_rng(random_seed)
        points = []
        # One BLAS thread: each optimisation is far too small to gain from threads, and OpenBLAS threads
        # spin on cores that other processes keep busy.
        try:
            with threadpool_limits(limits=1, user_api="blas"):
                self._draw(draws, rng, w, z_hat, scale, metric, points)
        finally:
            self._weights.set_value(w)
        failed = sum(point is None for point in points)
        blank = {k: np.full(np.shape(v), np.nan) for k, v in objective.point(z_hat).items()}
        points = [blank if point is None else point for point in points]
        if failed:
            warnings.warn(f"weighted likelihood bootstrap: {failed} of {draws} draws did not converge "
                          "and are NaN", RuntimeWarning, stacklevel=2)
        posterior = {name: np.stack([p[name] for p in points])[None] for name in objective.output_names}
        return idata_builder.from_draws(self.model, posterior, attrs={
            "method": "weighted_likelihood_bootstrap", "draws": draws, "failed_draws": failed,
            "random_seed": "none" if random_seed is None else random_seed,
        })

    def _draw(self, draws: int, rng, w, z_hat, scale: float, metric, points: list) -> None:
        """Append ``draws`` maximisers to ``points`` (``None`` where the optimiser did not converge)."""
        objective = self._objective
        for _ in range(draws):
            multipliers = rng.standard_exponential(w.size)
            self._weights.set_value(w * (w.size * multipliers / multipliers.sum()))
            z = argmax(objective, z_hat, scale, metric)
            value, gradient = objective.value_and_grad(z)
            relative = np.max(np.abs(gradient / (scale * np.sqrt(metric))))  # preconditioned units
            converged = np.isfinite(value) and relative <= GRADIENT_TOLERANCE
            points.append(objective.point(z) if converged else None)


def weighted_likelihood_bootstrap(model: pm.Model, draws: int = 1000,
                                  random_seed: int | None = None) -> az.InferenceData:
    """Newton & Raftery's weighted likelihood bootstrap of ``model``.

    ``draws`` maximisers of ``sum_i g_i w_i log p(y_i | theta)`` with ``g ~ n Dirichlet(1, ..., 1)``
    fresh per draw. Draws run one after another in this process: a draw of the suite's small models
    costs less than starting a worker process and compiling the model there.

    Parameters
    ----------
    model : pymc.Model
        With observed terms or potentials and non-negative weights in ``pm.Data("weights")``.
    draws : int, default 1000
        Draws, at least 1.
    random_seed : int, optional
        Seed of the Dirichlet multipliers.

    Returns
    -------
    arviz.InferenceData
        ``posterior`` (one chain) holds the free variables and deterministics, so ArviZ plots and
        summaries work on it; as :class:`WeightedLikelihoodBootstrap` returns it (NaN for draws that
        did not converge, counted in ``attrs["failed_draws"]``).

    Raises
    ------
    InputError
        For a model without likelihood terms or ``pm.Data("weights")``, or negative weights.
    UnboundedLikelihoodError
        When the full-data WMLE does not exist (separation).

    Warns
    -----
    RuntimeWarning
        When some draws did not converge.

    Examples
    --------
    >>> import models
    >>> idata = models.weighted_likelihood_bootstrap(models.coin.build_model([1, 0, 1, 1]), draws=200,
    ...                                              random_seed=1)
    >>> idata.posterior["p"].shape, round(float(idata.posterior["p"].mean()), 3)
    ((1, 200), 0.764)
    """
    return WeightedLikelihoodBootstrap(model)(draws=draws, random_seed=random_seed)


def weighted_likelihood_bootstrap_many(model: pm.Model, datasets, draws: int, random_seeds) -> list:
    """The WLB of many data sets of one model, batched when that pays.

    With JAX and at least :data:`~models.sampling.dispatch.BATCH_MIN_OPTIMISATIONS` optimisations
    (data sets whose WMLE exists x draws), all of them run in one program (:class:`BatchedWLB`);
    otherwise one after another (draws that did not converge are counted in ``attrs``, not warned
    about). The model is left holding the last data set.

    Parameters
    ----------
    model : pymc.Model
        With its weights in ``pm.Data("weights")``.
    datasets : iterable of dict
        ``pm.Data`` name -> values each, shapes as the model's; names left out keep the model's
        values.
    draws : int
        Draws per data set.
    random_seeds : iterable of int
        One per data set.

    Returns
    -------
    list
        One ``InferenceData`` per data set as :func:`weighted_likelihood_bootstrap` gives it, or
        ``None`` where the data set's WMLE does not exist (decided exactly where the model's family
        knows how, :mod:`models.estimation.existence`; by the ridge path otherwise).

    Raises
    ------
    InputError
        For not one seed per data set, a name that is not ``pm.Data`` of the model, or negative
        weights.

    Examples
    --------
    >>> import numpy as np, models
    >>> model = models.coin.build_model([1, 0, 1, 1])
    >>> fits = models.weighted_likelihood_bootstrap_many(
    ...     model, [{}, {"flips": np.array([1, 1, 1, 1])}], draws=200, random_seeds=[1, 2])
    >>> [fit.posterior["p"].shape for fit in fits]
    [(1, 200), (1, 200)]
    >>> separated = models.classes.build_model([[-1.0], [1.0], [0.5]], [0, 1, 1])
    >>> models.weighted_likelihood_bootstrap_many(separated, [{}], draws=200, random_seeds=[1])
    [None]
    """
    datasets, seeds = resolve_datasets(model, datasets), list(random_seeds)
    if len(datasets) != len(seeds):
        raise InputError(f"need one seed per data set, got {len(datasets)} and {len(seeds)}")
    with data_kept(model):   # the caller's model keeps its data
        return _bootstrap_each(model, datasets, seeds, draws)


def _bootstrap_each(model, datasets, seeds, draws) -> list:
    """The WLB of each data set whose WMLE exists (None for the others), swapping the model's data."""
    terms = [*model.observed_RVs, *model.potentials]
    exists = []
    for data in datasets:
        pm.set_data(data, model=model)
        verdict = mle_verdict(model)
        if verdict is None:   # nothing exact decides: the ridge path does, as for the WMLE itself
            try:
                verdict = maximise(model, terms, "weighted log-likelihood").existence
            except UnboundedLikelihoodError as err:
                verdict = err.existence
        exists.append(verdict.exists)
    chosen = [i for i, ok in enumerate(exists) if ok]
    results: list = [None] * len(datasets)
    if not chosen:
        return results
    if not dispatch.batched_available() or len(chosen) * draws < dispatch.BATCH_MIN_OPTIMISATIONS:
        for i in chosen:
            pm.set_data(datasets[i], model=model)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)   # failed draws are counted in attrs
                results[i] = weighted_likelihood_bootstrap(model, draws=draws, random_seed=seeds[i])
        return results
    engine = compiled.cached(model, "batched_wlb", lambda: BatchedWLB(model))
    posterior, failed, _ = engine([datasets[i] for i in chosen], draws,
                                               [seeds[i] for i in chosen])
    for k, i in enumerate(chosen):
        pm.set_data(datasets[i], model=model)
        results[i] = idata_builder.from_draws(
            model, {name: values[k][None] for name, values in posterior.items()},
            attrs={"method": "weighted_likelihood_bootstrap", "draws": draws, "failed_draws": int(failed[k]),
                   "random_seed": seeds[i], "optimiser": "damped Newton, batched"})
    return results


class BatchedWLB(JaxModel):
    """The weighted likelihood bootstrap of many data sets of one model, in one JAX program.

    Newton & Raftery's weighted likelihood bootstrap for many data sets of one model, every draw's
    optimisation at once (the batched counterpart of :class:`WeightedLikelihoodBootstrap`).

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

    ``engine(datasets, draws, random_seeds)`` returns ``(posterior, failed, fitted)``. The engine
    holds the model by a weak reference: keep the model while using it.

    Parameters
    ----------
    model : pymc.Model
        With its weights in ``pm.Data("weights")``.
    iterations : int, default 40
        Newton steps at most, per optimisation.
    tolerance : float, default 1e-12
        Convergence: the Newton decrement at most ``tolerance`` times the objective's size (at least 1).
    datasets_per_call : int, default 32
        Data sets per call of the compiled program (rounded up to a multiple of the cores).

    Raises
    ------
    InputError
        Without JAX, when the model keeps no weights in ``pm.Data("weights")``, or for settings out of
        range; on a call, for not one seed per data set or negative weights.

    Examples
    --------
    >>> import numpy as np, models
    >>> from models.calibrate import BatchedWLB
    >>> model = models.coin.build_model([1, 0, 1, 1])
    >>> engine = BatchedWLB(model)  # doctest: +SKIP
    >>> posterior, failed, fitted = engine([{}, {"weights": np.full(4, 2.0)}], 200, [1, 2])  # doctest: +SKIP
    >>> posterior["p"].shape, failed, fitted  # doctest: +SKIP
    ((2, 200), array([0, 0]), array([ True,  True]))
    """

    def __init__(self, model: pm.Model, *, iterations: int = 40, tolerance: float = 1e-12,
                 datasets_per_call: int = 32):
        if not dispatch.batched_available():
            raise InputError('the batched WLB needs JAX: pip install -e ".[jax]"')
        self.weights_name = weights_data(check_model(model)).name
        self.iterations = check_count(iterations, "iterations", 1)
        self.tolerance = float(tolerance)
        self.datasets_per_call = check_count(datasets_per_call, "datasets_per_call", 1)
        super().__init__(model)
        likelihood = model.logp(vars=[*model.observed_RVs, *model.potentials], jacobian=False)
        self._likelihood = jaxified(model, [likelihood], self.data_vars)
        self._program = None

    def _build(self):
        jax = self._jax
        jnp = jax.numpy
        weight_index = self.names.index(self.weights_name)

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

        self._program = over_lanes(jax, one_dataset)   # data sets over the devices, draws within
        return self._program

    def __call__(self, datasets, draws: int, random_seeds) -> tuple[dict, np.ndarray, np.ndarray]:
        """WLB draws of every data set, every optimisation in one program.

        Parameters
        ----------
        datasets : iterable of dict
            ``pm.Data`` name -> values; names left out keep the model's values.
        draws : int
            Draws per data set.
        random_seeds : iterable of int
            One per data set: the multipliers come from
            ``np.random.default_rng(seed).standard_exponential((draws, n))``.

        Returns
        -------
        posterior : dict
            Per output variable the draws ``(data sets, draws, *shape)``, NaN where a draw failed.
        failed : numpy.ndarray
            The failed draws per data set.
        fitted : numpy.ndarray
            Whether each data set's own WMLE converged (where it did not, all its draws are NaN).

        Raises
        ------
        InputError
            For not one seed per data set, negative weights, or ``draws`` or a seed out of range.
        """
        draws = check_count(draws, "draws", 1)
        seeds = [check_count(s, "random_seed", 0) for s in random_seeds]
        datasets = [dict(d) for d in datasets]
        if len(seeds) != len(datasets):
            raise InputError(f"need one seed per data set, got {len(datasets)} and {len(seeds)}")
        program = self._program or self._build()
        current = {d.name: np.asarray(d.get_value()) for d in self.data_vars}
        n = current[self.weights_name].size
        devices = device_count(self._jax)
        per_call = devices * -(-self.datasets_per_call // devices)
        results = []
        for first in range(0, len(datasets), per_call):
            chunk = datasets[first:first + per_call]
            chunk_seeds = seeds[first:first + per_call]
            padded = chunk + [chunk[0]] * (per_call - len(chunk))   # one program shape
            padded_seeds = chunk_seeds + [chunk_seeds[0]] * (per_call - len(chunk))
            data = tuple(np.stack([np.asarray(d.get(name, current[name]), dtype=var.dtype) for d in padded])
                         for name, var in zip(self.names, self.data_vars))
            if np.any(data[self.names.index(self.weights_name)] < 0):
                raise InputError("the weighted likelihood bootstrap needs non-negative weights")
            exponential = np.stack([np.random.default_rng(s).standard_exponential((draws, n))
                                    for s in padded_seeds])
            multipliers = n * exponential / exponential.sum(axis=2, keepdims=True)
            fitted, converged, outputs = program(data, multipliers)
            flat = lambda x: np.asarray(x)[:len(chunk)]  # noqa: E731
            results.append((flat(fitted), flat(converged), [flat(o) for o in outputs]))
        fitted = np.concatenate([r[0] for r in results])
        converged = np.concatenate([r[1] for r in results]) & fitted[:, None]
        posterior = {}
        for k, name in enumerate(self.output_names):
            values = np.concatenate([r[2][k] for r in results]).astype(float)
            mask = converged.reshape(converged.shape + (1,) * (values.ndim - 2))
            posterior[name] = np.where(mask, values, np.nan)
        return posterior, (~converged).sum(axis=1), fitted
