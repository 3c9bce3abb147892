"""Sphinx configuration for the flask-pgmig documentation (Pallets style, like Flask-SQLAlchemy's)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxRole

import flask_pgmig

HERE = Path(__file__).parent

# Project ------------------------------------------------------------------------------------------------------

project = "flask-pgmig"
copyright = "2026, flask-pgmig developers"
author = "flask-pgmig developers"
release = flask_pgmig.__version__
version = ".".join(release.split(".")[:2])

# General ------------------------------------------------------------------------------------------------------

extensions = ["sphinx.ext.autodoc", "pallets_sphinx_themes"]
exclude_patterns = ["_build", "_matrix", "Thumbs.db", ".DS_Store"]
autodoc_typehints = "description"
autodoc_member_order = "bysource"
autodoc_default_options = {"members": True}
# Links to Python, Flask and psycopg stay plain text: the docs build offline (no intersphinx inventories).
nitpicky = False

# HTML ---------------------------------------------------------------------------------------------------------

html_theme = "flask"
html_theme_options = {"index_sidebar_logo": False}
html_sidebars = {
    "index": ["project.html", "localtoc.html", "searchbox.html"],
    "**": ["localtoc.html", "relations.html", "searchbox.html"],
}
html_title = f"flask-pgmig Documentation ({version})"
html_show_sourcelink = False
version_banner = False  # the Pallets banner asks Read the Docs for versions; these docs are built offline

# Guides -------------------------------------------------------------------------------------------------------
# Pages written alongside the features they describe, in the order the index lists them. Each appears in the
# index's "Guides" toctree, and :guide:`name` links to it, only once the page exists, so the build (with -W)
# never refers to a missing document while the guides are being written.
GUIDES = (
    "flask",
    "config",
    "checking",
    "reliability",
    "data-migrations",
    "testing",
    "adopting",
    "scaling",
    "benchmarks",
)
GUIDES_MARKER = ".. pgmig-guides::"


def existing_guides() -> list[str]:
    """The guides whose page exists, in index order."""
    return [name for name in GUIDES if (HERE / f"{name}.rst").is_file()]


def insert_guides(app: Sphinx, docname: str, source: list[str]) -> None:
    """Replace the marker line in the index with a toctree of the existing guides."""
    if docname != "index" or GUIDES_MARKER not in source[0]:
        return
    entries = "".join(f"   {name}\n" for name in existing_guides())
    toctree = f".. toctree::\n   :maxdepth: 2\n   :caption: Guides\n\n{entries}" if entries else ""
    source[0] = source[0].replace(GUIDES_MARKER, toctree)


class GuideRole(SphinxRole):
    """``:guide:`text <name>``` is ``:doc:`` when docs/<name>.rst exists, else the text in italics."""

    def run(self) -> tuple[list[nodes.Node], list[nodes.system_message]]:
        text = self.text
        title, _, target = text.rpartition("<")
        name = target.rstrip(">").strip() if title else text.strip()
        if (HERE / f"{name}.rst").is_file():
            role = self.env.get_domain("std").role("doc")
            assert role is not None
            return role("std:doc", self.rawtext, text, self.lineno, self.inliner, {}, [])  # type: ignore[return-value]
        return [nodes.emphasis(text=(title.strip() or name))], []


MATRIX_MARKER = ".. pgmig-matrix::"


def matrix_table() -> str:
    """docs/_matrix/results.md (written by scripts/test-matrix) as a reST table."""
    rows = [
        [cell.strip() for cell in line.strip().strip("|").split("|")]
        for line in (HERE / "_matrix" / "results.md").read_text(encoding="utf-8").splitlines()
        if line.strip().startswith("|") and not set(line.strip()) <= set("|-: ")
    ]
    if len(rows) < 2:
        return "No results yet: run ``bash scripts/test-matrix``."
    lines = [".. list-table::", "   :header-rows: 1", ""]
    for row in rows:
        lines += [f"   * - {row[0]}"] + [f"     - {cell}" for cell in row[1:]]
    return "\n".join(lines) + "\n"


def insert_matrix(app: Sphinx, docname: str, source: list[str]) -> None:
    """Replace the marker line in the scaling page with the version matrix."""
    if MATRIX_MARKER in source[0]:
        source[0] = source[0].replace(MATRIX_MARKER, matrix_table())


def reread_index(app: Sphinx, env: Any, added: set[str], changed: set[str], removed: set[str]) -> list[str]:
    """Read these again on every build: the guides toctree and the version matrix come from other files."""
    return ["index", "scaling"]


def setup(app: Sphinx) -> dict[str, Any]:
    """Register the guides marker and the :guide: role."""
    app.connect("source-read", insert_guides)
    app.connect("source-read", insert_matrix)
    app.connect("env-get-outdated", reread_index)
    app.add_role("guide", GuideRole())
    return {"parallel_read_safe": True}
