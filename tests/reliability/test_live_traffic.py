"""A migration never queues live traffic behind it: lock_timeout, retries with backoff, CONCURRENTLY exemption.

A "blocker" transaction holds a lock on the table the migration alters, the way a long report query does. Without
lock_timeout, ALTER TABLE would wait behind it and every application query would queue behind the ALTER until the
blocker ends; these tests prove the application keeps being served while the blocker is still there.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import psycopg
import pytest
from helpers import copy_scenario, history_versions, query

from flask_pgmig.core.events import Events
from flask_pgmig.core.migrator import Migrator
from flask_pgmig.errors import MigrationFailed


class Recorder(Events):
    """Keeps retries; calls ``on_retry`` at each one (from the migrating thread)."""

    def __init__(self, on_retry: Any = None) -> None:
        self.retries: list[tuple[str, int, float]] = []
        self.on_retry = on_retry

    def retrying(self, version: str, attempt: int, delay: float, reason: str) -> None:
        self.retries.append((version, attempt, delay))
        if self.on_retry is not None:
            self.on_retry(attempt)


def blocker(url: str) -> psycopg.Connection[Any]:
    """An open transaction holding ACCESS SHARE on accounts (and a snapshot), like a long report."""
    conn = psycopg.connect(url)
    conn.execute("SELECT count(*) FROM accounts").fetchone()
    return conn


def app_query_served(url: str) -> bool:
    """An application read, bounded by a statement_timeout far above the migration's lock_timeout."""
    with psycopg.connect(url, autocommit=True, options="-c statement_timeout=4000") as conn:
        try:
            conn.execute("SELECT sum(balance) FROM accounts").fetchone()
            return True
        except psycopg.errors.QueryCanceled:
            return False


def prepared(database_url: str, tmp_path: Path, events: Events, **options: Any) -> Migrator:
    migrations = copy_scenario("live_table", tmp_path)
    Migrator.create(database_url, migrations).migrate(to="20260601000000")
    return Migrator.create(database_url, migrations, events=events, **options)


def test_lock_timeout_keeps_traffic_flowing_and_fails_clearly_after_retries(
    database_url: str, tmp_path: Path
) -> None:
    served: list[bool] = []
    events = Recorder(on_retry=lambda attempt: served.append(app_query_served(database_url)))
    migrator = prepared(database_url, tmp_path, events, lock_timeout_ms=200, lock_retries=2)
    holder = blocker(database_url)
    try:
        with pytest.raises(MigrationFailed) as caught:
            migrator.migrate(to="20260602000000")
        # while the blocker still held its lock, the application was served between attempts
        served.append(app_query_served(database_url))
    finally:
        holder.close()
    assert served == [True, True, True]
    assert [r[1] for r in events.retries] == [1, 2]
    assert caught.value.sqlstate == "55P03"
    assert "after 3 attempts" in str(caught.value) and "PGMIG_LOCK_TIMEOUT" in str(caught.value)
    assert history_versions(database_url) == ["20260601000000"]
    assert query(
        database_url, "SELECT count(*) FROM information_schema.columns WHERE column_name = 'flagged'"
    ) == [(0,)]


def test_retry_succeeds_once_the_blocker_is_gone(database_url: str, tmp_path: Path) -> None:
    holders: list[psycopg.Connection[Any]] = []
    events = Recorder(on_retry=lambda attempt: holders[0].rollback() if attempt == 1 else None)
    migrator = prepared(database_url, tmp_path, events, lock_timeout_ms=200, lock_retries=3)
    holder = blocker(database_url)
    holders.append(holder)
    try:
        result = migrator.migrate(to="20260602000000")
    finally:
        holder.close()
    assert [s.version for s in result.steps] == ["20260602000000"]
    assert [r[1] for r in events.retries] == [1]
    delays = [r[2] for r in events.retries]
    assert 0.25 <= delays[0] <= 0.75  # base 0.5 s with jitter in [0.5, 1.5)


def test_backoff_grows_exponentially_with_jitter(database_url: str, tmp_path: Path) -> None:
    events = Recorder()
    migrator = prepared(database_url, tmp_path, events, lock_timeout_ms=50, lock_retries=3)
    holder = blocker(database_url)
    try:
        with pytest.raises(MigrationFailed):
            migrator.migrate(to="20260602000000")
    finally:
        holder.close()
    delays = [r[2] for r in events.retries]
    assert len(delays) == 3
    for number, delay in enumerate(delays):
        assert 0.5 * 2**number * 0.5 <= delay < 0.5 * 2**number * 1.5


def test_concurrently_waits_past_the_short_lock_timeout(database_url: str, tmp_path: Path) -> None:
    events = Recorder()
    migrator = prepared(database_url, tmp_path, events, lock_timeout_ms=100, lock_retries=0)
    migrator.migrate(to="20260602000000")
    holder = blocker(database_url)  # CREATE INDEX CONCURRENTLY must wait for this transaction to end
    release = threading.Timer(1.0, holder.rollback)
    release.start()
    try:
        result = migrator.migrate()
    finally:
        release.join()
        holder.close()
    assert [s.version for s in result.steps] == ["20260603000000"]
    assert events.retries == []
    assert query(
        database_url, "SELECT indisvalid FROM pg_index WHERE indexrelid = 'accounts_balance_idx'::regclass"
    ) == [(True,)]


def test_invalid_index_is_reported_then_dropped_before_the_retry(database_url: str, tmp_path: Path) -> None:
    migrations = tmp_path / "m"
    migrations.mkdir()
    (migrations / "20260701000000_create_emails.sql").write_text(
        "-- migrate:up\nCREATE TABLE emails (id int PRIMARY KEY, address text);\n"
        "INSERT INTO emails VALUES (1, 'a@x'), (2, 'a@x');\n-- migrate:down\nDROP TABLE emails;\n"
    )
    (migrations / "20260702000000_unique_address.sql").write_text(
        "-- migrate:up transaction:false\n"
        "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS emails_address_key ON emails (address);\n"
        "-- migrate:down transaction:false\nDROP INDEX CONCURRENTLY emails_address_key;\n"
    )
    notices: list[str] = []

    class Notices(Events):
        def notice(self, message: str) -> None:
            notices.append(message)

    migrator = Migrator.create(database_url, migrations, events=Notices())
    with pytest.raises(MigrationFailed, match="23505"):
        migrator.migrate()
    status = migrator.status()
    assert [(i.name, i.table, i.version) for i in status.invalid_indexes] == [
        ("emails_address_key", "emails", "20260702000000")
    ]
    query(database_url, "UPDATE emails SET address = 'b@x' WHERE id = 2")
    migrator.migrate(resume=True)
    assert any("INVALID index public.emails_address_key" in n for n in notices), notices
    assert migrator.status().invalid_indexes == ()
    assert query(
        database_url, "SELECT indisvalid FROM pg_index WHERE indexrelid = 'emails_address_key'::regclass"
    ) == [(True,)]
