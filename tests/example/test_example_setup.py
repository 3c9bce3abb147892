"""Where the example app's database comes from, and its startup guard.

Without DATABASE_URL the app starts an embedded PostgreSQL under its instance folder (never 127.0.0.1:5432),
and the data outlives the server; with DATABASE_URL it uses that server and starts nothing. PGMIG_GUARD =
"error" refuses to create the app on a database that is behind its migrations.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

import example_app
from example_app import embedded_db
from example_app.seed import seed
from flask_pgmig import Migrator, PendingMigrationsError
from flask_pgmig.core.migrator import Settings
from flask_pgmig.testing.tester import MigrationTester


def test_the_guard_refuses_a_database_that_is_behind(migrator: MigrationTester, tmp_path: Path) -> None:
    migrator.migrate_to("20260202090000")
    with pytest.raises(PendingMigrationsError) as caught:
        example_app.create_app(
            {"SQLALCHEMY_DATABASE_URI": example_app.sqlalchemy_url(migrator.url)}, instance_path=str(tmp_path)
        )
    assert "20260203090000_tasks_updated_at" in str(caught.value)
    migrator.migrate()
    example_app.create_app(
        {"SQLALCHEMY_DATABASE_URI": example_app.sqlalchemy_url(migrator.url)}, instance_path=str(tmp_path)
    )


def test_database_url_is_used_and_nothing_is_started(
    pgmig_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", pgmig_db)
    app = example_app.create_app(instance_path=str(tmp_path / "instance"))
    assert app.config["SQLALCHEMY_DATABASE_URI"] == example_app.sqlalchemy_url(pgmig_db)
    assert not (tmp_path / "instance" / "pgdata").exists()
    with app.app_context():
        assert seed() is True


@pytest.fixture
def instance() -> Iterator[Path]:
    """An instance folder outside pytest's tmp_path, whose parents are private to root: when the tests run as
    root the embedded server runs as an unprivileged user that must reach its data directory."""
    folder = Path(tempfile.mkdtemp(prefix="pgmig-example-")) / "instance"
    try:
        yield folder
    finally:
        shutil.rmtree(folder.parent, ignore_errors=True)


def test_without_database_url_an_embedded_server_is_started_and_keeps_the_data(
    instance: Path, monkeypatch: pytest.MonkeyPatch, pgmig_settings: Settings
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("FLASK_SQLALCHEMY_DATABASE_URI", raising=False)
    try:
        # A fresh embedded database has nothing applied, so the guard stops the app, naming what is pending.
        with pytest.raises(PendingMigrationsError, match="20260115093000_create_projects"):
            example_app.create_app(instance_path=str(instance))
        # What 'python -m example_app.embedded_db status' looks at: the server found from its data directory.
        server = embedded_db.server(Flask("example_app", instance_path=str(instance)))
        assert server.is_running() and server.data_dir == instance / "pgdata"
        url = server.url(embedded_db.DATABASE)
        assert server.port != 5432 and "127.0.0.1" in url
        Migrator(url, pgmig_settings).migrate()

        app = example_app.create_app(instance_path=str(instance))
        assert app.config["SQLALCHEMY_DATABASE_URI"] == example_app.sqlalchemy_url(url)
        with app.app_context():
            assert seed() is True

        server.stop()
        assert not server.is_running()
        app = example_app.create_app(instance_path=str(instance))  # starts it again, same data, same port
        assert server.is_running()
        assert app.config["SQLALCHEMY_DATABASE_URI"] == example_app.sqlalchemy_url(url)
        with app.app_context():
            assert seed() is False  # the demo projects are still there
        assert app.test_client().get("/api/projects").get_json()[0]["name"] == "Website"
    finally:
        embedded_db.server(Flask("example_app", instance_path=str(instance))).stop()
