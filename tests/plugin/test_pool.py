"""Spare clones made ahead of need: handed out once, pristine, from the current template, dropped at the end."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from plugin_helpers import ALWAYS_AHEAD, Project, databases, query, session_databases
from psycopg import sql

from flask_pgmig.core.migrator import Settings
from flask_pgmig.testing import TemplateDatabases, naming
from flask_pgmig.testing.pool import SparePool, clone_statement
from flask_pgmig.testing.worker import BackgroundWorker

EXTRA = "20260104000000_extra.sql"


def test_every_test_gets_its_own_pristine_database_and_spares_go_at_the_end(project: Project) -> None:
    project.conftest(
        ALWAYS_AHEAD
        + """
import time
import psycopg

def others_of_my_session(url):
    name = conninfo_to_dict(url)["dbname"]
    prefix = name.rsplit("_", 1)[0] + "_"
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT datname FROM pg_database WHERE starts_with(datname, %s) AND datname <> %s", [prefix, name]
        ).fetchall()
    return [r[0] for r in rows]
"""
    )
    tests = "import time\nfrom conftest import others_of_my_session, record\n" + "".join(
        f"""
def test_{n}(pgmig_db, pgmig_conn):
    record(pgmig_db)
    # Pristine: what the tests before wrote into their databases is not here.
    assert pgmig_conn.execute("SELECT count(*) FROM users").fetchone()[0] == 0
    pgmig_conn.execute("INSERT INTO users (name) VALUES ('test {n}')")
"""
        for n in range(6)
    )
    tests += """
def test_a_spare_is_made_while_a_test_runs(pgmig_db):
    record(pgmig_db)
    deadline = time.monotonic() + 60
    while not others_of_my_session(pgmig_db):  # the next test's database, cloned by the worker meanwhile
        assert time.monotonic() < deadline, "no spare was made"
        time.sleep(0.05)
"""
    project.pytester.makepyfile(test_many=tests)
    result = project.run("-p", "no:randomly")
    result.assert_outcomes(passed=7)
    result.stdout.fnmatch_lines(["pgmig: test databases created: 7"])
    seen = project.seen_databases()
    assert len(seen) == len(set(seen)) == 7  # never the same database twice
    assert session_databases(project.server_url, seen) == set()  # nor any spare left behind


@pytest.fixture
def templates(project: Project, pg_server_url: str) -> Iterator[TemplateDatabases]:
    made = TemplateDatabases(pg_server_url, Settings(directory=project.migrations), ahead=True)
    yield made
    made.close()


def spares_of(templates: TemplateDatabases, server_url: str, handed_out: set[str]) -> set[str]:
    """The session's databases that were not handed out: the spares (made or being made)."""
    return databases(server_url, naming.CLONE_PREFIX + templates.session + "_") - handed_out


def test_clones_are_distinct_and_fresh_and_close_drops_the_spare(
    templates: TemplateDatabases, pg_server_url: str
) -> None:
    urls = [templates.clone() for _ in range(4)]
    names = {naming.dbname_of(url) for url in urls}
    assert len(names) == 4
    for url in urls:
        assert query(url, "SELECT count(*) FROM users") == [(0,)]
        query(url, "INSERT INTO users (name) VALUES ('x')")
    templates.drop(urls[0])
    templates.drop(urls[1], wait=True)
    templates.close()
    assert databases(pg_server_url, naming.CLONE_PREFIX + templates.session + "_") == set()


def test_spare_from_an_older_template_is_dropped_and_the_clone_has_the_new_migration(
    project: Project, templates: TemplateDatabases, pg_server_url: str
) -> None:
    first = templates.clone()
    templates.settle()  # the spare is made
    (spare,) = spares_of(templates, pg_server_url, {naming.dbname_of(first)})
    assert query(naming.url_with_dbname(pg_server_url, spare), "SELECT count(*) FROM users") == [(0,)]

    # The migrations change and the template is rebuilt (here: dropped, as a cleanup job might, so that
    # the session builds it again from the files as they are now).
    (project.migrations / EXTRA).write_text("-- migrate:up\nCREATE TABLE extra (id int);\n")
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        ident = sql.Identifier(templates.template_name)
        conn.execute(sql.SQL("ALTER DATABASE {} WITH IS_TEMPLATE false").format(ident))
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(ident))

    second = templates.clone()
    assert naming.dbname_of(second) != spare
    assert query(second, "SELECT count(*) FROM extra") == [(0,)]
    assert templates.info is not None and templates.info.built and templates.info.migrations == 4
    templates.settle()
    assert databases(pg_server_url, spare) == set()  # dropped, not kept for later


