"""Switching tools: per format, apply the migrations the way that tool does (its SQL and its tracking rows),
``import --adopt-history``, ``status --check`` is clean, a new migration applies on top; the imported files
also build an empty database and roll all the way back. Dirty or failed source states are refused."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import psycopg
from click.testing import CliRunner, Result
from helpers import copy_scenario, query, tables

from flask_pgmig.cli import cli


def tree(root: Path, files: dict[str, str]) -> Path:
    """Write ``files`` (relative path -> text) under root and return root."""
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def pgmig(url: str, directory: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--database-url", url, "--directory", str(directory), *args])


def run_sql(url: str, text: str, *, transaction: bool = True) -> None:
    """Send a whole file at once, as golang-migrate/dbmate do (one implicit transaction), or in a transaction."""
    with psycopg.connect(url, autocommit=True) as conn:
        if transaction:
            with conn.transaction():
                conn.execute(text.encode())
        else:
            conn.execute(text.encode())


def switch_and_check(url: str, tmp_path: Path, tool: str, src: Path, expect_tables: set[str]) -> None:
    """Import with --adopt-history, check status, add a migration; then every down reverts the database to
    nothing but the tool tables, and the imported files alone build it again."""
    migrations = tmp_path / "migrations"
    imported = pgmig(url, migrations, "import", "--from", tool, str(src), "--adopt-history")
    assert imported.exit_code == 0, imported.output
    assert "Adopted the history of" in imported.output
    status = pgmig(url, migrations, "status", "--check")
    assert status.exit_code == 0, status.output
    (migrations / "29991231000000_after_switch.sql").write_text(
        "-- migrate:up\nCREATE TABLE after_switch (id int);\n-- migrate:down\nDROP TABLE after_switch;\n",
        encoding="utf-8",
    )
    migrate = pgmig(url, migrations, "migrate")
    assert migrate.exit_code == 0, migrate.output
    assert "after_switch" in tables(url) and pgmig(url, migrations, "status", "--check").exit_code == 0
    before = tables(url)
    assert expect_tables | {"after_switch"} <= before
    reverted = pgmig(url, migrations, "rollback", "--all")
    assert reverted.exit_code == 0, reverted.output
    assert not (expect_tables | {"after_switch"}) & tables(url)
    built = pgmig(url, migrations, "migrate")
    assert built.exit_code == 0, built.output
    assert tables(url) == before and pgmig(url, migrations, "status", "--check").exit_code == 0


COMMON = {
    "users": ("CREATE TABLE users (id bigint PRIMARY KEY, email text NOT NULL);", "DROP TABLE users;"),
    "mood": ("CREATE TYPE mood AS ENUM ('ok');\nALTER TABLE users ADD COLUMN mood mood;",
             "ALTER TABLE users DROP COLUMN mood;\nDROP TYPE mood;"),
    # ASCII only before '-- migrate:down' until core/files.py compares character offsets (see the report)
    "names": ("INSERT INTO users VALUES (1, 'zoe@example.jp');", "DELETE FROM users WHERE email <> 'zoë@例え.jp';"),
    "index": ("CREATE INDEX CONCURRENTLY users_email ON users (email);", "DROP INDEX CONCURRENTLY users_email;"),
}  # fmt: skip


def test_dbmate_round_trip(database_url: str, tmp_path: Path) -> None:
    url = database_url
    files = {}
    for n, (name, (up, down)) in enumerate(COMMON.items(), start=1):
        mode = " transaction:false" if "CONCURRENTLY" in up else ""
        files[f"2023010{n}000000_{name}.sql"] = f"-- migrate:up{mode}\n{up}\n-- migrate:down{mode}\n{down}\n"
    src = tree(tmp_path / "db" / "migrations", files)
    run_sql(url, "CREATE TABLE schema_migrations (version varchar(128) PRIMARY KEY);")
    for n, (up, _) in enumerate(COMMON.values(), start=1):
        run_sql(url, up, transaction="CONCURRENTLY" not in up)
        run_sql(url, f"INSERT INTO schema_migrations VALUES ('2023010{n}000000');")
    switch_and_check(url, tmp_path, "dbmate", src, {"users"})
    assert [r[0] for r in query(url, "SELECT version FROM pgmig_history ORDER BY 1")][:4] == [
        f"2023010{n}000000" for n in range(1, 5)
    ]


def golang_tree(root: Path) -> Path:
    files = {}
    for n, (name, (up, down)) in enumerate(COMMON.items(), start=1):
        files[f"{n}_{name}.up.sql"] = up + "\n"
        files[f"{n}_{name}.down.sql"] = down + "\n"
    files["1_users.up.sql"] = "BEGIN;\n" + files["1_users.up.sql"] + "COMMIT;\n"
    return tree(root, files)


def test_golang_migrate_round_trip(database_url: str, tmp_path: Path) -> None:
    url = database_url
    src = golang_tree(tmp_path / "gm")
    for path in sorted(src.glob("*.up.sql")):
        run_sql(url, path.read_text(encoding="utf-8"), transaction=False)  # one Exec per file, like migrate
    run_sql(url, "CREATE TABLE schema_migrations (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL);"
                 "INSERT INTO schema_migrations VALUES (4, true);")  # fmt: skip
    dirty = pgmig(
        url, tmp_path / "migrations", "import", "--from", "golang-migrate", str(src), "--adopt-history"
    )
    assert dirty.exit_code == 1
    assert (
        "Error: 'schema_migrations' says version 4 is dirty" in dirty.output
        and "migrate force" in dirty.output
    )
    assert not (tmp_path / "migrations").exists()  # refused before anything was written
    run_sql(url, "UPDATE schema_migrations SET dirty = false")
    switch_and_check(url, tmp_path, "golang-migrate", src, {"users"})


def test_sqlx_round_trip_and_failed_row(database_url: str, tmp_path: Path) -> None:
    url = database_url
    files = {}
    for n, (name, (up, down)) in enumerate(COMMON.items(), start=1):
        prefix = "-- no-transaction\n" if "CONCURRENTLY" in up else ""
        files[f"2024010{n}000000_{name}.up.sql"] = prefix + up + "\n"
        files[f"2024010{n}000000_{name}.down.sql"] = prefix + down + "\n"
    src = tree(tmp_path / "sqlx", files)
    run_sql(url, "CREATE TABLE _sqlx_migrations (version BIGINT PRIMARY KEY, description TEXT NOT NULL, "
                 "installed_on TIMESTAMPTZ NOT NULL DEFAULT now(), success BOOLEAN NOT NULL, checksum BYTEA NOT NULL, "
                 "execution_time BIGINT NOT NULL)")  # fmt: skip
    for n, (name, (up, _)) in enumerate(COMMON.items(), start=1):
        run_sql(url, up, transaction="CONCURRENTLY" not in up)
        run_sql(
            url, f"INSERT INTO _sqlx_migrations VALUES (2024010{n}000000, '{name}', now(), true, '\\x00', 1)"
        )
    run_sql(url, "INSERT INTO _sqlx_migrations VALUES (20240105000000, 'later', now(), false, '\\x00', 1)")
    refused = pgmig(url, tmp_path / "broken", "import", "--from", "sqlx", str(src), "--adopt-history")
    assert refused.exit_code == 1 and "records version 20240105000000 as failed" in refused.output
    assert not (tmp_path / "broken").exists()
    run_sql(url, "DELETE FROM _sqlx_migrations WHERE NOT success")
    switch_and_check(url, tmp_path, "sqlx", src, {"users"})


def test_goose_round_trip_with_a_rolled_back_version(database_url: str, tmp_path: Path) -> None:
    url = database_url
    files = {}
    for n, (name, (up, down)) in enumerate(COMMON.items(), start=1):
        head = "-- +goose NO TRANSACTION\n" if "CONCURRENTLY" in up else ""
        files[f"0000{n}_{name}.sql"] = f"{head}-- +goose Up\n{up}\n\n-- +goose Down\n{down}\n"
    files["00005_fn.sql"] = (
        "-- +goose Up\n-- +goose StatementBegin\nCREATE FUNCTION one() RETURNS int LANGUAGE plpgsql AS $$\n"
        "BEGIN\n  RETURN 1;\nEND;\n$$;\n-- +goose StatementEnd\n-- +goose Down\nDROP FUNCTION one();\n"
    )
    src = tree(tmp_path / "goose", files)
    run_sql(url, "CREATE TABLE goose_db_version (id serial PRIMARY KEY, version_id bigint NOT NULL, "
                 "is_applied boolean NOT NULL, tstamp timestamp NULL DEFAULT now());"
                 "INSERT INTO goose_db_version (version_id, is_applied) VALUES (0, true);")  # fmt: skip
    for n, (up, _) in enumerate(COMMON.values(), start=1):
        run_sql(url, up, transaction="CONCURRENTLY" not in up)
        run_sql(url, f"INSERT INTO goose_db_version (version_id, is_applied) VALUES ({n}, true)")
    # goose down then up again on 4 (rows appended), then 5 applied and rolled back: 5 is pending afterwards
    run_sql(
        url, "DROP INDEX users_email; INSERT INTO goose_db_version (version_id, is_applied) VALUES (4, false)"
    )
    run_sql(url, COMMON["index"][0], transaction=False)
    run_sql(
        url, "INSERT INTO goose_db_version (version_id, is_applied) VALUES (4, true), (5, true), (5, false)"
    )
    migrations = tmp_path / "migrations"
    result = pgmig(url, migrations, "import", "--from", "goose", str(src), "--adopt-history")
    assert result.exit_code == 0, result.output
    status = pgmig(url, migrations, "status", "--check")
    assert status.exit_code == 1 and "pending   00000000000005_fn" in status.output
    assert pgmig(url, migrations, "migrate").exit_code == 0
    assert query(url, "SELECT one()") == [(1,)]
    for path in migrations.iterdir():
        path.unlink()
    run_sql(
        url, "TRUNCATE pgmig_history; INSERT INTO goose_db_version (version_id, is_applied) VALUES (5, true)"
    )
    switch_and_check(url, tmp_path, "goose", src, {"users"})


def flyway_tree(root: Path) -> Path:
    return tree(root, {
        "V1__users.sql": COMMON["users"][0] + "\n",
        "U1__users.sql": COMMON["users"][1] + "\n",
        "V1.2__mood.sql": COMMON["mood"][0] + "\n",
        "U1.2__mood.sql": COMMON["mood"][1] + "\n",
        "more/V1.10__names.sql": COMMON["names"][0] + "\n",
        "more/U1.10__names.sql": COMMON["names"][1] + "\n",
        "V2__index.sql": COMMON["index"][0] + "\n",
        "U2__index.sql": COMMON["index"][1] + "\n",
    })  # fmt: skip


FLYWAY_TABLE = """CREATE TABLE flyway_schema_history (
    installed_rank integer PRIMARY KEY, version varchar(50), description varchar(200) NOT NULL,
    type varchar(20) NOT NULL, script varchar(1000) NOT NULL, checksum integer, installed_by varchar(100) NOT NULL,
    installed_on timestamp NOT NULL DEFAULT now(), execution_time integer NOT NULL, success boolean NOT NULL)"""


def test_flyway_round_trip_and_failed_row(database_url: str, tmp_path: Path) -> None:
    url = database_url
    src = flyway_tree(tmp_path / "flyway")
    run_sql(url, FLYWAY_TABLE)
    rows = [("1", "users", "V1__users.sql"), ("1.2", "mood", "V1.2__mood.sql"),
            ("1.10", "names", "more/V1.10__names.sql"), ("2", "index", "V2__index.sql")]  # fmt: skip
    for rank, (version, name, script) in enumerate(rows, start=1):
        up = COMMON[name][0]
        run_sql(url, up, transaction="CONCURRENTLY" not in up)
        query(url, "INSERT INTO flyway_schema_history VALUES (%s, %s, %s, 'SQL', %s, 0, 'me', now(), 1, true)",
              [rank, version, name, script])  # fmt: skip
    run_sql(url, "INSERT INTO flyway_schema_history VALUES "
                 "(5, '3', 'later', 'SQL', 'V3__later.sql', 0, 'me', now(), 1, false)")  # fmt: skip
    refused = pgmig(url, tmp_path / "x", "import", "--from", "flyway", str(src), "--adopt-history")
    assert refused.exit_code == 1 and "run 'flyway repair'" in refused.output
    run_sql(url, "DELETE FROM flyway_schema_history WHERE NOT success")
    switch_and_check(url, tmp_path, "flyway", src, {"users"})


def test_flyway_baseline_row_counts_older_versions(database_url: str, tmp_path: Path) -> None:
    src = flyway_tree(tmp_path / "flyway")
    run_sql(
        database_url,
        FLYWAY_TABLE + ";INSERT INTO flyway_schema_history VALUES "
        "(1, '1.2', '<< Flyway Baseline >>', 'BASELINE', '<< Flyway Baseline >>', NULL, 'me', now(), 0, true)",
    )
    migrations = tmp_path / "migrations"
    result = pgmig(
        database_url, migrations, "import", "--from", "flyway", str(src), "--adopt-history", "--json"
    )
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert document["adopted"]["recorded"] == ["00000000000001", "00000000000002"]
    assert [m["source_id"] for m in document["migrations"]] == ["1", "1.2", "1.10", "2"]
    assert document["migrations"][3]["transaction"] is False


def test_diesel_round_trip(database_url: str, tmp_path: Path) -> None:
    url = database_url
    stamps = ["2020-01-01-000000", "20200102000000", "2020-01-03-000000", "20200104000000"]
    files = {}
    for stamp, (name, (up, down)) in zip(stamps, COMMON.items(), strict=True):
        files[f"{stamp}_{name}/up.sql"] = up + "\n"
        files[f"{stamp}_{name}/down.sql"] = down + "\n"
    files["20200104000000_index/metadata.toml"] = "run_in_transaction = false\n"
    src = tree(tmp_path / "diesel", files)
    run_sql(url, "CREATE TABLE __diesel_schema_migrations (version VARCHAR(50) PRIMARY KEY NOT NULL, "
                 "run_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP)")  # fmt: skip
    for stamp, (up, _) in zip(stamps, COMMON.values(), strict=True):
        run_sql(url, up, transaction="CONCURRENTLY" not in up)
        run_sql(url, f"INSERT INTO __diesel_schema_migrations (version) VALUES ('{stamp.replace('-', '')}')")
    switch_and_check(url, tmp_path, "diesel", src, {"users"})


def test_adopt_refuses_unknown_versions_and_a_missing_table(database_url: str, tmp_path: Path) -> None:
    src = golang_tree(tmp_path / "gm")
    missing = pgmig(database_url, tmp_path / "m1", "import", "--from", "dbmate", str(tmp_path / "nothing"))
    assert missing.exit_code == 1 and "does not exist" in missing.output
    no_table = pgmig(
        database_url, tmp_path / "m2", "import", "--from", "golang-migrate", str(src), "--adopt-history"
    )
    assert no_table.exit_code == 1 and "has no 'schema_migrations' table" in no_table.output
    run_sql(database_url, "CREATE TABLE schema_migrations (version varchar PRIMARY KEY); "
                          "INSERT INTO schema_migrations VALUES ('1'), ('99');")  # fmt: skip
    dbmate_src = tree(tmp_path / "dbm", {"1_a.sql": "-- migrate:up\nSELECT 1;\n"})
    unknown = pgmig(
        database_url, tmp_path / "m3", "import", "--from", "dbmate", str(dbmate_src), "--adopt-history"
    )
    assert unknown.exit_code == 1 and "records '99' as applied, but" in unknown.output


def test_errors_reach_the_terminal_without_a_traceback(tmp_path: Path) -> None:
    src = tree(tmp_path / "goose", {"1_x.sql": "CREATE TABLE t (a int);\n"})
    done = subprocess.run(  # no database: an import without --adopt-history never connects
        [sys.executable, "-m", "flask_pgmig.cli", "--directory", str(tmp_path / "m"), "import", "--from", "goose",
         str(src)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith("Error: goose migration '1_x.sql' has no '-- +goose Up' annotation")


def test_unknown_format_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["--directory", str(tmp_path / "m"), "import", "--from=liquibase", str(tmp_path)]
    )
    assert result.exit_code == 2 and "Invalid value for '--from'" in result.output


def test_baseline_command_text_json_and_refusal(database_url: str, tmp_path: Path) -> None:
    migrations = copy_scenario("basic", tmp_path)
    done = pgmig(database_url, migrations, "baseline", "20260116080000")
    assert done.exit_code == 0, done.output
    assert (
        "Baselined at 20260116080000: recorded 2 migration(s) as applied without running them" in done.output
    )
    refused = pgmig(database_url, migrations, "baseline", "20260117120000", "--json")
    assert refused.exit_code == 1 and "Error: 'public.pgmig_history' already records 2" in refused.output
    forced = pgmig(database_url, migrations, "baseline", "20260117120000", "--force", "--json")
    assert forced.exit_code == 0, forced.output
    assert json.loads(forced.output) == {
        "version": "20260117120000", "recorded": ["20260117120000"],
        "already_recorded": ["20260115093000", "20260116080000"], "dump_file": None,
    }  # fmt: skip
    assert pgmig(database_url, migrations, "status", "--check").exit_code == 0
    history = pgmig(database_url, migrations, "history")
    assert history.exit_code == 0 and history.output.count("baseline") == 2


def test_source_table_option_and_a_repeated_import(database_url: str, tmp_path: Path) -> None:
    src = tree(tmp_path / "dbm", {
        "1_a.sql": "-- migrate:up\nCREATE TABLE a (id int);\n-- migrate:down\nDROP TABLE a;\n",
        "2_b.sql": "-- migrate:up\nCREATE TABLE b (id int);\n-- migrate:down\nDROP TABLE b;\n",
    })  # fmt: skip
    run_sql(database_url, "CREATE SCHEMA app; CREATE TABLE app.dbmate_versions (version text PRIMARY KEY);"
                          "INSERT INTO app.dbmate_versions VALUES ('1'); CREATE TABLE a (id int);")  # fmt: skip
    migrations = tmp_path / "migrations"
    args = [
        "import",
        "--from",
        "dbmate",
        str(src),
        "--adopt-history",
        "--source-table",
        "app.dbmate_versions",
    ]
    first = pgmig(database_url, migrations, *args)
    assert first.exit_code == 0, first.output
    assert "recorded 1 migration(s) as applied (0 already recorded)" in first.output
    again = pgmig(database_url, migrations, *args)
    assert again.exit_code == 0, again.output
    assert "(0 written, 2 already there)" in again.output and "(1 already recorded)" in again.output
    status = pgmig(database_url, migrations, "status")
    assert "applied   00000000000001_a" in status.output and "pending   00000000000002_b" in status.output
    assert pgmig(database_url, migrations, "migrate").exit_code == 0 and "b" in tables(database_url)
