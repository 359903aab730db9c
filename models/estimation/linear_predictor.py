"""Exact existence of the (weighted) MLE of a model whose likelihood is a GLM on a linear predictor.

For a model from outside the suite's families (written by hand, or weighted by
:func:`models.weighted`), the verdict is exact when every observed term is

* Bernoulli or binomial with a logit link, ``p_i = sigmoid(eta_i)``, or
* Poisson with a log link, ``mu_i = exp(eta_i)``,

(read through deterministics, broadcasting, and guards that only nudge a probability off exactly 0
or 1, as Bambi writes its Bernoulli),

with ``eta = A theta + c`` affine in free variables of unbounded support without a transform, the
weights non-negative and the observations and trials data. Along a direction ``d`` of ``theta``
(``theta + s d``, s -> infinity) each row's weighted term moves only through ``a_i . d``:

* a Bernoulli or binomial row with a success rises for ever when ``a_i . d > 0`` and falls to minus
  infinity when ``< 0``; a row with a failure the other way round (a binomial row with both needs
  ``a_i . d = 0``);
* a Poisson row with ``y_i = 0`` rises towards its supremum 0 when ``a_i . d < 0`` and falls when
  ``> 0``; a row with ``y_i > 0`` falls to minus infinity either way unless ``a_i . d = 0``.

So no finite maximiser exists exactly when some ``d`` gives every such margin a value >= 0, at least
one > 0, with the equalities held: separation for the logit (Albert & Anderson 1984), the condition
of Haberman (1974) for the log link, which Santos Silva & Tenreyro (2010) turned into a check. The
linear program (HiGHS): maximise ``sum t`` subject to ``margin_k(d) >= t_k``, ``0 <= t <= 1`` and the
equalities; the margins that can be positive form a cone, so the optimum counts them, 0 exactly
when the MLE exists. Rows of weight 0 are dropped; positive weights never change the verdict.

Affinity is read off the compiled predictor: its Jacobian with respect to the free variables is the
same at two random points and the predictor's change between them is the Jacobian times theirs (to
1e-9 of their size); a predictor that is not affine fails this at random points with probability 1,
and the model is then left to the ridge path (:mod:`models.estimation.maximise`).
"""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytensor
import pytensor.scalar as ps
import pytensor.tensor as pt
from pytensor.compile.ops import ViewOp
from pytensor.gradient import jacobian
from pytensor.graph.replace import graph_replace
from pytensor.graph.traversal import ancestors
from pytensor.tensor.elemwise import DimShuffle, Elemwise
from scipy import optimize, sparse

from models import compiled
from models._graph import value_of
from models.estimation.existence import Existence

__all__ = ["mle_existence"]

# The distributions decided here, their parameters in the random variable's order, and the link.
_PARAMETERS = {"BernoulliRV": ("p",), "BinomialRV": ("n", "p"), "PoissonRV": ("mu",)}
_INVERSE_LINK = {"BernoulliRV": ps.Sigmoid, "BinomialRV": ps.Sigmoid, "PoissonRV": ps.Exp}
_LINK_PARAMETER = {"BernoulliRV": ("p", "logit_p"), "BinomialRV": ("p", "logit_p"), "PoissonRV": ("mu", None)}
_AFFINE_TOLERANCE = 1e-9
_GUARD_NUDGE = 1e-12   # the largest move off 0 or 1 read as a floating-point guard, not a model change
# Free variables whose support is the whole real line (without a transform, the optimiser's space).
_UNBOUNDED = {"NormalRV", "StudentTRV", "CauchyRV", "LaplaceRV", "LogisticRV", "GumbelRV", "MvNormalRV",
              "FlatRV", "SkewNormalRV"}
_HIGHS = {"primal_feasibility_tolerance": 1e-10, "dual_feasibility_tolerance": 1e-10}


def _distribution_and_parameters(term) -> tuple[str, dict] | None:
    """The term's distribution (a random variable's class name) and its parameters by name."""
    marker = getattr(term.tag, "weighted_term", None)
    node = term.owner
    if marker is None:
        kind = type(node.op).__name__
        if kind not in _PARAMETERS:
            return None
        return kind, dict(zip(_PARAMETERS[kind], node.op.dist_params(node)))
    kind = marker.distribution
    if kind not in _PARAMETERS:
        return None
    parameters = node.op.dist_params(node)[:-1]   # the weights come last
    names = marker.parameter_names or _PARAMETERS[kind]
    return kind, dict(zip(names, parameters))


def _unbroadcast(tensor):
    """``tensor`` without the dimensions PyMC added to broadcast a parameter to the observations
    (an expansion that keeps the order of the axes); the predictor is broadcast back later."""
    while getattr(tensor, "owner", None) is not None and isinstance(tensor.owner.op, DimShuffle):
        order = [axis for axis in tensor.owner.op.new_order if axis != "x"]
        if order != sorted(order):
            break
        tensor = tensor.owner.inputs[0]
    return tensor


