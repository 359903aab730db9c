"""Does a finite maximiser exist? Exact verdicts for the (W)MLE and the MAP.

The weighted log-likelihood can have no finite maximiser: with net negative weights it can be
unbounded above; with separable classes it rises for ever towards a supremum at infinity. The MAP
exists whenever a proper prior penalises every such direction. Where the model says why, the answer
is exact, and the same on every machine:

* the suite's families attach their own verdicts to the models they build (:func:`attach`): the
  coin and the policy in closed form (:mod:`models.coin`, :mod:`models.policy`), logistic and softmax
  regression by linear programming (:mod:`models.separation`, used by :mod:`models.classes`);
* any model gets a *structural* MAP verdict (:func:`structural_map`): when every free variable has a
  prior whose log density is bounded above and falls to minus infinity at every end of its support,
  and the weighted log-likelihood is bounded above (non-negative weights on the discrete terms of
  :mod:`models.likelihood`), the log posterior is continuous, bounded above and falls to minus
  infinity in every direction of the space the optimiser works in, so a maximiser exists.

What neither decides is left to the numerical ridge path of :mod:`models.maximise` (``method`` then
says ``"ridge path"``). A verdict is an :class:`Existence` record; ``inference.mle`` and
``inference.map_estimate`` return it with the estimate (``estimate.existence``) or raise
:class:`UnboundedLikelihoodError` carrying it (``error.existence``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pymc as pm
import pytensor
from pytensor.compile.sharedvalue import SharedVariable
from pytensor.graph.basic import Variable
from pytensor.graph.traversal import ancestors
from pytensor.tensor.variable import TensorConstant

ATTRIBUTE = "wmle_verdicts"   # the attribute a family's model carries its verdicts in


class UnboundedLikelihoodError(ValueError):
    """No finite maximiser exists (the (W)MLE, or the MAP); ``existence`` says why and how it was decided."""

    def __init__(self, message: str, existence: Existence | None = None):
        super().__init__(message)
        self.existence = existence

    def __reduce__(self):
        return (type(self), (str(self), self.existence))


@dataclass(frozen=True)
class Existence:
    """Whether the objective has a finite maximiser, and how that was decided.

    ``method``: ``"closed form"``, ``"linear program"``, ``"analytic"`` (a family's argument without
    a formula for the point), ``"structure"`` (:func:`structural_map`) or ``"ridge path"`` (numerical).
    ``reason``: one sentence. ``diverging``: the free-variable elements that run off, each as
    ``"name[dim=coord] -> +inf"``. ``aliased``: elements along which the objective is flat (a maximiser
    exists but is not unique there). ``maximiser``: the constrained values of the free variables at
    the maximiser where the family computes them itself (in closed form; the policy's MAP state by
    state, :func:`models.policy.map_preference`), else ``None``.
    """

    exists: bool
    method: str
    reason: str
    diverging: tuple[str, ...] = ()
    aliased: tuple[str, ...] = ()
    maximiser: dict | None = field(default=None, compare=False, repr=False)

    def describe(self, what: str) -> str:
        """The sentence an error or a table shows, e.g. ``the weighted log-likelihood has no finite
        maximiser (linear program): quasi-complete separation ...``."""
        verdict = "has a finite maximiser" if self.exists else "has no finite maximiser"
        running = f"; running off: {', '.join(self.diverging)}" if self.diverging else ""
        return f"the {what} {verdict} ({self.method}): {self.reason}{running}"


@dataclass(frozen=True)
class FamilyVerdicts:
    """A model family's exact verdicts, carried by the models it builds. ``mle`` and ``map`` take
    the model (reading its current ``pm.Data``, so ``pm.set_data`` is followed) and return an
    :class:`Existence`, or ``None`` for data outside what the family decides (then the structural
    check or the ridge path decides). ``structure`` is the model's free, observed and potential names
    when the verdicts were attached: a model changed since then is no longer the family's."""

    family: str
    mle: Callable
    map: Callable
    structure: tuple


def _structure(model: pm.Model) -> tuple:
    return (tuple(rv.name for rv in model.free_RVs), tuple(rv.name for rv in model.observed_RVs),
            len(model.potentials))


def attach(model: pm.Model, family: str, mle: Callable, map_: Callable) -> pm.Model:
    """Make ``model`` carry a family's verdicts (module-level functions, so the model still pickles)."""
    setattr(model, ATTRIBUTE, FamilyVerdicts(family, mle, map_, _structure(model)))
    return model


def family_verdicts(model: pm.Model) -> FamilyVerdicts | None:
    """The verdicts ``model`` carries, if it is still the model its family built."""
    verdicts = getattr(model, ATTRIBUTE, None)
    if isinstance(verdicts, FamilyVerdicts) and verdicts.structure == _structure(model):
        return verdicts
    return None


