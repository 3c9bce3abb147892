"""Fault injection on a server the tests own: backends terminated, the process SIGKILLed or SIGTERMed, the server
restarted mid-run, the history write failing after the DDL ran. After each: the rerun completes or says exactly
what to do, the schema matches the history table, and no migration is applied twice.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from helpers import history_versions, pgmig_process, query, tables

from flask_pgmig.core.migrator import Migrator
from flask_pgmig.embedded import EmbeddedServer
from flask_pgmig.errors import ConnectionFailed, FailedMigration, HistoryError, PgMigError

FIRST = "-- migrate:up\nCREATE TABLE first_t (id int);\n-- migrate:down\nDROP TABLE first_t;\n"
SLEEPING_TX = "-- migrate:up\nCREATE TABLE second_t (id int);\nSELECT pg_sleep({seconds});\n"
SLEEPING_NONTX = (
    "-- migrate:up transaction:false\nCREATE TABLE second_t (id int);\nSELECT pg_sleep({seconds});\n"
    "CREATE TABLE third_t (id int);\n"
)


def write(directory: Path, second: str, seconds: float) -> Path:
    directory.mkdir(exist_ok=True)
    (directory / "20260801000000_first.sql").write_text(FIRST)
    (directory / "20260802000000_second.sql").write_text(second.format(seconds=seconds))
    return directory


def wait_for_sleep(url: str, timeout: float = 20.0) -> int:
    """The pid of the backend running pg_sleep for pgmig, once it runs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = query(
            url,
            "SELECT pid FROM pg_stat_activity WHERE application_name LIKE 'pgmig%%' AND state = 'active' "
            "AND query LIKE 'SELECT pg_sleep%%'",
        )
        if rows:
            return int(rows[0][0])
        time.sleep(0.05)
    raise AssertionError("the migration never reached its pg_sleep statement")


def in_background(action: Callable[[], None]) -> threading.Thread:
    thread = threading.Thread(target=action, daemon=True)
    thread.start()
    return thread


def terminate(url: str) -> None:
    pid = wait_for_sleep(url)
    query(url, "SELECT pg_terminate_backend(%s)", [pid])


