"""The precompiled header and compiler flags of models.cxx: in use, used by g++, and left alone when
the user chose compiler flags."""

import subprocess
from pathlib import Path

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

from models._config import cxx


def _is_gcc() -> bool:
    version = subprocess.run([pytensor.config.cxx, "--version"], capture_output=True, text=True).stdout
    return "Free Software Foundation" in version


needs_gcc = pytest.mark.skipif(not pytensor.config.cxx or not _is_gcc(), reason="GCC's precompiled headers")


def _included_header() -> str:
    flags = pytensor.config.gcc__cxxflags.split()
    return flags[flags.index("-include") + 1]


@needs_gcc
def test_modules_compile_with_the_precompiled_header_and_without_debug_information(tmp_path):
    """Importing models appended both flags; g++ given the modules' flags loads the .gch (``-H``
    marks a loaded precompiled header with "!", one it rejects with "x") instead of the headers."""
    flags = pytensor.config.gcc__cxxflags.split()
    assert "-g0" in flags and "-include" in flags
    header = _included_header()
    probe = tmp_path / "probe.cpp"
    probe.write_text("int probe() { return 0; }\n")
    done = subprocess.run([pytensor.config.cxx, *cxx.module_flags(), "-H", "-Winvalid-pch", "-c", str(probe),
                           "-o", str(tmp_path / "probe.o")], capture_output=True, text=True, check=True)
    assert f"! {header}.gch" in done.stderr
    assert "Python.h" not in done.stderr   # parsed from the .gch, not read again


@needs_gcc
def test_the_header_lies_in_the_base_compile_directory_shared_by_every_compile_directory():
    """Its path is one of the flags in every module's cache key: kept under the base directory (not
    the test worker's own compile directory) it gives every compile directory under one base the
    same keys, so a worker can load a module another worker compiled (tests/conftest.py)."""
    header = Path(_included_header())
    assert header.parent.parent == Path(pytensor.config.base_compiledir) / "wmle_precompiled_header"
    assert Path(pytensor.config.compiledir) not in header.parents


@needs_gcc
def test_a_function_compiled_with_the_header_computes_what_numpy_does():
    """The flags are part of a C module's cache key: the modules of this function were compiled with
    the header in front of their own includes (now or by an earlier test)."""
    x = pt.dvector("x")
    function = pytensor.function([x], [pt.softplus(x) * pt.exp(-x ** 2), x.cumsum()])
    values = np.linspace(-3, 3, 7)
    softplus_part, cumulative = function(values)
    # Different formulas of softplus (PyTensor's piecewise log1p(exp), NumPy's logaddexp) agree to a
    # few ulps, 1e-15 relative; 1e-14 leaves room for the product's rounding.
    np.testing.assert_allclose(softplus_part, np.logaddexp(0, values) * np.exp(-values ** 2), rtol=1e-14)
    np.testing.assert_array_equal(cumulative, np.cumsum(values))


@needs_gcc
def test_configure_builds_a_header_for_new_flags_and_respects_the_switch_and_the_user(tmp_path, monkeypatch):
    plain = " ".join(f for f in pytensor.config.gcc__cxxflags.replace(_included_header(), "").split()
                     if f not in ("-g0", "-include"))
    with pytensor.config.change_flags(gcc__cxxflags=plain):
        monkeypatch.setenv("WMLE_PRECOMPILED_HEADER", "0")
        assert cxx.configure(tmp_path) == [] and pytensor.config.gcc__cxxflags == plain
        monkeypatch.delenv("WMLE_PRECOMPILED_HEADER")
        monkeypatch.setenv("PYTENSOR_FLAGS", "gcc__cxxflags=-O2")
        assert cxx.configure(tmp_path) == [] and pytensor.config.gcc__cxxflags == plain
        monkeypatch.delenv("PYTENSOR_FLAGS")
        added = cxx.configure(tmp_path)
        assert added[:2] == ["-g0", "-include"] and added[2].startswith(str(tmp_path))
        assert pytensor.config.gcc__cxxflags == " ".join([plain, *added])
        assert (tmp_path / f"{added[2]}.gch").is_file()
        assert cxx.configure(tmp_path) == []   # once per process


@needs_gcc
def test_the_compilers_probes_still_link_programs():
    """PyTensor probes the compiler (OpenMP, BLAS) by compiling and running small programs with the
    same flags but without -O; the header is empty there, so they link without Python's library."""
    from pytensor.link.c.cmodule import GCC_compiler

    program = "#include <stdio.h>\nint main() { printf(\"%d\", 6 * 7); return 0; }\n"
    assert GCC_compiler.try_compile_tmp(program, tmp_prefix="wmle_probe_", try_run=True) == (True, True)
    assert GCC_compiler.try_flags(["-fopenmp"])   # g++ supports OpenMP


@needs_gcc
def test_a_header_lost_from_the_cache_is_built_again(tmp_path):
    with pytensor.config.change_flags(gcc__cxxflags="-Wno-unused-label"):
        path = cxx.configure(tmp_path)[2]
    Path(path).unlink()   # e.g. a partly cleaned base compile directory: the .gch and the marker remain
    with pytensor.config.change_flags(gcc__cxxflags="-Wno-unused-label"):
        assert cxx.configure(tmp_path)[2] == path
    assert Path(path).is_file() and Path(f"{path}.gch").is_file()
