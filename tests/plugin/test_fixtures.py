"""The fixtures on a throwaway project: migrated clones per test, isolation, cleanup, the report lines."""

from __future__ import annotations

import pytest
from plugin_helpers import ALWAYS_AHEAD, Project, databases, drop_templates_with_prefix, session_databases

from flask_pgmig.testing import naming


def test_each_test_gets_a_fresh_migrated_database_dropped_afterwards(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The server comes from the environment here (the other tests pass --pgmig-database-url).
    monkeypatch.setenv("PGMIG_TEST_DATABASE_URL", project.server_url)
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
    result = project.pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)
    (template,) = project.templates()
    result.stdout.fnmatch_lines(
        [
            f"pgmig: PostgreSQL * at postgresql://*; template {template} (built on first use) "
            "for *migrations'",
            f"pgmig: template {template} built in * ms (3 migrations); builds this run: 1",
            "pgmig: test databases created: 2",
        ]
    )
    first, second = project.seen_databases()
    assert first != second and first.startswith(naming.CLONE_PREFIX)
    assert project.leftovers() == set()
    assert databases(project.server_url, first) == set()


def test_failing_and_erroring_tests_leave_no_database_behind(project: Project) -> None:
    project.conftest(
        ALWAYS_AHEAD
        + """
@pytest.fixture
def broken_after_db(pgmig_db):
    record(pgmig_db)
    raise RuntimeError("fixture setup fails after the database was made")
"""
    )
    project.pytester.makepyfile(
        test_fail="""
from conftest import record

def test_assertion_fails(pgmig_db):
    record(pgmig_db)
    assert False, "the test fails"

def test_raises(pgmig_conn, pgmig_db):
    record(pgmig_db)
    pgmig_conn.execute("SELECT 1/0")

def test_setup_error(broken_after_db):
    pass

def test_migrator_fails(migrator):
    record(migrator.url)
    migrator.migrate_to("20260101000000")
    assert False
"""
    )
    result = project.run()
    result.assert_outcomes(failed=3, errors=1)
    assert len(project.seen_databases()) == 4
    assert project.leftovers() == set()
    assert session_databases(project.server_url, project.seen_databases()) == set()  # nor a spare


def test_plugin_does_nothing_when_its_fixtures_are_not_used(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The environment names an unreachable server: any connection attempt would show in the output.
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    monkeypatch.delenv("PGMIG_TEST_DATABASE_URL", raising=False)
    project.pytester.makepyfile(
        test_plain="""
import sys

def test_plain(pytestconfig):
    assert pytestconfig.pluginmanager.has_plugin("pgmig")
    # In a process of its own: the plugin has not even imported the engine or psycopg.
    assert "flask_pgmig.core" not in sys.modules and "psycopg" not in sys.modules
"""
    )
    result = project.pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert "pgmig:" not in result.stdout.str()
    assert project.templates() == set()


def test_no_server_configured_fails_the_tests_that_need_one_with_one_sentence(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("PGMIG_TEST_DATABASE_URL", raising=False)
    project.pytester.makepyfile(
        test_needs="def test_needs(pgmig_db):\n    pass\n\ndef test_plain():\n    pass\n"
    )
    result = project.pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        ["*flask-pgmig: The pgmig pytest plugin has no PostgreSQL server*Pass --pgmig-database-url=*"]
    )
    assert "Traceback" not in result.stdout.str()

    monkeypatch.setenv("PGMIG_LOCK_TIMEOUT", "soon")
    result = project.run()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*flask-pgmig: PGMIG_LOCK_TIMEOUT is 'soon', which is not a duration*"])
    assert "Traceback" not in result.stdout.str()


def test_migrations_directory_found_in_the_app_package_or_one_sentence(project: Project) -> None:
    project.pytester.makepyfile(
        test_x="def test_x(pgmig_conn):\n    pgmig_conn.execute('SELECT 1 FROM posts')\n"
    )
    result = project.run("--pgmig-directory=nowhere")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*found no migrations directory at '*nowhere'. Pass --pgmig-directory=PATH*"]
    )
    assert "Traceback" not in result.stdout.str()

    # Where Flask keeps them by default: <package>/migrations, found without any option.
    package = project.pytester.path / "shop"
    package.mkdir()
    project.migrations.rename(package / "migrations")
    try:
        project.run().assert_outcomes(passed=1)
    finally:
        prefix = naming.TEMPLATE_PREFIX + naming.project_key(package / "migrations") + "_"
        drop_templates_with_prefix(project.server_url, prefix)


def test_a_broken_migration_fails_every_test_with_its_message_and_builds_once(project: Project) -> None:
    attempts = project.pytester.path / "attempts.txt"
    # A Python migration, so that every attempt to run it leaves a mark.
    (project.migrations / "20260104000000_broken.py").write_text(
        f"def up(conn):\n    with open({str(attempts)!r}, 'a') as f:\n        f.write('x\\n')\n"
        "    conn.execute('ALTER TABLE nope ADD COLUMN x int')\n"
    )
    project.pytester.makepyfile(
        test_x="def test_one(pgmig_db):\n    pass\n\ndef test_two(pgmig_db):\n    pass\n"
    )
    result = project.run()
    result.assert_outcomes(errors=2)
    output = result.stdout.str()
    assert output.count("20260104000000_broken") >= 2 and "nope" in output
    assert "Traceback" not in output
    assert attempts.read_text() == "x\n"  # the second test did not run the migrations again
    assert project.templates() == set()  # the half-built template was dropped
