"""The example app's migrations tell a story: each step does what its file says, and all of it rolls back.

These use the plugin's ``migrator`` fixture (an empty database and the example app's migrations), moving the
schema version by version and checking the data each step touches.
"""

from __future__ import annotations

import re

import pytest

from flask_pgmig.core.files import MigrationFile, discover
from flask_pgmig.testing.tester import MigrationTester

from .conftest import MIGRATIONS

CREATE_USERS, ADD_STATUS, ADD_BLOCKED = "20260126090000", "20260127090000", "20260202090000"
UPDATED_AT, FIX_TAGS = "20260203090000", "20260205090000"


def files() -> list[MigrationFile]:
    return discover(MIGRATIONS)


def the_one(pattern: str) -> MigrationFile:
    """The single migration whose up section matches pattern (case-insensitive)."""
    found = [f for f in files() if re.search(pattern, f.up.sql, re.IGNORECASE)]
    assert len(found) >= 1, f"no migration in {MIGRATIONS} matches {pattern!r}"
    return found[0]


def test_the_directory_shows_each_technique() -> None:
    """Create tables, a backfill, CONCURRENTLY in transaction:false, an enum value, a $$ function, a data fix."""
    assert the_one(r"^\s*CREATE TABLE").transactional
    concurrently = the_one(r"CREATE INDEX CONCURRENTLY")
    assert not concurrently.transactional and concurrently.down is not None
    assert not concurrently.down.options.transaction
    assert the_one(r"ALTER TYPE \w+ ADD VALUE").transactional
    assert "$$" in the_one(r"CREATE FUNCTION").up.sql
    assert the_one(r"ADD COLUMN status").version == ADD_STATUS  # the column and its backfill UPDATE
    assert re.search(r"^UPDATE tasks SET status", the_one(r"ADD COLUMN status").up.sql, re.MULTILINE)
    assert the_one(r"DELETE FROM tags").version == FIX_TAGS
    assert all(f.down is not None for f in files()), "every example migration can be rolled back"


def test_status_is_backfilled_from_the_done_flag(migrator: MigrationTester) -> None:
    migrator.migrate_to(CREATE_USERS)
    migrator.execute("INSERT INTO projects (name) VALUES ('p')")
    migrator.execute(
        "INSERT INTO tasks (project_id, title, done) SELECT id, t, d FROM projects, "
        "(VALUES ('open', false), ('finished', true)) AS v(t, d)"
    )
    migrator.migrate_to(ADD_STATUS)
    rows = dict(migrator.execute("SELECT title, status::text FROM tasks"))
    assert rows == {"open": "todo", "finished": "done"}
    migrator.rollback_to(CREATE_USERS)
    columns = migrator.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'tasks' ORDER BY 1"
    )
    assert ("status",) not in columns and ("done",) in columns


def test_enum_value_is_added_and_its_rollback_moves_rows_back(migrator: MigrationTester) -> None:
    migrator.migrate_to(ADD_BLOCKED)
    labels = migrator.execute("SELECT enum_range(NULL::task_status)::text")
    assert labels == [("{todo,doing,blocked,done}",)]
    migrator.execute("INSERT INTO projects (name) VALUES ('p')")
    migrator.execute(
        "INSERT INTO tasks (project_id, title, status) SELECT id, 'stuck', 'blocked' FROM projects"
    )
    migrator.rollback_to(ADD_STATUS)
    assert migrator.execute("SELECT enum_range(NULL::task_status)::text") == [("{todo,doing,done}",)]
    assert migrator.execute("SELECT status::text FROM tasks") == [("doing",)]


def test_the_trigger_keeps_updated_at_and_the_data_fix_merges_tags(migrator: MigrationTester) -> None:
    migrator.migrate_to(UPDATED_AT)
    migrator.execute("INSERT INTO projects (name) VALUES ('p')")
    migrator.execute(
        "INSERT INTO tasks (project_id, title) SELECT id, t FROM projects, (VALUES ('a'), ('b')) AS v(t)"
    )
    # The $$ function behind the trigger overrides whatever updated_at an UPDATE writes.
    migrator.execute("UPDATE tasks SET updated_at = '2000-01-01' WHERE title = 'a'")
    assert migrator.execute("SELECT extract(year FROM updated_at) > 2000 FROM tasks") == [(True,), (True,)]

    migrator.execute("INSERT INTO tags (name) VALUES ('Bug'), (' bug'), ('BUG'), ('ui')")
    migrator.execute(  # a -> Bug and ' bug' (both become one link), b -> BUG and ui
        "INSERT INTO task_tags (task_id, tag_id) SELECT t.id, g.id FROM tasks t JOIN tags g ON "
        "(t.title = 'a' AND g.name IN ('Bug', ' bug')) OR (t.title = 'b' AND g.name IN ('BUG', 'ui'))"
    )
    migrator.migrate_to(FIX_TAGS)
    assert migrator.execute("SELECT name FROM tags ORDER BY name") == [("bug",), ("ui",)]
    links = migrator.execute(
        "SELECT t.title, g.name FROM task_tags JOIN tasks t ON t.id = task_id JOIN tags g ON g.id = tag_id "
        "ORDER BY 1, 2"
    )
    assert links == [("a", "bug"), ("b", "bug"), ("b", "ui")]
    with pytest.raises(Exception, match="tags_name_normalized"):
        migrator.execute("INSERT INTO tags (name) VALUES ('Design')")


def test_priority_is_added_backfilled_in_batches_and_made_not_null(migrator: MigrationTester) -> None:
    migrator.migrate_to("20260209090000")
    migrator.execute("INSERT INTO projects (name) VALUES ('p')")
    migrator.execute(
        "INSERT INTO tasks (project_id, title, status) SELECT id, s, s::task_status FROM projects, "
        "(VALUES ('todo'), ('doing'), ('done')) AS v(s)"
    )
    migrator.migrate()
    rows = dict(migrator.execute("SELECT title, priority FROM tasks"))
    assert rows == {"todo": 2, "doing": 1, "done": 3}
    nullable = migrator.execute(
        "SELECT is_nullable FROM information_schema.columns WHERE table_name = 'tasks' AND column_name = 'priority'"
    )
    assert nullable == [("NO",)]


def test_everything_applies_rolls_back_and_applies_again(migrator: MigrationTester) -> None:
    migrator.migrate()
    assert migrator.applied() == migrator.versions()
    valid = migrator.execute(
        "SELECT indisvalid FROM pg_index WHERE indexrelid = 'tasks_project_id_idx'::regclass"
    )
    assert valid == [(True,)]  # built CONCURRENTLY outside a transaction, and valid
    migrator.rollback_all()
    left = migrator.execute(
        "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r', 'i', 'S') "
        "AND relname NOT LIKE 'pgmig%'"
    )
    assert left == []
    assert migrator.execute("SELECT typname FROM pg_type WHERE typname = 'task_status'") == []
    migrator.migrate()
    assert migrator.applied() == migrator.versions()
