"""Maximise part of a model's log density, and decide whether a finite maximiser exists.

Used by :func:`models.inference.mle` (likelihood terms only) and :func:`models.inference.map_estimate`
(all terms). Works in the unconstrained space z that PyMC samples in, on the model's own compiled
log density ``f`` and its gradient, with L-BFGS.

Existence. A weighted log-likelihood can have no finite maximiser: with net negative weights it is
unbounded above; with separable classes it rises towards a supremum at infinity. An optimiser then
stops wherever its tolerances say. Instead we follow a vanishing ridge,

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

Limit: a maximum whose curvature, in some coordinate, is below about 1e-6 of the curvature at z0 has
not settled by lambda = 1e-8 and is reported as a runaway (e.g. a MAP whose prior is 1e4 times wider
than the data's scale on a separable data set). Standardised features keep well clear of it.
"""

from __future__ import annotations

import warnings
import weakref

import numpy as np
import pymc as pm
import pytensor
from scipy import optimize

from models.errors import InputError

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


class UnboundedLikelihoodError(ValueError):
    """The (weighted) log-likelihood has no finite maximiser, so the (W)MLE does not exist."""


class Objective:
    """``terms``' log density and gradient as functions of the raveled unconstrained vector z."""

    def __init__(self, model: pm.Model, terms):
        if model.discrete_value_vars:
            names = [v.name for v in model.discrete_value_vars]
            raise InputError(f"cannot optimise discrete free variables {names}")
        if not model.value_vars:
            raise InputError("the model has no free variables to estimate")
        self._model = weakref.ref(model)  # no strong reference: the compiled cache must not keep models alive
        self.value_vars = list(model.value_vars)
        start = model.initial_point()
        self.shapes = [np.shape(start[v.name]) for v in self.value_vars]
        self.sizes = [int(np.prod(s)) for s in self.shapes]
        self.x0 = np.concatenate([np.ravel(start[v.name]) for v in self.value_vars]).astype(float)
        target = model.logp(vars=terms, jacobian=False)
        gradients = pytensor.grad(target, self.value_vars)
        self._value_and_grad = model.compile_fn(
            [target, *gradients], inputs=self.value_vars, point_fn=False, on_unused_input="ignore"
        )
        outputs = [*model.free_RVs, *model.deterministics]
        self.output_names = [v.name for v in outputs]
        self._outputs = model.compile_fn(
            model.replace_rvs_by_values(outputs), inputs=self.value_vars, point_fn=False,
            on_unused_input="ignore",
        )

    @property
    def model(self) -> pm.Model:
        return self._model()

    def _split(self, z):
        parts = np.split(np.asarray(z, dtype=float), np.cumsum(self.sizes)[:-1])
        return [p.reshape(s) for p, s in zip(parts, self.shapes)]

    def value_and_grad(self, z):
        value, *grads = self._value_and_grad(*self._split(z))
        return float(value), np.concatenate([np.ravel(g) for g in grads])

    def point(self, z) -> dict[str, np.ndarray]:
        """Constrained values of the free variables and the deterministics at z."""
        return {name: np.asarray(v) for name, v in zip(self.output_names, self._outputs(*self._split(z)))}

    def free_values(self, z) -> np.ndarray:
        point = self.point(z)
        return np.concatenate([np.ravel(point[rv.name]) for rv in self.model.free_RVs])

    def curvature(self, z, scale: float) -> np.ndarray:
        """|d^2 (f / scale) / dz_j^2| at z by central differences of the gradient, floored."""
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
        """``name[dim=coord, ...]`` for every scalar element of the free variables."""
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


# Compiled objectives per model and set of terms: fitting the same model again after ``pm.set_data``
# (new weights, new data of the same shapes) reuses the compiled log density and gradient.
_COMPILED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def compiled_objective(model: pm.Model, terms) -> Objective:
    """The :class:`Objective` of ``terms``, compiled once per model object and kept while the model
    lives; values in ``pm.Data`` are read at every call, so changing them needs no recompilation."""
    key = (tuple(terms), tuple(model.value_vars))
    per_model = _COMPILED.setdefault(model, {})
    if key not in per_model:
        per_model[key] = Objective(model, terms)
    return per_model[key]


