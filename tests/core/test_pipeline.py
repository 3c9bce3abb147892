"""migrate and rollback send each migration without waiting for the one before it (libpq's pipeline mode).

What must still hold: nothing runs after a migration that failed, even one whose COMMIT failed; the progress
events come in the order the server ran things; transaction:false and Python migrations in between run the
classic way, in order; a failed revert names its file and line and keeps the newer reverts.
"""

from __future__ import annotations

import os
import resource
from pathlib import Path
from typing import Any

import psycopg
import pytest
from helpers import history_versions, query, tables

from flask_pgmig.core import pipeline
from flask_pgmig.core.events import Events
from flask_pgmig.core.history import HistoryTable
from flask_pgmig.core.migrator import Migrator
from flask_pgmig.errors import HistoryError, MigrationFailed, PgMigError


def write(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text)
    return directory


def creating(table: str, options: str = "") -> str:
    return f"-- migrate:up {options}\nCREATE TABLE {table} (id int);\n-- migrate:down\nDROP TABLE {table};\n"


class Recorder(Events):
    """Every progress event, in order."""

    def __init__(self) -> None:
        self.seen: list[tuple[Any, ...]] = []

    def migration_started(self, version: str, name: str, direction: str) -> None:
        self.seen.append(("started", version, direction))

    def statement_started(self, version: str, index: int, total: int, text: str) -> None:
        self.seen.append(("statement", version, index, total, text))

    def migration_finished(self, version: str, name: str, direction: str, duration_ms: int) -> None:
        assert isinstance(duration_ms, int) and duration_ms >= 0
        self.seen.append(("finished", version, direction))


def test_nothing_runs_after_a_migration_whose_commit_failed(database_url: str, tmp_path: Path) -> None:
    # the third migration is already sent when the second one's COMMIT fails on its deferred constraint
    migrations = write(tmp_path / "m", {
        "20260801000000_first.sql": creating("first_t"),
        "20260802000000_second.sql": "-- migrate:up\nCREATE TABLE parent (id int PRIMARY KEY);\n"
        "CREATE TABLE child (parent_id int REFERENCES parent DEFERRABLE INITIALLY DEFERRED);\n"
        "INSERT INTO child VALUES (42);\n-- migrate:down\nDROP TABLE child, parent;\n",
        "20260803000000_third.sql": creating("third_t"),
    })  # fmt: skip
    with pytest.raises(PgMigError) as caught:
        Migrator.create(database_url, migrations).migrate()
    assert not isinstance(caught.value, HistoryError) and "23503" in str(caught.value)
    assert history_versions(database_url) == ["20260801000000"]
    assert "first_t" in tables(database_url)
    assert not {"parent", "child", "third_t"} & tables(database_url)
    audit = query(database_url, "SELECT action, outcome, versions FROM pgmig_history_audit ORDER BY id")
    assert audit[-1] == ("migrate", "failed", ["20260801000000"])


def test_nothing_runs_after_a_failed_statement_several_migrations_in(database_url: str, tmp_path: Path) -> None:
    files = {f"2026080{i}000000_m{i}.sql": creating(f"t{i}") for i in range(1, 8)}
    files["20260805000000_m5.sql"] = "-- migrate:up\nCREATE TABLE t5 (id int);\n\nSELECT * FROM nowhere;\n"
    migrations = write(tmp_path / "m", files)
    with pytest.raises(MigrationFailed) as caught:
        Migrator.create(database_url, migrations).migrate()
    assert (caught.value.version, caught.value.line, caught.value.sqlstate) == ("20260805000000", 4, "42P01")
    assert "line 4, column 15 of '20260805000000_m5.sql'" in str(caught.value)
    assert history_versions(database_url) == [f"2026080{i}000000" for i in range(1, 5)]
    assert {f"t{i}" for i in range(1, 5)} <= tables(database_url)
    assert not {"t5", "t6", "t7"} & tables(database_url)
    assert query(database_url, "SELECT count(*) FROM pg_stat_activity WHERE state LIKE 'idle in transaction%%' "
                 "AND datname = current_database()") == [(0,)]  # fmt: skip