def of_mle(model: pm.Model) -> Existence | None:
    """The exact verdict on the (W)MLE of ``model``, or ``None`` when nothing exact applies."""
    verdicts = family_verdicts(model)
    return verdicts.mle(model) if verdicts is not None else None


def of_map(model: pm.Model) -> Existence | None:
    """The exact verdict on the MAP of ``model``: its family's, else :func:`structural_map`'s."""
    verdicts = family_verdicts(model)
    verdict = verdicts.map(model) if verdicts is not None else None
    return verdict if verdict is not None else structural_map(model)


# --------------------------------------------------------------------------- the structural MAP verdict


def _at_least(bound: float):
    return lambda *parameters: all(np.all(np.asarray(p) > bound) for p in parameters)


def _always(*_parameters) -> bool:
    return True


# Priors whose log density, under PyMC's default transform (named), is bounded above and falls to minus
# infinity at every end of the unconstrained line: unbounded support with tails that vanish; Beta and
# Gamma only with shape parameters above 1 (at or below 1 the density stays finite, or blows up, at 0).
# Each entry: (default transform's class name or None, the condition on the distribution's parameters).
_COERCIVE_PRIORS: dict[str, tuple[str | None, Callable]] = {
    "NormalRV": (None, _always),
    "StudentTRV": (None, _always),
    "CauchyRV": (None, _always),
    "LaplaceRV": (None, _always),
    "LogisticRV": (None, _always),
    "GumbelRV": (None, _always),
    "MvNormalRV": (None, _always),
    "ZeroSumNormalRV": ("ZeroSumTransform", _always),
    "LogNormalRV": ("LogTransform", _always),
    "InvGammaRV": ("LogTransform", _always),
    "BetaRV": ("LogOddsTransform", lambda alpha, beta: _at_least(1.0)(alpha, beta)),
    "GammaRV": ("LogTransform", lambda shape, scale: _at_least(1.0)(shape)),
}


def value_of(variable, model: pm.Model):
    """The current value of a graph that depends on no random variable of the model (a ``pm.Data``,
    a constant, an array), else ``None``."""
    if not isinstance(variable, Variable):   # weights given as a plain array
        return np.asarray(variable)
    if isinstance(variable, SharedVariable):
        return variable.get_value()
    if isinstance(variable, TensorConstant):
        return variable.data
    random = set(model.basic_RVs) | set(model.value_vars)
    if any(node in random for node in ancestors([variable])):
        return None
    return pytensor.function([], variable, on_unused_input="ignore")()


def _coercive_prior(rv, model: pm.Model) -> str | None:
    """``None`` when ``rv``'s prior qualifies, else why it does not."""
    op = rv.owner.op
    entry = _COERCIVE_PRIORS.get(type(op).__name__)
    if entry is None:
        kind = type(op).__name__.removesuffix("RV")
        return f"{rv.name} has a {kind} prior, not one known to vanish at every end"
    transform_name, condition = entry
    transform = model.rvs_to_transforms.get(rv)
    if (type(transform).__name__ if transform is not None else None) != transform_name:
        return f"{rv.name} is not in its default transform"
    parameters = [value_of(p, model) for p in op.dist_params(rv.owner)]
    if any(p is None for p in parameters):
        return f"{rv.name}'s prior depends on other random variables"
    if not condition(*parameters):
        return f"{rv.name}'s prior does not fall to minus infinity at every end of its support"
    return None


def _bounded_above(term, model: pm.Model) -> str | None:
    """``None`` when the weighted term is bounded above by zero, else why that is not known."""
    marker = getattr(term.tag, "weighted_term", None)
    if marker is None:
        return f"{term.name} is not a weighted term of models.likelihood"
    if not marker.at_most_zero:
        return f"{term.name} is not known to be at most zero (a density may exceed 1)"
    for factor in (marker.weights, *marker.multipliers):
        values = value_of(factor, model)
        if values is None:
            return f"{term.name}'s weights depend on random variables"
        if np.any(np.asarray(values) < 0):
            return f"{term.name} has negative weights"
    return None


def structural_map(model: pm.Model) -> Existence | None:
    """``Existence(exists=True, method="structure")`` when the model's structure guarantees a MAP
    (see the module docstring), else ``None``: the structure does not decide."""
    if model.potentials or not model.observed_RVs:
        return None
    obstacles = [_coercive_prior(rv, model) for rv in model.free_RVs]
    obstacles += [_bounded_above(term, model) for term in model.observed_RVs]
    if any(obstacle is not None for obstacle in obstacles):
        return None
    return Existence(True, "structure", "every free variable has a prior that falls to minus infinity "
                     "at every end of its support and the weighted log-likelihood is bounded above "
                     "(non-negative weights on discrete terms), so the log posterior attains its maximum")
