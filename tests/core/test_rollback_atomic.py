"""``rollback --atomic``: every planned down section and the removal of every history row in one transaction,
all or nothing; refused when a down section cannot run in a transaction."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from helpers import copy_scenario, history_versions, query, tables

from flask_pgmig.core.events import Events
from flask_pgmig.core.migrator import Migrator
from flask_pgmig.errors import ConfigError, HistoryError, MigrationFailed

ALL = ["20260901000000", "20260902000000", "20260903000000", "20260904000000"]


class Notices(Events):
    def __init__(self) -> None:
        self.seen: list[str] = []

    def notice(self, message: str) -> None:
        self.seen.append(message)


def applied(url: str, tmp_path: Path, events: Events | None = None) -> tuple[Migrator, Path]:
    migrations = copy_scenario("rollback_atomic", tmp_path)
    Migrator.create(url, migrations).migrate()
    assert history_versions(url) == ALL
    return Migrator.create(url, migrations, events=events), migrations


def indexes(url: str) -> set[str]:
    return {r[0] for r in query(url, "SELECT indexname FROM pg_indexes WHERE schemaname = 'public'")}


def open_transactions(url: str) -> int:
    rows = query(url, "SELECT count(*) FROM pg_stat_activity WHERE state LIKE 'idle in transaction%' "
                      "AND datname = current_database()")  # fmt: skip
    return int(rows[0][0])


def test_reverts_everything_newest_first_with_the_history(database_url: str, tmp_path: Path) -> None:
    notices = Notices()
    migrator, migrations = applied(database_url, tmp_path, notices)
    (migrations / "20260904000000_index_children.sql").unlink()  # its stored down section is used instead

    result = migrator.rollback(everything=True, steps=None, atomic=True)

    assert [step.version for step in result.steps] == ALL[::-1]
    assert history_versions(database_url) == []
    assert not {"parents", "children"} & tables(database_url)
    assert any("20260904000000_index_children: file is gone" in n for n in notices.seen), notices.seen
    audit = query(database_url, "SELECT action, outcome, detail->>'atomic', versions FROM pgmig_history_audit "
                                "ORDER BY id DESC LIMIT 1")  # fmt: skip
    assert audit == [("rollback", "ok", "true", ALL[::-1])]
    status = Migrator.create(database_url, migrations).status()
    assert [m.state for m in status.migrations] == ["pending"] * 3  # nothing failed or running is left behind


def test_steps_and_to_choose_what_is_reverted(database_url: str, tmp_path: Path) -> None:
    migrator, _ = applied(database_url, tmp_path)
    assert [s.version for s in migrator.rollback(steps=2, atomic=True).steps] == ["20260904000000", "20260903000000"]
    assert history_versions(database_url) == ALL[:2]
    migrator.rollback(to="20260901000000", steps=None, atomic=True)
    assert history_versions(database_url) == ALL[:1]
    assert "parents" in tables(database_url) and "children" not in tables(database_url)
    assert query(database_url, "SELECT count(*) FROM parents") == [(0,)]  # the Python down section ran


@pytest.mark.parametrize("atomic", [True, False])
def test_a_failing_down_section_reverts_nothing_when_atomic(
    database_url: str, tmp_path: Path, atomic: bool
) -> None:
    migrator, migrations = applied(database_url, tmp_path)
    oldest = migrations / "20260901000000_create_parents.sql"
    oldest.write_text(oldest.read_text().replace("DROP TABLE parents;", "DROP TABLE parents;\nDROP TABLE nosuch;"))
    with pytest.raises(MigrationFailed) as caught:
        migrator.rollback(everything=True, steps=None, atomic=atomic)

    error = caught.value
    assert (error.version, error.line, error.sqlstate) == ("20260901000000", 6, "42P01")
    assert "20260901000000_create_parents.sql" in str(error)
    if atomic:  # the three newer down sections ran in the same transaction, and were undone with it
        assert history_versions(database_url) == ALL
        assert {"parents", "children"} <= tables(database_url)
        assert "children_parent_id" in indexes(database_url)
        assert query(database_url, "SELECT count(*) FROM parents") == [(2,)]
    else:  # each newer one committed on its own before the oldest failed
        assert history_versions(database_url) == ALL[:1]
        assert tables(database_url) & {"parents", "children"} == {"parents"}
    assert query(database_url, "SELECT outcome FROM pgmig_history_audit ORDER BY id DESC LIMIT 1") == [("failed",)]
    assert open_transactions(database_url) == 0


def test_refuses_a_transaction_false_down_section_before_reverting_anything(
    database_url: str, tmp_path: Path
) -> None:
    migrator, migrations = applied(database_url, tmp_path)
    (migrations / "20260905000000_index_labels.sql").write_text(
        "-- migrate:up transaction:false\nCREATE INDEX CONCURRENTLY parents_label ON parents (label);\n\n"
        "-- migrate:down transaction:false\nDROP INDEX CONCURRENTLY parents_label;\n"
    )
    migrator.migrate()
    with pytest.raises(ConfigError) as caught:
        migrator.rollback(everything=True, steps=None, atomic=True)
    assert "'20260905000000_index_labels.sql' is transaction:false" in str(caught.value)
    assert history_versions(database_url) == [*ALL, "20260905000000"]
    assert "parents_label" in indexes(database_url)

    migrator.rollback(steps=1)  # on its own, outside --atomic, it reverts; then the rest can go in one
    migrator.rollback(everything=True, steps=None, atomic=True)
    assert history_versions(database_url) == [] and not {"parents", "children"} & tables(database_url)


def test_a_history_delete_swallowed_by_a_trigger_reverts_nothing(database_url: str, tmp_path: Path) -> None:
    migrator, _ = applied(database_url, tmp_path)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("CREATE FUNCTION keep_rows() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$")
        conn.execute("CREATE TRIGGER keep_rows BEFORE DELETE ON pgmig_history FOR EACH ROW "
                     "EXECUTE FUNCTION keep_rows()")  # fmt: skip
    with pytest.raises(HistoryError) as caught:
        migrator.rollback(everything=True, steps=None, atomic=True)
    assert "changed 0 rows instead of 4" in str(caught.value)
    assert {"parents", "children"} <= tables(database_url)  # the down sections went with the rows kept
    query(database_url, "DROP TRIGGER keep_rows ON pgmig_history")
    migrator.rollback(everything=True, steps=None, atomic=True)
    assert history_versions(database_url) == []
