"""Maximise part of a model's log density, given a verdict on whether a finite maximiser exists.

Used by :func:`models.estimation.estimators.mle` (likelihood terms only) and
:func:`models.estimation.estimators.map_estimate`
(all terms). Works in the unconstrained space z that PyMC samples in, on the model's own compiled
log density ``f`` and its gradient (for a model without transformed variables, NUTS's log density
less the prior: nothing more to compile once the model has been sampled, or before it is), with
L-BFGS preconditioned by the curvature at the start.

Existence is decided first (:mod:`models.estimation.existence`): exactly, by the model's family or its
structure, wherever they decide it; then :func:`maximise` returns the closed-form maximiser the
family gave, or runs L-BFGS to the maximiser known to exist, or raises ``UnboundedLikelihoodError``.
For what nothing exact decides (a model from outside the families whose likelihood may be unbounded
or separable), :func:`ridge_path` decides numerically by following a vanishing ridge::

    z(lambda) = argmax  f(z) / s  -  lambda/2 sum_j d_j (z_j - z0_j)^2,   lambda = 1e-1 ... 1e-8,

with ``s = max(|f(z0)|, max_j |df/dz_j(z0)|)`` (the size of f, or of its change over a unit step when
f(z0) cancels to about 0, as with advantages summing to zero) and ``d_j`` the curvature of ``f / s``
at the initial point ``z0`` in coordinate j, so that the path does not depend on the scale of the
weights nor on the units of any parameter. Curvatures below 1e-8 of the largest are floored there;
when f has no curvature at all (a linear f) the metric is the identity. As lambda -> 0
each coordinate either converges (its steps shrink like lambda once lambda is below the curvature at
the optimum), or runs off (steps of constant size: logarithmic growth, the supremum lies at infinity),
and ``f`` either converges or keeps climbing (unbounded above). The decision looks at the shape of
the path, not at a threshold in parameter units:

* ``f`` still rising at the end of the path as fast as a decade before: unbounded above;
* a constrained value whose last step is not below 1% of its largest step: no finite maximiser;
* only unconstrained coordinates running while the constrained values converge (all heads:
  logit p -> inf while p -> 1): the maximiser is on the boundary and is reported there.

This is a numerical judgement, and its rounding depends on the machine: a maximum whose curvature,
in some coordinate, is below about 1e-6 of the curvature at z0 has not settled by lambda = 1e-8 and
is reported as a runaway (e.g. a MAP whose prior is 1e4 times wider than the data's scale on a
separable data set). The suite's own models never reach it: their verdicts are exact; the tests use
the ridge path as an independent oracle for them.
"""

from __future__ import annotations

import warnings
import weakref

import numpy as np
import pymc as pm
import pytensor
from scipy import optimize

from models import compiled
from models.errors import InputError
from models.estimation.existence import Existence, UnboundedLikelihoodError

# Down to 1e-8: at a runaway the penalised gradient, about lambda |z|, stays far above the L-BFGS
# tolerance (1e-12), so the optimiser resolves every step of the path.
_RIDGE_PATH = tuple(10.0**-k for k in range(1, 9))
# Converged: last step below 1% of the largest (finite maxima shrink 10x per decade, runaways do not);
# never moved: largest step below 1e-8 of the value's size.
_LAST_STEP_SHARE = 0.01
_STILL = 1e-8
# Unbounded: the last rise of f is at least half the one before, and not rounding noise.
_RISE_RATIO = 0.5
_RISE_NOISE = 1e-9
_LBFGS_OPTIONS = {"maxiter": 50_000, "ftol": 0.0, "gtol": 1e-12}
# Curvatures (of f / scale, per unit of z) below this, relative to the largest, are treated as flat.
_FLAT = 1e-8
_GRADIENT_WARNING = 1e-6


__all__ = ["Estimate", "Objective", "UnboundedLikelihoodError", "argmax", "compiled_objective", "maximise",
           "point_of", "ridge_path"]


