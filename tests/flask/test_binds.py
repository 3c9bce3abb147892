"""Binds: each Flask-SQLAlchemy bind with its own migrations directory, history and lock; --bind and --all-binds."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from conftest import NOWHERE, build_app, with_driver, write_migration
from flask import Flask
from helpers import copy_scenario, history_versions, tables

from flask_pgmig.core.lock import lock_key
from flask_pgmig.errors import ConfigError, PendingMigrationsError


def two_bind_app(root: Path, main: str, analytics: str, **config: Any) -> Flask:
    """The main database with tests/scenarios/basic, and an 'analytics' bind with migrations_analytics/."""
    if not (root / "migrations").exists():
        copy_scenario("basic", root)
        write_migration(
            root / "migrations_analytics", "20260201000000", "create_events",
            "CREATE TABLE events (id bigint PRIMARY KEY, kind text);", "DROP TABLE events;",
        )  # fmt: skip
        write_migration(
            root / "migrations_analytics", "20260202000000", "index_events",
            "CREATE INDEX events_kind_idx ON events (kind);", "DROP INDEX events_kind_idx;",
        )  # fmt: skip
    return build_app(
        root,
        sqlalchemy_url=with_driver(main, "psycopg"),
        binds={"analytics": with_driver(analytics, "psycopg")},
        **{"PGMIG_BINDS": {"analytics": "migrations_analytics"}, **config},
    )


def test_bind_option_uses_the_binds_engine_directory_and_history(
    make_database: Callable[[], str], tmp_path: Path
) -> None:
    main, analytics = make_database(), make_database()
    runner = two_bind_app(tmp_path, main, analytics).test_cli_runner()
    result = runner.invoke(args=["db", "migrate", "--bind", "analytics"])
    assert result.exit_code == 0, result.output
    assert "applied   20260201000000_create_events" in result.output
    assert {"events", "pgmig_history"} <= tables(analytics)
    assert history_versions(analytics) == ["20260201000000", "20260202000000"]
    assert tables(main) == set()  # the main database was not touched

    assert runner.invoke(args=["db", "migrate"]).exit_code == 0
    assert history_versions(main)[-1] == "20260117120000" and "events" not in tables(main)
    assert runner.invoke(args=["db", "status", "--bind", "analytics", "--check"]).exit_code == 0
    status = runner.invoke(args=["db", "current", "--bind", "analytics"])
    assert "20260201000000_create_events" in status.output and "create_users" not in status.output
    assert runner.invoke(args=["db", "downgrade", "--bind", "analytics"]).exit_code == 0
    assert history_versions(analytics) == ["20260201000000"]
    assert len(history_versions(main)) == 3


def test_all_binds(make_database: Callable[[], str], tmp_path: Path) -> None:
    main, analytics = make_database(), make_database()
    runner = two_bind_app(tmp_path, main, analytics).test_cli_runner()
    result = runner.invoke(args=["db", "migrate", "--all-binds", "--jobs", "2"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["target", "outcome", "detail"]
    assert lines[1].split() == ["default", "applied", "3", "applied"]
    assert lines[2].split() == ["analytics", "applied", "2", "applied"]
    assert lines[-1] == "2 targets: 2 applied."
    assert history_versions(main)[-1] == "20260117120000"
    assert history_versions(analytics)[-1] == "20260202000000"

    status = runner.invoke(args=["db", "status", "--all-binds", "--check", "--json"])
    assert status.exit_code == 0
    assert [(t["target"], t["outcome"]) for t in json.loads(status.output)["targets"]] == [
        ("default", "up to date"), ("analytics", "up to date")
    ]  # fmt: skip
    rollback = runner.invoke(args=["db", "rollback", "--all-binds", "--steps", "1"])
    assert rollback.exit_code == 0 and rollback.output.splitlines()[-1] == "2 targets: 2 applied."
    behind = runner.invoke(args=["db", "status", "--all-binds", "--check"])
    assert behind.exit_code == 1 and "1 pending" in behind.output


def test_binds_in_one_database_have_their_own_history_and_lock(database_url: str, tmp_path: Path) -> None:
    copy_scenario("basic", tmp_path)
    write_migration(
        tmp_path / "migrations_reports", "20260301000000", "reports", "CREATE TABLE reports (id int);"
    )
    app = build_app(
        tmp_path,
        sqlalchemy_url=with_driver(database_url, "psycopg"),
        binds={"reports": with_driver(database_url, "psycopg")},
        PGMIG_BINDS={"reports": {"directory": "migrations_reports", "table": "reports_history"}},
        PGMIG_LOCK_WAIT="0s",
    )
    runner = app.test_cli_runner()
    dbname = database_url.rsplit("/", 1)[1]
    with psycopg.connect(database_url, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", [lock_key(dbname, "public", "pgmig_history")])
        main = runner.invoke(args=["db", "migrate"])
        assert main.exit_code == 1 and "lock" in main.output.lower()  # the main lock is held ...
        reports = runner.invoke(args=["db", "migrate", "--bind", "reports"])
        assert reports.exit_code == 0, reports.output  # ... and the bind has its own
    assert history_versions(database_url, "public.reports_history") == ["20260301000000"]
    assert runner.invoke(args=["db", "migrate"]).exit_code == 0
    assert history_versions(database_url) == ["20260115093000", "20260116080000", "20260117120000"]


def test_main_database_url_does_not_leak_onto_binds(make_database: Callable[[], str], tmp_path: Path) -> None:
    main, analytics, ddl_url = make_database(), make_database(), make_database()
    app = two_bind_app(tmp_path, main, analytics, PGMIG_DATABASE_URL=ddl_url)
    runner = app.test_cli_runner()
    assert runner.invoke(args=["db", "migrate"]).exit_code == 0
    assert runner.invoke(args=["db", "migrate", "--bind", "analytics"]).exit_code == 0
    assert "users" in tables(ddl_url) and "events" in tables(analytics)
    assert tables(main) == set() and "events" not in tables(ddl_url)


@pytest.mark.parametrize(
    ("args", "config", "message"),
    [
        (["--bind", "reports"], {}, "Error: The bind 'reports' has no migrations directory in PGMIG_BINDS "
         "(it lists 'analytics'). Add it, e.g. PGMIG_BINDS = {'reports': 'migrations_reports'}."),
        (["--all-binds"], {"PGMIG_BINDS": None}, "Error: --all-binds needs PGMIG_BINDS"),
        (["--all-binds", "--all-schemas"], {}, "Error: --all-binds and --all-schemas cannot be combined."),
        (["--all-schemas"], {}, "Error: --all-schemas needs PGMIG_TENANT_SCHEMAS"),
    ],
)  # fmt: skip
def test_usage_errors(tmp_path: Path, args: list[str], config: dict[str, object], message: str) -> None:
    app = two_bind_app(tmp_path, NOWHERE, NOWHERE)  # refused before any connection
    app.extensions["pgmig"].config.update(config)
    result = app.test_cli_runner().invoke(args=["db", "migrate", *args])
    assert result.exit_code == 1
    assert result.output.startswith(message), result.output


def test_guard_and_health_cover_every_bind(make_database: Callable[[], str], tmp_path: Path) -> None:
    main, analytics = make_database(), make_database()
    app = two_bind_app(tmp_path, main, analytics, PGMIG_HEALTH_ENDPOINT="/ready")
    assert app.test_cli_runner().invoke(args=["db", "migrate"]).exit_code == 0
    response = app.test_client().get("/ready")
    assert response.status_code == 503
    assert response.get_json()["problems"][0] == {
        "state": "pending",
        "migration": "analytics:20260201000000_create_events",
    }
    with pytest.raises(PendingMigrationsError) as caught:
        two_bind_app(tmp_path, main, analytics, PGMIG_GUARD="error")
    assert "run 'flask db migrate --bind analytics'" in caught.value.message
    assert app.test_cli_runner().invoke(args=["db", "migrate", "--bind", "analytics"]).exit_code == 0
    assert app.test_client().get("/ready").status_code == 200
    two_bind_app(tmp_path, main, analytics, PGMIG_GUARD="error")  # boots now


def test_bind_settings_and_its_secret_read_once(
    make_database: Callable[[], str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    main, analytics = make_database(), make_database()
    provider = f"CALLS = []\n\ndef dsn():\n    CALLS.append(1)\n    return {analytics!r}\n"
    (tmp_path / "bind_vault.py").write_text(provider)
    monkeypatch.syspath_prepend(str(tmp_path))
    app = two_bind_app(
        tmp_path,
        main,
        "postgresql://nobody@127.0.0.1:1/not_used",  # the engine is ignored: the bind has a secret of its own
        PGMIG_BINDS={"analytics": {"directory": "migrations_analytics", "secrets": "bind_vault:dsn"}},
    )
    runner = app.test_cli_runner()
    assert runner.invoke(args=["db", "migrate", "--bind", "analytics"]).exit_code == 0
    assert history_versions(analytics)[-1] == "20260202000000"
    assert runner.invoke(args=["db", "migrate"]).exit_code == 0
    pgmig = app.extensions["pgmig"].extension
    assert pgmig.check(app).ok and pgmig.check(app).ok
    import bind_vault  # type: ignore[import-not-found]

    assert bind_vault.CALLS == [1]  # once for the CLI run, the health checks and all


@pytest.mark.parametrize(
    ("binds", "message"),
    [
        (
            {"analytics": {"directory": "m", "dsn": "x"}},
            "PGMIG_BINDS['analytics'] has the unknown setting 'dsn'.",
        ),
        ({"analytics": {"table": "t"}}, "PGMIG_BINDS['analytics'] has no 'directory'."),
        ({"analytics": 3}, "PGMIG_BINDS['analytics'] is 3; give the bind's migrations directory"),
        ({"": "m"}, "PGMIG_BINDS has the key ''; bind keys are the names in SQLALCHEMY_BINDS."),
    ],
)
def test_malformed_binds_fail_init_app(tmp_path: Path, binds: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        build_app(tmp_path, PGMIG_DATABASE_URL=NOWHERE, PGMIG_BINDS=binds)
    assert message in caught.value.message
