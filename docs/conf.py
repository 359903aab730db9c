"""Sphinx configuration of the wmle documentation (``make docs``; pages in MyST Markdown).

Figures are not copied into docs/: the pages link the committed PNGs in ``figures/`` by relative
paths (``../../figures/coin/weight_sweep.png`` from ``docs/analyses/coin.md``). Sphinx resolves an
image path relative to the page, outside the source directory too, and copies every image it
shows into the build's ``_images/``; a link to a PNG becomes a download link into ``_downloads/``.
So the built site is self-contained and nothing in figures/ is duplicated in the repository.

No intersphinx: building must not need the network.
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))   # `import models` from a checkout that is not installed

project = "wmle"
author = "the wmle authors"
copyright = "2026, the wmle authors"

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "numpydoc",
    "sphinx.ext.mathjax",
]

source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build"]

# MyST: headings get anchors down to level 3, so pages can link to sections (page.md#section).
myst_heading_anchors = 3
myst_enable_extensions = ["dollarmath"]

# autodoc + numpydoc: members in source order; each class's members once (numpydoc's own list off).
autodoc_member_order = "bysource"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False

html_theme = "alabaster"
html_title = "wmle"
html_theme_options = {
    "description": "MLE, weighted MLE, MAP and posterior of the same PyMC model",
    "fixed_sidebar": True,
    "page_width": "1180px",
    "sidebar_width": "230px",
}