def test_events_follow_the_order_the_server_ran_things(database_url: str, tmp_path: Path) -> None:
    migrations = write(tmp_path / "m", {
        "20260801000000_first.sql": "-- migrate:up\nCREATE TABLE a (id int);\nCREATE TABLE b (id int);\n"
        "-- migrate:down\nDROP TABLE b;\nDROP TABLE a;\n",
        "20260802000000_second.sql": "-- migrate:up statement_timeout:5s\nCREATE TABLE c (id int);\n"
        "-- migrate:down\nDROP TABLE c;\n",
        "20260803000000_third.sql": "-- migrate:up\n-- nothing to do\n-- migrate:down\nSELECT 1;\n",
    })  # fmt: skip
    events = Recorder()
    migrator = Migrator.create(database_url, migrations, events=events)
    result = migrator.migrate()
    assert [step.version for step in result.steps] == ["20260801000000", "20260802000000", "20260803000000"]
    assert events.seen == [
        ("started", "20260801000000", "up"),
        ("statement", "20260801000000", 1, 2, "CREATE TABLE a (id int)"),
        ("statement", "20260801000000", 2, 2, "CREATE TABLE b (id int)"),
        ("finished", "20260801000000", "up"),
        ("started", "20260802000000", "up"),
        ("statement", "20260802000000", 1, 1, "CREATE TABLE c (id int)"),
        ("finished", "20260802000000", "up"),
        ("started", "20260803000000", "up"),
        ("finished", "20260803000000", "up"),
    ]
    events.seen.clear()
    migrator.rollback(everything=True)
    assert events.seen == [
        ("started", "20260803000000", "down"),
        ("statement", "20260803000000", 1, 1, "SELECT 1"),
        ("finished", "20260803000000", "down"),
        ("started", "20260802000000", "down"),
        ("statement", "20260802000000", 1, 1, "DROP TABLE c"),
        ("finished", "20260802000000", "down"),
        ("started", "20260801000000", "down"),
        ("statement", "20260801000000", 1, 2, "DROP TABLE b"),
        ("statement", "20260801000000", 2, 2, "DROP TABLE a"),
        ("finished", "20260801000000", "down"),
    ]
    assert history_versions(database_url) == [] and not {"a", "b", "c"} & tables(database_url)


def test_transaction_false_and_python_migrations_in_between_run_in_order(
    database_url: str, tmp_path: Path
) -> None:
    migrations = write(tmp_path / "m", {
        "20260801000000_first.sql": creating("first_t"),
        "20260802000000_index.sql": "-- migrate:up transaction:false\n"
        "CREATE INDEX CONCURRENTLY first_t_id ON first_t (id);\n-- migrate:down\nDROP INDEX first_t_id;\n",
        "20260803000000_third.sql": "-- migrate:up\nINSERT INTO first_t VALUES (1);\n"
        "-- migrate:down\nDELETE FROM first_t WHERE id = 1;\n",
        "20260804000000_fill.py": "def up(conn):\n"
        "    conn.execute('INSERT INTO first_t SELECT max(id) + 1 FROM first_t')\n\n"
        "def down(conn):\n    conn.execute('DELETE FROM first_t WHERE id = 2')\n",
        "20260805000000_fifth.sql": "-- migrate:up\nINSERT INTO first_t SELECT max(id) + 1 FROM first_t;\n"
        "-- migrate:down\nDELETE FROM first_t WHERE id = 3;\n",
    })  # fmt: skip
    events = Recorder()
    result = Migrator.create(database_url, migrations, events=events).migrate()
    order = ["20260801000000", "20260802000000", "20260803000000", "20260804000000", "20260805000000"]
    assert [step.version for step in result.steps] == order
    assert [e[1] for e in events.seen if e[0] == "finished"] == order
    assert query(database_url, "SELECT id FROM first_t ORDER BY id") == [(1,), (2,), (3,)]
    Migrator.create(database_url, migrations).rollback(to="20260802000000")
    assert query(database_url, "SELECT id FROM first_t ORDER BY id") == []
    assert history_versions(database_url) == order[:2]


def test_a_failed_revert_keeps_the_newer_ones_and_names_its_line(database_url: str, tmp_path: Path) -> None:
    migrations = write(tmp_path / "m", {
        "20260801000000_first.sql": creating("first_t"),
        "20260802000000_second.sql": "-- migrate:up\nCREATE TABLE second_t (id int);\n-- migrate:down\n\n"
        "DROP TABLE second_t;\nDROP TABLE nowhere;\n",
        "20260803000000_third.sql": creating("third_t"),
    })  # fmt: skip
    migrator = Migrator.create(database_url, migrations)
    migrator.migrate()
    with pytest.raises(MigrationFailed) as caught:
        migrator.rollback(everything=True)
    assert (caught.value.version, caught.value.line, caught.value.sqlstate) == ("20260802000000", 6, "42P01")
    assert history_versions(database_url) == ["20260801000000", "20260802000000"]
    assert {"first_t", "second_t"} <= tables(database_url) and "third_t" not in tables(database_url)


