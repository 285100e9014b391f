"""Sphinx configuration of the glassfrac documentation (build: ``sphinx-build -W docs docs/_build/html``).

Pages: Markdown (MyST) guides, the API reference from the numpydoc docstrings, the CLI reference from the
argparse parser (sphinx-argparse), a gallery of executed examples (sphinx-gallery, ``docs/examples``) and the
benchmark results generated from ``benchmarks/results/*.jsonl`` (``_ext/benchmark_results.py``).
"""

import os
import sys
from pathlib import Path

import matplotlib

matplotlib.use("agg")
for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(variable, "1")  # the gallery's timings are on one core

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS / "_ext"))

import glassfrac  # noqa: E402

project = "glassfrac"
author = "the glassfrac developers"
copyright = "the glassfrac developers, MIT licence"
version = release = glassfrac.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinxarg.ext",
    "sphinx_gallery.gen_gallery",
    "myst_parser",
    "benchmark_results",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "cluster.md", "examples/GALLERY_HEADER.rst", "**/sg_execution_times.rst"]
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence"]

autodoc_member_order = "bysource"
autodoc_typehints = "none"  # numpydoc's Parameters sections carry the types, with units
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False

sphinx_gallery_conf = {
    "examples_dirs": "examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": "/plot_",
    "within_subsection_order": "FileNameSortKey",
    "download_all_examples": False,
    "remove_config_comments": True,
    "abort_on_example_error": True,
    "show_memory": False,
    "write_computation_times": True,
    "matplotlib_animations": False,
}

benchmark_results_source = str(DOCS.parent / "benchmarks" / "results")

html_theme = "pydata_sphinx_theme"
html_title = f"glassfrac {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": [],
}
html_sidebars = {"**": ["sidebar-nav-bs"]}
html_show_sourcelink = False
