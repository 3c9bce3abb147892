"""The standalone ``pgmig`` command: exit codes, output lines, errors without tracebacks, JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from helpers import clean_environment, copy_scenario, history_versions, pgmig


def test_status_migrate_check_rollback(database_url: str, tmp_path: Path) -> None:
    migrations = copy_scenario("basic", tmp_path)
    base = ["--database-url", database_url, "--directory", str(migrations)]

    status = pgmig(*base, "status", "--check")
    assert status.returncode == 1 and "pending   20260115093000_create_users" in status.stdout

    migrate = pgmig(*base, "migrate")
    assert migrate.returncode == 0, migrate.stderr
    assert "applied   20260117120000_index_users_email  (" in migrate.stdout
    assert "Applied 3 migrations in" in migrate.stdout

    assert pgmig(*base, "status", "--check").returncode == 0
    rollback = pgmig(*base, "rollback", "--steps", "1")
    assert rollback.returncode == 0 and "reverted  20260117120000_index_users_email" in rollback.stdout
    assert history_versions(database_url) == ["20260115093000", "20260116080000"]


def test_status_json_is_stable(database_url: str, tmp_path: Path) -> None:
    migrations = copy_scenario("basic", tmp_path)
    pgmig("--database-url", database_url, "--directory", str(migrations), "migrate", "--to", "20260115093000")
    result = pgmig("--database-url", database_url, "--directory", str(migrations), "status", "--json")
    document = json.loads(result.stdout)
    assert document["clean"] is False
    assert document["counts"]["applied"] == 1 and document["counts"]["pending"] == 2
    assert [m["state"] for m in document["migrations"]] == ["applied", "pending", "pending"]
    assert set(document["migrations"][0]) == {
        "version", "name", "state", "applied_at", "duration_ms", "file", "change", "statements_done",
        "statements_total", "error",
    }  # fmt: skip
    assert document["invalid_indexes"] == []


def test_environment_settings_and_url(database_url: str, tmp_path: Path) -> None:
    migrations = copy_scenario("basic", tmp_path)
    result = pgmig(
        "migrate",
        env={"DATABASE_URL": database_url, "PGMIG_DIRECTORY": str(migrations), "PGMIG_TABLE": "envhist"},
    )
    assert result.returncode == 0, result.stderr
    assert history_versions(database_url, "public.envhist")[-1] == "20260117120000"


def test_user_errors_are_one_line_without_traceback(database_url: str, tmp_path: Path) -> None:
    bad = copy_scenario("bad_name", tmp_path)
    result = pgmig("--database-url", database_url, "--directory", str(bad), "migrate")
    assert result.returncode == 1
    assert result.stderr.startswith("Error: These files in") and "'2026_add_things.sql'" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1

    failing = copy_scenario("sql_error_third", tmp_path / "other")
    result = pgmig("--database-url", database_url, "--directory", str(failing), "migrate")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert (
        "Error: Migration '20260403000000' failed at line 6, column 23 of '20260403000000_step_3.sql'"
        in result.stderr
    )


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    assert pgmig("migrate", "--no-such-flag").returncode == 2
    result = pgmig(
        "--database-url",
        "postgresql://x@127.0.0.1:1/x",
        "--directory",
        str(tmp_path),
        "rollback",
        "--steps",
        "0",
    )
    assert result.returncode == 2


def test_no_database_given(tmp_path: Path) -> None:
    result = pgmig("--directory", str(tmp_path), "status")
    assert result.returncode == 1
    assert (
        result.stderr.strip()
        == "Error: No database given. Pass --database-url, or set DATABASE_URL or PGMIG_DATABASE_URL."
    )


def test_password_never_printed(tmp_path: Path) -> None:
    migrations = copy_scenario("basic", tmp_path)
    result = pgmig(
        "--database-url",
        "postgresql://app:hunter2-SECRET@127.0.0.1:1/app",
        "--directory",
        str(migrations),
        "status",
    )
    assert result.returncode == 1 and "Error: Could not connect" in result.stderr
    assert "hunter2" not in result.stdout + result.stderr


def test_init_and_new(tmp_path: Path) -> None:
    directory = tmp_path / "migrations"
    assert pgmig("--directory", str(directory), "init").returncode == 0
    created = pgmig("--directory", str(directory), "new", "add users")
    assert created.returncode == 0
    name = Path(created.stdout.strip()).name
    assert name.endswith("_add_users.sql") and len(name.split("_")[0]) == 14
    text = (directory / name).read_text()
    assert text.startswith("-- migrate:up") and "-- migrate:down" in text
    python = pgmig("--directory", str(directory), "new", "backfill", "--python")
    assert Path(python.stdout.strip()).read_text().count("def up(conn)") == 1
    assert pgmig("--directory", str(directory), "new", "bad/name").returncode == 1


def test_rollback_atomic(database_url: str, tmp_path: Path) -> None:
    migrations = copy_scenario("rollback_atomic", tmp_path)
    base = ["--database-url", database_url, "--directory", str(migrations)]
    assert pgmig(*base, "migrate").returncode == 0
    oldest = migrations / "20260901000000_create_parents.sql"
    oldest.write_text(oldest.read_text().replace("DROP TABLE parents;", "DROP TABLE nosuch;"))

    failed = pgmig(*base, "rollback", "--all", "--atomic")
    assert failed.returncode == 1 and "Traceback" not in failed.stderr
    assert failed.stderr.startswith("Error: Migration '20260901000000' failed at line 5")
    assert "20260901000000_create_parents.sql" in failed.stderr
    assert len(history_versions(database_url)) == 4

    oldest.write_text(oldest.read_text().replace("DROP TABLE nosuch;", "DROP TABLE parents;"))
    reverted = pgmig(*base, "rollback", "--all", "--atomic", "--json")
    assert reverted.returncode == 0, reverted.stderr
    assert [s["version"] for s in json.loads(reverted.stdout)["steps"]] == [
        "20260904000000", "20260903000000", "20260902000000", "20260901000000"
    ]  # fmt: skip
    assert history_versions(database_url) == []


def test_migrate_and_rollback_of_plain_sql_never_load_pglast(database_url: str, tmp_path: Path) -> None:
    # pglast (PostgreSQL's lexer and parser) costs tens of milliseconds to import: SQL without quotes, dollar
    # quotes or comments is split without it, and the linter loads only when PGMIG_LINT asks for it
    migrations = tmp_path / "m"
    migrations.mkdir()
    for number in range(1, 4):
        (migrations / f"2026080{number}000000_t{number}.sql").write_text(
            f"-- migrate:up\nCREATE TABLE t{number} (id int PRIMARY KEY, at timestamptz DEFAULT now());\n"
            f"CREATE INDEX t{number}_at ON t{number} (at);\n-- migrate:down\nDROP TABLE t{number};\n"
        )
    code = (
        "import sys\nfrom flask_pgmig.cli import main\n"
        "try:\n    main()\nexcept SystemExit as done:\n    assert not done.code, done.code\n"
        "print('pglast loaded:', 'pglast' in sys.modules)\n"
    )
    base = ["--database-url", database_url, "--directory", str(migrations)]
    for args in (["migrate"], ["rollback", "--all"]):
        run = subprocess.run(
            [sys.executable, "-c", code, *base, *args], env=clean_environment(), capture_output=True, text=True
        )
        assert run.returncode == 0, run.stderr
        assert "pglast loaded: False" in run.stdout, run.stdout
    assert history_versions(database_url) == []
    (migrations / "20260804000000_t4.sql").write_text("-- migrate:up\nCREATE TABLE t4 (label text DEFAULT 'x');\n")
    run = subprocess.run(
        [sys.executable, "-c", code, *base, "migrate"], env=clean_environment(), capture_output=True, text=True
    )
    assert run.returncode == 0 and "pglast loaded: True" in run.stdout  # a quote: the lexer reads it


def test_the_quick_exit_still_runs_atexit_handlers_and_waits_for_threads(database_url: str, tmp_path: Path) -> None:
    # pgmig skips the interpreter's teardown; what a Python migration asked of the exit must still happen
    migrations = tmp_path / "m"
    migrations.mkdir()
    marker, joined = tmp_path / "atexit-ran", tmp_path / "thread-finished"
    (migrations / "20260801000000_hooks.py").write_text(
        "import atexit, pathlib, threading, time\n\n\n"
        "def up(conn):\n"
        f"    atexit.register(pathlib.Path({str(marker)!r}).write_text, 'yes')\n"
        f"    threading.Thread(target=lambda: (time.sleep(0.3), pathlib.Path({str(joined)!r}).write_text('yes')))"
        ".start()\n"
    )
    result = pgmig("--database-url", database_url, "--directory", str(migrations), "migrate")
    assert result.returncode == 0, result.stderr
    assert "20260801000000_hooks" in result.stdout
    assert marker.read_text() == "yes" and joined.read_text() == "yes"


def test_a_closed_standard_stream_does_not_change_the_exit_status() -> None:
    for stream in ("stdout", "stderr"):
        closed = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        done = subprocess.run(
            [sys.executable, "-c", f"import os, sys; os.close(sys.{stream}.fileno()); sys.{stream} = None; "
             "sys.argv = ['pgmig', '--version']; from flask_pgmig.cli import run; run()"],
            env=clean_environment(), timeout=60, **closed,  # type: ignore[arg-type]
        )  # fmt: skip
        assert done.returncode == 0, stream
