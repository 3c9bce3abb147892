"""``repair``, ``history`` and what ``status`` says about problems, through the standalone command."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest
from helpers import copy_scenario, pgmig, query


def test_failed_migration_status_repair_then_migrate(database_url: str, tmp_path: Path) -> None:
    migrations = copy_scenario("nontx_fails", tmp_path)
    base = ["--database-url", database_url, "--directory", str(migrations)]

    failed = pgmig(*base, "migrate")
    assert failed.returncode == 1 and failed.stderr.startswith(
        "Error: Migration '20260502000000' failed at line 4"
    )
    assert "Traceback" not in failed.stderr

    status = pgmig(*base, "status")
    assert status.returncode == 0
    assert "failed    20260502000000_index_orders" in status.stdout
    assert "(failed: 2 of 4 statements done;" in status.stdout

    blocked = pgmig(*base, "migrate")
    assert blocked.returncode == 1 and "pgmig repair --mark-applied 20260502000000" in blocked.stderr

    usage = pgmig(*base, "repair")
    assert usage.returncode == 2 and "exactly one of --mark-applied" in usage.stderr

    repaired = pgmig(*base, "repair", "--mark-rolled-back", "20260502000000", "--json")
    assert repaired.returncode == 0, repaired.stderr
    document = json.loads(repaired.stdout)
    assert document["action"] == "mark-rolled-back" and document["previous_state"] == "failed"

    path = migrations / "20260502000000_index_orders.sql"
    path.write_text(path.read_text().replace("DEFAULT no_such_function()", "DEFAULT 'n/a'").replace(
        "CREATE INDEX CONCURRENTLY orders", "CREATE INDEX CONCURRENTLY IF NOT EXISTS orders"))  # fmt: skip
    migrated = pgmig(*base, "migrate")
    assert migrated.returncode == 0, migrated.stderr
    assert pgmig(*base, "status", "--check").returncode == 0

    history = pgmig(*base, "history")
    lines = history.stdout.splitlines()
    assert history.returncode == 0 and len(lines) >= 3
    assert " migrate   ok " in lines[0] and " repair    ok " in lines[1]
    failed_at = next(i for i, line in enumerate(lines) if " migrate   failed " in line)
    assert "no_such_function" in lines[failed_at + 1]  # the failed run's error, under its entry
    entries = json.loads(pgmig(*base, "history", "--json", "--limit", "2").stdout)["entries"]
    assert [e["action"] for e in entries] == ["migrate", "repair"]


def test_accept_checksum_and_status_explain_the_edit(database_url: str, tmp_path: Path) -> None:
    migrations = copy_scenario("basic", tmp_path)
    base = ["--database-url", database_url, "--directory", str(migrations)]
    assert pgmig(*base, "migrate").returncode == 0
    path = migrations / "20260115093000_create_users.sql"
    path.write_text(path.read_text().replace("-- migrate:up\n", "-- migrate:up\n-- a comment added later\n"))

    status = pgmig(*base, "status", "--check")
    assert status.returncode == 1
    assert (
        "modified  20260115093000_create_users" in status.stdout
        and "only whitespace or comments" in status.stdout
    )
    document = json.loads(pgmig(*base, "status", "--json").stdout)
    assert document["migrations"][0]["change"] == "cosmetic"

    accepted = pgmig(*base, "repair", "--accept-checksum", "20260115093000")
    assert accepted.returncode == 0 and "a cosmetic edit" in accepted.stdout
    assert pgmig(*base, "status", "--check").returncode == 0
    stored = query(database_url, "SELECT up_sql FROM pgmig_history WHERE version = '20260115093000'")[0][0]
    assert "a comment added later" in stored  # the accepted source is what rollback and resume compare with


def test_status_check_fails_on_an_invalid_index(database_url: str, tmp_path: Path) -> None:
    migrations = copy_scenario("basic", tmp_path)
    base = ["--database-url", database_url, "--directory", str(migrations)]
    assert pgmig(*base, "migrate").returncode == 0
    query(database_url, "INSERT INTO users (email) VALUES ('a@x'), ('a@x')")
    with pytest.raises(psycopg.errors.UniqueViolation):
        query(database_url, "CREATE UNIQUE INDEX CONCURRENTLY users_email_key ON users (email)")
    status = pgmig(*base, "status", "--check")
    assert status.returncode == 1
    assert "INVALID index public.users_email_key on users" in status.stdout
    document = json.loads(pgmig(*base, "status", "--json").stdout)
    assert document["invalid_indexes"] == [
        {"schema": "public", "name": "users_email_key", "table": "users", "version": None}
    ]


def test_history_names_the_first_and_last_of_many_versions(database_url: str, tmp_path: Path) -> None:
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    versions = [f"202601{day:02d}000000" for day in range(1, 8)]
    for number, version in enumerate(versions, 1):
        (migrations / f"{version}_create_t{number}.sql").write_text(
            f"-- migrate:up\nCREATE TABLE t{number} (id int);\n\n-- migrate:down\nDROP TABLE t{number};\n"
        )
    base = ["--database-url", database_url, "--directory", str(migrations)]
    assert pgmig(*base, "migrate", "--to", versions[2]).returncode == 0
    assert pgmig(*base, "migrate").returncode == 0

    lines = pgmig(*base, "history").stdout.splitlines()
    assert f" migrate   ok      {versions[3]}, {versions[4]}, {versions[5]}, {versions[6]}  (" in lines[0]
    assert f" migrate   ok      {versions[0]}, {versions[1]}, {versions[2]}  (" in lines[1]
    assert pgmig(*base, "rollback", "--all").returncode == 0
    line = pgmig(*base, "history", "--limit", "1").stdout.splitlines()[0]
    assert f" rollback  ok      {versions[6]} ... {versions[0]} (7 migrations)  (" in line
    entries = json.loads(pgmig(*base, "history", "--json", "--limit", "1").stdout)["entries"]
    assert entries[0]["versions"] == versions[::-1]  # the JSON keeps every one