def _unguarded(tensor):
    """``tensor`` without views, broadcasting and guards that only move a probability off exactly 0 or
    1 (``switch(eq(p, 1), 1 - eps, p)``, as Bambi writes them): a guard changes no value of the
    likelihood short of floating-point saturation, so the verdict is the one of the link itself."""
    while True:
        tensor = _unbroadcast(tensor)
        owner = getattr(tensor, "owner", None)
        if owner is None:
            return tensor
        if isinstance(owner.op, ViewOp):
            tensor = owner.inputs[0]
            continue
        if not (isinstance(owner.op, Elemwise) and isinstance(owner.op.scalar_op, ps.Switch)):
            return tensor
        condition, replacement, unchanged = owner.inputs
        test = condition.owner
        if not (test is not None and isinstance(test.op, Elemwise) and isinstance(test.op.scalar_op, ps.EQ)
                and _unbroadcast(test.inputs[0]) is _unbroadcast(unchanged)):
            return tensor
        try:
            at, nudged = (pt.get_underlying_scalar_constant_value(test.inputs[1]),
                          pt.get_underlying_scalar_constant_value(replacement))
        except pt.NotScalarConstantError:
            return tensor
        if at not in (0, 1) or abs(float(nudged) - float(at)) > _GUARD_NUDGE:
            return tensor
        tensor = unchanged


def _predictor(kind: str, parameters: dict):
    """``eta``, the linear predictor under the canonical link, or None where the link is another."""
    mean_name, predictor_name = _LINK_PARAMETER[kind]
    if predictor_name in parameters:
        return parameters[predictor_name]
    mean = _unguarded(parameters.get(mean_name))
    owner = getattr(mean, "owner", None)
    if owner is not None and isinstance(owner.op, Elemwise) and isinstance(owner.op.scalar_op,
                                                                            _INVERSE_LINK[kind]):
        return owner.inputs[0]
    return None


def _affine(model: pm.Model, predictors: list, rng) -> tuple[np.ndarray, list[str]] | None:
    """The stacked predictors' matrix A over the free variables' elements, and their labels, when
    every predictor is affine in free variables without a transform; else None."""
    values = model.replace_rvs_by_values(predictors)
    upstream = set(ancestors(values))
    inputs = [v for v in model.value_vars if v in upstream]
    free = [model.values_to_rvs[v] for v in inputs]
    if not inputs or any(model.rvs_to_transforms.get(rv) is not None or not rv.dtype.startswith("float")
                         or type(rv.owner.op).__name__ not in _UNBOUNDED for rv in free):
        return None
    start = compiled.initial_point(model)
    shapes = [np.shape(start[v.name]) for v in inputs]
    sizes = [int(np.prod(shape)) for shape in shapes]
    theta = pt.vector("theta", dtype="float64")
    pieces, offset = [], 0
    for shape, size in zip(shapes, sizes):
        pieces.append(theta[offset:offset + size].reshape(shape))
        offset += size
    flat = pt.concatenate([pt.flatten(v) for v in values])
    flat = graph_replace(flat, dict(zip(inputs, pieces)), strict=False)

    def build():   # the data are read at each call: compiled once per model and term structure
        return pytensor.function([theta], [flat, jacobian(flat, theta, vectorize=True)], mode="FAST_COMPILE",
                                 on_unused_input="ignore")

    key = ("linear_predictor", tuple(model.observed_RVs), tuple(inputs))
    function = compiled.cached(model, key, build)
    first, second = rng.normal(size=offset), rng.normal(size=offset)
    (eta_1, jacobian_1), (eta_2, jacobian_2) = function(first), function(second)
    scale = 1.0 + np.max(np.abs(jacobian_1))
    if not (np.allclose(jacobian_1, jacobian_2, rtol=0, atol=_AFFINE_TOLERANCE * scale)
            and np.allclose(eta_2 - eta_1, jacobian_1 @ (second - first), rtol=0,
                            atol=_AFFINE_TOLERANCE * scale * (1 + np.max(np.abs(second - first))))):
        return None
    labels = []
    for v, size in zip(inputs, sizes):
        name = model.values_to_rvs[v].name
        labels += [(name, -1)] if v.ndim == 0 else [(name, i) for i in range(size)]
    return jacobian_1, labels


def _rows(model: pm.Model, term, kind: str, parameters: dict, count: int):
    """Per row of the term: the weight, and the margins' signs it sets (success and failure counts)."""
    marker = getattr(term.tag, "weighted_term", None)
    weights = np.ones(count) if marker is None else value_of(marker.weights, model)
    observed = value_of(model.rvs_to_values[term], model)
    trials = value_of(parameters["n"], model) if kind == "BinomialRV" else 1
    if weights is None or trials is None:
        return None
    weights = np.broadcast_to(np.asarray(weights, dtype=float), (count,))
    observed = np.broadcast_to(np.asarray(observed, dtype=float), (count,))
    trials = np.broadcast_to(np.asarray(trials, dtype=float), (count,))
    return weights, observed, trials


