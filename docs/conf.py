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
    "sphinx_gallery.gen_gallery",
]
# guide pages: every ``.. plot::`` runs in the docs build and its figure is shown
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
exclude_patterns = ["_build", "_inventories", "examples"]
templates_path = []
html_theme = "pydata_sphinx_theme"
html_theme_options = {"navigation_with_keys": False}
# The gallery: docs/examples/plot_*.py run at every build (small synthetic data, about a
# minute in all); their pages, thumbnails and notebooks go to docs/gallery/ (generated).
sphinx_gallery_conf = {
    "examples_dirs": "examples",
    "gallery_dirs": "gallery",
    "filename_pattern": r"/plot_",
    "within_subsection_order": "FileNameSortKey",
    "download_all_examples": False,
    "remove_config_comments": True,
    "abort_on_example_error": True,
    "only_warn_on_example_error": False,
    "reset_modules": ("matplotlib",),
    "image_scrapers": ("matplotlib",),
    "matplotlib_animations": False,
    "show_memory": False,
    "write_computation_times": False,
    "capture_repr": (),   # a plot's returned Figure is shown as the figure, not its repr
}
# No network at build time: intersphinx reads the inventories committed in
# docs/_inventories (made by make_inventories.py there from the installed packages).
_INV = "_inventories/"
intersphinx_mapping = {
    "numpy": ("https://numpy.org/doc/stable/", _INV + "numpy.inv"),
    "scipy": ("https://docs.scipy.org/doc/scipy/", _INV + "scipy.inv"),
    "hyperspy": ("https://hyperspy.org/hyperspy-doc/current/", _INV + "hyperspy.inv"),
    "pyxem": ("https://pyxem.readthedocs.io/en/stable/", _INV + "pyxem.inv"),
}
intersphinx_timeout = 1
nitpicky = False
