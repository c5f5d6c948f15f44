"""Sphinx configuration of the b2models documentation (``make docs``: warnings are errors)."""

import dataclasses
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))

import b2models  # noqa: E402  (the installed package: its version is the documentation's)

project = "b2models"
author = "the b2models authors"
copyright = "the b2models authors, MIT licence"  # noqa: A001
version = b2models.__version__
release = b2models.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
    "b2models_docs",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "auto_examples/*.ipynb", "auto_examples/*.py",
                    "auto_examples/*.zip", "auto_examples/*.json", "auto_examples/*.md5"]
templates_path = []
highlight_language = "none"
language = "en"

# -- MyST (Markdown pages) -------------------------------------------------------------------------------
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

# -- autodoc / napoleon (numpydoc docstrings) ------------------------------------------------------------
autodoc_default_options = {"members": True, "member-order": "bysource", "show-inheritance": False}
autodoc_typehints = "description"
autodoc_typehints_format = "short"
autodoc_preserve_defaults = True
autodoc_inherit_docstrings = False
autodoc_docstring_signature = False  # a dataclass without a docstring gets its signature as one
napoleon_numpy_docstring = True
napoleon_google_docstring = False
napoleon_use_rtype = False

# -- sphinx-gallery: the examples are listed, not executed (the test suite runs them) -------------------
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"^$",  # execute nothing
    "plot_gallery": "False",
    "download_all_examples": False,
    "within_subsection_order": "FileNameSortKey",
    "remove_config_comments": True,
    "show_memory": False,
    "show_signature": False,
}

# -- HTML ------------------------------------------------------------------------------------------------
html_theme = "furo"
html_title = f"b2models {release}"
html_static_path = []
html_show_sourcelink = True


# -- absolute values in docstrings -------------------------------------------------------------------------
# Docstrings write absolute values as |x|, which reStructuredText reads as a
# substitution reference; their bars are escaped when the docstring is read.
_ABS_VALUE = re.compile(r"(?<![|`\\])\|([^|`\s][^|`]*?)\|(?![|_`])")
_ESCAPE_ABS_IN = ("b2models.",)


def _escape_absolute_values(app, what, name, obj, options, lines):
    if not name.startswith(_ESCAPE_ABS_IN):
        return
    for i, line in enumerate(lines):
        if ">>>" not in line:
            lines[i] = _ABS_VALUE.sub(r"\\|\1\\|", line)


# -- dataclasses without a docstring, and defaults that print a memory address ------------------------------
def _drop_generated_dataclass_doc(app, what, name, obj, options, lines):
    """A dataclass without a docstring gets ``Name(field: type, ...)`` as its ``__doc__``: not a description."""
    if what == "class" and dataclasses.is_dataclass(obj) and "\n".join(lines).strip().startswith(obj.__name__ + "("):
        lines[:] = []


_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def _strip_addresses(app, what, name, obj, options, signature, return_annotation):
    if signature:
        return _ADDRESS.sub("", signature), return_annotation
    return None


def setup(app):
    app.connect("autodoc-process-docstring", _escape_absolute_values)
    app.connect("autodoc-process-docstring", _drop_generated_dataclass_doc)
    app.connect("autodoc-process-signature", _strip_addresses)