def mle_existence(model: pm.Model) -> Existence | None:
    """The exact verdict on the (weighted) MLE of a GLM-like model (module docstring), or None.

    Parameters
    ----------
    model : pymc.Model
        Any model; decided when every observed term is a Bernoulli or binomial with a logit link or a
        Poisson with a log link on a predictor affine in free variables without a transform, with
        non-negative weights and no potential.

    Returns
    -------
    Existence or None
        ``method="linear program"``; ``diverging`` names, by variable and index, the free variables'
        elements that move along one direction in which the likelihood rises for ever. None when the
        model is not of that form.

    Examples
    --------
    >>> import numpy as np, pymc as pm
    >>> x = np.array([-2.0, -1.0, 1.0, 2.0])
    >>> with pm.Model() as model:
    ...     a, b = pm.Normal("a", 0, 5), pm.Normal("b", 0, 5)
    ...     y = pm.Bernoulli("y", logit_p=a + b * x, observed=[0, 0, 1, 1])
    >>> verdict = mle_existence(model)
    >>> verdict.exists, verdict.method, verdict.diverging
    (False, 'linear program', ('b -> +inf',))
    """
    if model.potentials or not model.observed_RVs:
        return None
    terms = []
    for term in model.observed_RVs:
        found = _distribution_and_parameters(term)
        if found is None:
            return None
        kind, parameters = found
        predictor = _predictor(kind, parameters)
        if predictor is None:
            return None
        terms.append((term, kind, parameters, predictor))
    shapes = [np.shape(value_of(model.rvs_to_values[term], model)) for term, *_ in terms]
    predictors = [pt.broadcast_to(predictor, shape) for (*_, predictor), shape in zip(terms, shapes)]
    try:
        affine = _affine(model, predictors, np.random.default_rng(0))
    except (TypeError, ValueError, NotImplementedError):   # a predictor PyTensor cannot differentiate
        return None
    if affine is None:
        return None
    design, labels = affine
    inequality, equality, offset = [], [], 0
    for (term, kind, parameters, _), shape in zip(terms, shapes):
        count = int(np.prod(shape, dtype=int))
        rows = _rows(model, term, kind, parameters, count)
        if rows is None:
            return None
        weights, observed, trials = rows
        if np.any(weights < 0):
            return None
        block = design[offset:offset + count]   # one row per observation: the predictor was broadcast
        offset += count
        for a_i, w, y, n in zip(block, weights, observed, trials):
            if w == 0:
                continue
            if kind == "PoissonRV" and y == 0:
                inequality.append(-a_i)
            elif kind == "PoissonRV":
                equality.append(a_i)
            else:
                if y > 0:
                    inequality.append(a_i)
                if y < n:
                    inequality.append(-a_i)
    return _verdict(np.array(inequality).reshape(-1, design.shape[1]),
                    np.array(equality).reshape(-1, design.shape[1]), labels)


def _verdict(margins: np.ndarray, equalities: np.ndarray, labels: list[str]) -> Existence:
    """Solve the linear program of the module docstring."""
    d, m = margins.shape[1], margins.shape[0]
    if m == 0:
        return Existence(True, "linear program", "no weighted row can rise for ever: the weighted MLE is "
                         "finite")
    margins = margins / np.maximum(np.max(np.abs(margins), axis=1, keepdims=True), np.finfo(float).tiny)
    cost = np.concatenate([np.zeros(d), -np.ones(m)])
    upper = sparse.hstack([sparse.csr_array(-margins), sparse.eye_array(m)], format="csr")   # t - margin <= 0
    equal = None
    if len(equalities):
        equal = sparse.hstack([sparse.csr_array(equalities), sparse.csr_array((len(equalities), m))],
                              format="csr")
    bounds = [(None, None)] * d + [(0.0, 1.0)] * m
    solved = optimize.linprog(cost, A_ub=upper, b_ub=np.zeros(m), A_eq=equal,
                              b_eq=np.zeros(len(equalities)) if equal is not None else None, bounds=bounds,
                              method="highs", options=_HIGHS)
    if solved.status != 0:
        raise RuntimeError(f"the existence linear program failed: {solved.message}")
    count = -solved.fun
    if count < 0.5:
        return Existence(True, "linear program", "no direction of the linear predictor raises every weighted "
                         "row for ever (no separation): the weighted MLE is finite")
    direction = solved.x[:d]
    largest = np.max(np.abs(direction))
    moving = sorted((label, value) for label, value in zip(labels, direction) if abs(value) > 1e-6 * largest)
    diverging = tuple(f"{name if index < 0 else f'{name}[{index}]'} -> {'+inf' if value > 0 else '-inf'}"
                      for (name, index), value in moving)
    return Existence(False, "linear program", f"{count:.0f} weighted row margin(s) can grow for ever along "
                     "one direction of the linear predictor (separation, or zero counts a log link fits only "
                     "at infinity)", diverging=diverging)
