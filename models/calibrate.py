"""Calibrated uncertainty for weighted (pseudo-)posteriors: the weighted likelihood bootstrap, the
sandwich adjustment, and the weights' scale calibrated from the data (:func:`gpc`, in :mod:`models.gpc`).

The weighted posterior ``log p(theta) + sum_i w_i log p(y_i | theta)`` narrows by about ``1 / sqrt(c)``
when every weight is multiplied by ``c``, while the weighted MLE stays put. Unless the weights are
frequency weights (``w_i`` independent copies of row i), its spread is therefore set by an arbitrary
scale, and its credible intervals need not cover anything at their nominal rate. Two remedies, both
treating the model's *rows* as the independently sampled units:

Weighted likelihood bootstrap (Newton & Raftery 1994). Draw ``g ~ n Dirichlet(1, ..., 1)`` (i.e.
``g_i = n e_i / sum_j e_j`` with ``e_i ~ Exp(1)``), and maximise ``sum_i g_i w_i log p(y_i | theta)``
(priors dropped). The maximisers are draws from an approximate sampling distribution of the WMLE:
with ``w = 1`` and one parameter, the Bayesian bootstrap (Rubin 1981) of the estimator. For the coin
the maximiser is ``sum g w y / sum g w``; with ``w = 1`` its mean is ybar and its variance
``ybar (1 - ybar) / (n + 1)``. The scale of ``w`` cancels, so the WLB ignores it; rows with
frequency weights are treated as one unit each (``k * Exp(1)``, not ``Gamma(k, 1)``), which
overstates the variance when a row stands for k independent copies.

Sandwich adjustment (Williams & Savitsky 2021, "Uncertainty estimation for pseudo-Bayesian inference
under complex sampling", Bayesian Analysis 16(1)). In the unconstrained space z that NUTS samples in,
with the draws' mean ``z_bar`` and covariance ``V`` (about ``H^-1`` for a near-Gaussian posterior),

    H = -d^2/dz^2 [log p(z) + sum_i w_i log p(y_i | z) + log |dtheta/dz|]   at z_bar
    g_i = d/dz [w_i log p(y_i | z)]   at z_bar      (per-row weighted scores)
    J = n / (n - 1) sum_i (g_i - g_bar)(g_i - g_bar)^T                     (the variance of sum_i g_i)
    V_adj = H^-1 J H^-1,        z_adj = z_bar + A (z - z_bar),   A V A = V_adj,

with ``A = V^-1/2 (V^1/2 V_adj V^1/2)^1/2 V^-1/2``, the symmetric positive semi-definite solution (the
optimal-transport map between the two Gaussians): the adjusted draws keep the posterior mean of z and
have covariance exactly ``V_adj``, the sampling variance of the estimator (the "robust" or sandwich
variance). Williams & Savitsky map with Cholesky factors, ``L_adj L^-1``, which gives the same
covariance but rotates the draws; the symmetric map moves every draw the least, is the identity when
``V_adj = V``, and allows a singular J (directions only the prior identifies, like the common shift
of a softmax's preferences, then keep no spread: the estimator does not vary along them).
Multiplying ``w`` by c multiplies H by about c and J by c^2, so
``V_adj`` does not depend on the weights' scale; with ``w = 1`` and a well-specified model J estimates
the Fisher information, J ~ H, and the adjustment is about the identity. Assumptions: (1) the
posterior of z is approximately Gaussian (the map is linear: skewness is kept, not corrected);
(2) rows are independent units: clustered or stratified designs need J summed over clusters
(scores added within a cluster first), which this function does not do; (3) the weights are fixed
numbers: weights estimated from the same data (class-balanced weights from class counts) carry extra
variance that neither J nor the WLB sees; (4) the adjustment is made in the unconstrained space and
mapped back, so intervals of bounded parameters stay inside their bounds.
"""

from __future__ import annotations

import warnings
import weakref

import arviz as az
import numpy as np
import pymc as pm
import pytensor
import pytensor.tensor as pt
from pytensor.compile.sharedvalue import SharedVariable
from pytensor.graph.replace import graph_replace, vectorize_graph
from threadpoolctl import threadpool_limits

from models import batched, compiled, existence
from models.diagnostics import diagnose
from models.errors import InputError
from models.maximise import UnboundedLikelihoodError, argmax, compiled_objective, maximise

__all__ = ["SandwichAdjustment", "WeightedLikelihoodBootstrap", "gpc", "sandwich_adjust",
           "weighted_likelihood_bootstrap"]

