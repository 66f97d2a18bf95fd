"""
Sphinx configuration for the xmppws documentation.

Build with::

    .venv/bin/sphinx-build -W docs docs/_build
"""

import configparser
import os

_here = os.path.dirname(os.path.abspath(__file__))
_setup = configparser.ConfigParser()
_setup.read(os.path.join(_here, os.pardir, "setup.cfg"), encoding="utf-8")

project = "xmppws"
author = "the xmppws developers"
copyright = "2026, the xmppws developers"
release = _setup.get("metadata", "version", fallback="unknown")
version = ".".join(release.split(".")[:2])

extensions = []

root_doc = "index"
exclude_patterns = ["_build"]
highlight_language = "python3"

html_theme = "alabaster"
html_static_path = []
