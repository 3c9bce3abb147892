"""Alembic (Flask-Migrate): a real Alembic environment with a merge, applied online by Alembic itself, then
imported with --adopt-history: graph order, autocommit blocks, the import point, the heads' ancestors."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from alembic import command
from alembic.config import Config
from click.testing import CliRunner, Result
from helpers import query, tables

from flask_pgmig.cli import cli
from flask_pgmig.core.adopt import read_source
from flask_pgmig.core.adopt.history import read_source_history
from flask_pgmig.errors import HistoryError

HEADER = '"""{doc}"""\nfrom alembic import op\nimport sqlalchemy as sa\n\nrevision = "{rev}"\ndown_revision = {down}\n'
REVISIONS = {
    "a1": ("create users", None, """
def upgrade():
    op.create_table("users", sa.Column("id", sa.Integer, primary_key=True), sa.Column("email", sa.Text),
                    sa.Column("mood", sa.Enum("ok", "sad", name="mood")))

def downgrade():
    op.drop_table("users")
    op.execute("DROP TYPE mood")
"""),
    "b2": ("add name", '"a1"', """
def upgrade():
    op.add_column("users", sa.Column("name", sa.String(80), server_default="x"))

def downgrade():
    op.drop_column("users", "name")
"""),
    "c3": ("index email", '"a1"', """
def upgrade():
    with op.get_context().autocommit_block():
        op.create_index("users_email", "users", ["email"], postgresql_concurrently=True)

def downgrade():
    with op.get_context().autocommit_block():
        op.drop_index("users_email", postgresql_concurrently=True)
"""),
    "d4": ("merge", '("b2", "c3")', """
def upgrade():
    pass

def downgrade():
    pass
"""),
    "e5": ("function", '"d4"', """
def upgrade():
    op.execute("CREATE FUNCTION greet(n text) RETURNS text LANGUAGE plpgsql AS $$ BEGIN RETURN 'hi ' || n; END; $$")
    op.execute("INSERT INTO users (id, email, mood) VALUES (1, 'a@example.org', 'ok')")
    op.execute("UPDATE users SET email = 'b@example.org' WHERE email LIKE '%@example.org'")

def downgrade():
    op.execute("DELETE FROM users")
    op.execute("DROP FUNCTION greet(text)")
"""),
}  # fmt: skip


FLASK_MIGRATE_ENV = """from flask import current_app
from alembic import context

raise RuntimeError("env.py was run: " + current_app.name)
"""


def alembic_project(root: Path, url: str) -> Config:
    """A project made by 'alembic init' with the revisions above; its Config points at ``url``."""
    root.mkdir(parents=True)
    config = Config(str(root / "alembic.ini"))
    command.init(config, str(root / "migrations"))
    config = Config(str(root / "alembic.ini"))
    config.set_main_option("script_location", str(root / "migrations"))
    config.set_main_option("sqlalchemy.url", url.replace("postgresql://", "postgresql+psycopg://", 1))
    for rev, (doc, down, body) in REVISIONS.items():
        text = HEADER.format(doc=doc, rev=rev, down=down) + body
        (root / "migrations" / "versions" / f"{rev}_{doc.replace(' ', '_')}.py").write_text(
            text, encoding="utf-8"
        )
    return config


def pgmig(url: str, directory: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--database-url", url, "--directory", str(directory), *args])


def test_alembic_import_adopt_and_carry_on(database_url: str, tmp_path: Path) -> None:
    config = alembic_project(tmp_path / "app", database_url)
    command.upgrade(config, "heads")  # Alembic itself applies its revisions (online)
    assert query(database_url, "SELECT version_num FROM alembic_version") == [("e5",)]

    source = tmp_path / "app" / "migrations"
    # a Flask-Migrate env.py needs a running app (current_app); the import must not run it
    (source / "env.py").write_text(FLASK_MIGRATE_ENV, encoding="utf-8")
    ours = tmp_path / "app" / "pgmig"
    result = pgmig(database_url, ours, "import", "--from", "flask-migrate", str(source), "--adopt-history")
    assert result.exit_code == 0, result.output
    assert "import point: e5." in result.output and "recorded 5 migration(s) as applied" in result.output
    order = [line.split()[0] for line in result.output.splitlines() if "->" in line]
    assert order[0] == "a1" and order[-2:] == ["d4", "e5"] and set(order[1:3]) == {"b2", "c3"}
    files = sorted(p.name for p in ours.iterdir())
    assert files[0] == "00000000000001_create_users.sql" and files[-1] == "00000000000005_function.sql"
    index_file = next(ours.glob("*_index_email.sql")).read_text(encoding="utf-8")
    assert "-- migrate:up transaction:false\nCREATE INDEX CONCURRENTLY users_email" in index_file
    assert "COMMIT" not in index_file and "alembic_version" not in index_file
    assert "-- alembic id: c3" in index_file
    assert "LIKE '%@example.org'" in (ours / files[-1]).read_text()  # offline SQL must not double '%'
    assert "-- Import point: the last migration imported from alembic (e5)." in (ours / files[-1]).read_text()

    assert pgmig(database_url, ours, "status", "--check").exit_code == 0
    (ours / "29991231000000_after_switch.sql").write_text(
        "-- migrate:up\nALTER TABLE users ADD COLUMN bio text;\n-- migrate:down\nALTER TABLE users DROP COLUMN bio;\n",
        encoding="utf-8",
    )
    assert pgmig(database_url, ours, "migrate").exit_code == 0
    # every revision's downgrade works from our files, and the files alone rebuild the schema
    reverted = pgmig(database_url, ours, "rollback", "--all")
    assert reverted.exit_code == 0, reverted.output
    assert tables(database_url) == {"alembic_version", "pgmig_history", "pgmig_history_audit"}
    rebuilt = pgmig(database_url, ours, "migrate")
    assert rebuilt.exit_code == 0, rebuilt.output
    assert query(database_url, "SELECT greet(name), email FROM users") == [("hi x", "b@example.org")]

    # the heads recorded in alembic_version stand for all their ancestors; an unknown head is refused
    source_set = read_source("alembic", source)
    assert source_set.heads == ("e5",) and source_set.by_id()["d4"].parents == ("b2", "c3")
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("UPDATE alembic_version SET version_num = 'b2'")
        conn.execute("INSERT INTO alembic_version VALUES ('c3')")  # two heads, before the merge
        assert read_source_history(conn, source_set).applied == {"a1", "b2", "c3"}
        conn.execute("UPDATE alembic_version SET version_num = 'ffff' WHERE version_num = 'c3'")
        with pytest.raises(
            HistoryError, match=r"records 'ffff' as applied, but .* has no such alembic migration"
        ):
            read_source_history(conn, source_set)


def test_alembic_revision_that_cannot_render_offline_is_refused(tmp_path: Path) -> None:
    alembic_project(tmp_path / "app", "postgresql://nobody@127.0.0.1/none")
    path = next((tmp_path / "app" / "migrations" / "versions").glob("e5_*.py"))
    online_only = "    n = op.get_bind().execute(sa.text('SELECT count(*) FROM users')).scalar()\n"
    path.write_text(path.read_text().replace("def upgrade():\n", "def upgrade():\n" + online_only))
    result = CliRunner().invoke(cli, ["--directory", str(tmp_path / "out"), "import", "--from", "alembic",
                                      str(tmp_path / "app" / "migrations")])  # fmt: skip
    assert result.exit_code == 1
    assert "Alembic revision 'e5' ('versions/e5_function.py') cannot be rendered as SQL in offline mode" in (
        result.output
    )