def test_without_spares_a_clone_is_made_when_asked(templates: TemplateDatabases, pg_server_url: str) -> None:
    plain = TemplateDatabases(pg_server_url, templates.settings, ahead=False)
    try:
        url = plain.clone()
        assert spares_of(plain, pg_server_url, {naming.dbname_of(url)}) == set()
        assert query(url, "SELECT count(*) FROM posts") == [(0,)]
    finally:
        plain.close()
    assert databases(pg_server_url, naming.CLONE_PREFIX + plain.session + "_") == set()


def test_spares_are_made_while_tests_hold_their_database_as_long_as_a_clone_takes() -> None:
    pool = SparePool(BackgroundWorker("postgresql://unused", "unused"), 1, lambda: "x", None)
    assert not pool.wanted(None)  # nothing known yet: clone when asked
    assert pool.wanted(True) and not pool.wanted(False)
    pool.handed_out("a")
    pool.given_back("a")
    pool.cloned_when_asked(3600.0)  # a test far shorter than a clone: a spare would not be ready in time
    assert not pool.wanted(None)
    pool.cloned_when_asked(0.0)  # a test at least as long as a clone
    assert pool.wanted(None)
    assert not SparePool(pool.worker, 0, lambda: "x", None).wanted(True)  # no room for spares at all


def test_clone_statement_names_the_strategy_only_when_given() -> None:
    bare = clone_statement("a", "b", None).as_string(None)
    assert bare == 'CREATE DATABASE "a" TEMPLATE "b"'
    assert clone_statement("a", "b", "FILE_COPY").as_string(None) == bare + " STRATEGY FILE_COPY"


def test_a_killed_run_leaves_its_spare_to_the_next_run_which_drops_it_and_builds_anew(
    project: Project,
) -> None:
    project.conftest(ALWAYS_AHEAD)
    project.pytester.makepyfile(
        test_kill="""
import os
import time
import psycopg
from conftest import record

def test_killed(pgmig_db):
    record(pgmig_db)
    prefix = pgmig_db.rsplit("/", 1)[1].rsplit("_", 1)[0] + "_"
    deadline = time.monotonic() + 60
    with psycopg.connect(pgmig_db, autocommit=True) as conn:
        while True:  # wait for the spare, then die without any teardown
            found = conn.execute(
                "SELECT datname FROM pg_database WHERE starts_with(datname, %s) ORDER BY 1", [prefix]
            ).fetchall()
            if len(found) == 2:
                record("dbname=" + found[1][0])
                os._exit(3)
            assert time.monotonic() < deadline
            time.sleep(0.05)
"""
    )
    killed = project.run(subprocess=True)
    assert killed.ret == 3
    handed, spare = project.seen_databases()
    assert project.leftovers() == {handed, spare}

    (project.migrations / EXTRA).write_text("-- migrate:up\nCREATE TABLE extra (id int);\n")
    project.pytester.makepyfile(
        test_kill="""
from conftest import record

def test_new_template(pgmig_db, pgmig_conn):
    record(pgmig_db)
    assert pgmig_conn.execute("SELECT count(*) FROM extra").fetchone()[0] == 0
"""
    )
    second = project.run()
    second.assert_outcomes(passed=1)
    second.stdout.fnmatch_lines(["pgmig: template * built in * ms (4 migrations); builds this run: 1"])
    assert project.seen_databases()[2] not in {handed, spare}
    assert project.leftovers() == set()
    assert session_databases(project.server_url, project.seen_databases()) == set()
