"""Batched backfills on a real PostgreSQL: batches, persisted progress, resuming after an interruption, the
``-- pgmig:backfill`` SQL form, retries and timeouts, and the errors of a misuse."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from helpers import copy_scenario, query

from flask_pgmig import backfill
from flask_pgmig.core.events import Events
from flask_pgmig.core.files import discover
from flask_pgmig.core.migrator import Migrator
from flask_pgmig.core.runner import preflight
from flask_pgmig.errors import ConfigError, FailedMigration, MigrationFailed, MigrationParseError

ROWS = 5000  # rows of the scenarios' items table; every tenth has label 'ten%'


class StopAfter(Events):
    """Records backfill events; raises KeyboardInterrupt (Ctrl-C) after ``batches`` batches, between two."""

    def __init__(self, batches: int | None = None) -> None:
        self.batches = batches
        self.done: list[tuple[int, int | None]] = []
        self.started: list[tuple[int, int | None]] = []
        self.notices: list[str] = []

    def backfill_started(self, version: str, name: str, rows_done: int, rows_total: int | None) -> None:
        self.started.append((rows_done, rows_total))

    def batch_done(
        self, version: str, name: str, rows_done: int, rows_total: int | None, rate: float
    ) -> None:
        self.done.append((rows_done, rows_total))
        if self.batches is not None and len(self.done) >= self.batches:
            raise KeyboardInterrupt

    def notice(self, message: str) -> None:
        self.notices.append(message)


def make_items(url: str, rows: int = 300) -> None:
    query(url, "CREATE TABLE items (id bigint PRIMARY KEY, touched int NOT NULL DEFAULT 0, label text)")
    query(url, "INSERT INTO items (id, label) SELECT g, 'x' || g FROM generate_series(1, %s) g", [rows])


def touched(url: str) -> dict[int, int]:
    """How many rows were touched how many times."""
    return dict(query(url, "SELECT touched, count(*) FROM items GROUP BY touched"))  # type: ignore[arg-type]


def test_backfill_outside_a_migration_runs_in_batches(database_url: str) -> None:
    make_items(database_url)
    query(database_url, "UPDATE items SET label = 'has 50%' WHERE id % 3 = 0")
    with psycopg.connect(database_url, autocommit=True) as conn:
        result = backfill(conn, "public.items", "touched = touched + 1", "label LIKE '%\\%'", batch_size=40)
    assert touched(database_url) == {1: 100, 0: 200}
    assert (result.rows, result.rows_this_run, result.batches_this_run) == (100, 100, 3)
    assert not result.resumed and not result.already_done
    assert "pgmig_history_backfill" not in {
        r[0] for r in query(database_url, "SELECT tablename FROM pg_tables")
    }


def test_backfill_with_other_key_types_and_no_where(database_url: str) -> None:
    for key_type in ("text", "uuid"):  # uuid: ordered, but without a max() aggregate
        table = f"codes_{key_type}"
        query(database_url, f"CREATE TABLE {table} (code {key_type} PRIMARY KEY, n int NOT NULL DEFAULT 0)")
        query(
            database_url,
            f"INSERT INTO {table} SELECT md5(g::text)::{key_type} FROM generate_series(1, 250) g",
        )
        with psycopg.connect(database_url, autocommit=True) as conn:
            result = backfill(conn, table, "n = n + 1", None, key="code", batch_size=100)
        assert query(database_url, f"SELECT n, count(*) FROM {table} GROUP BY n") == [(1, 250)]
        assert result.batches_this_run == 3


def test_backfill_refuses_a_transaction_and_bad_arguments(database_url: str) -> None:
    make_items(database_url, 10)
    with psycopg.connect(database_url) as conn:  # not autocommit: a transaction is open
        conn.execute("SELECT 1")
        with pytest.raises(ConfigError, match="cannot run inside a transaction"):
            backfill(conn, "items", "touched = 1", None)
    with psycopg.connect(database_url, autocommit=True) as conn:
        with pytest.raises(ConfigError, match="batch_size=0"):
            backfill(conn, "items", "touched = 1", None, batch_size=0)
        with pytest.raises(ConfigError, match="statement_timeout='soon'"):
            backfill(conn, "items", "touched = 1", None, statement_timeout="soon")
    assert touched(database_url) == {0: 10}


def test_python_backfill_persists_progress_and_resumes_after_ctrl_c(
    database_url: str, tmp_path: Path
) -> None:
    migrations = copy_scenario("backfill_python", tmp_path)
    interrupted = StopAfter(batches=4)
    with pytest.raises(KeyboardInterrupt):
        Migrator.create(database_url, migrations, events=interrupted).migrate()
    assert touched(database_url) == {1: 1600, 0: ROWS - 1600}
    progress = query(
        database_url, "SELECT last_key, rows_done, batches_done, finished_at FROM pgmig_history_backfill"
    )
    assert progress == [("1600", 1600, 4, None)]
    assert interrupted.notices[-1] == (
        "backfill 'items' stopped after 1600 rows (key 1600); run the migration again to resume"
    )
    assert query(database_url, "SELECT count(*) FROM pgmig_history WHERE version = '20260602000000'") == [
        (0,)
    ]

    resumed = StopAfter()
    Migrator.create(database_url, migrations, events=resumed).migrate()
    assert touched(database_url) == {1: ROWS}  # every row exactly once: no batch was redone
    assert resumed.started == [(1600, ROWS)]
    assert resumed.done[0] == (2000, ROWS) and resumed.done[-1] == (ROWS, ROWS)
    assert any("resumes after key 1600" in n for n in resumed.notices)
    assert query(database_url, "SELECT rows_done, finished_at IS NOT NULL FROM pgmig_history_backfill") == [
        (ROWS, True)
    ]
    assert query(database_url, "SELECT count(*) FROM items WHERE price = id * 2") == [(ROWS,)]


def test_rollback_forgets_progress_so_applying_again_backfills_afresh(
    database_url: str, tmp_path: Path
) -> None:
    migrator = Migrator.create(database_url, copy_scenario("backfill_python", tmp_path))
    migrator.migrate()
    migrator.rollback()  # down() is a backfill too: every row back to NULL, touched back to 0
    assert touched(database_url) == {0: ROWS}
    assert query(database_url, "SELECT count(*) FROM pgmig_history_backfill") == [(0,)]
    migrator.migrate()
    assert touched(database_url) == {1: ROWS}


def test_sql_backfill_directive_runs_in_batches_and_resumes(database_url: str, tmp_path: Path) -> None:
    migrations = copy_scenario("backfill_sql", tmp_path)
    wanted = ROWS - ROWS // 10  # the WHERE leaves out the 'ten%' labels
    with pytest.raises(KeyboardInterrupt):
        Migrator.create(database_url, migrations, events=StopAfter(batches=3)).migrate()
    assert touched(database_url) == {1: 1200, 0: ROWS - 1200}
    assert query(
        database_url, "SELECT status, statements_done FROM pgmig_history WHERE version = '20260602000000'"
    )[0] == ("failed", 1)
    with pytest.raises(FailedMigration):
        Migrator.create(database_url, migrations).migrate()

    resumed = StopAfter()
    Migrator.create(database_url, migrations, events=resumed).migrate(resume=True)
    assert touched(database_url) == {1: wanted, 0: ROWS // 10}
    assert resumed.started == [(1200, wanted)]
    assert query(database_url, "SELECT status FROM pgmig_history WHERE version = '20260602000000'") == [
        ("applied",)
    ]
    Migrator.create(database_url, migrations).rollback()
    assert touched(database_url) == {0: ROWS}
    assert query(database_url, "SELECT count(*) FROM items WHERE price IS NOT NULL") == [(0,)]


def test_a_locked_row_makes_the_batch_retry_then_fail_keeping_finished_batches(database_url: str) -> None:
    make_items(database_url, 300)
    with psycopg.connect(database_url) as holder:
        holder.execute("UPDATE items SET label = 'busy' WHERE id = 250")  # holds the row lock, uncommitted
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("SET lock_timeout = '100ms'")
            with pytest.raises(MigrationFailed) as caught:
                _backfill_in_scope(conn, database_url)
        holder.rollback()
    message = caught.value.message
    assert "55P03" in message and "after 2 attempts" in message and "finished batches are kept" in message
    assert touched(database_url) == {1: 200, 0: 100}  # the two batches before the locked row committed


def _backfill_in_scope(conn: psycopg.Connection[tuple[object, ...]], url: str) -> None:
    from flask_pgmig.core import backfill as module
    from flask_pgmig.core.history import HistoryTable

    events = StopAfter()
    current = module.Scope(
        version="20260801000000", path=Path("20260801000000_b.py"),
        history=HistoryTable("public", "pgmig_history"), events=events, lock_timeout_ms=100, lock_retries=1,
        retry_base_delay=0.01,
    )  # fmt: skip
    with module.scope(current):
        module.backfill(conn, "items", "touched = touched + 1", None, batch_size=100)


def test_a_batch_over_its_statement_timeout_fails_with_the_fix(database_url: str) -> None:
    make_items(database_url, 20)
    with psycopg.connect(database_url, autocommit=True) as conn, pytest.raises(MigrationFailed) as caught:
        backfill(
            conn, "items", "touched = touched + 1", "pg_sleep(0.05) IS NOT NULL", statement_timeout="20ms"
        )
    assert "57014" in caught.value.message and "smaller batch_size" in caught.value.message
    assert touched(database_url) == {0: 20}


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        ("-- migrate:up\n-- pgmig:backfill\nUPDATE items SET touched = 1;\n", "transaction:false"),
        (
            "-- migrate:up transaction:false\n-- pgmig:backfil\nUPDATE items SET touched = 1;\n",
            "pgmig:backfill'?",
        ),
        (
            "-- migrate:up transaction:false\n-- pgmig:backfill size:10\nUPDATE items SET touched = 1;\n",
            "size:10",
        ),
        ("-- migrate:up transaction:false\n-- pgmig:backfill\nDELETE FROM items;\n", "is not an UPDATE"),
        ("-- migrate:up transaction:false\n-- pgmig:backfill\nUPDATE ONLY items SET touched = 1;\n", "has ONLY"),
        (
            "-- migrate:up transaction:false\n-- pgmig:backfill\nUPDATE items SET touched = 1;\n"
            "-- pgmig:backfill\nUPDATE items SET touched = 2;\n",
            "second backfill of 'items'",
        ),
    ],
)
def test_bad_directives_fail_the_preflight(tmp_path: Path, section: str, expected: str) -> None:
    (tmp_path / "20260603000000_bad.sql").write_text(section, "utf-8")
    with pytest.raises(MigrationParseError) as caught:
        preflight(discover(tmp_path)[0])
    assert expected in caught.value.message and "'20260603000000_bad.sql'" in caught.value.message
    assert caught.value.line == section.count("\n", 0, section.rindex("-- pgmig:")) + 1


def test_a_bad_directive_stops_migrate_before_anything_runs(database_url: str, tmp_path: Path) -> None:
    migrations = copy_scenario("backfill_python", tmp_path)
    (migrations / "20260602000000_backfill_price.py").unlink()
    (migrations / "20260603000000_bad.sql").write_text(
        "-- migrate:up\n-- pgmig:backfill\nUPDATE items SET touched = 1;\n", "utf-8"
    )
    with pytest.raises(MigrationParseError, match=r"Line 2 of '20260603000000_bad\.sql' declares a backfill"):
        Migrator.create(database_url, migrations).migrate()
    assert "items" not in {r[0] for r in query(database_url, "SELECT tablename FROM pg_tables")}


def test_backfill_in_a_transactional_python_migration_says_to_add_transaction_false(
    database_url: str, tmp_path: Path
) -> None:
    migrations = copy_scenario("backfill_python", tmp_path)
    path = migrations / "20260602000000_backfill_price.py"
    path.write_text(path.read_text(encoding="utf-8").replace("transaction = False\n", ""), "utf-8")
    with pytest.raises(ConfigError, match="add 'transaction = False' at its module level"):
        Migrator.create(database_url, migrations).migrate()
    assert touched(database_url) == {0: ROWS}


def test_a_failing_sql_backfill_names_the_file_and_line(database_url: str, tmp_path: Path) -> None:
    migrations = copy_scenario("backfill_python", tmp_path)
    (migrations / "20260602000000_backfill_price.py").unlink()
    (migrations / "20260603000000_typo.sql").write_text(
        "-- migrate:up transaction:false\n\n-- pgmig:backfill batch_size:100\nUPDATE items SET pricee = 1;\n",
        "utf-8",
    )
    with pytest.raises(MigrationFailed) as caught:
        Migrator.create(database_url, migrations).migrate()
    assert caught.value.message.startswith(
        "Backfill 'items' of 'items' (line 3 of '20260603000000_typo.sql') failed (SQLSTATE 42703): column "
        '"pricee" of relation "items" does not exist.'
    )
    assert caught.value.line == 3 and caught.value.sqlstate == "42703"
    assert query(database_url, "SELECT status FROM pgmig_history WHERE version = '20260603000000'") == [
        ("failed",)
    ]


def test_a_bad_argument_in_a_migration_names_the_file_and_line(database_url: str, tmp_path: Path) -> None:
    migrations = copy_scenario("backfill_python", tmp_path)
    path = migrations / "20260602000000_backfill_price.py"
    path.write_text(path.read_text(encoding="utf-8").replace("batch_size=400)", "batch_size=0)", 1), "utf-8")
    with pytest.raises(ConfigError) as caught:
        Migrator.create(database_url, migrations).migrate()
    assert caught.value.message == (
        "backfill() of 'items' (line 9 of '20260602000000_backfill_price.py') got batch_size=0; give 1 or "
        "more rows per batch."
    )


def test_batches_have_their_own_statement_timeout_class(database_url: str, tmp_path: Path) -> None:
    """PGMIG_STATEMENT_TIMEOUT (200 ms here) limits DDL; each batch runs under the backfill's own timeout."""
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    make_items(database_url, 100)
    slow = "(SELECT pg_sleep(0.3)) IS NOT NULL"  # every statement of the backfill takes over 200 ms
    (migrations / "20260901000000_slow.sql").write_text(
        "-- migrate:up transaction:false\n-- pgmig:backfill batch_size:50\n"
        f"UPDATE items SET touched = 1 WHERE {slow};\n",
        "utf-8",
    )
    Migrator.create(database_url, migrations, statement_timeout_ms=200).migrate()
    assert touched(database_url) == {1: 100}
    (migrations / "20260902000000_slow_ddl.sql").write_text(
        f"-- migrate:up\nCREATE TABLE t AS SELECT 1 AS x WHERE {slow};\n", "utf-8"
    )
    with pytest.raises(MigrationFailed, match="57014"):  # the same work outside a backfill hits the DDL class
        Migrator.create(database_url, migrations, statement_timeout_ms=200).migrate()