def logging_commit_mode(options: str = "") -> str:
    return (
        f"-- migrate:up {options}\nINSERT INTO commit_modes VALUES (current_setting('synchronous_commit'));\n"
        f"-- migrate:down {options}\nINSERT INTO commit_modes VALUES (current_setting('synchronous_commit'));\n"
    )


def test_only_the_last_commit_of_a_batch_waits_for_the_wal_flush(database_url: str, tmp_path: Path) -> None:
    # the last COMMIT's flush covers every commit before it, so the run is as durable when it returns
    (dbname,) = query(database_url, "SELECT current_database()")[0]
    query(database_url, f'ALTER DATABASE "{dbname}" SET synchronous_commit = on')  # the embedded server's is off
    query(database_url, "CREATE TABLE commit_modes (mode text, n serial)")
    migrations = write(tmp_path / "m", {
        "20260801000000_a.sql": logging_commit_mode(),
        "20260802000000_b.sql": logging_commit_mode(),
        "20260803000000_c.sql": logging_commit_mode("transaction:false"),  # the classic path: waits
        "20260804000000_d.sql": logging_commit_mode(),
        "20260805000000_e.sql": logging_commit_mode("lock_timeout:2s"),
    })  # fmt: skip
    migrator = Migrator.create(database_url, migrations)
    migrator.migrate()
    assert [row[0] for row in query(database_url, "SELECT mode FROM commit_modes ORDER BY n")] == [
        "off", "on", "on", "off", "on"
    ]  # fmt: skip
    query(database_url, "TRUNCATE commit_modes")
    migrator.rollback(to="20260802000000")  # e and d in one batch; c (transaction:false) down runs alone
    assert [row[0] for row in query(database_url, "SELECT mode FROM commit_modes ORDER BY n")] == [
        "off", "on", "on"
    ]  # fmt: skip
    assert history_versions(database_url) == ["20260801000000", "20260802000000"]


def test_creating_the_history_table_does_not_wait_for_the_wal_flush(database_url: str, tmp_path: Path) -> None:
    # the first migration's COMMIT waits for the flush and, the WAL being flushed in order, covers the history DDL
    (dbname,) = query(database_url, "SELECT current_database()")[0]
    query(database_url, f'ALTER DATABASE "{dbname}" SET synchronous_commit = on')  # the embedded server's is off
    query(database_url, "CREATE TABLE ddl_commit_modes (object text, mode text)")
    query(database_url, "CREATE FUNCTION log_ddl_commit_mode() RETURNS event_trigger LANGUAGE plpgsql AS $$ BEGIN "
                        "INSERT INTO ddl_commit_modes SELECT object_identity, current_setting('synchronous_commit') "
                        "FROM pg_event_trigger_ddl_commands() WHERE command_tag = 'CREATE TABLE'; END $$")  # fmt: skip
    query(database_url, "CREATE EVENT TRIGGER log_ddl ON ddl_command_end EXECUTE FUNCTION log_ddl_commit_mode()")
    migrations = write(tmp_path / "m", {"20260801000000_a.sql": creating("a_t")})

    Migrator.create(database_url, migrations).migrate()

    modes = dict(query(database_url, "SELECT object, mode FROM ddl_commit_modes"))
    assert modes == {"public.pgmig_history": "off", "public.pgmig_history_audit": "off", "public.a_t": "on"}


