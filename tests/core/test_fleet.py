"""Many targets: tenant schemas and lists of databases, in parallel, each with its own lock and history."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import copy_scenario, history_versions, query

from flask_pgmig.core.fleet import (
    APPLIED,
    BEHIND,
    FAILED,
    SKIPPED,
    UP_TO_DATE,
    Target,
    run_fleet,
    targets_from_file,
    tenant_schemas,
    tenant_targets,
)
from flask_pgmig.core.migrator import Settings
from flask_pgmig.errors import ConfigError

TENANTS = [f"tenant_{i:02d}" for i in range(1, 21)]


def create_schemas(url: str, names: list[str]) -> None:
    query(url, "".join(f"CREATE SCHEMA {name};" for name in names))


def test_twenty_tenants_one_failing_then_rerun_fixes_only_it(database_url: str, tmp_path: Path) -> None:
    migrations = copy_scenario("tenants", tmp_path)
    create_schemas(database_url, TENANTS)
    # tenant_07 already has a 'notes' table of another shape: its first migration fails there only
    query(database_url, "CREATE TABLE tenant_07.notes (legacy int)")
    schemas = tenant_schemas(database_url, "tenant\\_%")
    assert schemas == TENANTS
    targets = tenant_targets(database_url, Settings(directory=migrations), schemas)

    report = run_fleet(targets, lambda m: m.migrate(), jobs=4)
    by_name = {o.target: o for o in report.outcomes}
    assert [o.target for o in report.failed] == ["tenant_07"]
    assert 'relation "notes" already exists' in by_name["tenant_07"].detail
    assert all(by_name[t].outcome == APPLIED and by_name[t].count == 2 for t in TENANTS if t != "tenant_07")
    assert not report.ok
    # each tenant has its own history table in its own schema, and its own objects
    assert history_versions(database_url, "tenant_01.pgmig_history") == ["20260301000000", "20260302000000"]
    assert query(database_url, "SELECT count(*) FROM pg_tables WHERE tablename = 'notes'") == [(20,)]
    assert query(database_url, "SELECT to_regclass('public.notes')") == [(None,)]

    status = run_fleet(targets, lambda m: m.status(), jobs=4)
    laggards = [o.target for o in status.outcomes if o.outcome == BEHIND]
    assert laggards == ["tenant_07"]

    query(database_url, "DROP TABLE tenant_07.notes")
    rerun = run_fleet(targets, lambda m: m.migrate(), jobs=4)
    assert [(o.target, o.outcome, o.count) for o in rerun.outcomes if o.outcome != UP_TO_DATE] == [
        ("tenant_07", APPLIED, 2)
    ]
    assert rerun.ok


def test_four_jobs_against_eight_databases(make_database: Callable[[], str], tmp_path: Path) -> None:
    migrations = copy_scenario("basic", tmp_path)
    urls = [make_database() for _ in range(8)]
    targets_file = tmp_path / "targets.txt"
    targets_file.write_text("# the fleet\n\n" + "\n".join(urls) + "\n")
    targets = targets_from_file(targets_file, Settings(directory=migrations))
    assert [t.dsn for t in targets] == urls
    report = run_fleet(targets, lambda m: m.migrate(), jobs=4)
    assert [(o.outcome, o.count) for o in report.outcomes] == [(APPLIED, 3)] * 8
    assert all(history_versions(url)[-1] == "20260117120000" for url in urls)
    again = run_fleet(targets, lambda m: m.migrate(), jobs=4)
    assert {o.outcome for o in again.outcomes} == {UP_TO_DATE}


def test_fail_fast_skips_targets_not_started(make_database: Callable[[], str], tmp_path: Path) -> None:
    migrations = copy_scenario("basic", tmp_path)
    good = make_database()
    bad = Target(
        "unreachable",
        "postgresql://nobody:hunter2-SECRET@127.0.0.1:1/nowhere",
        Settings(directory=migrations),
    )
    targets = [
        bad,
        *[Target(f"db{i}", good, Settings(directory=migrations, table=f"h{i}")) for i in range(3)],
    ]
    report = run_fleet(targets, lambda m: m.status(), jobs=1, fail_fast=True)
    assert [o.outcome for o in report.outcomes] == [FAILED, SKIPPED, SKIPPED, SKIPPED]
    assert "hunter2" not in report.outcomes[0].detail and "Could not connect" in report.outcomes[0].detail


def test_bad_target_lists_are_refused(tmp_path: Path) -> None:
    settings = Settings(directory=tmp_path)
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n")
    with pytest.raises(ConfigError, match="lists no database"):
        targets_from_file(empty, settings)
    junk = tmp_path / "junk.txt"
    junk.write_text("postgresql://a@h/db\nnot a dsn\n")
    with pytest.raises(ConfigError, match=r"Line 2 of '.*junk\.txt' is not a PostgreSQL URL"):
        targets_from_file(junk, settings)
    with pytest.raises(ConfigError, match="listed twice"):
        run_fleet([Target("a", "x", settings), Target("a", "y", settings)], lambda m: m.status())
    with pytest.raises(ConfigError, match="No tenant schema matched"):
        tenant_targets("postgresql://x@h/db", settings, [])