class Estimate(dict):
    """Constrained values of the free variables and deterministics at the maximiser.

    A dict, name -> array, which also carries the verdict on existence it was found under.

    Parameters
    ----------
    values : dict
        Name -> value of every free variable and deterministic at the maximiser.
    existence : Existence
        The :class:`~models.estimation.existence.Existence` verdict it was found under.

    Attributes
    ----------
    existence : Existence
        As given.

    Examples
    --------
    >>> import models
    >>> estimate = models.mle(models.coin.build_model([1, 0, 1, 1]))
    >>> sorted(estimate), round(float(estimate["p"]), 6), estimate.existence.method
    (['p'], 0.75, 'closed form')
    """

    def __init__(self, values: dict, existence: Existence):
        super().__init__(values)
        self.existence = existence

    def __reduce__(self):
        return (Estimate, (dict(self), self.existence))


class _Compiled:
    """A model's weighted log-likelihood and log prior (no Jacobian), each with its gradient, as
    functions of the raveled unconstrained vector z, and the constrained point at z: what the MLE and
    the MAP objectives of one model share.

    With ``separate_likelihood`` (or a transformed free variable, whose Jacobian NUTS's log density
    includes) both parts come from one function compiled for them. Otherwise NUTS's log density and
    gradient (:func:`models.compiled.logp_dlogp`, compiled once per model and shared with sampling)
    is their sum, and only the log prior has a function of its own (a few small terms): the
    likelihood is the difference, to rounding of the prior's size. The ridge path asks for the
    separate likelihood: far out along a runaway the prior is large and the difference would carry
    its rounding."""

    def __init__(self, model: pm.Model, separate_likelihood: bool):
        if model.discrete_value_vars:
            names = [v.name for v in model.discrete_value_vars]
            raise InputError(f"cannot optimise discrete free variables {names}")
        if not model.value_vars:
            raise InputError("the model has no free variables to estimate")
        self._model = weakref.ref(model)  # no strong reference: the compiled cache must not keep models alive
        self.value_vars = list(model.value_vars)
        start = compiled.initial_point(model)
        self.shapes = [np.shape(start[v.name]) for v in self.value_vars]
        self.sizes = [int(np.prod(s)) for s in self.shapes]
        self.x0 = np.concatenate([np.ravel(start[v.name]) for v in self.value_vars]).astype(float)
        def with_gradient(terms):
            # A flat prior, or a variable only the prior informs, leaves a part without a gradient: zero.
            log_density = model.logp(vars=terms, jacobian=False)
            return [log_density, *pytensor.grad(log_density, self.value_vars, disconnected_inputs="ignore")]

        transformed = any(model.rvs_to_transforms.get(rv) is not None for rv in model.free_RVs)
        self._total = None if separate_likelihood or transformed else compiled.logp_dlogp(model)
        parts = with_gradient(model.free_RVs)   # the prior
        if self._total is None:
            parts = with_gradient([*model.observed_RVs, *model.potentials]) + parts
        self._parts = model.compile_fn(parts, inputs=self.value_vars, point_fn=False,
                                       on_unused_input="ignore")
        outputs = [*model.free_RVs, *model.deterministics]
        self.output_names = [v.name for v in outputs]
        self._outputs = model.compile_fn(
            model.replace_rvs_by_values(outputs), inputs=self.value_vars, point_fn=False,
            on_unused_input="ignore",
        )

    def split(self, z):
        parts = np.split(np.asarray(z, dtype=float), np.cumsum(self.sizes)[:-1])
        return [p.reshape(s) for p, s in zip(parts, self.shapes)]

    def parts(self, z):
        def raveled(gradients):
            return np.concatenate([np.ravel(g) for g in gradients])

        values = self._parts(*self.split(z))
        if self._total is None:   # [likelihood, its gradient..., prior, its gradient...]
            half = len(values) // 2
            return float(values[0]), float(values[half]), raveled(values[1:half]), raveled(values[half + 1:])
        total, total_gradient = self._total(np.ascontiguousarray(z, dtype=np.float64), extra_vars={})
        prior, prior_gradient = float(values[0]), raveled(values[1:])
        return float(total) - prior, prior, total_gradient - prior_gradient, prior_gradient

    def outputs(self, z):
        return self._outputs(*self.split(z))


