"""Process-wide settings the suite needs before any model compiles, in one idempotent call.

:func:`configure` (run by ``import models``; the command line and the tests call it again to switch
PyTensor's creation backtraces off):

* links PyTensor to OpenBLAS when the user has not chosen a BLAS (:mod:`models._config.blas`);
* makes PyTensor's C compilation cheaper: a precompiled header, no debug information
  (:mod:`models._config.cxx`);
* silences ArviZ 0.23's announcement of its 1.0 refactor, printed on every import (the suite pins 0.23);
* optionally switches off PyTensor's creation backtraces (the frames recorded for every graph
  variable, for error messages: a noticeable share of building and compiling the many graphs an
  analysis makes). A user's own ``traceback__limit`` in ``PYTENSOR_FLAGS`` is kept.
"""

from __future__ import annotations

import os
import warnings

from models._config import blas, cxx

__all__ = ["configure"]


def configure(*, creation_backtraces: bool = True) -> None:
    """Configure PyTensor and ArviZ for the suite; calling it again changes nothing already set.

    Parameters
    ----------
    creation_backtraces : bool, default True
        ``False`` sets PyTensor's ``traceback__limit`` to 0 unless ``PYTENSOR_FLAGS`` sets it
        (``PYTENSOR_FLAGS=traceback__limit=8`` restores PyTensor's default to debug an error inside
        a graph). ``True`` leaves the limit as it is.

    Returns
    -------
    None

    Examples
    --------
    >>> import models
    >>> models.configure(creation_backtraces=False)   # what the command line does
    """
    blas.configure()   # before PyTensor is imported, where possible: it reads PYTENSOR_FLAGS once
    warnings.filterwarnings("ignore", message="ArviZ is undergoing a major refactor", category=FutureWarning)
    import pymc  # noqa: F401  (sets PyTensor compiler flags of its own, which cxx builds on)
    import pytensor

    cxx.configure()
    if not creation_backtraces and "traceback__limit" not in os.environ.get("PYTENSOR_FLAGS", ""):
        pytensor.config.traceback__limit = 0
