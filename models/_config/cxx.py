"""Cheaper C compilation for PyTensor: a precompiled header and no debug information.

A model's first fit is mostly g++ compiling PyTensor's C modules (dozens per model, each a separate
g++ run), and much of each run used to go to parsing the same headers (``Python.h``, NumPy's,
``<vector>``, ...) and writing the debug information PyTensor asks for with ``-g``.
:func:`configure` appends to ``gcc__cxxflags``:

* ``-g0``: no debug information in the compiled modules;
* ``-include DIR/modules.h``: a header of the includes PyTensor's modules begin with, in their
  order (Elemwise and CAReduce modules also include ``<vector>`` and ``<algorithm>``; the others now
  see their declarations too, which compiles to the same code), precompiled once (``modules.h.gch``)
  with the flags most modules are compiled with, so g++ loads its parsed form instead of parsing
  them again. It is empty without optimisation (``__OPTIMIZE__``): PyTensor's probes of the compiler
  (OpenMP, BLAS) compile and link small programs without ``-O`` and get the same flags.

The gain on a model's first fit from an empty compile cache is measured by
``python -m benchmarks.first_compile`` (``docs/performance.md``). Where g++ finds the precompiled
file unusable (an optimised compile with other flags),
it reads ``modules.h`` as text: slower, same result. ``DIR`` is a folder of PyTensor's base compile
directory (``~/.pytensor`` by default) named by a hash of the compiler's version, the flags and the
size and time of every header under the include folders, so a new NumPy, Python or PyTensor gets a
new header instead of a stale one (system headers such as ``math.h`` are taken to change with the
compiler).

Only ``-g0`` is added when the precompiled header cannot be built or is rejected by the compiler (it
is then not GCC, or not this GCC) or when its path has a space (PyTensor splits the flags on spaces).
Nothing is changed when the user set ``gcc__cxxflags`` (``PYTENSOR_FLAGS`` or ``.pytensorrc``), when
PyTensor has no C compiler, or with ``WMLE_PRECOMPILED_HEADER=0``.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
from pathlib import Path

# What PyTensor's generated modules begin with (pytensor/link/c/cmodule.py and the Ops' c_headers),
# for optimised compiles only: PyTensor compiles its modules with -O3 but its probes of the compiler
# (OpenMP, BLAS) without -O, as small executables that must not include Python's and NumPy's headers.
HEADER = """#ifdef __OPTIMIZE__
#include <Python.h>
#include "pytensor_mod_helper.h"
#include <math.h>
#include <numpy/arrayobject.h>
#include <numpy/arrayscalars.h>
#include <numpy/npy_math.h>
#include <vector>
#include <algorithm>
#endif
"""
_FLAGS = ("-g0",)
_SWITCH = "WMLE_PRECOMPILED_HEADER"


def _user_configured() -> bool:
    flags = os.environ.get("PYTENSOR_FLAGS", "")
    rc_files = os.environ.get("PYTENSORRC", str(Path.home() / ".pytensorrc")).split(os.pathsep)
    in_rc = any(Path(f).expanduser().is_file() and "cxxflags" in Path(f).expanduser().read_text()
                for f in rc_files)
    return "cxxflags" in flags or in_rc


def module_flags() -> list[str]:
    """The flags PyTensor compiles an Elemwise module with, which most of a model's modules share.

    Returns
    -------
    list of str
        ``CLinker.compile_args()`` and ``-I`` of the standard include folders.

    Examples
    --------
    >>> from models._config import cxx
    >>> "-O3" in cxx.module_flags()
    True
    """
    import pytensor.tensor as pt
    from pytensor.graph.fg import FunctionGraph
    from pytensor.link.c.basic import CLinker
    from pytensor.link.c.cmodule import std_include_dirs

    x = pt.dvector("x")
    linker = CLinker().accept(FunctionGraph([x], [pt.exp(x)], clone=False))
    return linker.compile_args() + [f"-I{directory}" for directory in std_include_dirs()]


def _fingerprint(cxx: str, flags: list[str]) -> str:
    """Hash of the compiler, the flags and every header file's path, size and time."""
    digest = hashlib.sha256("\0".join([cxx, *flags, HEADER]).encode())
    version = subprocess.run([cxx, "--version"], capture_output=True, text=True, timeout=60).stdout
    digest.update(version.encode())
    for flag in flags:
        if flag.startswith("-I") and Path(flag[2:]).is_dir():
            for header in sorted(Path(flag[2:]).rglob("*.h")):
                stat = header.stat()
                digest.update(f"{header}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


def _build(cxx: str, flags: list[str], folder: Path) -> bool:
    """``modules.h`` and its ``.gch`` in ``folder``, checked once (a marker file) to be what g++ loads
    with these flags; True when it is. Concurrent builders each write temporary files and rename
    them into place."""
    header, compiled, checked = folder / "modules.h", folder / "modules.h.gch", folder / "checked"
    if checked.exists() and header.exists() and compiled.exists():
        return True
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder) as scratch:
        if not (header.exists() and compiled.exists()):
            text = Path(scratch) / "modules.h"
            text.write_text(HEADER)
            done = subprocess.run([cxx, *flags, "-x", "c++-header", str(text), "-o", f"{text}.gch"],
                                  capture_output=True, text=True, timeout=600)
            if done.returncode != 0:
                return False
            os.replace(text, header)
            os.replace(f"{text}.gch", compiled)
        probe = Path(scratch) / "probe.cpp"
        probe.write_text("int probe() { return 0; }\n")
        check = subprocess.run([cxx, *flags, "-include", str(header), "-Winvalid-pch", "-H", "-c",
                                str(probe), "-o", str(Path(scratch) / "probe.o")],
                               capture_output=True, text=True, timeout=600)
    if check.returncode != 0 or f"! {compiled}" not in check.stderr:
        return False
    checked.touch()
    return True


def configure(root: Path | None = None) -> list[str]:
    """Append ``-g0`` and, when g++ accepts it, the precompiled header to ``gcc__cxxflags``.

    The header goes in as ``-include`` of it. Once per process; call after PyMC is imported, which
    sets flags of its own.

    Parameters
    ----------
    root : pathlib.Path, optional
        Where the header is kept (default: PyTensor's base compile directory, the parent of every
        compile directory: its path is one of the flags, so processes compiling into different
        directories under one base, such as the test workers, give a module the same flags and the
        same cache key).

    Returns
    -------
    list of str
        The flags appended ([] when nothing was changed, see the module docstring).

    Examples
    --------
    >>> import models   # runs cxx.configure() once
    >>> from models._config import cxx
    >>> cxx.configure()   # configured already in this process
    []
    """
    import pytensor

    config = pytensor.config
    if os.environ.get(_SWITCH, "1") == "0" or _user_configured() or not config.cxx:
        return []
    if "-g0" in config.gcc__cxxflags.split():
        return []   # configured already in this process
    added = list(_FLAGS)
    config.gcc__cxxflags = " ".join([config.gcc__cxxflags, *added]).strip()
    root = Path(config.base_compiledir) if root is None else Path(root)
    try:
        flags = module_flags()
        folder = root / "wmle_precompiled_header" / _fingerprint(config.cxx, flags)
        usable = _build(config.cxx, flags, folder)
    except (OSError, subprocess.SubprocessError):
        usable = False
    path = str(folder / "modules.h") if usable else ""
    if usable and " " not in path:   # PyTensor splits gcc__cxxflags on spaces
        added += ["-include", path]
        config.gcc__cxxflags = f"{config.gcc__cxxflags} -include {path}"
    return added
