"""``pgmig migrate/status/rollback`` on many targets: --targets, --all-schemas, --jobs, --fail-fast, summary."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from helpers import copy_scenario, history_versions, query
from test_standalone import pgmig


def test_targets_file_with_jobs_and_summary(make_database: Callable[[], str], tmp_path: Path) -> None:
    migrations = copy_scenario("basic", tmp_path)
    urls = [make_database() for _ in range(4)]
    query(urls[2], "CREATE TABLE users (id int)")  # this one fails on its first migration
    targets = tmp_path / "targets.txt"
    targets.write_text("\n".join(urls) + "\n")
    base = ["--directory", str(migrations)]

    result = pgmig(*base, "migrate", "--targets", str(targets), "--jobs", "4")
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["target", "outcome", "detail"]
    outcomes = [line.split()[1] for line in lines[1:5]]
    assert outcomes == ["applied", "applied", "failed", "applied"]
    assert 'relation "users" already exists' in lines[3]
    assert lines[-1] == "4 targets: 3 applied, 1 failed."
    assert history_versions(urls[0])[-1] == "20260117120000"

    query(urls[2], "DROP TABLE users")
    again = pgmig(*base, "migrate", "--targets", str(targets), "--jobs", "2", "--json")
    assert again.returncode == 0, again.stderr
    document = json.loads(again.stdout)
    assert [(t["outcome"], t["count"]) for t in document["targets"]] == [
        ("up to date", 0), ("up to date", 0), ("applied", 3), ("up to date", 0)
    ]  # fmt: skip
    status = pgmig(*base, "status", "--check", "--targets", str(targets))
    assert status.returncode == 0 and status.stdout.splitlines()[-1] == "4 targets: 4 up to date."


def test_all_schemas_from_environment(database_url: str, tmp_path: Path) -> None:
    migrations = copy_scenario("tenants", tmp_path)
    query(database_url, "CREATE SCHEMA tenant_a; CREATE SCHEMA tenant_b; CREATE SCHEMA other")
    env = {"PGMIG_TENANT_SCHEMAS": "tenant_%", "DATABASE_URL": database_url}
    result = pgmig("--directory", str(migrations), "migrate", "--all-schemas", env=env)
    assert result.returncode == 0, result.stderr
    assert "[tenant_a] applied   20260301000000_create_notes" in result.stdout
    assert result.stdout.splitlines()[-1] == "2 targets: 2 applied."
    status = pgmig("--directory", str(migrations), "status", "--all-schemas", "--check", env=env)
    assert status.returncode == 0
    rollback = pgmig("--directory", str(migrations), "rollback", "--all-schemas", "--steps", "1", env=env)
    assert rollback.returncode == 0
    assert history_versions(database_url, "tenant_b.pgmig_history") == ["20260301000000"]
    behind = pgmig("--directory", str(migrations), "status", "--all-schemas", "--check", env=env)
    assert behind.returncode == 1 and "behind      1 pending" in behind.stdout


def test_scale_out_usage_errors(database_url: str, tmp_path: Path) -> None:
    migrations = copy_scenario("basic", tmp_path)
    base = ["--database-url", database_url, "--directory", str(migrations)]
    no_pattern = pgmig(*base, "migrate", "--all-schemas")
    assert no_pattern.returncode == 1 and "--all-schemas needs PGMIG_TENANT_SCHEMAS" in no_pattern.stderr
    binds = pgmig(*base, "migrate", "--all-binds")
    assert binds.returncode == 1 and "need 'flask db'" in binds.stderr
    assert pgmig(*base, "migrate", "--targets", str(tmp_path / "targets.txt"), "--jobs", "0").returncode == 2
    targets = tmp_path / "one_target.txt"
    targets.write_text(database_url + "\n")
    execute = pgmig(*base, "migrate", "--dry-run", "--execute", "--targets", str(targets))
    assert execute.returncode == 2 and "--dry-run --execute proves one database at a time" in execute.stderr
