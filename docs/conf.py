"""Sphinx configuration of hyperspy_chemomech."""

import hyperspy_chemomech

project = "hyperspy_chemomech"
author = "hyperspy_chemomech developers"
copyright = "2026, hyperspy_chemomech developers"
release = hyperspy_chemomech.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.intersphinx",
    "numpydoc",
    "matplotlib.sphinxext.plot_directive",
]
# gallery: every example runs in the docs build and its figure is shown
plot_include_source = True
plot_html_show_source_link = False
plot_html_show_formats = False
plot_formats = [("png", 80)]
plot_pre_code = (
    "import numpy as np\n"
    "from hyperspy.defaults_parser import preferences\n"
    "preferences.General.show_progressbar = False\n"
)
autosummary_generate = True
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_validation_checks = set()
exclude_patterns = ["_build"]
templates_path = []
html_theme = "pydata_sphinx_theme"
html_theme_options = {"navigation_with_keys": False}
# No network at build time: intersphinx inventories are not fetched.
intersphinx_mapping = {}
nitpicky = False