class Objective:
    """The MLE's or the MAP's objective, with its gradient, as functions of the unconstrained z.

    The MLE's objective is the weighted log-likelihood; ``with_prior``, the MAP's is the log posterior
    density without Jacobian. Both are functions of the raveled unconstrained vector z, and both are
    views of one compiled set of functions per model (``_Compiled``). Made by
    :func:`compiled_objective`.

    Parameters
    ----------
    compiled : _Compiled
        The model's compiled log-likelihood and log prior.
    model : pymc.Model
        The model, held by a weak reference.
    with_prior : bool
        Add the log prior (the MAP's objective).

    Attributes
    ----------
    with_prior : bool
        As given.
    value_vars : list
        The model's value variables, in the order z ravels them.
    x0 : numpy.ndarray
        The model's initial point, raveled.
    output_names : list of str
        The free variables and deterministics :meth:`point` returns.
    model : pymc.Model
        The model (a property reading the weak reference).

    Examples
    --------
    >>> import models
    >>> from models.estimation.maximise import compiled_objective
    >>> model = models.coin.build_model([1, 0, 1, 1])
    >>> objective = compiled_objective(model, model.observed_RVs)
    >>> value, gradient = objective.value_and_grad(objective.x0)   # at p = 0.5
    >>> round(value, 4), gradient
    (-2.7726, array([1.]))
    """

    def __init__(self, compiled: _Compiled, model: pm.Model, *, with_prior: bool):
        self._compiled = compiled
        self._model = weakref.ref(model)
        self.with_prior = with_prior
        self.value_vars, self.x0 = compiled.value_vars, compiled.x0
        self.output_names = compiled.output_names

    @property
    def model(self) -> pm.Model:
        """The model (``None`` once it no longer exists: the objective holds it weakly)."""
        return self._model()

    def value_and_grad(self, z):
        """The objective and its gradient at z.

        Parameters
        ----------
        z : numpy.ndarray
            The raveled unconstrained vector.

        Returns
        -------
        tuple of (float, numpy.ndarray)
            The objective's value and its gradient with respect to z.
        """
        likelihood, prior, likelihood_gradient, prior_gradient = self._compiled.parts(z)
        if self.with_prior:
            return likelihood + prior, likelihood_gradient + prior_gradient
        return likelihood, likelihood_gradient

    def point(self, z) -> dict[str, np.ndarray]:
        """Constrained values of the free variables and the deterministics at z.

        Parameters
        ----------
        z : numpy.ndarray
            The raveled unconstrained vector.

        Returns
        -------
        dict
            Name -> array, for every name in :attr:`output_names`.
        """
        return {name: np.asarray(v) for name, v in zip(self.output_names, self._compiled.outputs(z))}

    def free_values(self, z) -> np.ndarray:
        """The constrained values of the free variables at z, raveled and concatenated.

        Parameters
        ----------
        z : numpy.ndarray
            The raveled unconstrained vector.

        Returns
        -------
        numpy.ndarray
            One number per scalar element of the free variables, in the order of :meth:`free_labels`.
        """
        point = self.point(z)
        return np.concatenate([np.ravel(point[rv.name]) for rv in self.model.free_RVs])

    def curvature(self, z, scale: float) -> np.ndarray:
        """The curvature of ``f / scale`` in every coordinate of z, floored.

        ``|d^2 (f / scale) / dz_j^2|`` at z, by central differences of the gradient. Values that are
        not finite become 1; values below ``1e-8`` of the largest are floored there; with no
        curvature anywhere (a linear f) the metric is the identity (all ones).

        Parameters
        ----------
        z : numpy.ndarray
            The raveled unconstrained vector.
        scale : float
            The size ``s`` of f (see the module docstring).

        Returns
        -------
        numpy.ndarray
            One positive number per coordinate of z.
        """
        curvature = np.ones(z.size)
        for j in range(z.size):
            step = np.zeros(z.size)
            step[j] = 1e-4 * (1 + abs(z[j]))
            change = self.value_and_grad(z + step)[1][j] - self.value_and_grad(z - step)[1][j]
            curvature[j] = abs(change) / (2 * step[j] * scale)
        curvature[~np.isfinite(curvature)] = 1.0
        largest = curvature.max()
        if not largest > _FLAT:  # no curvature anywhere (a linear f): unit metric
            return np.ones(z.size)
        return np.maximum(curvature, _FLAT * largest)

    def free_labels(self) -> list[str]:
        """``name[dim=coord, ...]`` for every scalar element of the free variables.

        Returns
        -------
        list of str
            In the order of :meth:`free_values`; a scalar variable is its bare name.
        """
        labels = []
        point = self.point(self.x0)
        for rv in self.model.free_RVs:
            shape = np.shape(point[rv.name])
            dims = self.model.named_vars_to_dims.get(rv.name) or (None,) * len(shape)
            for index in np.ndindex(*shape):
                parts = []
                for dim, i in zip(dims, index):
                    coords = self.model.coords.get(dim) if dim else None
                    parts.append(f"{dim}={coords[i]}" if coords is not None else str(i))
                labels.append(f"{rv.name}[{', '.join(parts)}]" if parts else rv.name)
        return labels