def advisory_locks(url: str) -> int:
    return int(query(url, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'")[0][0])


def test_backend_terminated_during_a_transactional_migration(owned_database_url: str, tmp_path: Path) -> None:
    url = owned_database_url
    migrations = write(tmp_path / "m", SLEEPING_TX, 30)
    killer = in_background(lambda: terminate(url))
    with pytest.raises(ConnectionFailed) as caught:
        Migrator.create(url, migrations).migrate()
    killer.join()
    assert "57P01" in str(caught.value) and "status" in str(caught.value)
    assert history_versions(url) == ["20260801000000"]
    assert "second_t" not in tables(url)  # rolled back by the server with its (never written) row
    write(migrations, SLEEPING_TX, 0)
    assert [s.version for s in Migrator.create(url, migrations).migrate().steps] == ["20260802000000"]
    assert history_versions(url) == ["20260801000000", "20260802000000"]
    assert tables(url) >= {"first_t", "second_t"}


def test_backend_terminated_during_a_non_transactional_migration(
    owned_database_url: str, tmp_path: Path
) -> None:
    url = owned_database_url
    migrations = write(tmp_path / "m", SLEEPING_NONTX, 30)
    killer = in_background(lambda: terminate(url))
    with pytest.raises(ConnectionFailed):
        Migrator.create(url, migrations).migrate()
    killer.join()
    row = query(url, "SELECT status, statements_done, statements_total FROM pgmig_history WHERE version = %s",
                ["20260802000000"])  # fmt: skip
    assert row == [("running", 1, 3)]  # the session died before it could say more: shown as interrupted
    assert "second_t" in tables(url) and "third_t" not in tables(url)
    migrator = Migrator.create(url, migrations)
    assert migrator.status().migrations[-1].state == "running"
    with pytest.raises(FailedMigration, match="interrupted") as caught:
        migrator.migrate()
    assert "migrate --resume" in str(caught.value)
    write(migrations, SLEEPING_NONTX, 0)
    migrator.migrate(resume=True)
    assert migrator.status().clean
    assert tables(url) >= {"first_t", "second_t", "third_t"}


def test_process_killed_then_rerun_waits_for_the_lock_and_says_what_to_do(
    owned_database_url: str, tmp_path: Path
) -> None:
    url = owned_database_url
    migrations = write(tmp_path / "m", SLEEPING_NONTX, 2)
    process = pgmig_process(url, migrations, "migrate")
    wait_for_sleep(url)
    process.kill()
    process.communicate(timeout=10)
    # the orphaned backend finishes its statement, notices its client is gone and releases the lock
    rerun = pgmig_process(url, migrations, "migrate")
    out, err = rerun.communicate(timeout=60)
    assert rerun.returncode == 1, (out, err)
    assert "interrupted" in err and "migrate --resume" in err and "Traceback" not in err
    resumed = pgmig_process(url, migrations, "migrate", "--resume")
    out, err = resumed.communicate(timeout=60)
    assert resumed.returncode == 0, (out, err)
    assert history_versions(url) == ["20260801000000", "20260802000000"]
    assert tables(url) >= {"first_t", "second_t", "third_t"}


@pytest.mark.parametrize("body", [SLEEPING_TX, SLEEPING_NONTX], ids=["transactional", "non-transactional"])
def test_sigterm_cancels_the_statement_records_the_outcome_and_releases_the_lock(
    owned_database_url: str, tmp_path: Path, body: str
) -> None:
    url = owned_database_url
    migrations = write(tmp_path / "m", body, 60)
    process = pgmig_process(url, migrations, "migrate")
    wait_for_sleep(url)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=20)
    assert process.returncode == 130, (out, err)
    assert "interrupted" in err and "Traceback" not in err
    assert not query(
        url, "SELECT 1 FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep%%' AND state = 'active'"
    )
    assert advisory_locks(url) == 0
    rows = query(url, "SELECT status, error FROM pgmig_history WHERE version = '20260802000000'")
    if body is SLEEPING_TX:
        assert rows == [] and "second_t" not in tables(url)
    else:
        assert rows[0][0] == "failed" and "interrupted" in rows[0][1]
    audit = query(url, "SELECT action, outcome FROM pgmig_history_audit ORDER BY id")
    assert audit[-1] == ("migrate", "interrupted")


def test_server_restarted_mid_run(
    owned_server: EmbeddedServer, owned_database_url: str, tmp_path: Path
) -> None:
    url = owned_database_url
    migrations = write(tmp_path / "m", SLEEPING_TX, 30)

    def restart() -> None:
        wait_for_sleep(url)
        owned_server.restart("fast")

    restarter = in_background(restart)
    with pytest.raises(ConnectionFailed) as caught:
        Migrator.create(url, migrations).migrate()
    restarter.join()
    assert "lost" in str(caught.value)
    assert history_versions(url) == ["20260801000000"] and "second_t" not in tables(url)
    write(migrations, SLEEPING_TX, 0)
    Migrator.create(url, migrations).migrate()
    assert history_versions(url) == ["20260801000000", "20260802000000"]


def test_history_write_failing_after_the_ddl_rolls_the_ddl_back(
    owned_database_url: str, tmp_path: Path
) -> None:
    url = owned_database_url
    migrations = write(tmp_path / "m", SLEEPING_TX, 0)
    migrator = Migrator.create(url, migrations)
    migrator.migrate(to="20260801000000")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "CREATE FUNCTION refuse_second() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "IF NEW.version = '20260802000000' THEN RAISE EXCEPTION 'history is full'; END IF; RETURN NEW; END $$"
        )
        conn.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON pgmig_history FOR EACH ROW EXECUTE FUNCTION refuse_second()"
        )
    with pytest.raises(HistoryError) as caught:
        migrator.migrate()
    assert "20260802000000" in str(caught.value) and "history is full" in str(caught.value)
    assert "second_t" not in tables(url)  # the DDL and its row commit together or not at all
    query(url, "DROP TRIGGER refuse ON pgmig_history")
    migrator.migrate()
    assert history_versions(url) == ["20260801000000", "20260802000000"] and "second_t" in tables(url)


