"""Sphinx configuration: numpydoc API reference from the docstrings, the papers and glossary pages
(Markdown through MyST), and a sphinx-gallery of examples executed at build time."""

import os
import sys

sys.path.insert(0, os.path.abspath(".."))
sys.path.insert(0, os.path.abspath("."))  # gallery_scraper
import cmtheory  # noqa: E402

project = "cmtheory"
author = "the cmtheory developers"
copyright = "2026, the cmtheory developers"
version = release = cmtheory.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "api/generated/*.examples", "auto_examples/*.ipynb", "auto_examples/*.py", "auto_examples/*.zip", "auto_examples/*.json", "auto_examples/*.codeobj.json", "examples/README.txt"]
autosummary_generate = True
autodoc_default_options = {"members": True, "member-order": "bysource"}
numpydoc_show_class_members = False
numpydoc_xref_param_type = False
myst_enable_extensions = ["dollarmath"]
myst_heading_anchors = 3
html_theme = "alabaster"
html_static_path = []



sphinx_gallery_conf = {
    "image_scrapers": ("gallery_scraper.tight_matplotlib_scraper",),
    "examples_dirs": "examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "abort_on_example_error": True,
    "download_all_examples": False,
    "remove_config_comments": True,
    "show_memory": False,
    "min_reported_time": 1,
}


def _skip_reexported_laws(app, what, name, obj, skip, options):
    """Document a name of :mod:`cmtheory.laws` once, under cmtheory.laws: cmtheory.samplers
    re-exports the Gaussian transition kernels its samplers draw from."""
    documenting = app.env.temp_data.get("autodoc:module") or ""
    defined_in = getattr(obj, "__module__", None) or ""
    if what == "module" and defined_in.startswith("cmtheory.laws") and not documenting.startswith("cmtheory.laws"):
        return True
    return None


def setup(app):
    app.connect("autodoc-skip-member", _skip_reexported_laws)