def argmax(objective: Objective, z_start, scale: float, metric, ridge: float = 0.0):
    """argmax of ``f(z) / scale - ridge/2 sum_j metric_j (z_j - z0_j)^2`` by L-BFGS from z_start.

    L-BFGS runs in the preconditioned coordinates ``v = sqrt(metric) (z - z0)``, where the curvature
    at z0 is one in every direction, so parameters of very different units converge alike.
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


def _ridge_path(objective: Objective, what: str):
    """The vanishing-ridge path from the initial point: ``(scale, metric, values, unconstrained,
    constrained)``, the last three lists with one entry for the start and one per ridge of
    ``_RIDGE_PATH`` (see the module docstring)."""
    start_value, start_gradient = objective.value_and_grad(objective.x0)
    if not np.isfinite(start_value):
        raise InputError(f"the {what} is not finite at the model's initial point")
    # The size of f, or of its change over a unit step if larger: f(z0) alone can be 0 by cancellation
    # (advantages summing to zero in every state make f linear and f(z0) = 0).
    scale = max(abs(start_value), float(np.max(np.abs(start_gradient)))) or 1.0
    metric = objective.curvature(objective.x0, scale)
    z = objective.x0
    values, unconstrained, constrained = [start_value], [objective.x0], [objective.free_values(z)]
    for ridge in _RIDGE_PATH:
        z = argmax(objective, z, scale, metric, ridge)
        values.append(objective.value_and_grad(z)[0])
        unconstrained.append(z)
        constrained.append(objective.free_values(z))
    return scale, metric, values, unconstrained, constrained


def maximise(model: pm.Model, terms, what: str) -> dict[str, np.ndarray]:
    """Constrained values of the free variables and deterministics at the maximiser of ``terms``.

    Raises ``UnboundedLikelihoodError`` (naming the variables that run off) when none exists.
    """
    objective = compiled_objective(model, terms)
    scale, metric, values, unconstrained, constrained = _ridge_path(objective, what)
    z = unconstrained[-1]
    labels = objective.free_labels()
    running = [labels[i] for i in np.flatnonzero(~_converged(np.array(constrained)))]

    last_rise, rise_before = values[-1] - values[-2], values[-2] - values[-3]
    if not np.isfinite(values[-1]) or (
        last_rise > _RISE_NOISE * scale and last_rise >= _RISE_RATIO * rise_before
    ):
        driven = f", driven by {', '.join(running)}" if running else ""
        raise UnboundedLikelihoodError(
            f"the {what} has no upper bound: it is still climbing ({values[-1]:.4g}) as the ridge "
            f"vanishes{driven}; no finite maximiser exists (net negative weights?)"
        )
    if running:
        raise UnboundedLikelihoodError(
            f"the {what} has no finite maximiser: it levels off at {values[-1]:.4g} while "
            f"{', '.join(running)} run(s) off to infinity (separation?)"
        )
    z_final = argmax(objective, z, scale, metric)
    # Constrained values converged. Unconstrained coordinates still running (logit p -> inf) are
    # pushed to their limit, so a boundary maximiser is reported exactly (p = 1, not 1 - 1e-12).
    final_value, final_gradient = objective.value_and_grad(z_final)
    boundary = ~_converged(np.array(unconstrained))
    if boundary.any():
        limit = z_final.copy()
        limit[boundary] += 1e6 * (z_final - unconstrained[-2])[boundary]
        limit_value = objective.value_and_grad(limit)[0]
        if np.isfinite(limit_value) and limit_value >= final_value:
            return objective.point(limit)
    else:
        gradient = np.max(np.abs(final_gradient / (scale * np.sqrt(metric))))  # preconditioned units
        if gradient > _GRADIENT_WARNING:
            warnings.warn(f"the {what}'s optimiser stopped at relative gradient {gradient:.2g}: "
                          "the estimate may be inaccurate", RuntimeWarning, stacklevel=3)
    return objective.point(z_final)
