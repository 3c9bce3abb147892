"""Throwaway projects for the plugin tests: three migrations, a conftest, and how to run pytest there."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg import sql

from flask_pgmig.testing import naming

MIGRATIONS = {
    "20260101000000_users.sql": (
        "-- migrate:up\nCREATE TABLE users (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text);\n"
        "-- migrate:down\nDROP TABLE users;\n"
    ),
    "20260102000000_email.sql": (
        "-- migrate:up\nALTER TABLE users ADD COLUMN email text;\n"
        "UPDATE users SET email = lower(name) || '@example.com';\n"
        "-- migrate:down\nALTER TABLE users DROP COLUMN email;\n"
    ),
    "20260103000000_posts.sql": (
        "-- migrate:up\nCREATE TABLE posts (id bigint PRIMARY KEY, user_id bigint REFERENCES users);\n"
        "-- migrate:down\nDROP TABLE posts;\n"
    ),
}
#: An inner conftest's fixture that makes spares whatever the tests' length (they are short here).
ALWAYS_AHEAD = """
@pytest.fixture(autouse=True, scope="session")
def spares_always(pgmig_templates):
    pgmig_templates.ahead = True
"""


def query(url: str, text: str, params: Any = None) -> list[tuple[Any, ...]]:
    """One query on its own autocommit connection."""
    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(text.encode(), params)
        return cur.fetchall() if cur.description else []


def databases(url: str, prefix: str) -> set[str]:
    """Names of the databases on the server starting with ``prefix``."""
    return {
        row[0]
        for row in query(url, "SELECT datname FROM pg_database WHERE starts_with(datname, %s)", [prefix])
    }


def session_databases(url: str, names: list[str]) -> set[str]:
    """Every database on the server of the sessions that made ``names`` (``pgmig_t_<session>_<n>``): spares too."""
    found: set[str] = set()
    for session in {name.rsplit("_", 1)[0] + "_" for name in names}:
        found |= databases(url, session)
    return found


def drop_templates_with_prefix(url: str, prefix: str) -> None:
    """Drop the template databases whose names start with ``prefix``."""
    with psycopg.connect(url, autocommit=True) as conn:
        for name in sorted(databases(url, prefix)):
            ident = sql.Identifier(name)
            conn.execute(sql.SQL("ALTER DATABASE {} WITH IS_TEMPLATE false").format(ident))
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))


class Project:
    """A throwaway project in the pytester directory, and how to run its tests."""

    def __init__(self, pytester: pytest.Pytester, server_url: str) -> None:
        self.pytester = pytester
        self.server_url = server_url
        self.migrations = pytester.path / "migrations"
        self.migrations.mkdir()
        for name, text in MIGRATIONS.items():
            (self.migrations / name).write_text(text)
        # Every database name an inner test was given, so the outer test can check that each is gone.
        self.seen = pytester.path / "seen.txt"

    @property
    def template_prefix(self) -> str:
        """Prefix of this project's templates on the server."""
        return naming.TEMPLATE_PREFIX + naming.project_key(self.migrations) + "_"

    def templates(self) -> set[str]:
        """This project's template databases on the server."""
        return databases(self.server_url, self.template_prefix)

    def seen_databases(self) -> list[str]:
        """Database names recorded by the inner tests (see ``record`` in their conftest)."""
        return self.seen.read_text().split() if self.seen.exists() else []

    def leftovers(self) -> set[str]:
        """Databases the inner tests were given that still exist."""
        return databases(self.server_url, naming.CLONE_PREFIX) & set(self.seen_databases())

    def run(self, *args: str, subprocess: bool = False) -> pytest.RunResult:
        """Run pytest on the project with the plugin pointed at the tests' server."""
        argv = ["-p", "no:cacheprovider", f"--pgmig-database-url={self.server_url}", *args]
        if subprocess:
            return self.pytester.runpytest_subprocess(*argv)
        return self.pytester.runpytest_inprocess(*argv)

    def conftest(self, extra: str = "") -> None:
        """A conftest whose ``record`` fixture writes each test's database name to seen.txt."""
        self.pytester.makeconftest(
            f"""
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

SEEN = {str(self.seen)!r}

def record(url):
    with open(SEEN, "a") as handle:
        handle.write(conninfo_to_dict(url)["dbname"] + "\\n")
{extra}
"""
        )
