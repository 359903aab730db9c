"""Reading a PyMC model's graph: shared by every layer that inspects a model (no model is built here)."""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import pymc as pm
import pytensor
from pytensor.compile.sharedvalue import SharedVariable
from pytensor.graph.basic import Variable
from pytensor.graph.traversal import ancestors
from pytensor.tensor.variable import TensorConstant

from models.errors import InputError

__all__ = ["check_model", "data_kept", "value_of", "weights_data"]


def check_model(model) -> pm.Model:
    """``model`` itself when it is a ``pymc.Model``.

    Parameters
    ----------
    model : object

    Returns
    -------
    pymc.Model
        ``model``, unchanged.

    Raises
    ------
    InputError
        When ``model`` is not a ``pymc.Model``.

    Examples
    --------
    >>> import models
    >>> from models._graph import check_model
    >>> model = models.coin.build_model([1, 0, 1, 1])
    >>> check_model(model) is model
    True
    >>> check_model("coin")
    Traceback (most recent call last):
        ...
    models.errors.InputError: model must be a pymc.Model, got str
    """
    if not isinstance(model, pm.Model):
        raise InputError(f"model must be a pymc.Model, got {type(model).__name__}")
    return model


def value_of(variable, model: pm.Model):
    """The current value of a graph that depends on no random variable of the model.

    Parameters
    ----------
    variable : Variable or array_like
        A ``pm.Data``, a constant, a graph of them, or a plain array.
    model : pymc.Model

    Returns
    -------
    numpy.ndarray or None
        The value (a graph of data is evaluated), or ``None`` when ``variable`` depends on a random
        variable or value variable of the model.

    Examples
    --------
    >>> import models
    >>> from models._graph import value_of
    >>> model = models.coin.build_model([1, 0, 1, 1])
    >>> value_of(model["weights"], model), value_of(2 * model["prior_a"], model)
    (array([1., 1., 1., 1.]), array(2.))
    >>> value_of(model["p"], model) is None
    True
    """
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


def weights_data(model: pm.Model) -> SharedVariable:
    """The ``pm.Data`` holding the weights of the model's weighted terms, which calibration rescales.

    Parameters
    ----------
    model : pymc.Model
        A model whose weighted terms (marked by :mod:`models.likelihood`) share one ``pm.Data`` of
        weights; a model without marked terms may keep its weights in ``pm.Data("weights")``.

    Returns
    -------
    pytensor.compile.sharedvalue.SharedVariable
        The weights' data variable (``name``, ``get_value``, ``set_value``).

    Raises
    ------
    InputError
        When the weights are not one ``pm.Data`` (several weighted terms with weights of their own,
        weights computed from other variables, or no weights at all).

    Examples
    --------
    >>> import models
    >>> from models._graph import weights_data
    >>> weights_data(models.coin.build_model([1, 0, 1])).name
    'weights'
    """
    found = {term.tag.weighted_term.weights for term in model.observed_RVs
             if getattr(term.tag, "weighted_term", None) is not None}
    if not found and isinstance(model.named_vars.get("weights"), SharedVariable):
        return model.named_vars["weights"]
    if len(found) > 1:
        raise InputError(f"the model has {len(found)} weighted terms with weights of their own: the "
                         "calibration methods rescale one set of weights")
    weights = next(iter(found), None)
    if not isinstance(weights, SharedVariable):
        raise InputError("the model keeps no weights in a pm.Data('weights'): build it with a models.* "
                         "builder or models.weighted, or keep its weights in pm.Data")
    return weights


@contextmanager
def data_kept(model: pm.Model):
    """A block within which ``pm.set_data`` may swap the model's data: on leaving it (also on an
    error) every ``pm.Data`` holds its value from before, and every dim length held in a shared
    variable too, so a sweep over data sets leaves the caller's model as it was. Coordinate values
    changed with ``pm.set_data(..., coords=...)`` are not restored (no caller changes them).

    Parameters
    ----------
    model : pymc.Model

    Examples
    --------
    >>> import numpy as np, pymc as pm, models
    >>> from models._graph import data_kept
    >>> model = models.coin.build_model([1, 0, 1])
    >>> with data_kept(model):
    ...     pm.set_data({"weights": np.full(3, 10.0)}, model=model)
    >>> model["weights"].get_value()
    array([1., 1., 1.])
    """
    held = [*model.data_vars, *model.dim_lengths.values()]   # the data, and the lengths of dims they resize
    saved = {data: data.get_value(borrow=False) for data in held if isinstance(data, SharedVariable)}
    try:
        yield model
    finally:
        for data, value in saved.items():
            data.set_value(value)
