"""Separation in weighted logistic and softmax regression, decided by linear programming.

With rows ``x~_i = (1, x_i)``, class codes ``y_i`` in 0..K-1, non-negative weights ``w_i`` and a
coefficient matrix ``B`` (one column per class; K = 2: class 0's column is zero), the weighted
log-likelihood is ``sum_{i: w_i > 0} w_i log softmax(x~_i B)[y_i]``. Along a direction ``D`` of the
coefficients (``B + t D``, t -> infinity) row i changes only through its margins::

    m_ik(D) = x~_i . (D[:, y_i] - D[:, k]),   k != y_i.

If every margin of row i is >= 0 its term never falls, and it rises for ever when one is > 0; if
one is < 0 the term falls to minus infinity. So the log-likelihood has no finite maximiser exactly
when some D gives every margin of every weighted row a value >= 0 and at least one a value > 0:
*separation* (Albert & Anderson 1984; complete when every margin can be positive at once,
quasi-complete otherwise). Directions that leave every margin at 0 are aliased columns: the
log-likelihood is constant along them, a maximiser exists but is not unique. Only the signs of the
weights matter, so rows of weight 0 are dropped and positive weights never change the verdict. The
same holds for the focal loss ``(1 - p_i)^gamma log p_i``, which also rises with every margin.

The linear programs (after Konis 2007, whose form R's ``detectseparation`` implements; solved with
HiGHS through ``scipy.optimize.linprog``, no BLAS involved):

* the verdict:  maximise sum t  subject to  m(D) >= t,  0 <= t <= 1.  The margins that can be
  positive form a cone, so one D makes all of them >= 1 at once: the optimum is the *number* of
  margins that can be made positive, an integer, 0 exactly when there is no separation;
* the directions: for each coordinate j, maximise and minimise D_j subject to m(D) >= 0 and
  sum m(D) <= (number of margins). A coordinate that can only grow diverges to +inf, one that can only
  shrink to -inf, one that can do both moves either way depending on the direction; an unbounded
  program means the coordinate is aliased (it moves without changing any margin).

``fixed`` coordinates are held at zero in every program: a proper prior on a coordinate (Normal,
ZeroSumNormal) penalises every direction that moves it, so the MAP has no finite maximiser exactly
when separation remains with those coordinates fixed (a flat intercept with the rows separated along
the intercept alone, say).

Numerics: features are rescaled column by column and margins row by row (positive factors, which leave
every sign and so the verdict unchanged), and HiGHS runs at feasibility tolerance 1e-10. The verdict
is a count read off an integer optimum; a count more than 1e-6 from an integer would mean data
degenerate at the solver's tolerance and raises an error rather than guess.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import optimize

from models.errors import InputError

_HIGHS = {"primal_feasibility_tolerance": 1e-10, "dual_feasibility_tolerance": 1e-10}
_INTEGER_SLACK = 1e-6     # the verdict's optimum must be this close to an integer
_MOVES = 1e-6             # a coordinate moves when its extreme value in the direction LP exceeds this


@dataclass(frozen=True)
class Separation:
    """What the linear programs of :func:`detect` found.

    Attributes
    ----------
    separated : bool
        Separation: the weighted log-likelihood has no finite maximiser.
    complete : bool
        Every margin can be positive at once (complete, not quasi-complete, separation).
    rows : tuple of int
        Indices of the weighted observations whose term rises for ever along some separating
        direction.
    directions : dict
        Coordinate name -> ``"+inf"``, ``"-inf"`` or ``"+inf or -inf"``, for the coordinates that
        diverge.
    aliased : tuple of str
        Names of the coordinates that move without changing any margin.
    weighted_rows : int
        Rows of positive weight.
    direction : numpy.ndarray
        One separating direction, in the coordinates' order and the features' own units, which makes
        every margin of the ``rows`` positive and none negative (zeros without separation): a
        certificate anyone can check. Left out of comparisons and of the ``repr``.

    Examples
    --------
    >>> from models.estimation.separation import detect
    >>> found = detect([[0.0], [1.0], [1.0]], [0, 1, 0])
    >>> found.separated, found.complete, found.rows
    (True, False, (0,))
    >>> found.directions
    {'intercept': '-inf', 'coef[feature=x0]': '+inf'}
    """

    separated: bool
    complete: bool
    rows: tuple[int, ...]
    directions: dict[str, str]
    aliased: tuple[str, ...]
    weighted_rows: int
    direction: np.ndarray = field(compare=False, repr=False)

    def describe(self) -> str:
        """One sentence: whether the rows separate, and how many are fitted ever more surely.

        Returns
        -------
        str

        Examples
        --------
        >>> from models.estimation.separation import detect
        >>> detect([[0.0], [1.0], [2.0]], [0, 1, 0]).describe()
        'no separation among the 3 weighted rows'
        >>> print(detect([[-1.0], [1.0]], [0, 1]).describe())
        complete separation: along a separating direction the terms of 2 of the 2 weighted rows rise for ever
        """
        if not self.separated:
            return f"no separation among the {self.weighted_rows} weighted rows"
        kind = "complete" if self.complete else "quasi-complete"
        return (f"{kind} separation: along a separating direction the terms of {len(self.rows)} of the "
                f"{self.weighted_rows} weighted rows rise for ever")


def coordinate_names(n_features: int, n_classes: int, feature_names=None, class_names=None) -> list[str]:
    """Names of the coordinates of ``D`` in the order the programs use.

    Intercept first, then the coefficients feature by feature; for K > 2 every class within each
    (``name[class=c]``).

    Parameters
    ----------
    n_features : int
        Columns of the features (no intercept column).
    n_classes : int
        K; 2 is binary logistic regression (one column of coefficients).
    feature_names, class_names : sequence of str, optional
        Default ``x0, x1, ...`` and ``class_0, class_1, ...``.

    Returns
    -------
    list of str

    Examples
    --------
    >>> from models.estimation.separation import coordinate_names
    >>> coordinate_names(2, 2)
    ['intercept', 'coef[feature=x0]', 'coef[feature=x1]']
    >>> coordinate_names(1, 3, class_names=["a", "b", "c"])[3:]
    ['coef[feature=x0, class=a]', 'coef[feature=x0, class=b]', 'coef[feature=x0, class=c]']
    """
    features = list(feature_names) if feature_names is not None else [f"x{j}" for j in range(n_features)]
    if n_classes == 2:
        return ["intercept", *(f"coef[feature={f}]" for f in features)]
    classes = list(class_names) if class_names is not None else [f"class_{k}" for k in range(n_classes)]
    return [*(f"intercept[class={c}]" for c in classes),
            *(f"coef[feature={f}, class={c}]" for f in features for c in classes)]


def _margin_matrix(X: np.ndarray, y: np.ndarray, n_classes: int):
    """``(M, E, row_of, unit)``: margins ``m = M @ vec(D)`` in rescaled coordinates, equalities
    ``E @ vec(D) = 0`` (each row of D sums to zero over classes when K > 2), the observation of each
    margin, and the factor from each rescaled coordinate to the features' own units."""
    design = np.column_stack([np.ones(len(y)), X])
    scale = np.max(np.abs(design), axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    design = design / scale
    rows, width = design.shape
    if n_classes == 2:
        return (design * np.where(y == 1, 1.0, -1.0)[:, None], np.zeros((0, width)), np.arange(rows),
                1 / scale)
    rivals = np.array([[k for k in range(n_classes) if k != label] for label in y])   # (rows, K - 1)
    M = np.zeros((rows, n_classes - 1, width, n_classes))
    observation = np.arange(rows)[:, None]
    M[observation, np.arange(n_classes - 1), :, y[:, None]] += design[:, None, :]
    M[observation, np.arange(n_classes - 1), :, rivals] -= design[:, None, :]
    E = np.kron(np.eye(width), np.ones((1, n_classes)))
    row_of = np.repeat(np.arange(rows), n_classes - 1)
    return M.reshape(rows * (n_classes - 1), width * n_classes), E, row_of, np.repeat(1 / scale, n_classes)


def _linprog(cost, *, A_ub, b_ub, A_eq, bounds):
    b_eq = np.zeros(A_eq.shape[0]) if A_eq.shape[0] else None
    return optimize.linprog(cost, A_ub=A_ub, b_ub=b_ub, A_eq=A_eq if A_eq.shape[0] else None, b_eq=b_eq,
                            bounds=bounds, method="highs", options=_HIGHS)


def _any_aliased(M, E, coordinate_bounds) -> bool:
    """Could some free coordinate move while every margin stays 0 (and each row of D sums to 0)?
    Exactly when [M; E] restricted to the free coordinates has a null space: a rank, by SVD. It only
    decides whether the per-coordinate programs below run; they decide which coordinates alias."""
    free = np.array([bounds != (0.0, 0.0) for bounds in coordinate_bounds])
    stacked = np.vstack([M, E])[:, free]
    return bool(free.any()) and np.linalg.matrix_rank(stacked) < int(free.sum())


def detect(X, y, weights=None, *, n_classes: int | None = None, names=None, fixed=(),
           directions: bool = True) -> Separation:
    """Decide separation of weighted rows by linear programming (see the module docstring).

    Parameters
    ----------
    X : array_like, shape (n, features)
        Features, no intercept column.
    y : array_like of int, shape (n,)
        Class codes 0..K-1.
    weights : array_like, shape (n,), optional
        Finite non-negative weights, default ones; only their signs matter (rows of weight 0 are
        dropped).
    n_classes : int, optional
        K; default ``max(y) + 1``.
    names : sequence of str, optional
        The coordinates' names (default :func:`coordinate_names`).
    fixed : collection of str, default ()
        Names of coordinates held at zero (those a proper prior penalises).
    directions : bool, default True
        ``False`` skips the programs that name the diverging and aliased coordinates: the verdict
        alone, one program.

    Returns
    -------
    Separation
        The verdict, the diverging and aliased coordinates and a separating direction.

    Raises
    ------
    InputError
        When ``X``, ``y`` and ``weights`` do not fit together, a weight is negative or not finite, a
        feature is not finite, ``names`` do not match the coordinates, or ``fixed`` names an unknown
        coordinate.
    RuntimeError
        When a linear program fails, or the verdict's optimum is not a whole number of margins (data
        degenerate at the solver's tolerance).

    Examples
    --------
    >>> from models.estimation.separation import detect
    >>> detect([[-1.0], [1.0]], [0, 1]).directions
    {'intercept': '+inf or -inf', 'coef[feature=x0]': '+inf'}
    >>> detect([[-1.0], [1.0]], [0, 1], fixed=["intercept"]).direction
    array([0., 1.])
    >>> detect([[0.0], [1.0], [2.0]], [0, 1, 0]).separated
    False
    """
    X = np.asarray(X, dtype=float)
    y = np.asarray(y)
    w = np.ones(len(y)) if weights is None else np.asarray(weights, dtype=float)
    if X.ndim != 2 or y.shape != (X.shape[0],) or w.shape != y.shape:
        raise InputError(f"X {X.shape}, y {y.shape} and weights {w.shape} do not fit together")
    if np.any(w < 0) or not np.all(np.isfinite(w)) or not np.all(np.isfinite(X)):
        raise InputError("separation is decided for finite features and finite non-negative weights")
    n_classes = int(y.max()) + 1 if n_classes is None else int(n_classes)
    names = coordinate_names(X.shape[1], n_classes) if names is None else list(names)
    kept = np.flatnonzero(w > 0)
    M, E, row_of, to_units = _margin_matrix(X[kept], y[kept].astype(int), n_classes)
    M = M / np.maximum(np.max(np.abs(M), axis=1, keepdims=True), np.finfo(float).tiny)
    margins, width = M.shape
    if len(names) != width:
        raise InputError(f"{len(names)} names for {width} coordinates")
    if margins == 0:   # every weight zero: a flat log-likelihood, every coordinate free
        return Separation(separated=False, complete=False, rows=(), directions={},
                          aliased=tuple(n for n in names if n not in fixed), weighted_rows=0,
                          direction=np.zeros(width))
    unknown = set(fixed) - set(names)
    if unknown:
        raise InputError(f"fixed names unknown coordinates {sorted(unknown)}")
    coordinate_bounds = [(0.0, 0.0) if name in fixed else (None, None) for name in names]

    # The verdict: how many margins can be made positive at once.
    found = _linprog(np.concatenate([np.zeros(width), -np.ones(margins)]),
                     A_ub=np.hstack([-M, np.eye(margins)]), b_ub=np.zeros(margins),
                     A_eq=np.hstack([E, np.zeros((E.shape[0], margins))]),
                     bounds=coordinate_bounds + [(0.0, 1.0)] * margins)
    if found.status != 0:
        raise RuntimeError(f"the separation linear program failed: {found.message}")
    count = -found.fun
    if abs(count - round(count)) > _INTEGER_SLACK:
        raise RuntimeError(f"the separation linear program ended at {count!r}, not a whole number of "
                           "margins: the data are degenerate at the solver's tolerance")
    positive = found.x[width:] > 0.5
    separated_rows = tuple(int(kept[i]) for i in np.unique(row_of[positive]))

    # The directions: how far each coordinate can move on the normalised cone of separating directions.
    cone = {"A_ub": np.vstack([-M, np.ones((1, margins)) @ M]),
            "b_ub": np.concatenate([np.zeros(margins), [float(margins)]]), "A_eq": E,
            "bounds": coordinate_bounds}
    separated = round(count) > 0
    found_directions, aliased = {}, []
    if not directions or (not separated and not _any_aliased(M, E, coordinate_bounds)):
        names = []   # not asked for, or nothing separates and nothing aliases: every coordinate stays
    for j, name in enumerate(names):
        if name in fixed:
            continue
        axis = np.eye(width)[j]
        highest = _linprog(-axis, **cone)
        if highest.status == 3:   # unbounded: the coordinate moves along a direction with all margins 0
            aliased.append(name)
            continue
        lowest = _linprog(axis, **cone)
        if highest.status != 0 or lowest.status != 0:
            raise RuntimeError(f"the direction linear program of {name} failed: "
                               f"{highest.message} / {lowest.message}")
        up, down = -highest.fun > _MOVES, lowest.fun < -_MOVES
        if up or down:
            found_directions[name] = "+inf or -inf" if up and down else ("+inf" if up else "-inf")
    return Separation(separated=separated, complete=round(count) == margins,
                      rows=separated_rows, directions=found_directions, aliased=tuple(aliased),
                      weighted_rows=int(kept.size),
                      direction=found.x[:width] * to_units if separated else np.zeros(width))
