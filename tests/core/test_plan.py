"""Comparing files with history: states, validation errors, migrate and rollback plans (pure)."""

from __future__ import annotations

from pathlib import Path

import pytest

from flask_pgmig.core import files, plan
from flask_pgmig.errors import (
    ChecksumMismatch,
    ConfigError,
    FailedMigration,
    IrreversibleMigration,
    OutOfOrder,
)


def migration(tmp_path: Path, version: str, name: str, down: str | None = "SELECT 0;") -> files.MigrationFile:
    text = f"-- migrate:up\nSELECT {version[-2:]};\n" + (
        f"-- migrate:down\n{down}\n" if down is not None else ""
    )
    path = tmp_path / f"{version}_{name}.sql"
    path.write_text(text)
    return files.parse_file(path)


def record(
    m: files.MigrationFile, status: str = "applied", checksum: str | None = None
) -> plan.HistoryRecord:
    return plan.HistoryRecord(m.version, m.name, checksum or m.checksum, status, down_sql="SELECT 'stored';")


def test_states_applied_pending_modified_missing_failed(tmp_path: Path) -> None:
    a, b, c, d = (migration(tmp_path, f"202601010000{i}0", n) for i, n in enumerate("abcd"))
    gone = plan.HistoryRecord("20251231000000", "gone", "x", "applied", down_sql="SELECT 1;")
    status = plan.compute_status(
        [a, b, c, d], [record(a), record(b, checksum="other"), record(c, "failed"), gone]
    )
    assert [(m.id, m.state) for m in status.migrations] == [
        ("20251231000000_gone", "missing"),
        ("20260101000000_a", "applied"),
        ("20260101000010_b", "modified"),
        ("20260101000020_c", "failed"),
        ("20260101000030_d", "pending"),
    ]
    assert not status.clean


def test_eight_digit_history_matches_fourteen_digit_file(tmp_path: Path) -> None:
    m = migration(tmp_path, "20260101000000", "a")
    status = plan.compute_status([m], [plan.HistoryRecord("20260101", "a", m.checksum, "applied")])
    assert [s.state for s in status.migrations] == ["applied"] and status.clean


def test_checksum_mismatch_names_the_fix(tmp_path: Path) -> None:
    m = migration(tmp_path, "20260115093000", "add_email")
    status = plan.compute_status([m], [record(m, checksum="edited")])
    with pytest.raises(ChecksumMismatch) as caught:
        plan.validate(status, allow_out_of_order=False)
    assert str(caught.value) == (
        "Migration '20260115093000_add_email' was applied but its file has changed since (checksum mismatch). "
        "Restore the file, or run 'flask db repair --accept-checksum 20260115093000' if the change is only cosmetic."
    )


def test_out_of_order_is_refused_unless_allowed(tmp_path: Path) -> None:
    old, new = migration(tmp_path, "20260101000000", "branch"), migration(tmp_path, "20260201000000", "main")
    status = plan.compute_status([old, new], [record(new)])
    with pytest.raises(
        OutOfOrder, match="'20260101000000_branch' is pending but older than '20260201000000_main'"
    ):
        plan.validate(status, allow_out_of_order=False)
    plan.validate(status, allow_out_of_order=True)
    assert [m.id for m in plan.plan_migrate(status)] == ["20260101000000_branch"]


def test_failed_migration_blocks_with_repair_hint(tmp_path: Path) -> None:
    m = migration(tmp_path, "20260101000000", "x")
    status = plan.compute_status([m], [record(m, "failed")])
    with pytest.raises(FailedMigration, match="repair --mark-applied 20260101000000"):
        plan.validate(status, allow_out_of_order=False)


def test_migrate_to_stops_at_version(tmp_path: Path) -> None:
    ms = [migration(tmp_path, f"2026010{i}000000", f"m{i}") for i in range(1, 5)]
    status = plan.compute_status(ms, [])
    assert [m.version for m in plan.plan_migrate(status, to="20260102000000")] == [
        "20260101000000",
        "20260102000000",
    ]
    with pytest.raises(ConfigError, match="No migration has version '20990101000000'"):
        plan.plan_migrate(status, to="20990101000000")
    with pytest.raises(ConfigError, match="is not a migration version"):
        plan.plan_migrate(status, to="abc")


def test_rollback_newest_first_by_steps_to_and_all(tmp_path: Path) -> None:
    ms = [migration(tmp_path, f"2026010{i}000000", f"m{i}") for i in range(1, 5)]
    status = plan.compute_status(ms, [record(m) for m in ms[:3]])
    assert [s.version[:8] for s in plan.plan_rollback(status, steps=2)] == ["20260103", "20260102"]
    assert [s.version[:8] for s in plan.plan_rollback(status, to="20260101000000")] == [
        "20260103",
        "20260102",
    ]
    assert len(plan.plan_rollback(status, everything=True)) == 3


def test_rollback_of_missing_file_uses_stored_down(tmp_path: Path) -> None:
    gone = plan.HistoryRecord(
        "20260101000000", "gone", "x", "applied", down_sql="DROP TABLE t;", down_options="transaction:false"
    )
    (step,) = plan.plan_rollback(plan.compute_status([], [gone]), steps=1)
    assert step.from_stored_source and step.down.sql == "DROP TABLE t;" and not step.down.options.transaction


def test_rollback_refuses_irreversible(tmp_path: Path) -> None:
    m = migration(tmp_path, "20260101000000", "drop_stuff", down=None)
    with pytest.raises(IrreversibleMigration, match="has no down section"):
        plan.plan_rollback(plan.compute_status([m], [record(m)]), steps=1)


def test_fingerprint_ignores_comments_and_whitespace_only() -> None:
    assert plan.sql_fingerprint("SELECT 1; -- hi\n") == plan.sql_fingerprint("SELECT   1;\n/* x */")
    assert plan.sql_fingerprint("SELECT 1;") != plan.sql_fingerprint("SELECT 2;")