# A WLB draw counts as converged when the largest gradient of the weighted log-likelihood, in the
# optimiser's preconditioned units (relative to the size of f and unit curvature at the start), is
# below this: the level at which ``models.maximise`` warns that an estimate may be inaccurate.
GRADIENT_TOLERANCE = 1e-6


def _check_model(model) -> pm.Model:
    if not isinstance(model, pm.Model):
        raise InputError(f"model must be a pymc.Model, got {type(model).__name__}")
    return model


def _check_count(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InputError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _weights_data(model: pm.Model) -> SharedVariable:
    weights = model.named_vars.get("weights")
    if not isinstance(weights, SharedVariable):
        raise InputError("the model keeps no weights in pm.Data('weights'): build it with a models.* builder")
    return weights


def _data_values(model: pm.Model) -> tuple[dict, dict]:
    """Values and dims of every ``pm.Data`` of the model (for ``constant_data``)."""
    values = {name: np.asarray(var.get_value()) for name, var in model.named_vars.items()
              if isinstance(var, SharedVariable)}
    dims = {name: list(model.named_vars_to_dims[name]) for name in values if name in model.named_vars_to_dims}
    return values, dims


def _posterior_dims(model: pm.Model, names) -> tuple[dict, dict]:
    dims = {name: list(model.named_vars_to_dims[name]) for name in names if name in model.named_vars_to_dims}
    used = {dim for ds in dims.values() for dim in ds}
    coords = {dim: np.asarray(model.coords[dim]) for dim in used if model.coords.get(dim) is not None}
    return dims, coords


def _as_idata(model: pm.Model, posterior: dict, attrs: dict) -> az.InferenceData:
    data, data_dims = _data_values(model)
    dims, coords = _posterior_dims(model, posterior)
    for ds in data_dims.values():
        coords.update({d: np.asarray(model.coords[d]) for d in ds if model.coords.get(d) is not None})
    idata = az.from_dict(posterior=posterior, constant_data=data, dims={**dims, **data_dims}, coords=coords)
    idata.attrs.update(attrs)
    return idata


# --------------------------------------------------------------------------- weighted likelihood bootstrap


class WeightedLikelihoodBootstrap:
    """The WLB of one model, compiled once (see the module docstring); call it for draws.

    The weighted log-likelihood (observed terms and potentials, priors dropped) and its gradient are
    compiled once per model (``models.maximise.compiled_objective``, shared with ``inference.mle``);
    each draw sets ``pm.Data("weights")`` to ``w * g`` and runs L-BFGS warm-started at the full-data
    WMLE. After ``pm.set_data`` with new data of the same shapes, calling again reuses the compiled code.
    """

    def __init__(self, model: pm.Model):
        self.model = _check_model(model)
        self.terms = [*model.observed_RVs, *model.potentials]
        if not self.terms:
            raise InputError("the model has no observed variables or potentials: there is no likelihood")
        self._weights = _weights_data(model)
        self._objective = compiled_objective(model, self.terms)

    def __call__(self, draws: int = 1000, random_seed: int | None = None) -> az.InferenceData:
        """``draws`` WLB draws as ``InferenceData`` (one chain): free variables and deterministics in
        ``posterior`` with the model's dims and coords, the data in ``constant_data``; ``attrs``
        record ``method``, ``draws``, ``random_seed`` and ``failed_draws``.

        Raises ``InputError`` for negative weights (a Dirichlet reweighting of signed weights can make
        the maximiser vanish in some draws and not others) and ``UnboundedLikelihoodError`` when the
        full-data WMLE does not exist (separation): Dirichlet multipliers are positive, so no draw's
        maximiser would exist either. A draw whose optimiser does not converge (gradient above
        ``GRADIENT_TOLERANCE``, or a non-finite value) is stored as NaN, counted in
        ``attrs["failed_draws"]`` and warned about, never returned as a number.
        """
        draws = _check_count("draws", draws, 1)
        if random_seed is not None:
            random_seed = _check_count("random_seed", random_seed, 0)
        w = np.array(self._weights.get_value(), dtype=float)
        if np.any(w < 0):
            raise InputError("the weighted likelihood bootstrap needs non-negative weights; "
                             f"{int(np.sum(w < 0))} are negative")
        try:
            maximise(self.model, self.terms, "weighted log-likelihood", existence.of_mle(self.model))
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
        # spinning on busy cores made the draws up to 10x slower (measured with other processes running).
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
        return _as_idata(self.model, posterior, {
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
    """Newton & Raftery's weighted likelihood bootstrap of ``model``: ``draws`` maximisers of
    ``sum_i g_i w_i log p(y_i | theta)`` with ``g ~ n Dirichlet(1, ..., 1)`` fresh per draw.

    Returns ``InferenceData`` whose ``posterior`` (one chain) holds the free variables and
    deterministics, so ArviZ plots and summaries work on it. Draws run one after another in this
    process: a draw of the suite's small models takes milliseconds, less than starting a worker
    process and compiling the model there. See :class:`WeightedLikelihoodBootstrap` for the errors.
    """
    return WeightedLikelihoodBootstrap(model)(draws=draws, random_seed=random_seed)


BATCH_MIN_OPTIMISATIONS = 5_000
"""The batched WLB runs when data sets x draws reaches this; below, compiling the JAX program costs
more than the optimisations one after another."""


def weighted_likelihood_bootstrap_many(model: pm.Model, datasets, draws: int, random_seeds) -> list:
    """The WLB of many data sets of one model (``pm.Data`` name -> values each, shapes as the
    model's), one ``InferenceData`` per data set as :func:`weighted_likelihood_bootstrap` gives it,
    or ``None`` where the data set's WMLE does not exist (decided exactly where the model's family
    knows how, :mod:`models.existence`). With JAX and at least :data:`BATCH_MIN_OPTIMISATIONS`
    optimisations, all of them run in one program (:class:`models.batched.BatchedWLB`); otherwise
    one after another. The model is left holding the last data set."""
    datasets, seeds = batched.resolve_datasets(model, datasets), list(random_seeds)
    if len(datasets) != len(seeds):
        raise InputError(f"need one seed per data set, got {len(datasets)} and {len(seeds)}")
    terms = [*model.observed_RVs, *model.potentials]
    exists = []
    for data in datasets:
        pm.set_data(data, model=model)
        verdict = existence.of_mle(model)
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
    if not batched.available() or len(chosen) * draws < BATCH_MIN_OPTIMISATIONS:
        for i in chosen:
            pm.set_data(datasets[i], model=model)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)   # failed draws are counted in attrs
                results[i] = weighted_likelihood_bootstrap(model, draws=draws, random_seed=seeds[i])
        return results
    posterior, failed, _ = _batched_wlb(model)([datasets[i] for i in chosen], draws,
                                               [seeds[i] for i in chosen])
    for k, i in enumerate(chosen):
        pm.set_data(datasets[i], model=model)
        results[i] = _as_idata(model, {name: values[k][None] for name, values in posterior.items()}, {
            "method": "weighted_likelihood_bootstrap", "draws": draws, "failed_draws": int(failed[k]),
            "random_seed": seeds[i], "optimiser": "damped Newton, batched"})
    return results


_BATCHED_WLB: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()   # compiled once per model


def _batched_wlb(model: pm.Model):
    if model not in _BATCHED_WLB:
        _BATCHED_WLB[model] = batched.BatchedWLB(model)
    return _BATCHED_WLB[model]


# --------------------------------------------------------------------------- sandwich adjustment


class SandwichAdjustment:
    """The sandwich adjustment of one model's posterior draws, compiled once (module docstring).

    H is the central difference of the exact gradient of the model's log density of z (Jacobian
    included) that NUTS samples with (:func:`models.compiled.logp_dlogp`, compiled once per model
    object, so already compiled when PyMC drew this model's draws in this process; a symbolic
    Hessian, a graph per coordinate, cost more to compile than the whole adjustment). Compiles, as
    functions of the raveled unconstrained vector z, the per-row weighted log-likelihood
    ``w_i log p(y_i | z)`` of every observed variable (its gradients, the per-row scores, by central
    differences: PyTensor's vectorised Jacobian fails on some indexing graphs, and its scan version
    costs a scan per call), and the map from constrained draws to z and back (with the
    deterministics).
    Potentials have no per-row structure and are refused.
    """

    def __init__(self, model: pm.Model):
        self.model = _check_model(model)
        if model.potentials:
            raise InputError("the sandwich adjustment needs per-row likelihood terms; the model has "
                             f"potentials {[p.name for p in model.potentials]}")
        if not model.observed_RVs:
            raise InputError("the model has no observed variables: there are no per-row scores")
        if model.discrete_value_vars:
            names = [v.name for v in model.discrete_value_vars]
            raise InputError(f"cannot adjust discrete free variables {names}")
        self._weights = _weights_data(model)
        start = compiled.initial_point(model)
        self.value_vars = list(model.value_vars)
        self.shapes = [np.shape(start[v.name]) for v in self.value_vars]
        sizes = [int(np.prod(s)) for s in self.shapes]
        z = pt.vector("z", dtype="float64")
        offsets = np.concatenate([[0], np.cumsum(sizes)])
        replacements = {v: z[int(a):int(b)].reshape(s) for v, a, b, s in
                        zip(self.value_vars, offsets[:-1], offsets[1:], self.shapes)}
        self._log_density = compiled.logp_dlogp(model)
        terms = model.logp(vars=model.observed_RVs, sum=False)
        pointwise = pt.concatenate([pt.flatten(term) for term in terms])
        pointwise = graph_replace(pointwise, replacements, strict=False)
        self._pointwise = pytensor.function([z], pointwise, on_unused_input="ignore")
        # The maps between constrained draws and z, vectorised over draws (a leading axis): one call
        # for all of them, not one per draw.
        forward = []
        for rv in model.free_RVs:
            transform = model.rvs_to_transforms[rv]
            forward.append(rv if transform is None else transform.forward(rv, *rv.owner.inputs))
        batched_free = [pt.tensor(dtype=rv.dtype, shape=(None, *rv.type.shape)) for rv in model.free_RVs]
        self._unconstrain = pytensor.function(
            batched_free, vectorize_graph(forward, replace=dict(zip(model.free_RVs, batched_free))),
            on_unused_input="ignore")
        outputs = [*model.free_RVs, *model.deterministics]
        self.output_names = [v.name for v in outputs]
        batched_values = [pt.tensor(dtype=v.dtype, shape=(None, *v.type.shape)) for v in self.value_vars]
        constrained = vectorize_graph(model.replace_rvs_by_values(outputs),
                                      replace=dict(zip(self.value_vars, batched_values)))
        self._constrain = pytensor.function(batched_values, constrained, on_unused_input="ignore")

    def _split(self, z):
        """Rows of raveled z (draws, size) as the value variables, (draws, *shape) each."""
        parts = np.split(z, np.cumsum([int(np.prod(s)) for s in self.shapes])[:-1], axis=-1)
        return [p.reshape(len(z), *s) for p, s in zip(parts, self.shapes)]

    def _gradient(self, z: np.ndarray) -> np.ndarray:
        return self._log_density(np.ascontiguousarray(z, dtype=np.float64), extra_vars={})[1]

    def matrices(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(H, J)`` at z: minus the Hessian of the log density of z, and the variance of the sum of
        the per-row weighted scores, ``n / (n - 1) sum_i (g_i - g_bar)(g_i - g_bar)^T``.

        Both by central differences with step ``h = 1e-5 (1 + |z_k|)``: of the exact gradient for H
        (symmetrised; truncation error of order h^2 times the third derivative, rounding error of
        order 1e-16 |gradient| / h, about 1e-9 relative for this suite's well-scaled models, tested
        against the symbolic Hessian), of the per-row terms for the scores; either error is far below
        J's sampling error."""
        z = np.asarray(z, dtype=float)
        hessian = np.empty((z.size, z.size))
        scores = np.empty((np.size(self._pointwise(z)), z.size))
        for k in range(z.size):
            step = np.zeros(z.size)
            step[k] = 1e-5 * (1 + abs(z[k]))
            hessian[k] = -(self._gradient(z + step) - self._gradient(z - step)) / (2 * step[k])
            scores[:, k] = (self._pointwise(z + step) - self._pointwise(z - step)) / (2 * step[k])
        hessian = (hessian + hessian.T) / 2
        n = scores.shape[0]
        if n < 2:
            raise InputError("the sandwich adjustment needs at least 2 rows to estimate the score variance")
        centred = scores - scores.mean(axis=0)
        return hessian, n / (n - 1) * centred.T @ centred

    def _check_draws(self, idata) -> dict[str, np.ndarray]:
        if not isinstance(idata, az.InferenceData) or "posterior" not in idata.groups():
            raise InputError("idata must be an InferenceData with a posterior group, "
                             f"got {type(idata).__name__}")
        names = [rv.name for rv in self.model.free_RVs]
        missing = [name for name in names if name not in idata.posterior]
        if missing:
            raise InputError(f"the posterior has no draws of {missing}")
        if "constant_data" in idata.groups() and "weights" in idata.constant_data:
            used = idata.constant_data["weights"].values
            current = self._weights.get_value()
            if used.shape != current.shape or not np.allclose(used, current, rtol=1e-12, atol=0):
                raise InputError("the draws were made with other weights than the model holds now")
        return {name: idata.posterior[name].values for name in names}

    def __call__(self, idata: az.InferenceData) -> az.InferenceData:
        """Adjusted draws as a new ``InferenceData``: ``posterior`` (same chains and draws, free
        variables and recomputed deterministics), the input's ``constant_data`` and ``observed_data``;
        ``attrs`` keep the input's and add ``method``, the variance ratios ``diag(V_adj) / diag(V)``
        of the unconstrained coordinates and, for NUTS draws, their diagnostics
        (``source_diagnostics_*``). ``sample_stats`` and ``log_likelihood`` are not carried over:
        they describe the draws before the adjustment.
        """
        draws = self._check_draws(idata)
        first = next(iter(draws.values()))
        chains, per_chain = first.shape[:2]
        flat = {name: value.reshape(chains * per_chain, *value.shape[2:]) for name, value in draws.items()}
        names = [rv.name for rv in self.model.free_RVs]
        count = chains * per_chain
        z = np.concatenate([np.reshape(u, (count, -1)) for u in self._unconstrain(*(flat[n] for n in names))],
                           axis=1)
        if not np.all(np.isfinite(z)):
            raise InputError("the posterior draws have NaN or infinite values")
        centre = z.mean(axis=0)
        covariance = np.atleast_2d(np.cov(z, rowvar=False))
        hessian, meat = self.matrices(centre)
        try:
            np.linalg.cholesky(covariance)
            bread = np.linalg.inv(hessian)  # H^-1
            np.linalg.cholesky(bread)
        except np.linalg.LinAlgError:
            raise InputError("the sandwich adjustment needs a posterior with a positive definite covariance "
                             "and a log density that is concave at the posterior mean") from None
        target = bread @ meat @ bread
        root = _psd_sqrt(covariance)
        inverse_root = np.linalg.inv(root)
        transport = inverse_root @ _psd_sqrt(root @ target @ root) @ inverse_root  # A V A = V_adj
        adjusted = centre + (z - centre) @ transport.T
        outputs = self._constrain(*self._split(adjusted))
        posterior = {name: np.reshape(values, (chains, per_chain, *np.shape(values)[1:]))
                     for name, values in zip(self.output_names, outputs)}
        dims, coords = _posterior_dims(self.model, posterior)
        groups = {"posterior": az.from_dict(posterior=posterior, dims=dims, coords=coords).posterior}
        for group in ("constant_data", "observed_data"):
            if group in idata.groups():
                groups[group] = idata[group]
        result = az.InferenceData(**groups)
        result.attrs.update({**idata.attrs, "method": "sandwich_adjusted",
                             "variance_ratio": [float(r) for r in np.diag(target) / np.diag(covariance)]})
        if "sample_stats" in idata.groups():  # the NUTS draws it adjusted: their diagnostics, by name
            result.attrs.update({f"source_diagnostics_{key}": int(value) if isinstance(value, bool) else value
                                 for key, value in diagnose(idata).as_dict().items()})
        return result


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    """The symmetric square root of a symmetric positive semi-definite matrix (eigenvalues below 0,
    rounding, clipped)."""
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def sandwich_adjust(model: pm.Model, idata: az.InferenceData) -> az.InferenceData:
    """Williams & Savitsky's sandwich adjustment of posterior draws of ``model`` (e.g. from
    ``inference.sample``): the draws are rescaled linearly in the unconstrained space, about their
    mean, so that their covariance becomes ``H^-1 J H^-1`` instead of about ``H^-1`` (module
    docstring: the formulas and the assumptions). ``model`` must hold the data the draws were made
    with. Returns a new ``InferenceData``; :class:`SandwichAdjustment` compiles once for many."""
    return SandwichAdjustment(model)(idata)


def gpc(model: pm.Model, *, level: float = 0.9, random_seed: int, **options):
    """Generalised posterior calibration (Syring & Martin 2019) of the weights' scale: a
    :class:`models.gpc.GPCResult` with ``scale``, ``idata`` and ``path``. See :func:`models.gpc.gpc`
    for the algorithm and its ``options`` (bootstrap size, iterations, tolerance, sampler settings).
    It lives in :mod:`models.gpc` because it fits through :mod:`models.inference`, which imports this
    module."""
    from models import gpc as gpc_module

    return gpc_module.gpc(model, level=level, random_seed=random_seed, **options)