@pytest.fixture
def slow_wal_writer(owned_server: EmbeddedServer, owned_database_url: str) -> Iterator[str]:
    """The owned database with commits that wait for the flush by default (the owned server runs with
    synchronous_commit off), and a WAL writer that flushes what did not wait only every ten seconds: a crash
    right after a run then loses whatever of it was not flushed on purpose."""
    url = owned_database_url
    (dbname,) = query(url, "SELECT current_database()")[0]
    query(url, f'ALTER DATABASE "{dbname}" SET synchronous_commit = on')
    query(url, "ALTER SYSTEM SET wal_writer_delay = '10s'")
    query(url, "SELECT pg_reload_conf()")
    try:
        yield url
    finally:
        owned_server.start()
        query(url, "ALTER SYSTEM RESET wal_writer_delay")
        query(url, "SELECT pg_reload_conf()")


def crash(server: EmbeddedServer) -> None:
    server.stop("immediate")
    server.start()


def test_what_a_finished_run_reported_survives_a_server_crash(
    owned_server: EmbeddedServer, slow_wal_writer: str, tmp_path: Path
) -> None:
    # Only the last migration of a batch, and the audit entry written after the run, wait for the WAL to reach the
    # disk; without those flushes a crash right after the run would lose the whole run.
    url = slow_wal_writer
    migrations = tmp_path / "m"
    migrations.mkdir()
    for i in range(1, 6):
        (migrations / f"2026080{i}000000_t{i}.sql").write_text(
            f"-- migrate:up\nCREATE TABLE t{i} (id int);\n-- migrate:down\nDROP TABLE t{i};\n"
        )
    Migrator.create(url, migrations).migrate()
    crash(owned_server)
    assert history_versions(url) == [f"2026080{i}000000" for i in range(1, 6)]
    assert {f"t{i}" for i in range(1, 6)} <= tables(url)
    Migrator.create(url, migrations).rollback(to="20260801000000")
    crash(owned_server)
    assert history_versions(url) == ["20260801000000"] and "t2" not in tables(url)


def test_what_a_failed_run_committed_survives_a_server_crash(
    owned_server: EmbeddedServer, slow_wal_writer: str, tmp_path: Path
) -> None:
    # The fourth migration's COMMIT fails on a deferred constraint, so the batch ends before its last COMMIT (the
    # one that waits for the flush); the audit entry, the other flush, is refused by a trigger. What the run
    # committed before the failure must still be on disk when the error reaches the caller.
    url = slow_wal_writer
    migrations = tmp_path / "m"
    migrations.mkdir()
    for i in (1, 2, 3, 5):
        (migrations / f"2026080{i}000000_t{i}.sql").write_text(f"-- migrate:up\nCREATE TABLE t{i} (id int);\n")
    (migrations / "20260804000000_t4.sql").write_text(
        "-- migrate:up\nCREATE TABLE parent (id int PRIMARY KEY);\n"
        "CREATE TABLE child (parent_id int REFERENCES parent DEFERRABLE INITIALLY DEFERRED);\n"
        "INSERT INTO child VALUES (42);\n"
    )
    Migrator.create(url, migrations).migrate(to="20260801000000")  # creates the audit log
    query(url, "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
               "RAISE EXCEPTION 'no audit'; END $$")  # fmt: skip
    query(url, "CREATE TRIGGER refuse BEFORE INSERT ON pgmig_history_audit "
               "FOR EACH ROW EXECUTE FUNCTION refuse()")  # fmt: skip
    with pytest.raises(PgMigError) as caught:
        Migrator.create(url, migrations).migrate()
    assert "23503" in str(caught.value)
    crash(owned_server)
    assert history_versions(url) == ["20260801000000", "20260802000000", "20260803000000"]
    assert {"t1", "t2", "t3"} <= tables(url) and not {"parent", "child", "t5"} & tables(url)
