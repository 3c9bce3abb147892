"""A backfill over 200k rows, its process SIGKILLed half-way, then ``pgmig migrate`` again: every row is
updated exactly once and the second run starts after the last batch the first one committed; and a concurrent
writer that keeps committing while a backfill runs."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import psycopg
from helpers import copy_scenario, pgmig_process, query

from flask_pgmig.core.backfill import ensure_progress_table
from flask_pgmig.core.history import HistoryTable
from flask_pgmig.core.migrator import Migrator

ROWS = 200_000
BATCH = 2000


def rows_done(url: str) -> int:
    """Rows the backfill committed so far (0 before its progress table exists)."""
    found = query(url, "SELECT to_regclass('public.pgmig_history_backfill') IS NOT NULL")[0][0]
    return (
        int(query(url, "SELECT coalesce(sum(rows_done), 0) FROM pgmig_history_backfill")[0][0])
        if found
        else 0
    )


def test_killed_backfill_resumes_and_updates_every_row_exactly_once(
    database_url: str, tmp_path: Path
) -> None:
    migrations = copy_scenario("backfill_kill", tmp_path)
    first = pgmig_process(database_url, migrations, "migrate", "--to", "20260701000000")
    assert first.wait(timeout=120) == 0, first.communicate()

    run = pgmig_process(database_url, migrations, "migrate")
    deadline = time.monotonic() + 120  # a bound for a stuck run, not a timing assertion
    while rows_done(database_url) < 20 * BATCH and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert run.poll() is None, f"the backfill ended before it could be killed: {run.communicate()}"
    run.send_signal(signal.SIGKILL)
    run.wait(timeout=30)
    run.communicate()

    done = rows_done(database_url)
    assert 20 * BATCH <= done < ROWS and done % BATCH == 0
    # what is committed is exactly what the progress row says: the batch in flight was rolled back with it
    assert query(database_url, "SELECT touched, count(*) FROM events GROUP BY touched ORDER BY 1") == [
        (0, ROWS - done),
        (1, done),
    ]
    assert query(database_url, "SELECT count(*) FROM pgmig_history WHERE version = '20260702000000'") == [
        (0,)
    ]

    again = pgmig_process(database_url, migrations, "migrate")
    out, err = again.communicate(timeout=300)
    assert again.returncode == 0, err
    assert f"resumes after key {done} ({done} rows done)" in err
    assert "applied   20260702000000_backfill_score" in out
    assert query(database_url, "SELECT touched, count(*) FROM events GROUP BY touched") == [(1, ROWS)]
    assert query(database_url, "SELECT count(*) FROM events WHERE score = length(kind) + id % 100") == [
        (ROWS,)
    ]
    progress = query(
        database_url, "SELECT rows_done, batches_done, finished_at IS NOT NULL FROM pgmig_history_backfill"
    )
    assert progress == [(ROWS, ROWS // BATCH, True)]  # no batch counted twice


def test_a_concurrent_writer_keeps_going_while_the_backfill_runs(database_url: str, tmp_path: Path) -> None:
    migrations = copy_scenario("backfill_kill", tmp_path)
    migrator = Migrator.create(database_url, migrations)
    migrator.migrate(to="20260701000000")
    query(database_url, "CREATE TABLE writer_log (rows_done_seen bigint)")
    with psycopg.connect(database_url, autocommit=True) as conn:  # the backfill would create it on its start
        ensure_progress_table(conn, HistoryTable("public", "pgmig_history"))
    stop = threading.Event()
    writes: list[int] = []
    failures: list[BaseException] = []

    def writer() -> None:
        """Updates an existing row and inserts a new one per transaction, as live traffic would."""
        try:
            with psycopg.connect(database_url, autocommit=True) as conn:
                conn.execute("SET lock_timeout = '20s'")  # a bound for a stuck test, far above one batch
                next_id = ROWS
                while not stop.is_set():
                    next_id += 1
                    with conn.transaction():
                        conn.execute(
                            "UPDATE events SET kind = kind || '!' WHERE id = %s", [next_id * 7919 % ROWS + 1]
                        )
                        conn.execute("INSERT INTO events (id, kind) VALUES (%s, 'new')", [next_id])
                        conn.execute(
                            "INSERT INTO writer_log "
                            "SELECT coalesce(sum(rows_done), 0) FROM pgmig_history_backfill"
                        )
                    writes.append(next_id)
        except BaseException as exc:  # reported by the assertions below
            failures.append(exc)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        migrator.migrate()
    finally:
        stop.set()
        thread.join(timeout=60)
    assert failures == []
    # the writer committed while the backfill was half-way: it never waited for the whole backfill
    midway = query(
        database_url,
        "SELECT count(*) FROM writer_log WHERE rows_done_seen > 0 AND rows_done_seen < %s",
        [ROWS],
    )[0][0]
    assert midway > 0
    # every original row was backfilled exactly once; no update of the writer was lost
    assert query(
        database_url, "SELECT touched, count(*) FROM events WHERE id <= %s GROUP BY touched", [ROWS]
    ) == [(1, ROWS)]
    marks = query(database_url, "SELECT sum(length(kind) - length(replace(kind, '!', ''))) FROM events")[0][0]
    assert marks == len(writes)
    assert query(database_url, "SELECT count(*) FROM events WHERE kind = 'new'") == [(len(writes),)]


def test_ctrl_c_stops_between_batches_and_the_next_run_resumes(database_url: str, tmp_path: Path) -> None:
    migrations = copy_scenario("backfill_python", tmp_path)
    path = migrations / "20260602000000_backfill_price.py"
    path.write_text(
        path.read_text(encoding="utf-8").replace("batch_size=400)", "batch_size=100, sleep=0.05)")
    )
    total = 5000
    run = pgmig_process(database_url, migrations, "migrate")
    deadline = time.monotonic() + 120  # a bound for a stuck run, not a timing assertion
    while rows_done(database_url) < 500 and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert run.poll() is None, f"the backfill ended before Ctrl-C: {run.communicate()}"
    run.send_signal(signal.SIGINT)
    _, err = run.communicate(timeout=60)
    assert run.returncode == 130, err
    assert "Traceback" not in err and "Error: interrupted" in err
    done = rows_done(database_url)
    assert (
        f"backfill 'items' stopped after {done} rows (key {done}); run the migration again to resume" in err
    )
    assert query(database_url, "SELECT count(*) FROM items WHERE touched = 1") == [(done,)]

    again = pgmig_process(database_url, migrations, "migrate")
    _, err = again.communicate(timeout=120)
    assert again.returncode == 0, err
    assert f"resumes after key {done}" in err
    assert query(database_url, "SELECT touched, count(*) FROM items GROUP BY touched") == [(1, total)]
