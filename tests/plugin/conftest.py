"""Plugin tests: run pytest on throwaway projects (pytester) against the tests' PostgreSQL server.

``project`` writes a small project (a ``migrations`` directory with three migrations) into the pytester
directory and runs pytest there with ``--pgmig-database-url`` pointing at the tests' server. After each test
the templates the throwaway project left on the server (they persist between runs on purpose) are dropped.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from plugin_helpers import Project
from psycopg import sql


def pytest_plugin_registered(plugin: Any, manager: pytest.PytestPluginManager) -> None:
    """Load pytester (``pytest_plugins`` is refused in a conftest below the rootdir when the suite runs)."""
    if not manager.has_plugin("pytester"):
        manager.import_plugin("pytester")


@pytest.fixture
def project(pytester: pytest.Pytester, pg_server_url: str) -> Iterator[Project]:
    """A throwaway project; its templates are dropped afterwards."""
    made = Project(pytester, pg_server_url)
    yield made
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        for name in sorted(made.templates()):
            ident = sql.Identifier(name)
            conn.execute(sql.SQL("ALTER DATABASE {} WITH IS_TEMPLATE false").format(ident))
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))
        for name in made.leftovers():
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
