"""Does a finite maximiser exist? Exact verdicts for the (W)MLE and the MAP.

The weighted log-likelihood can have no finite maximiser: with net negative weights it can be
unbounded above; with separable classes it rises for ever towards a supremum at infinity. The MAP
exists whenever a proper prior penalises every such direction. Where the model says why, the answer
is exact, and the same on every machine:

* the suite's families attach their own verdicts to the models they build (:func:`attach`): the
  coin and the policy in closed form (:mod:`models.coin`, :mod:`models.policy`), logistic and softmax
  regression by linear programming (:mod:`models.estimation.separation`, used by :mod:`models.classes`);
* any model gets a *structural* MAP verdict (:func:`structural_map`): when every free variable has a
  prior whose log density is bounded above and falls to minus infinity at every end of its support,
  and the weighted log-likelihood is bounded above (non-negative weights on the discrete terms of
  :mod:`models.likelihood`), the log posterior is continuous, bounded above and falls to minus
  infinity in every direction of the space the optimiser works in, so a maximiser exists.

What neither decides is left to the numerical ridge path of :mod:`models.estimation.maximise` (``method`` then
says ``"ridge path"``). A verdict is an :class:`Existence` record; ``inference.mle`` and
``inference.map_estimate`` return it with the estimate (``estimate.existence``) or raise
:class:`UnboundedLikelihoodError` carrying it (``error.existence``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pymc as pm

from models._graph import value_of

__all__ = ["ATTRIBUTE", "Existence", "FamilyVerdicts", "UnboundedLikelihoodError", "attach",
           "family_verdicts", "of_map", "of_mle", "structural_map"]

ATTRIBUTE = "wmle_verdicts"   # the attribute a family's model carries its verdicts in


class UnboundedLikelihoodError(ValueError):
    """No finite maximiser exists (the (W)MLE, or the MAP).

    A ``ValueError``; ``existence`` says why and how it was decided.

    Parameters
    ----------
    message : str
        The sentence the error shows (normally :meth:`Existence.describe`).
    existence : Existence, optional
        The verdict the error carries.

    Attributes
    ----------
    existence : Existence or None
        Why no finite maximiser exists and how that was decided; ``existence.diverging`` names the
        directions that run off.

    Examples
    --------
    >>> import models
    >>> separated = models.classes.build_model([[-1.0], [1.0]], [0, 1])
    >>> try:
    ...     models.mle(separated)
    ... except models.UnboundedLikelihoodError as err:
    ...     print(err.existence.method, err.existence.diverging)
    linear program ('intercept -> +inf or -inf', 'coef[feature=x0] -> +inf')
    """

    def __init__(self, message: str, existence: Existence | None = None):
        super().__init__(message)
        self.existence = existence

    def __reduce__(self):
        return (type(self), (str(self), self.existence))


@dataclass(frozen=True)
class Existence:
    """Whether the objective has a finite maximiser, and how that was decided.

    Attributes
    ----------
    exists : bool
        Whether a finite maximiser exists.
    method : str
        How it was decided: ``"closed form"``, ``"linear program"``, ``"analytic"`` (a family's
        argument without a formula for the point), ``"structure"`` (:func:`structural_map`) or
        ``"ridge path"`` (numerical).
    reason : str
        One sentence.
    diverging : tuple of str, default ()
        The free-variable elements that run off, each as ``"name[dim=coord] -> +inf"``.
    aliased : tuple of str, default ()
        Elements along which the objective is flat (a maximiser exists but is not unique there).
    maximiser : dict or None, default None
        The constrained values of the free variables at the maximiser where the family computes them
        itself (in closed form; the policy's MAP state by state, :func:`models.policy.map_preference`),
        else ``None``. Left out of comparisons and of the ``repr``.

    Examples
    --------
    >>> import models
    >>> verdict = models.mle(models.coin.build_model([1, 0, 1, 1])).existence
    >>> verdict.exists, verdict.method, verdict.reason, verdict.maximiser
    (True, 'closed form', 'heads weigh 3 and tails 1: p = 0.75', {'p': 0.75})
    """

    exists: bool
    method: str
    reason: str
    diverging: tuple[str, ...] = ()
    aliased: tuple[str, ...] = ()
    maximiser: dict | None = field(default=None, compare=False, repr=False)

    def describe(self, what: str) -> str:
        """The sentence an error or a table shows.

        For example ``the weighted log-likelihood has no finite maximiser (linear program):
        quasi-complete separation ...``.

        Parameters
        ----------
        what : str
            The objective the verdict is on, e.g. ``"weighted log-likelihood"``.

        Returns
        -------
        str
            The verdict, the method and the reason, then the elements running off, if any.

        Examples
        --------
        >>> import models
        >>> verdict = models.mle(models.coin.build_model([1, 0, 1, 1])).existence
        >>> print(verdict.describe("weighted log-likelihood"))
        the weighted log-likelihood has a finite maximiser (closed form): heads weigh 3 and tails 1: p = 0.75
        """
        verdict = "has a finite maximiser" if self.exists else "has no finite maximiser"
        running = f"; running off: {', '.join(self.diverging)}" if self.diverging else ""
        return f"the {what} {verdict} ({self.method}): {self.reason}{running}"


@dataclass(frozen=True)
class FamilyVerdicts:
    """A model family's exact verdicts, carried by the models it builds (:func:`attach`).

    Attributes
    ----------
    family : str
        The family's name (``"coin"``, ``"classes"``, ``"policy"``).
    mle, map : callable
        ``f(model) -> Existence or None``: the verdict on the (W)MLE and on the MAP. Each takes the
        model (reading its current ``pm.Data``, so ``pm.set_data`` is followed) and returns an
        :class:`Existence`, or ``None`` for data outside what the family decides (then the structural
        check or the ridge path decides).
    structure : tuple
        The model's free, observed and potential names when the verdicts were attached: a model
        changed since then is no longer the family's.

    Examples
    --------
    >>> import models
    >>> from models.estimation import existence
    >>> existence.family_verdicts(models.coin.build_model([1, 0, 1, 1])).family
    'coin'
    """

    family: str
    mle: Callable
    map: Callable
    structure: tuple


def _structure(model: pm.Model) -> tuple:
    return (tuple(rv.name for rv in model.free_RVs), tuple(rv.name for rv in model.observed_RVs),
            len(model.potentials))


def attach(model: pm.Model, family: str, mle: Callable, map_: Callable) -> pm.Model:
    """Make ``model`` carry a family's verdicts.

    Parameters
    ----------
    model : pymc.Model
        The model the family has just built; its structure is recorded (see :class:`FamilyVerdicts`).
    family : str
        The family's name.
    mle, map_ : callable
        ``f(model) -> Existence or None``, the verdicts on the (W)MLE and on the MAP: module-level
        functions, so the model still pickles.

    Returns
    -------
    pymc.Model
        ``model`` itself, carrying a :class:`FamilyVerdicts` in its attribute :data:`ATTRIBUTE`.

    Examples
    --------
    >>> import pymc as pm
    >>> from models.estimation import existence
    >>> with pm.Model() as model:
    ...     mu = pm.Normal("mu")
    ...     y = pm.Normal("y", mu, observed=[0.1, -0.3])
    >>> def mean_exists(model):
    ...     return existence.Existence(True, "closed form", "the mean of the observations")
    >>> existence.attach(model, "normal", mean_exists, mean_exists).wmle_verdicts.family
    'normal'
    >>> existence.of_mle(model).method
    'closed form'
    """
    setattr(model, ATTRIBUTE, FamilyVerdicts(family, mle, map_, _structure(model)))
    return model


def family_verdicts(model: pm.Model) -> FamilyVerdicts | None:
    """The verdicts ``model`` carries, if it is still the model its family built.

    Parameters
    ----------
    model : pymc.Model

    Returns
    -------
    FamilyVerdicts or None
        ``None`` when the model carries no verdicts, or when its free, observed or potential terms
        changed since they were attached.

    Examples
    --------
    >>> import models
    >>> from models.estimation import existence
    >>> existence.family_verdicts(models.classes.build_model([[-1.0], [1.0]], [0, 1])).family
    'classes'
    """
    verdicts = getattr(model, ATTRIBUTE, None)
    if isinstance(verdicts, FamilyVerdicts) and verdicts.structure == _structure(model):
        return verdicts
    return None


def of_mle(model: pm.Model) -> Existence | None:
    """The exact verdict on the (W)MLE of ``model``, or ``None`` when nothing exact applies.

    Parameters
    ----------
    model : pymc.Model

    Returns
    -------
    Existence or None
        The verdict of the model's family (:func:`family_verdicts`) at the model's current data;
        ``None`` for a model that carries none, or data its family does not decide.

    Examples
    --------
    >>> import models
    >>> from models.estimation import existence
    >>> existence.of_mle(models.coin.build_model([1, 0, 1, 1])).reason
    'heads weigh 3 and tails 1: p = 0.75'
    """
    verdicts = family_verdicts(model)
    return verdicts.mle(model) if verdicts is not None else None


def of_map(model: pm.Model) -> Existence | None:
    """The exact verdict on the MAP of ``model``: its family's, else :func:`structural_map`'s.

    Parameters
    ----------
    model : pymc.Model

    Returns
    -------
    Existence or None
        ``None`` when neither the family nor the structure decides.

    Examples
    --------
    >>> import models
    >>> from models.estimation import existence
    >>> existence.of_map(models.coin.build_model([1, 0, 1, 1], prior=(2, 2))).reason
    'heads weigh 4 and tails 2: p = 0.666667'
    """
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
    """The structural verdict on the MAP: whether the model's structure guarantees one.

    The structure decides when the model has observed terms and no potentials, every free variable
    has a prior whose log density is bounded above and falls to minus infinity at every end of its
    support (in its default transform, with parameters that do not depend on other random
    variables), and every observed term is a weighted term of :mod:`models.likelihood` known to be at
    most zero, with non-negative weights (see the module docstring).

    Parameters
    ----------
    model : pymc.Model

    Returns
    -------
    Existence or None
        ``Existence(exists=True, method="structure")`` when the structure guarantees a MAP, else
        ``None``: the structure does not decide.

    Examples
    --------
    >>> import numpy as np, pymc as pm, models
    >>> from models.estimation import existence
    >>> with pm.Model(coords={"obs": range(3)}) as model:
    ...     logit = pm.Normal("logit")
    ...     y = models.weighted_likelihood("y", pm.Bernoulli, np.array([1.0, 1.0, 2.0]),
    ...                                    observed=[1, 0, 1], dims="obs", logit_p=logit)
    >>> existence.structural_map(model).method
    'structure'
    """
    if model.potentials or not model.observed_RVs:
        return None
    obstacles = [_coercive_prior(rv, model) for rv in model.free_RVs]
    obstacles += [_bounded_above(term, model) for term in model.observed_RVs]
    if any(obstacle is not None for obstacle in obstacles):
        return None
    return Existence(True, "structure", "every free variable has a prior that falls to minus infinity "
                     "at every end of its support and the weighted log-likelihood is bounded above "
                     "(non-negative weights on discrete terms), so the log posterior attains its maximum")
