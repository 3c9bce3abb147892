"""``flask db`` on many targets: --all-schemas (a LIKE pattern or a function, PGMIG_TENANT_DIRECTORY), --targets."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from conftest import build_app, with_driver
from helpers import copy_scenario, history_versions, query, tables


def test_all_schemas_with_a_pattern_and_a_tenant_directory(database_url: str, tmp_path: Path) -> None:
    copy_scenario("basic", tmp_path)
    copy_scenario("tenants", tmp_path / "tenant")
    query(database_url, "CREATE SCHEMA tenant_a; CREATE SCHEMA tenant_b; CREATE SCHEMA other")
    app = build_app(
        tmp_path,
        sqlalchemy_url=with_driver(database_url, "psycopg"),
        PGMIG_TENANT_SCHEMAS="tenant_%",
        PGMIG_TENANT_DIRECTORY="tenant/migrations",
    )
    runner = app.test_cli_runner()
    result = runner.invoke(args=["db", "migrate", "--all-schemas", "--jobs", "2"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == "2 targets: 2 applied."
    assert history_versions(database_url, "tenant_b.pgmig_history") == ["20260301000000", "20260302000000"]
    assert query(database_url, "SELECT to_regclass('other.notes'), to_regclass('public.notes')") == [
        (None, None)
    ]
    assert tables(database_url) == set()  # the main directory was not run
    status = runner.invoke(args=["db", "status", "--all-schemas", "--check"])
    assert status.exit_code == 0 and "tenant_a" in status.output


def test_all_schemas_from_a_function(database_url: str, tmp_path: Path) -> None:
    copy_scenario("tenants", tmp_path)
    query(database_url, "CREATE SCHEMA acme; CREATE SCHEMA globex; CREATE SCHEMA initech")
    calls: list[bool] = []

    def tenants() -> list[str]:
        from flask import current_app

        calls.append(current_app.name == "pgmig_test_app")  # called inside an app context
        return ["acme", "globex"]

    app = build_app(tmp_path, PGMIG_DATABASE_URL=database_url, PGMIG_TENANT_SCHEMAS=tenants)
    result = app.test_cli_runner().invoke(args=["db", "migrate", "--all-schemas"])
    assert result.exit_code == 0, result.output
    assert calls == [True]
    assert history_versions(database_url, "globex.pgmig_history")[-1] == "20260302000000"
    assert query(database_url, "SELECT to_regclass('initech.notes')") == [(None,)]


def test_all_schemas_function_errors_are_one_line(database_url: str, tmp_path: Path) -> None:
    copy_scenario("tenants", tmp_path)

    def broken() -> list[str]:
        raise LookupError(
            f"tenant registry at {database_url.replace('postgres@', 'postgres:Leak-me-99@')} down"
        )

    app = build_app(tmp_path, PGMIG_DATABASE_URL=database_url, PGMIG_TENANT_SCHEMAS=broken)
    result = app.test_cli_runner().invoke(args=["db", "migrate", "--all-schemas"])
    assert result.exit_code == 1
    assert result.output.startswith(
        "Error: The PGMIG_TENANT_SCHEMAS function raised LookupError: tenant registry"
    )
    assert "Leak-me-99" not in result.output and "Fix the function." in result.output


def test_targets_file_through_flask(make_database: Callable[[], str], tmp_path: Path) -> None:
    copy_scenario("basic", tmp_path)
    urls = [make_database(), make_database()]
    targets = tmp_path / "targets.txt"
    targets.write_text("# shards\n" + "\n".join(urls) + "\n")
    app = build_app(tmp_path, PGMIG_DATABASE_URL=urls[0], PGMIG_TABLE="fleet_history")
    result = app.test_cli_runner().invoke(args=["db", "migrate", "--targets", str(targets)])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == "2 targets: 2 applied."
    assert [history_versions(url, "public.fleet_history")[-1] for url in urls] == ["20260117120000"] * 2