def test_without_pipeline_mode_the_same_run_goes_one_statement_at_a_time(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a libpq older than 14 has no pipeline mode; the classic path must give the same outcome
    monkeypatch.setattr(pipeline, "supported", lambda conn: False)
    migrations = write(tmp_path / "m", {
        "20260801000000_first.sql": creating("first_t"),
        "20260802000000_second.sql": creating("second_t"),
    })  # fmt: skip
    events = Recorder()
    Migrator.create(database_url, migrations, events=events).migrate()
    assert history_versions(database_url) == ["20260801000000", "20260802000000"]
    assert [e[0] for e in events.seen] == ["started", "statement", "finished"] * 2


def test_atomic_sends_everything_then_the_history_with_the_commit(database_url: str, tmp_path: Path) -> None:
    migrations = write(tmp_path / "m", {
        "20260801000000_first.sql": "-- migrate:up\nCREATE TABLE a (id int);\nCREATE TABLE b (id int);\n"
        "-- migrate:down\nDROP TABLE b;\nDROP TABLE a;\n",
        "20260802000000_second.sql": "-- migrate:up\n-- nothing to do\n-- migrate:down\nSELECT 1;\n",
        "20260803000000_third.sql": "-- migrate:up statement_timeout:5s\nCREATE TABLE c (id int);\n"
        "-- migrate:down\nDROP TABLE c;\n",
    })  # fmt: skip
    events = Recorder()
    result = Migrator.create(database_url, migrations, events=events).migrate(atomic=True)
    assert [step.version for step in result.steps] == ["20260801000000", "20260802000000", "20260803000000"]
    assert events.seen == [
        ("started", "20260801000000", "up"),
        ("statement", "20260801000000", 1, 2, "CREATE TABLE a (id int)"),
        ("statement", "20260801000000", 2, 2, "CREATE TABLE b (id int)"),
        ("finished", "20260801000000", "up"),
        ("started", "20260802000000", "up"),
        ("finished", "20260802000000", "up"),
        ("started", "20260803000000", "up"),
        ("statement", "20260803000000", 1, 1, "CREATE TABLE c (id int)"),
        ("finished", "20260803000000", "up"),
    ]
    assert history_versions(database_url) == ["20260801000000", "20260802000000", "20260803000000"]
    assert query(database_url, "SELECT count(*) FROM pgmig_history WHERE status = 'applied'") == [(3,)]


def test_atomic_retries_the_whole_transaction_after_a_lock_timeout(database_url: str, tmp_path: Path) -> None:
    query(database_url, "CREATE TABLE busy (id int)")
    migrations = write(tmp_path / "m", {
        "20260801000000_first.sql": creating("first_t"),
        "20260802000000_alter.sql": "-- migrate:up lock_timeout:100ms\nALTER TABLE busy ADD COLUMN n int;\n"
        "-- migrate:down\nALTER TABLE busy DROP COLUMN n;\n",
        "20260803000000_third.sql": creating("third_t"),
    })  # fmt: skip
    retries: list[int] = []

    class Retries(Events):
        def retrying(self, version: str, attempt: int, delay: float, reason: str) -> None:
            retries.append(attempt)

    with psycopg.connect(database_url) as holder:
        holder.execute("SELECT count(*) FROM busy").fetchone()  # ACCESS SHARE until the end of the block
        with pytest.raises(MigrationFailed) as caught:
            Migrator.create(database_url, migrations, events=Retries(), lock_retries=1).migrate(atomic=True)
    assert retries == [1] and "after 2 attempts" in str(caught.value) and caught.value.sqlstate == "55P03"
    assert history_versions(database_url) == [] and not {"first_t", "third_t"} & tables(database_url)
    Migrator.create(database_url, migrations).migrate(atomic=True)
    assert history_versions(database_url) == ["20260801000000", "20260802000000", "20260803000000"]


def test_an_error_on_this_side_mid_pipeline_stops_what_the_server_was_sent(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # --atomic composes its history write while the server runs the migrations: if that fails, the server must
    # not go on running them (holding their locks) after the command has given up
    def broken(*args: Any) -> Any:
        raise RuntimeError("cannot compose the history write")

    monkeypatch.setattr(HistoryTable, "upsert_many_query", broken)
    migrations = write(tmp_path / "m", {
        "20260801000000_slow.sql": "-- migrate:up\nSELECT pg_sleep(20);\nCREATE TABLE slow_t (id int);\n",
        "20260802000000_b.sql": creating("b_t"),
    })  # fmt: skip
    with pytest.raises(RuntimeError, match="cannot compose"):
        Migrator.create(database_url, migrations).migrate(atomic=True)
    running = query(database_url, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                  "AND application_name = 'pgmig' AND state <> 'idle'")  # fmt: skip
    assert running == [(0,)]
    assert not {"slow_t", "b_t"} & tables(database_url)


def test_a_connection_on_a_file_descriptor_above_1023_is_waited_on(database_url: str, tmp_path: Path) -> None:
    # select.select() cannot wait on such a socket; an app with many open files hands libpq one
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 1200
    assert hard == resource.RLIM_INFINITY or hard >= wanted, f"this machine allows only {hard} open files"
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, wanted), hard))
    held = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    try:
        migrations = write(tmp_path / "m", {
            "20260801000000_first.sql": "-- migrate:up\nSELECT pg_sleep(0.2);\n-- migrate:down\nSELECT 1;\n",
            "20260802000000_second.sql": creating("second_t"),
        })  # fmt: skip
        Migrator.create(database_url, migrations).migrate()
    finally:
        for descriptor in held:
            os.close(descriptor)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert history_versions(database_url) == ["20260801000000", "20260802000000"]
