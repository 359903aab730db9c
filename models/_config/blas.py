"""Point PyTensor at a BLAS library before any model is compiled.

pip-installed PyTensor leaves ``blas__ldflags`` empty unless it finds ``cblas`` (or OpenBLAS with
``gfortran``) by itself; it then warns "could not link to a BLAS installation" and its C matrix
products run several times slower (``docs/performance.md`` has the measurement). Debian's
``libopenblas-dev`` provides ``libopenblas.so``; linking it with ``-lopenblas`` is all PyTensor
needs. A user's own setting (``PYTENSOR_FLAGS`` or ``.pytensorrc``)
always wins.
"""

from __future__ import annotations

import os
import sys
import sysconfig
from pathlib import Path

_LIBRARY = "libopenblas.so"


def _library_dirs() -> list[Path]:
    multiarch = sysconfig.get_config_var("MULTIARCH") or ""
    candidates = [
        Path(sys.prefix) / "lib",
        Path("/usr/lib") / multiarch,
        Path("/usr/local/lib"),
        Path("/usr/lib64"),
        Path("/usr/lib"),
        Path("/opt/homebrew/opt/openblas/lib"),
        Path("/usr/local/opt/openblas/lib"),
    ]
    return [d for d in candidates if str(d)]


def find_openblas() -> Path | None:
    """Directory holding a linkable ``libopenblas.so`` (or ``.dylib``), or None.

    Looks in the environment's ``lib``, the system's library folders (with the platform's
    multiarch folder) and Homebrew's OpenBLAS folders, in that order.

    Returns
    -------
    pathlib.Path or None
        The first folder holding the library; ``None`` when there is none.

    Examples
    --------
    >>> from models._config import blas
    >>> blas.find_openblas()  # doctest: +SKIP
    PosixPath('/usr/lib/x86_64-linux-gnu')
    """
    for directory in _library_dirs():
        for name in (_LIBRARY, "libopenblas.dylib"):
            if (directory / name).exists():
                return directory
    return None


def _user_configured() -> bool:
    flags = os.environ.get("PYTENSOR_FLAGS", "")
    rc_files = os.environ.get("PYTENSORRC", str(Path.home() / ".pytensorrc")).split(os.pathsep)
    in_rc = any(Path(f).is_file() and "ldflags" in Path(f).read_text() for f in rc_files)
    return "blas__ldflags" in flags or in_rc


def configure() -> str | None:
    """Set ``blas__ldflags`` to link OpenBLAS when the user has not chosen a BLAS.

    Works whether or not PyTensor is already imported: in ``pytensor.config`` once it is, else in
    ``PYTENSOR_FLAGS`` (keeping the flags there).

    Returns
    -------
    str or None
        The flags set (``-L<folder> -lopenblas``), or None when nothing was changed (user setting
        present, or no OpenBLAS found: PyTensor then warns).

    Examples
    --------
    ``import models`` runs it; on Debian with ``libopenblas-dev`` and no BLAS chosen by the user:

    >>> import models, pytensor
    >>> pytensor.config.blas__ldflags  # doctest: +SKIP
    '-L/usr/lib/x86_64-linux-gnu -lopenblas'
    """
    if _user_configured():
        return None
    directory = find_openblas()
    if directory is None:
        return None
    ldflags = f"-L{directory} -lopenblas"
    if "pytensor" in sys.modules:
        import pytensor

        pytensor.config.blas__ldflags = ldflags
    else:
        existing = os.environ.get("PYTENSOR_FLAGS", "")
        os.environ["PYTENSOR_FLAGS"] = ",".join(f for f in (existing, f"blas__ldflags={ldflags}") if f)
    return ldflags


if __name__ == "__main__":  # `python models/_config/blas.py`: exit 0 when OpenBLAS is found (the Makefile)
    sys.exit(find_openblas() is None)
