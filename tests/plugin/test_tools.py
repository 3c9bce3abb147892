"""Testing a migration itself (``migrator``), the round-trip test, and the Flask glue (``pgmig_app``)."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from plugin_helpers import Project, drop_templates_with_prefix

from flask_pgmig.testing import naming


def test_migrator_steps_one_database_through_the_migrations(project: Project) -> None:
    project.conftest()
    project.pytester.makepyfile(
        test_steps="""
import pytest
from conftest import record
from flask_pgmig.errors import ConfigError

def test_email_backfill(migrator):
    record(migrator.url)
    assert migrator.current is None
    migrator.migrate_to("20260101000000")
    migrator.execute("INSERT INTO users (name) VALUES (%s)", ["Ada"])
    migrator.migrate_to("20260102000000")
    assert migrator.execute("SELECT email FROM users") == [("ada@example.com",)]
    assert migrator.applied() == ["20260101000000", "20260102000000"]
    with pytest.raises(ConfigError, match="rollback_to"):
        migrator.migrate_to("20260101000000")
    migrator.rollback_to("20260101000000")
    columns = migrator.execute("SELECT attname FROM pg_attribute WHERE attrelid = 'users'::regclass")
    assert "email" not in {c for (c,) in columns} and "name" in {c for (c,) in columns}
    assert migrator.current == "20260101000000"
    migrator.migrate()
    assert migrator.current == "20260103000000"

def test_starts_empty(migrator):
    record(migrator.url)
    assert migrator.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == [(0,)]
"""
    )
    # A password in the URL (the test server trusts loopback, so any works) is never shown.
    parts = urlsplit(project.server_url)
    netloc = f"{parts.username or 'postgres'}:s3cr3t@{parts.hostname}" + (
        f":{parts.port}" if parts.port else ""
    )
    with_password = urlunsplit(parts._replace(netloc=netloc))
    result = project.run(f"--pgmig-database-url={with_password}")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["pgmig: PostgreSQL * at postgresql://postgres:***@*"])
    assert "s3cr3t" not in result.stdout.str()
    assert len(project.seen_databases()) == 2
    assert project.leftovers() == set()
    assert project.templates() == set()  # the migrator needs no template


def test_round_trip_test_passes_on_good_downs_and_names_a_bad_one(project: Project) -> None:
    project.pytester.makepyfile(
        test_round="from flask_pgmig.testing import test_migrations_round_trip  # noqa\n"
    )
    project.run().assert_outcomes(passed=1)

    (project.migrations / "20260104000000_index.sql").write_text(
        "-- migrate:up\nCREATE INDEX users_name ON users (name);\nCREATE TABLE audit (id int);\n"
        "-- migrate:down\nDROP TABLE audit;\n"
    )
    result = project.run()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*problem(s) in the up -> down -> up round trip*",
            "*20260104000000_index: down leaves index *users_name behind*",
            "*Make each '-- migrate:down' section revert exactly what its up section does.",
        ]
    )
    assert "Traceback" not in result.stdout.str()


FLASK_APP = """
from flask import Flask, jsonify
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import text
from flask_pgmig import PgMig

db = SQLAlchemy()

def create_app(url):
    app = Flask("shop", root_path={root!r})
    app.config.update(SQLALCHEMY_DATABASE_URI=url, TESTING=True)
    db.init_app(app)
    PgMig(app, db)

    @app.get("/users")
    def users():
        rows = db.session.execute(text("SELECT name, current_database() FROM users ORDER BY id")).all()
        return jsonify([list(r) for r in rows])

    return app
"""


def test_pgmig_app_points_the_apps_engine_at_the_test_database(project: Project) -> None:
    root = str(project.pytester.path)
    project.pytester.makepyfile(shop=FLASK_APP.format(root=root))
    # The app's configured database is the server's own: the tests must never write there.
    app_url = project.server_url.replace("postgresql://", "postgresql+psycopg://", 1)
    project.conftest(
        f"""
from shop import create_app

@pytest.fixture
def app():
    return create_app({app_url!r})
"""
    )
    project.pytester.makepyfile(
        test_shop="""
from conftest import record
from flask_pgmig import PgMig

def test_client_sees_the_test_database(pgmig_app, client, pgmig_conn, pgmig_db):
    record(pgmig_db)
    pgmig_conn.execute("INSERT INTO users (name) VALUES ('Ada')")
    data = client.get("/users").get_json()
    assert data == [["Ada", pgmig_db.rsplit("/", 1)[1]]]
    assert pgmig_app.extensions["pgmig"].dsn().endswith(pgmig_db.rsplit("/", 1)[1])

def test_next_test_starts_clean(pgmig_app, client, pgmig_db):
    record(pgmig_db)
    assert client.get("/users").get_json() == []
"""
    )
    result = project.run()
    result.assert_outcomes(passed=2)
    assert project.leftovers() == set()
    assert len(project.seen_databases()) == 2


def test_pgmig_app_uses_the_apps_own_migrations_directory(project: Project) -> None:
    root = project.pytester.path
    app_dir = root / "app_migrations"
    app_dir.mkdir()
    (app_dir / "20260101000000_orders.sql").write_text(
        "-- migrate:up\nCREATE TABLE orders (id int);\n-- migrate:down\nDROP TABLE orders;\n"
    )
    project.pytester.makepyfile(
        shop=FLASK_APP.format(root=str(root)).replace(
            "TESTING=True)", "TESTING=True, PGMIG_DIRECTORY='app_migrations')"
        )
    )
    app_url = project.server_url.replace("postgresql://", "postgresql+psycopg://", 1)
    project.conftest(
        f"\nfrom shop import create_app\n\n@pytest.fixture\ndef app():\n    return create_app({app_url!r})\n"
    )
    project.pytester.makepyfile(
        test_shop="""
from conftest import record
from flask_pgmig.core import dsn

def test_app_database_has_the_apps_migrations(pgmig_app, pgmig_db):
    record(pgmig_db)
    app_db = pgmig_app.extensions["pgmig"].dsn()
    record(app_db)
    assert app_db != pgmig_db
    with dsn.connect(app_db) as conn:
        found = conn.execute("SELECT to_regclass('orders') IS NOT NULL, to_regclass('users')").fetchone()
        assert found == (True, None)
"""
    )
    try:
        project.run().assert_outcomes(passed=1)
        assert project.leftovers() == set()

        # A directory given to the plugin (here in the ini file) wins: an app migrating another is refused.
        project.pytester.makeini("[pytest]\npgmig_directory = migrations\n")
        result = project.run()
        result.assert_outcomes(errors=1)
        result.stdout.fnmatch_lines(
            ["*flask-pgmig: The app's migrations directory is '*app_migrations' but*"]
        )
    finally:
        drop_templates_with_prefix(
            project.server_url, naming.TEMPLATE_PREFIX + naming.project_key(app_dir) + "_"
        )