def compiled_objective(model: pm.Model, terms, *, separate_likelihood: bool = False) -> Objective:
    """The :class:`Objective` of ``terms``, compiled once per model.

    Compiled once per model object, for both the MLE and the MAP, and kept while the model lives;
    values in ``pm.Data`` are read at every call, so changing them needs no recompilation.

    Parameters
    ----------
    model : pymc.Model
    terms : iterable of variables
        The likelihood terms (observed variables and potentials), for the MLE, or those and every
        free variable, for the MAP.
    separate_likelihood : bool, default False
        Compile the likelihood on its own rather than as NUTS's log density minus the prior (see
        ``_Compiled``), for values far out.

    Returns
    -------
    Objective

    Raises
    ------
    InputError
        When ``terms`` are neither of the two sets, or the model has discrete free variables or no
        free variables.

    Examples
    --------
    >>> import models
    >>> from models.estimation.maximise import compiled_objective
    >>> model = models.coin.build_model([1, 0, 1, 1])
    >>> compiled_objective(model, [*model.observed_RVs, *model.free_RVs]).with_prior
    True
    """
    likelihood = {*model.observed_RVs, *model.potentials}
    chosen = set(terms)
    if chosen not in (likelihood, likelihood | set(model.free_RVs)):
        raise InputError("an objective is the likelihood terms (observed variables and potentials), "
                         "with or without every free variable's prior")
    key = ("objective", tuple(model.value_vars), bool(separate_likelihood))
    parts = compiled.cached(model, key, lambda: _Compiled(model, bool(separate_likelihood)))
    return Objective(parts, model, with_prior=chosen != likelihood)


def argmax(objective: Objective, z_start, scale: float, metric, ridge: float = 0.0):
    """The argmax of ``f(z) / scale - ridge/2 sum_j metric_j (z_j - z0_j)^2``, by L-BFGS.

    L-BFGS runs in the preconditioned coordinates ``v = sqrt(metric) (z - z0)``, where the curvature
    at z0 is one in every direction, so parameters of very different units converge alike. Where f is
    +inf the optimiser keeps going; where it is -inf or NaN it steps back.

    Parameters
    ----------
    objective : Objective
        f, and z0 (``objective.x0``).
    z_start : numpy.ndarray
        Where L-BFGS starts.
    scale : float
        The size of f.
    metric : numpy.ndarray
        One positive number per coordinate, the curvature at z0 (:meth:`Objective.curvature`).
    ridge : float, default 0.0
        The ridge's weight lambda; 0 maximises f itself.

    Returns
    -------
    numpy.ndarray
        The maximiser z.

    Examples
    --------
    >>> import numpy as np, models
    >>> from models.estimation.maximise import argmax, compiled_objective
    >>> model = models.coin.build_model([1, 0, 1, 1])
    >>> objective = compiled_objective(model, model.observed_RVs)
    >>> z = argmax(objective, objective.x0, 1.0, np.ones(1))
    >>> round(float(objective.point(z)["p"]), 6)
    0.75
    """
    anchor, root = objective.x0, np.sqrt(metric)

    def negative(v):
        value, grad = objective.value_and_grad(anchor + v / root)
        if not np.isfinite(value):  # +inf: keep going; -inf or NaN: step back
            return (-np.inf if value > 0 else np.inf), np.zeros_like(v)
        return -(value / scale - 0.5 * ridge * v @ v), -(grad / (scale * root) - ridge * v)

    v = optimize.minimize(negative, (z_start - anchor) * root, jac=True, method="L-BFGS-B",
                          options=_LBFGS_OPTIONS).x
    return anchor + v / root


def _converged(series: np.ndarray) -> np.ndarray:
    """Per column of a (steps, elements) path: does it converge (see module docstring)?"""
    with np.errstate(invalid="ignore"):
        steps = np.abs(np.diff(series, axis=0))
        largest = steps.max(axis=0)
        return (steps[-1] <= _LAST_STEP_SHARE * largest) | (largest <= _STILL * (1 + np.abs(series[-1])))


