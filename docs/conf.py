"""Sphinx configuration: MyST markdown pages, autodoc from ``src/``, the furo theme.

Build with warnings as errors, as the ``docs`` nox session does::

    sphinx-build -W -b html docs docs/_build/html
"""

from __future__ import annotations

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# autodoc imports the SDK from the source tree, so the docs build even when it is not installed
sys.path.insert(0, os.path.join(ROOT, "src"))

project = "Universal Healer"
author = "Universal Healer developers"
copyright = "Universal Healer developers"

extensions = ["myst_parser", "sphinx.ext.autodoc"]
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build"]
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

# Type names in docstrings and signatures are shown, not all resolved: cross-references that
# cannot be resolved are not errors (nitpicky off); every other warning fails the build (-W).
nitpicky = False
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_preserve_defaults = True

html_title = "Universal Healer"
html_theme = "furo"
