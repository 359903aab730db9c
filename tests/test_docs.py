"""The documentation site builds with warnings as errors (what `make docs` runs).

A broken link between pages, a missing figure, a page left out of the table of contents or a
docstring that does not parse (autodoc renders every public module of `models/`) fails the build.
Sphinx runs in a fresh process, as `make docs` does, so the build imports `models` as a user would.
"""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NEEDED = ("sphinx", "myst_parser", "numpydoc")
MISSING = [name for name in NEEDED if importlib.util.find_spec(name) is None]


@pytest.mark.skipif(bool(MISSING), reason=f"the docs extra is not installed (no {', '.join(MISSING)}): "
                                          "pip install -e '.[docs]', as make does")
def test_docs_build_without_warnings(tmp_path):
    html = tmp_path / "html"
    done = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
         "-d", str(tmp_path / "doctrees"), str(ROOT / "docs"), str(html)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, f"sphinx exited {done.returncode}:\n{done.stderr[-5000:]}"
    assert (html / "index.html").is_file()
    assert (html / "api.html").is_file()
