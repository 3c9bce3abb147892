"""No password anywhere: every ``flask db`` command, whatever path the DSN came by, working or failing.

The commands are taken from the registered group, so a command added later is driven too. The database holds
two good migrations and one with an SQL error; the second run points at a port nothing listens on. Everything
is grepped: stdout, stderr, log records (every logger, DEBUG and up), warnings, and the text, repr and full
traceback of the exceptions the library raises.
"""

from __future__ import annotations

import logging
import traceback
import warnings
from pathlib import Path
from typing import Any

import click
import pytest
from conftest import NOWHERE, build_app, with_driver, with_password, write_migration
from flask import Flask
from helpers import copy_scenario

from flask_pgmig.core.events import Events
from flask_pgmig.errors import PgMigError

PASSWORD = "Pw-REDACT-me-8d1f"
SOURCES = ["PGMIG_DATABASE_URL", "PGMIG_SECRETS", "engine"]
# Arguments that make a command do real work; commands not listed run without arguments.
ARGS: dict[str, list[str]] = {
    "new": ["add_widgets"],
    "baseline": ["20260401000000"],
    "repair": ["--mark-rolled-back", "20260403000000"],
    "history": ["--limit", "5"],
    "rollback": ["--steps", "1"],
    "downgrade": ["--steps", "1"],
    "migrate": ["--dry-run"],
}


def make(root: Path, url: str, source: str, monkeypatch: pytest.MonkeyPatch) -> Flask:
    if source == "PGMIG_DATABASE_URL":
        return build_app(root, PGMIG_DATABASE_URL=url)
    if source == "PGMIG_SECRETS":
        monkeypatch.setenv("PGMIG_REDACTION_SECRET", url)
        return build_app(root, PGMIG_SECRETS="env:PGMIG_REDACTION_SECRET")
    return build_app(root, sqlalchemy_url=with_driver(url, "psycopg"))


def command_lines(app: Flask, root: Path) -> list[list[str]]:
    """Every registered command (and alias) with its working arguments, and with --json where it has it."""
    group = app.cli.get_command(click.Context(app.cli), "db")
    assert isinstance(group, click.Group)
    ctx = click.Context(group)
    lines: list[list[str]] = []
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None
        args = ARGS.get(name, [])
        if name == "import":
            dbmate = root / "dbmate"
            write_migration(dbmate, "20260501000000", "dbmate_one", "CREATE TABLE dbmate_one (id int);")
            args = ["--from", "dbmate", str(dbmate), "--adopt-history"]
        lines.append(["db", name, *args])
        if any(param.name == "as_json" for param in command.params):
            lines.append(["db", name, *args, "--json"])
    lines.append(["db", "migrate"])  # for real: two applied, then the SQL error
    lines.append(["db", "status"])
    return lines


@pytest.mark.parametrize("reachable", [True, False], ids=["sql-error", "refused"])
@pytest.mark.parametrize("source", SOURCES)
def test_no_password_anywhere(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    source: str,
    reachable: bool,
) -> None:
    copy_scenario("sql_error_third", tmp_path)
    # A fresh database only when it is reached; the refused case points at a port nothing listens on.
    url = with_password(request.getfixturevalue("database_url") if reachable else NOWHERE, PASSWORD)
    seen: list[str] = []
    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.DEBUG):
        warnings.simplefilter("always")
        app = make(tmp_path, url, source, monkeypatch)
        runner = app.test_cli_runner()
        codes = {}
        for line in command_lines(app, tmp_path):
            result = runner.invoke(args=line)
            codes[" ".join(line)] = result.exit_code
            seen += [result.output, result.stderr, repr(result.exception)]
            if result.exc_info is not None and not isinstance(result.exception, SystemExit):
                seen.append("".join(traceback.format_exception(*result.exc_info)))
        seen += library_errors(app)
        seen += [repr(app.extensions["pgmig"]), repr(app.extensions["pgmig"].settings)]
        seen += [app.extensions["pgmig"].database_display()]
    seen += [r.getMessage() for r in caplog.records] + [str(w.message) for w in caught]
    leaks = [text for text in seen if PASSWORD in text]
    assert leaks == []
    # The runs did what they should, so that the grep covered real outputs:
    text = "\n".join(seen)
    assert "***" in text
    if reachable:
        assert codes["db migrate"] == 1 and 'type "nosuchtype" does not exist' in text
        assert "applied   20260402000000_step_2" in text
    else:
        assert "Could not connect to PostgreSQL" in text and "connection refused" in text.lower()
        assert codes["db status"] == 1


def library_errors(app: Flask) -> list[str]:
    """Text, repr and full traceback (with the chain) of the errors the Migrator raises, for the grep."""
    migrator = app.extensions["pgmig"].migrator(Events())
    found: list[str] = [repr(migrator)]
    operations: list[Any] = [migrator.status, migrator.migrate, lambda: migrator.rollback(steps=1)]
    for operation in operations:
        try:
            operation()
        except PgMigError as error:
            found += [str(error), repr(error), "".join(traceback.format_exception(error))]
            cause = error.__cause__ or error.__context__
            while cause is not None:
                found += [str(cause), repr(cause)]
                cause = cause.__cause__ or cause.__context__
    return found
