"""The fixtures on a throwaway project: migrated clones per test, isolation, cleanup, the report lines."""

from __future__ import annotations

from plugin_helpers import Project, databases

from flask_pgmig.testing import naming


def test_each_test_gets_a_fresh_migrated_database_dropped_afterwards(project: Project) -> None:
    project.conftest()
    project.pytester.makepyfile(
        test_app="""
from conftest import record

def test_first(pgmig_db, pgmig_conn):
    record(pgmig_db)
    tables = {r[0] for r in pgmig_conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert {"users", "posts", "pgmig_history"} <= tables
    pgmig_conn.execute("INSERT INTO users (name) VALUES ('Ada')")
    assert pgmig_conn.execute("SELECT email FROM users").fetchone()[0] is None

def test_second_sees_none_of_the_first(pgmig_db, pgmig_conn):
    record(pgmig_db)
    assert pgmig_conn.execute("SELECT count(*) FROM users").fetchone()[0] == 0
    applied = pgmig_conn.execute("SELECT count(*) FROM pgmig_history WHERE status = 'applied'").fetchone()[0]
    assert applied == 3

def test_url_is_the_server(pgmig_database_url):
    assert pgmig_database_url.endswith("/postgres")
"""
    )
    result = project.run("-v")
    result.assert_outcomes(passed=3)
    (template,) = project.templates()
    result.stdout.fnmatch_lines(
        [
            f"pgmig: PostgreSQL * at postgresql://*; template {template} (built on first use) for '*migrations'",
            f"pgmig: template {template} built in * ms (3 migrations); builds this run: 1",
            "pgmig: test databases created: 2",
        ]
    )
    first, second = project.seen_databases()
    assert first != second and first.startswith(naming.CLONE_PREFIX)
    assert project.leftovers() == set()
    assert databases(project.server_url, first) == set()
