"""``check``, ``verify``, ``migrate --dry-run --execute`` and PGMIG_LINT from the command line, as a user runs them."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from click.testing import CliRunner
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from helpers import SCENARIOS, copy_scenario, query, tables

from flask_pgmig import PgMig
from flask_pgmig.cli import cli

NO_SERVER = {"PGHOST": "no-such-host.invalid", "PGPORT": "1"}  # any connection attempt would fail


@dataclass(frozen=True)
class Run:
    returncode: int
    stdout: str
    stderr: str


def pgmig(*args: str, env: dict[str, str] | None = None) -> Run:
    """The standalone ``pgmig`` group, in-process (a subprocess per call costs seconds on a busy machine)."""
    cleared: dict[str, str | None] = {
        k: None for k in os.environ if k.startswith("PGMIG_") or k == "DATABASE_URL"
    }
    result = CliRunner().invoke(cli, list(args), env={**cleared, **(env or {})}, prog_name="pgmig")
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return Run(result.exit_code, result.stdout, result.stderr)


def write(directory: Path, name: str, text: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text(text, encoding="utf-8")


def test_check_needs_no_database_and_reports_file_line_rule_why_fix() -> None:
    result = pgmig("--directory", str(SCENARIOS / "lint_unsafe"), "check", env=NO_SERVER)
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert (
        "20260102000000_index_email.sql:2:1: error [require-concurrent-index-creation] Line 2 of "
        "'20260102000000_index_email.sql' runs CREATE INDEX on existing table 'users' without CONCURRENTLY."
    ) in lines
    assert "    why: CREATE INDEX without CONCURRENTLY holds a SHARE lock" in result.stdout
    assert "    fix: Use CREATE INDEX CONCURRENTLY" in result.stdout
    assert lines[-1] == "check failed: 26 migration(s), 25 error(s), 0 warning(s)."
    assert result.stderr == ""

    safe = pgmig("--directory", str(SCENARIOS / "lint_safe"), "check", env=NO_SERVER)
    assert safe.returncode == 0, safe.stdout
    assert safe.stdout.strip() == (
        "check ok: 21 migration(s), 0 error(s), 0 warning(s), 3 allowed by '-- pgmig:allow'."
    )


def test_check_json_warn_mode_and_syntax_error(tmp_path: Path) -> None:
    directory = tmp_path / "m"
    write(
        directory,
        "20260101000000_a.sql",
        "-- migrate:up\nCREATE TABLE a (id int);\n-- migrate:down\nDROP TABLE a;\n",
    )
    write(directory, "20260102000000_b.sql", "-- migrate:up\nALTER TABLE a DROP COLUMN id;\n-- migrate:down\n"
          "ALTER TABLE a ADD COLUMN id int;\n")  # fmt: skip
    warn = pgmig("--directory", str(directory), "check", "--lint", "warn", "--json", env=NO_SERVER)
    assert warn.returncode == 0, warn.stdout
    document = json.loads(warn.stdout)
    assert document["ok"] is True and document["files"] == 2 and document["suppressed"] == []
    (finding,) = document["findings"]
    assert finding["rule"] == "ban-drop-column" and finding["severity"] == "warning"
    assert (finding["file"], finding["line"], finding["column"]) == ("20260102000000_b.sql", 2, 1)
    assert finding["why"] and finding["fix"]

    write(directory, "20260103000000_c.sql", "-- migrate:up\nINSERT INTO a VALUES (1;\n")
    broken = pgmig("--directory", str(directory), "check", "--lint", "off", env=NO_SERVER)
    assert broken.returncode == 1
    assert broken.stdout.startswith(
        "20260103000000_c.sql:2:24: error [syntax] Line 2, column 24 of '20260103000000_c.sql' has a syntax "
        "error: syntax error at or near \";\" at ';'"
    )


def test_check_bad_usage_and_missing_directory(tmp_path: Path) -> None:
    usage = pgmig("--directory", str(SCENARIOS / "basic"), "check", "--lint", "loud")
    assert usage.returncode == 2 and "Invalid value for '--lint'" in usage.stderr
    missing = pgmig("--directory", str(tmp_path / "none"), "check")
    assert missing.returncode == 1 and missing.stderr.startswith("Error: The migrations directory ")
    assert "Traceback" not in missing.stderr


def test_verify_names_what_each_down_forgets_and_drops_its_scratch_database(pg_server_url: str) -> None:
    result = pgmig(
        "--database-url", pg_server_url, "--directory", str(SCENARIOS / "verify_forgetful"), "verify"
    )
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert "  20260102000000_index_users_email: down leaves index users_status_idx behind" in lines
    assert (
        "  20260103000000_add_status_archived: down leaves enum label user_status.'archived' behind" in lines
    )
    assert (
        "  20260104000000_add_users_plan: down leaves the default of column users.email as ''::text "
        "(before the up: none)"
    ) in lines
    assert "  note: no down section (irreversible): 20260105000000_seed_note" in lines
    assert lines[-1] == "verify failed: 5 problem(s)."
    scratch = re.search(r"dbname=(pgmig_verify_\w+)", result.stderr)
    assert scratch is not None
    assert query(pg_server_url, "SELECT 1 FROM pg_database WHERE datname = %s", [scratch[1]]) == []


def test_verify_json_on_a_given_database_and_refusal_of_a_used_one(database_url: str) -> None:
    base = ["--database-url", "postgresql://unused@no-such-host.invalid/x", "--directory"]
    ok = pgmig(*base, str(SCENARIOS / "tenants"), "verify", "--database-url", database_url, "--json")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout) == {
        "ok": True, "checked": ["20260301000000_create_notes", "20260302000000_add_notes_pinned"],
        "differences": [], "irreversible": [], "strict": False,
    }  # fmt: skip
    used = pgmig(*base, str(SCENARIOS / "tenants"), "verify", "--database-url", database_url)
    assert used.returncode == 1 and "Error: verify needs an empty scratch database" in used.stderr
    assert "applied migration" in used.stderr


def test_migrate_dry_run_execute_proves_and_rolls_back(database_url: str, tmp_path: Path) -> None:
    base = ["--database-url", database_url, "--directory", str(SCENARIOS / "basic")]
    result = pgmig(*base, "migrate", "--dry-run", "--execute")
    assert result.returncode == 0, result.stderr
    assert "Executed inside one transaction, then rolled back:" in result.stdout
    assert re.search(r"^  ok        20260115093000_create_users  \(\d+ ms\)$", result.stdout, re.M)
    assert (
        "  skipped   20260117120000_index_users_email: not executed: it is transaction:false, and what it does "
        "cannot be rolled back"
    ) in result.stdout
    assert (
        "CREATE INDEX CONCURRENTLY users_email_idx ON users (email);" in result.stdout
    )  # the plan's SQL too
    assert (
        "-- 20260115093000_create_users (20260115093000_create_users.sql): one transaction; lock_timeout 5000 ms "
        "(PGMIG_LOCK_TIMEOUT), statement_timeout off (PGMIG_STATEMENT_TIMEOUT)"
    ) in result.stdout
    assert tables(database_url) == set()

    failing = ["--database-url", database_url, "--directory", str(copy_scenario("sql_error_third", tmp_path))]
    failed = pgmig(*failing, "migrate", "--dry-run", "--execute", "--json")
    assert failed.returncode == 1
    execution = json.loads(failed.stdout)["execution"]
    assert execution["ok"] is False and execution["failed"]["id"] == "20260403000000_step_3"
    assert [e["id"] for e in execution["executed"]] == ["20260401000000_step_1", "20260402000000_step_2"]
    assert tables(database_url) == set()

    alone = pgmig(*base, "migrate", "--execute")
    assert alone.returncode == 2 and "--execute goes with --dry-run" in alone.stderr


def test_pgmig_lint_before_migrate(database_url: str, tmp_path: Path) -> None:
    directory = tmp_path / "m"
    write(
        directory,
        "20260101000000_a.sql",
        "-- migrate:up\nCREATE TABLE a (id int);\n-- migrate:down\nDROP TABLE a;\n",
    )
    write(directory, "20260102000000_b.sql", "-- migrate:up\nCREATE INDEX a_id ON a (id);\n-- migrate:down\n"
          "DROP INDEX a_id;\n")  # fmt: skip
    base = ["--database-url", database_url, "--directory", str(directory)]
    refused = pgmig(*base, "migrate", env={"PGMIG_LINT": "error"})
    assert refused.returncode == 1
    assert "20260102000000_b.sql:2:1: error [require-concurrent-index-creation]" in refused.stderr
    assert "Error: PGMIG_LINT is 'error' and the pending migrations have 1 problem(s)" in refused.stderr
    assert tables(database_url) == set()

    warned = pgmig(*base, "migrate", env={"PGMIG_LINT": "warn"})
    assert warned.returncode == 0, warned.stderr
    assert "20260102000000_b.sql:2:1: warning [require-concurrent-index-creation]" in warned.stderr
    assert tables(database_url) >= {"a"}
    bad = pgmig(*base, "migrate", env={"PGMIG_LINT": "loud"})
    assert bad.returncode == 1 and "PGMIG_LINT is 'loud'" in bad.stderr


def test_flask_db_check_and_pgmig_lint_from_app_config(database_url: str, tmp_path: Path) -> None:
    migrations = copy_scenario("lint_unsafe", tmp_path)
    app = Flask(__name__, root_path=str(tmp_path))
    app.config.update(SQLALCHEMY_DATABASE_URI=database_url.replace("postgresql://", "postgresql+psycopg://", 1),
                      PGMIG_LINT="error")  # fmt: skip
    PgMig(app, SQLAlchemy(app))
    runner = app.test_cli_runner()
    check = runner.invoke(args=["db", "check"])
    assert check.exit_code == 1 and "check failed: 26 migration(s), 25 error(s)" in check.output
    migrate = runner.invoke(args=["db", "migrate"])
    assert migrate.exit_code == 1 and "PGMIG_LINT is 'error'" in migrate.output
    assert tables(database_url) == set() and migrations.is_dir()


def test_flask_db_verify_on_the_apps_server(database_url: str, tmp_path: Path) -> None:
    copy_scenario("tenants", tmp_path)
    app = Flask(__name__, root_path=str(tmp_path))
    app.config["SQLALCHEMY_DATABASE_URI"] = database_url.replace("postgresql://", "postgresql+psycopg://", 1)
    PgMig(app, SQLAlchemy(app))
    result = app.test_cli_runner().invoke(args=["db", "verify"])
    assert result.exit_code == 0, result.output
    assert "verify ok: 2 migration(s) reversed exactly by their down section." in result.output
    assert tables(database_url) == set()  # the app's own database was not touched