def point_of(model: pm.Model, values: dict) -> dict[str, np.ndarray]:
    """The point at given constrained values of the free variables: those and the deterministics.

    For a closed-form maximiser, which may lie on the boundary, where z is infinite. Evaluated once
    per estimate, so the deterministics are compiled without C code (``FAST_COMPILE``), once per
    model.

    Parameters
    ----------
    model : pymc.Model
    values : dict
        Name -> constrained value, for every free variable.

    Returns
    -------
    dict
        Name -> array, for every free variable and deterministic.

    Examples
    --------
    >>> import models
    >>> from models.estimation.maximise import point_of
    >>> point_of(models.coin.build_model([1, 1, 1]), {"p": 1.0})
    {'p': array(1.)}
    """
    def build():
        return pytensor.function(model.free_RVs, model.deterministics, mode="FAST_COMPILE",
                                 on_unused_input="ignore")

    key = ("deterministics", *(d.name for d in model.deterministics))
    deterministics = compiled.cached(model, key, build)
    inputs = [np.asarray(values[rv.name], dtype=rv.dtype) for rv in model.free_RVs]
    computed = deterministics(*inputs) if model.deterministics else []
    point = {rv.name: value for rv, value in zip(model.free_RVs, inputs)}
    point.update({d.name: np.asarray(v) for d, v in zip(model.deterministics, computed)})
    return point


def _start_scale_and_metric(objective: Objective, what: str) -> tuple[float, np.ndarray]:
    """The objective's size ``s`` and curvature metric at the initial point (see the module docstring)."""
    start_value, start_gradient = objective.value_and_grad(objective.x0)
    if not np.isfinite(start_value):
        raise InputError(f"the {what} is not finite at the model's initial point")
    # The size of f, or of its change over a unit step if larger: f(z0) alone can be 0 by cancellation
    # (advantages summing to zero in every state make f linear and f(z0) = 0).
    scale = max(abs(start_value), float(np.max(np.abs(start_gradient)))) or 1.0
    return scale, objective.curvature(objective.x0, scale)


def _optimum(objective: Objective, what: str) -> dict[str, np.ndarray]:
    """The point at the maximiser known to exist, by L-BFGS from the initial point."""
    scale, metric = _start_scale_and_metric(objective, what)
    z = argmax(objective, objective.x0, scale, metric)
    _warn_if_not_stationary(objective, z, scale, metric, what)
    return objective.point(z)


def _warn_if_not_stationary(objective: Objective, z, scale: float, metric, what: str) -> None:
    gradient = np.max(np.abs(objective.value_and_grad(z)[1] / (scale * np.sqrt(metric))))  # preconditioned
    if not gradient <= _GRADIENT_WARNING:
        warnings.warn(f"the {what}'s optimiser stopped at relative gradient {gradient:.2g}: "
                      "the estimate may be inaccurate", RuntimeWarning, stacklevel=4)


def _running(labels, path: np.ndarray) -> tuple[str, ...]:
    """``label -> +inf`` / ``-inf`` for the columns of a constrained path that do not converge."""
    moving = np.flatnonzero(~_converged(path))
    return tuple(f"{labels[i]} -> {'+inf' if path[-1, i] > path[-2, i] else '-inf'}" for i in moving)


