"""Templates across runs and sessions: reuse, rebuild on change, xdist, killed sessions, busy templates."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from plugin_helpers import ALWAYS_AHEAD, Project, query, session_databases
from psycopg import sql

from flask_pgmig.core.migrator import Settings
from flask_pgmig.errors import ConfigError
from flask_pgmig.testing import TemplateDatabases, naming

AUDIT_COUNT = """
from conftest import record

def test_template_built_once(pgmig_db, pgmig_conn):
    record(pgmig_db)
    # Every clone carries the template's audit log: one migrate run means one build.
    audit = "SELECT count(*) FROM pgmig_history_audit WHERE action = 'migrate'"
    runs = pgmig_conn.execute(audit).fetchone()[0]
    assert runs == 1
"""


def template_oid(url: str, name: str) -> int:
    rows = query(url, "SELECT oid FROM pg_database WHERE datname = %s AND datistemplate", [name])
    assert len(rows) == 1
    return int(rows[0][0])


def test_killed_run_then_reuse_then_rebuild(project: Project) -> None:
    """Run 1 is killed, leaving its databases; run 2 drops them and reuses the template; a change rebuilds."""
    project.conftest()
    project.pytester.makepyfile(
        test_kill="""
import os
from conftest import record

def test_killed(pgmig_db, migrator):
    record(pgmig_db)
    record(migrator.url)
    os._exit(3)  # as if the run were killed: no teardown at all
"""
    )
    killed = project.run(subprocess=True)
    assert killed.ret == 3
    orphans = sorted(project.seen_databases())
    assert len(orphans) == 2 and project.leftovers() == set(orphans)
    (template,) = project.templates()
    oid = template_oid(project.server_url, template)

    # Run 2: a session that first asks only for an empty database already drops the dead session's databases.
    project.pytester.makepyfile(
        test_kill=f"""
def test_0_orphans_are_gone(migrator):
    found = migrator.execute("SELECT datname FROM pg_database WHERE datname = ANY(%s)", [{orphans!r}])
    assert found == []
""",
        test_reuse=AUDIT_COUNT,
    )
    second = project.run()
    second.assert_outcomes(passed=2)
    second.stdout.fnmatch_lines(
        [
            f"pgmig: PostgreSQL * template {template} (ready) for *",
            f"pgmig: template {template} reused from an earlier run; builds this run: 0",
        ]
    )
    assert template_oid(project.server_url, template) == oid

    # A changed file (even only its down section) means another template; the stale one is dropped.
    path = project.migrations / "20260103000000_posts.sql"
    path.write_text(path.read_text().replace("DROP TABLE posts;", "DROP TABLE IF EXISTS posts;"))
    third = project.run()
    third.assert_outcomes(passed=2)
    third.stdout.fnmatch_lines(["pgmig: template * built in * ms (3 migrations); builds this run: 1"])
    (rebuilt,) = project.templates()
    assert rebuilt != template
    assert project.leftovers() == set()


def test_two_xdist_workers_build_the_template_once_and_leave_nothing(project: Project) -> None:
    project.conftest(ALWAYS_AHEAD)  # each worker makes spares too
    tests = "".join(AUDIT_COUNT.replace("test_template_built_once", f"test_{n}") for n in range(4))
    project.pytester.makepyfile(test_many=tests)
    result = project.run("-n", "2", subprocess=True)
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(
        [
            "pgmig: PostgreSQL * template * (built on first use) for *",
            "pgmig: template * built in * ms (3 migrations); builds this run: 1",
            "pgmig: test databases created: 4",
        ]
    )
    seen = project.seen_databases()
    assert len(seen) == len(set(seen)) == 4  # no two tests shared (or clashed on) a name
    assert len({name.rsplit("_", 1)[0] for name in seen}) == 2  # two sessions: the two workers
    assert len(project.templates()) == 1
    assert project.leftovers() == set()
    assert session_databases(project.server_url, seen) == set()  # the workers' spares too


@pytest.fixture
def templates(project: Project, pg_server_url: str) -> Iterator[TemplateDatabases]:
    made = TemplateDatabases(pg_server_url, Settings(directory=project.migrations))
    yield made
    made.close()


def connect_to_template(server_url: str, name: str, application_name: str) -> psycopg.Connection[Any]:
    """A connection to a template (which refuses connections: allowed for a moment)."""
    ident = sql.Identifier(name)
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS true").format(ident))
        try:
            url = naming.url_with_dbname(server_url, name)
            return psycopg.connect(url, autocommit=True, application_name=application_name)
        finally:
            admin.execute(sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS false").format(ident))


def test_clone_ends_a_stale_connection_of_its_own_session_and_names_others(
    templates: TemplateDatabases, pg_server_url: str
) -> None:
    name = templates.prepare().name
    stale = connect_to_template(pg_server_url, name, templates.build_name)
    try:
        clone = templates.clone()  # PostgreSQL refuses while `stale` is connected; the retry ends it
        assert query(clone, "SELECT count(*) FROM users") == [(0,)]
        assert stale.broken or _is_dead(stale)
    finally:
        stale.close()

    other = connect_to_template(pg_server_url, name, "someone-else")
    try:
        with pytest.raises(
            ConfigError, match=r"cannot clone the test template .*application_name 'someone-else'"
        ):
            templates.clone()
        assert not _is_dead(other)  # never another session's connection
    finally:
        other.close()


def _is_dead(conn: psycopg.Connection[object]) -> bool:
    try:
        conn.execute("SELECT 1")
    except psycopg.OperationalError:
        return True
    return False


def test_names_carry_the_project_and_a_fingerprint(project: Project) -> None:
    settings = Settings(directory=project.migrations)
    name = naming.template_name(
        naming.project_key(project.migrations), naming.fingerprint(project.migrations, settings)
    )
    assert name.startswith(project.template_prefix) and len(name) < 63
    (project.migrations / "README.md").write_text("not a migration")
    assert naming.fingerprint(project.migrations, settings) == name.rsplit("_", 1)[1]
    (project.migrations / "20260105000000_more.sql").write_text("-- migrate:up\nSELECT 1;\n")
    assert naming.fingerprint(project.migrations, settings) != name.rsplit("_", 1)[1]
