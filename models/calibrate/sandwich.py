"""The sandwich adjustment of weighted posterior draws: their covariance made the sampling variance.

Williams & Savitsky (2021, "Uncertainty estimation for pseudo-Bayesian inference
under complex sampling", Bayesian Analysis 16(1)). In the unconstrained space z that NUTS samples in,
with the draws' mean ``z_bar`` and covariance ``V`` (about ``H^-1`` for a near-Gaussian posterior)::

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

import arviz as az
import numpy as np
import pymc as pm
import pytensor
import pytensor.tensor as pt
from pytensor.graph.replace import graph_replace, vectorize_graph

from models import compiled
from models._graph import check_model, weights_data
from models.diagnostics import diagnose
from models.errors import InputError
from models.sampling import idata as idata_builder

__all__ = ["SandwichAdjustment", "sandwich_adjust"]


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
    deterministics). Potentials have no per-row structure and are refused.
    An instance called on draws (``adjust(idata)``) returns them adjusted, as :func:`sandwich_adjust` does.

    Parameters
    ----------
    model : pymc.Model
        With per-row observed terms (no potentials), continuous free variables and its weights in
        ``pm.Data("weights")``.

    Raises
    ------
    InputError
        When ``model`` is not a ``pymc.Model``, has potentials, no observed variables, discrete free
        variables or no ``pm.Data("weights")``; on a call, as :func:`sandwich_adjust`.

    Examples
    --------
    >>> import numpy as np, models
    >>> from models.calibrate import SandwichAdjustment
    >>> hessian, meat = SandwichAdjustment(models.coin.build_model([1, 0, 1, 1])).matrices(np.zeros(1))
    >>> hessian, meat   # at p = 0.5: H includes the prior and the Jacobian
    (array([[1.5]]), array([[1.]]))
    >>> ten = models.coin.build_model([1, 0, 1, 1], np.full(4, 10.0))
    >>> SandwichAdjustment(ten).matrices(np.zeros(1))   # H about 10 times, J 100 times
    (array([[10.5]]), array([[100.]]))
    """

    def __init__(self, model: pm.Model):
        self.model = check_model(model)
        if model.potentials:
            raise InputError("the sandwich adjustment needs per-row likelihood terms; the model has "
                             f"potentials {[p.name for p in model.potentials]}")
        if not model.observed_RVs:
            raise InputError("the model has no observed variables: there are no per-row scores")
        if model.discrete_value_vars:
            names = [v.name for v in model.discrete_value_vars]
            raise InputError(f"cannot adjust discrete free variables {names}")
        self._weights = weights_data(model)
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
        """Rows of raveled z ``(draws, size)`` as the value variables, ``(draws, *shape)`` each."""
        parts = np.split(z, np.cumsum([int(np.prod(s)) for s in self.shapes])[:-1], axis=-1)
        return [p.reshape(len(z), *s) for p, s in zip(parts, self.shapes)]

    def _gradient(self, z: np.ndarray) -> np.ndarray:
        return self._log_density(np.ascontiguousarray(z, dtype=np.float64), extra_vars={})[1]

    def matrices(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(H, J)`` at z: the sandwich's bread and meat.

        Both by central differences with step ``h = 1e-5 (1 + |z_k|)``: of the exact gradient for H
        (symmetrised; truncation error of order h^2 times the third derivative, rounding error of
        order ``1e-16 |gradient| / h``, about 1e-9 relative for this suite's well-scaled models, tested
        against the symbolic Hessian), of the per-row terms for the scores; either error is far below
        J's sampling error.

        Parameters
        ----------
        z : numpy.ndarray
            The raveled unconstrained vector.

        Returns
        -------
        H : numpy.ndarray
            Minus the Hessian of the log density of z (Jacobian included), ``(size, size)``.
        J : numpy.ndarray
            The variance of the sum of the per-row weighted scores,
            ``n / (n - 1) sum_i (g_i - g_bar)(g_i - g_bar)^T``, ``(size, size)``.

        Raises
        ------
        InputError
            With fewer than 2 rows (no score variance to estimate).
        """
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
        name = self._weights.name
        if "constant_data" in idata.groups() and name in idata.constant_data:
            used = idata.constant_data[name].values
            current = self._weights.get_value()
            if used.shape != current.shape or not np.allclose(used, current, rtol=1e-12, atol=0):
                raise InputError("the draws were made with other weights than the model holds now")
        return {name: idata.posterior[name].values for name in names}

    def __call__(self, idata: az.InferenceData) -> az.InferenceData:
        """Adjusted draws as a new ``InferenceData``.

        Parameters
        ----------
        idata : arviz.InferenceData
            Posterior draws of the model's free variables, made with the weights the model holds.

        Returns
        -------
        arviz.InferenceData
            ``posterior`` (same chains and draws, free variables and recomputed deterministics), the
            input's ``constant_data`` and ``observed_data``; ``attrs`` keep the input's and add
            ``method``, the variance ratios ``diag(V_adj) / diag(V)`` of the unconstrained
            coordinates and, for NUTS draws, their diagnostics (``source_diagnostics_*``).
            ``sample_stats`` and ``log_likelihood`` are not carried over: they describe the draws
            before the adjustment.

        Raises
        ------
        InputError
            As :func:`sandwich_adjust`.
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
        # The model holds the data the draws were made with (_check_draws compares the weights).
        result = idata_builder.from_draws(self.model, posterior, attrs={
            **idata.attrs, "method": "sandwich_adjusted",
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
    """Williams & Savitsky's sandwich adjustment of posterior draws of ``model``.

    The draws (e.g. from ``inference.sample``) are rescaled linearly in the unconstrained space, about
    their mean, so that their covariance becomes ``H^-1 J H^-1`` instead of about ``H^-1`` (module
    docstring: the formulas and the assumptions). :class:`SandwichAdjustment` compiles once for many.

    Parameters
    ----------
    model : pymc.Model
        Holding the data the draws were made with; per-row observed terms, no potentials.
    idata : arviz.InferenceData
        With draws of every free variable in ``posterior``.

    Returns
    -------
    arviz.InferenceData
        A new one: the adjusted ``posterior``, the input's ``constant_data`` and ``observed_data``,
        and in ``attrs`` the input's, ``method="sandwich_adjusted"``, the variance ratios
        (``variance_ratio``) and, for NUTS draws, their diagnostics (``source_diagnostics_*``).

    Raises
    ------
    InputError
        For a model the adjustment cannot take (see :class:`SandwichAdjustment`); draws that are
        missing a free variable, are not finite, or were made with other weights than the model holds
        now; fewer than 2 rows; a covariance that is not positive definite or a log density that is not
        concave at the posterior mean.

    Examples
    --------
    >>> import models
    >>> model = models.coin.build_model([1, 0, 1, 1])
    >>> idata = models.sample(model, draws=200, tune=200, chains=2, random_seed=1)
    >>> adjusted = models.sandwich_adjust(model, idata)
    >>> adjusted.posterior["p"].shape, adjusted.attrs["method"]
    ((2, 200), 'sandwich_adjusted')
    """
    return SandwichAdjustment(model)(idata)