def ridge_path(objective: Objective, what: str) -> tuple[Existence, dict[str, np.ndarray] | None]:
    """The numerical verdict of the vanishing-ridge path (see the module docstring), and the point.

    Parameters
    ----------
    objective : Objective
        From ``compiled_objective(..., separate_likelihood=True)``: the path goes far out.
    what : str
        The objective's name in messages, e.g. ``"weighted log-likelihood"``.

    Returns
    -------
    tuple of (Existence, dict or None)
        The verdict (``method="ridge path"``) and, when a maximiser exists, the point there (on the
        boundary when only unconstrained coordinates run off); ``None`` when it does not.

    Raises
    ------
    InputError
        When the objective is not finite at the model's initial point.

    Warns
    -----
    RuntimeWarning
        When the optimiser stops away from a stationary point (the estimate may be inaccurate).

    Examples
    --------
    >>> import models
    >>> from models.estimation.maximise import compiled_objective, ridge_path
    >>> heads = models.coin.build_model([1, 1, 1])
    >>> objective = compiled_objective(heads, heads.observed_RVs, separate_likelihood=True)
    >>> verdict, point = ridge_path(objective, "weighted log-likelihood")
    >>> verdict.exists, verdict.method, float(point["p"])
    (True, 'ridge path', 1.0)
    """
    scale, metric = _start_scale_and_metric(objective, what)
    z = objective.x0
    values, unconstrained, constrained = [objective.value_and_grad(z)[0]], [z], [objective.free_values(z)]
    for ridge in _RIDGE_PATH:
        z = argmax(objective, z, scale, metric, ridge)
        values.append(objective.value_and_grad(z)[0])
        unconstrained.append(z)
        constrained.append(objective.free_values(z))
    running = _running(objective.free_labels(), np.array(constrained))

    last_rise, rise_before = values[-1] - values[-2], values[-2] - values[-3]
    if not np.isfinite(values[-1]) or (
        last_rise > _RISE_NOISE * scale and last_rise >= _RISE_RATIO * rise_before
    ):
        return Existence(False, "ridge path", f"no upper bound: still climbing ({values[-1]:.4g}) as the "
                         "ridge vanishes (net negative weights?)", diverging=running), None
    if running:
        return Existence(False, "ridge path", f"it levels off at {values[-1]:.4g} while coordinates run "
                         "off to infinity (separation?)", diverging=running), None
    z_final = argmax(objective, z, scale, metric)
    verdict = Existence(True, "ridge path", "the vanishing-ridge path converges")
    # Constrained values converged. Unconstrained coordinates still running (logit p -> inf) are
    # pushed to their limit, so a boundary maximiser is reported exactly (p = 1, not 1 - 1e-12).
    final_value = objective.value_and_grad(z_final)[0]
    boundary = ~_converged(np.array(unconstrained))
    if boundary.any():
        limit = z_final.copy()
        limit[boundary] += 1e6 * (z_final - unconstrained[-2])[boundary]
        limit_value = objective.value_and_grad(limit)[0]
        if np.isfinite(limit_value) and limit_value >= final_value:
            return verdict, objective.point(limit)
    else:
        _warn_if_not_stationary(objective, z_final, scale, metric, what)
    return verdict, objective.point(z_final)


def maximise(model: pm.Model, terms, what: str, verdict: Existence | None = None) -> Estimate:
    """The maximiser of ``terms``' log density, as an :class:`Estimate`.

    With a verdict that gives the maximiser (a closed form) nothing is compiled; with another verdict
    that a maximiser exists, L-BFGS runs to it from the initial point; without a verdict the ridge
    path decides.

    Parameters
    ----------
    model : pymc.Model
    terms : iterable of variables
        The likelihood terms, or those and every free variable (see :func:`compiled_objective`).
    what : str
        The objective's name in messages, e.g. ``"weighted log-likelihood"``.
    verdict : Existence, optional
        The exact answer on existence when one is known (``None``: decide by the ridge path).

    Returns
    -------
    Estimate
        The point, carrying the verdict it was found under.

    Raises
    ------
    UnboundedLikelihoodError
        Carrying the verdict, when no finite maximiser exists.
    InputError
        When the objective is not finite at the model's initial point, or the model has discrete or
        no free variables.

    Warns
    -----
    RuntimeWarning
        When the optimiser stops away from a stationary point (the estimate may be inaccurate).

    Examples
    --------
    >>> import models
    >>> from models.estimation.maximise import maximise
    >>> model = models.coin.build_model([1, 0, 1, 1])
    >>> estimate = maximise(model, model.observed_RVs, "weighted log-likelihood")
    >>> round(float(estimate["p"]), 6), estimate.existence.method
    (0.75, 'ridge path')
    """
    if verdict is not None and not verdict.exists:
        raise UnboundedLikelihoodError(verdict.describe(what), verdict)
    if verdict is not None and verdict.maximiser is not None:   # closed form: nothing to compile
        return Estimate(point_of(model, verdict.maximiser), verdict)
    if verdict is not None:
        return Estimate(_optimum(compiled_objective(model, terms), what), verdict)
    verdict, point = ridge_path(compiled_objective(model, terms, separate_likelihood=True), what)
    if not verdict.exists:
        raise UnboundedLikelihoodError(verdict.describe(what), verdict)
    return Estimate(point, verdict)
