"""The click commands, served as ``flask db <command>`` (through the extension) and as the standalone ``pgmig``.

Commands build, validate and delegate to the Migrator in a few lines each. :class:`PgMigGroup` is the one place
that turns library errors into ``Error: <sentence>`` on stderr with the error's exit code. Importing this module
never imports Flask or SQLAlchemy.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

import click

from . import __version__
from .core.dsn import redact, redact_url
from .core.events import Events
from .core.migrator import Migrator, RunResult
from .core.plan import Status
from .errors import ConfigError, PgMigError

SOURCE_KEY = "pgmig.source"
EXAMPLE_MIGRATION = """-- migrate:up
-- Write the SQL that applies this migration here. Each file runs in its own transaction;
-- add 'transaction:false' to the line above for CREATE INDEX CONCURRENTLY and the like.

-- migrate:down
-- Write the SQL that reverts it here (leave empty if it cannot be reverted).
"""
PYTHON_TEMPLATE = '''"""{name}: a data migration. Runs in one transaction with its history row unless transaction = False."""


def up(conn):
    """Apply. ``conn`` is a psycopg connection."""
    conn.execute("SELECT 1")


def down(conn):
    """Revert (delete this function if the migration cannot be reverted)."""
'''


class MigratorSource(Protocol):
    """Where commands get their Migrator: the Flask extension's state, or the standalone settings."""

    command: str

    def migrator(self, events: Events) -> Migrator:
        """A Migrator reporting progress to ``events``."""

    def directory(self) -> Path:
        """The migrations directory."""

    def database_display(self) -> str:
        """The target database, password redacted."""


class PgMigCommandError(click.ClickException):
    """A library error on its way to the terminal: click prints 'Error: <message>' and exits with its code."""

    def __init__(self, error: PgMigError) -> None:
        super().__init__(redact(error.message))
        self.exit_code = error.exit_code


def invoke_translating_errors(invoke: Callable[[], Any], ctx: click.Context) -> Any:
    """Run a group's invoke so that library errors end as one 'Error: ...' line with their exit code."""
    try:
        return invoke()
    except PgMigError as error:
        raise PgMigCommandError(error) from None
    except KeyboardInterrupt:
        click.echo("Error: interrupted. Run 'status' to see what was recorded.", err=True)
        ctx.exit(130)


class PgMigGroup(click.Group):
    """A group whose commands' PgMigErrors end as one 'Error: ...' line, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        return invoke_translating_errors(lambda: super(PgMigGroup, self).invoke(ctx), ctx)


class CliEvents(Events):
    """Prints one line per migration with its duration, and what the lock holder and retries are doing."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet

    def _say(self, text: str) -> None:
        if not self.quiet:
            click.echo(text, err=True)

    def lock_waiting(self, holder: str) -> None:
        self._say(f"Waiting for the migration lock, held by {holder}")

    def migration_finished(self, version: str, name: str, direction: str, duration_ms: int) -> None:
        verb = "applied " if direction == "up" else "reverted"
        if not self.quiet:
            click.echo(f"  {verb}  {version}_{name}  ({_ms(duration_ms)})")

    def retrying(self, version: str, attempt: int, delay: float, reason: str) -> None:
        self._say(f"  {version}: lock timeout ({reason}); retry {attempt} in {delay:.1f}s")

    def notice(self, message: str) -> None:
        self._say(f"  {message}")


def _source() -> MigratorSource:
    ctx = click.get_current_context()
    source = ctx.meta.get(SOURCE_KEY)
    if source is None:
        raise ConfigError("No database configured for this command. Use 'flask db' with PgMig, or 'pgmig'.")
    return source  # type: ignore[no-any-return]


def _migrator(as_json: bool = False) -> Migrator:
    return _source().migrator(CliEvents(quiet=as_json))


def _ms(duration_ms: int) -> str:
    return f"{duration_ms} ms" if duration_ms < 10_000 else f"{duration_ms / 1000:.1f} s"


def _emit_json(data: dict[str, Any]) -> None:
    click.echo(json.dumps(data, indent=2, default=str, ensure_ascii=False))


json_option = click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON (stable fields).")


# -- commands --------------------------------------------------------------------------------------------------
@click.command("init")
def init_command() -> None:
    """Create the migrations directory with a first example migration."""
    directory = _source().directory()
    if directory.exists() and any(directory.iterdir()):
        raise ConfigError(f"The migrations directory '{directory}' already exists and is not empty.")
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{_timestamp()}_init.sql"
    path.write_text(EXAMPLE_MIGRATION, encoding="utf-8")
    click.echo(f"Created {directory} with {path.name}")


@click.command("new")
@click.argument("name")
@click.option("--python", "python_file", is_flag=True, help="Write a Python migration (for data backfills).")
def new_command(name: str, python_file: bool) -> None:
    """Create <UTC timestamp>_<name>.sql (or .py) with both sections."""
    from .core.files import FILE_NAME

    slug = "_".join(name.strip().split())
    file_name = f"{_timestamp()}_{slug}.{'py' if python_file else 'sql'}"
    if FILE_NAME.match(file_name) is None:
        raise ConfigError(f"'{name}' cannot be a migration name. Use letters, digits, '_' and '-' only.")
    directory = _source().directory()
    if not directory.is_dir():
        raise ConfigError(f"The migrations directory '{directory}' does not exist. Run 'init' first.")
    path = directory / file_name
    path.write_text(PYTHON_TEMPLATE.format(name=slug) if python_file else EXAMPLE_MIGRATION, encoding="utf-8")
    click.echo(str(path))


@click.command("status")
@click.option("--check", is_flag=True, help="Exit 1 unless every migration is applied and clean.")
@json_option
def status_command(check: bool, as_json: bool) -> None:
    """Show every migration with its state: applied, pending, modified, missing, failed."""
    source = _source()
    status = _migrator(as_json).status()
    if as_json:
        _emit_json(status_json(status, source.database_display()))
    else:
        print_status(status, source.database_display())
    if check and not status.clean:
        sys.exit(1)


@click.command("migrate")
@click.option("--to", "to", metavar="VERSION", help="Apply pending migrations up to and including VERSION.")
@click.option("--dry-run", is_flag=True, help="Print the plan and its SQL; change nothing.")
@click.option("--atomic", is_flag=True, help="Apply all pending migrations in one transaction.")
@click.option("--allow-out-of-order", is_flag=True, default=None, help="Apply pending migrations older than applied ones.")
@click.option("--resume", is_flag=True, help="Continue a failed transaction:false migration after its last statement.")
@json_option
def migrate_command(
    to: str | None, dry_run: bool, atomic: bool, allow_out_of_order: bool | None, resume: bool, as_json: bool
) -> None:
    """Apply pending migrations, each in its own transaction with its history row."""
    result = _migrator(as_json).migrate(
        to=to, dry_run=dry_run, atomic=atomic, allow_out_of_order=allow_out_of_order or None, resume=resume
    )
    report_run(result, as_json)


@click.command("rollback")
@click.option("--steps", type=click.IntRange(min=1), default=None, help="Revert the newest N migrations (default 1).")
@click.option("--to", "to", metavar="VERSION", help="Revert every migration newer than VERSION.")
@click.option("--all", "everything", is_flag=True, help="Revert every applied migration.")
@click.option("--dry-run", is_flag=True, help="Print what would be reverted and its SQL; change nothing.")
@json_option
def rollback_command(steps: int | None, to: str | None, everything: bool, dry_run: bool, as_json: bool) -> None:
    """Revert applied migrations, newest first."""
    if sum(x is not None and x is not False for x in (steps, to, everything or None)) > 1:
        raise click.UsageError("Give only one of --steps, --to and --all.")
    result = _migrator(as_json).rollback(
        steps=steps if steps is not None else 1, to=to, everything=everything, dry_run=dry_run
    )
    report_run(result, as_json)


# -- output ----------------------------------------------------------------------------------------------------
def status_json(status: Status, database: str) -> dict[str, Any]:
    """The documented ``status --json`` document."""
    return {
        "database": database,
        "clean": status.clean,
        "counts": {s: len(status.having(s)) for s in ("applied", "pending", "modified", "missing", "failed", "running")},
        "migrations": [
            {
                "version": m.version,
                "name": m.name,
                "state": m.state,
                "applied_at": m.record.applied_at.isoformat() if m.record and m.record.applied_at else None,
                "duration_ms": m.record.duration_ms if m.record else None,
                "file": m.file.path.name if m.file else None,
            }
            for m in status.migrations
        ],
    }


def print_status(status: Status, database: str) -> None:
    """One line per migration, then a summary line."""
    click.echo(f"Database: {database}")
    if not status.migrations:
        click.echo("No migrations found.")
        return
    for m in status.migrations:
        when = f"{m.record.applied_at:%Y-%m-%d %H:%M:%S}" if m.record and m.record.applied_at else ""
        click.echo(f"  {m.state:<9} {m.id}  {when}".rstrip())
    counts = ", ".join(f"{len(status.having(s))} {s}" for s in ("applied", "pending") if status.having(s))
    problems = [m for m in status.problems if m.state != "pending"]
    extra = f", {len(problems)} need attention" if problems else ""
    click.echo(f"{counts or 'nothing applied'}{extra}.")


def report_run(result: RunResult, as_json: bool) -> None:
    """Print a migrate/rollback result (or its plan, for a dry run)."""
    if as_json:
        _emit_json(run_json(result))
        return
    if result.dry_run:
        print_plan(result)
        return
    total = sum(step.duration_ms for step in result.steps)
    verb = "Applied" if result.action == "migrate" else "Reverted"
    if not result.steps:
        click.echo("Nothing to migrate: the database is up to date." if result.action == "migrate" else "Nothing to roll back.")
    else:
        noun = "migration" if len(result.steps) == 1 else "migrations"
        click.echo(f"{verb} {len(result.steps)} {noun} in {_ms(total)}.")


def run_json(result: RunResult) -> dict[str, Any]:
    """The documented ``migrate --json`` / ``rollback --json`` document."""
    return {
        "action": result.action,
        "dry_run": result.dry_run,
        "steps": [{"version": s.version, "name": s.name, "duration_ms": s.duration_ms} for s in result.steps],
        "plan": [
            {"version": m.version, "name": m.name, "transaction": m.transactional, "file": m.path.name}
            for m in result.planned
        ]
        + [
            {"version": r.version, "name": r.name, "transaction": r.down.options.transaction, "file": r.display}
            for r in result.rollback_plan
        ],
    }


def print_plan(result: RunResult) -> None:
    """The dry-run plan: each migration, its transaction mode and timeouts, and the exact SQL."""
    if result.action == "migrate":
        items = [(m.id, m.up, m.path.name) for m in result.planned]
    else:
        items = [(r.id, r.down, r.display) for r in result.rollback_plan]
    if not items:
        click.echo("Dry run: nothing to do.")
        return
    direction = "apply" if result.action == "migrate" else "revert"
    click.echo(f"Dry run: would {direction} {len(items)} migration(s); nothing was changed.")
    for ident, section, display in items:
        options = section.options
        mode = "one transaction" if options.transaction else "transaction:false (autocommit, statement by statement)"
        timeouts = []
        if options.lock_timeout_ms is not None:
            timeouts.append(f"lock_timeout {options.lock_timeout_ms} ms")
        if options.statement_timeout_ms is not None:
            timeouts.append(f"statement_timeout {options.statement_timeout_ms} ms")
        click.echo(f"\n-- {ident} ({display}): {mode}{'; ' + ', '.join(timeouts) if timeouts else ''}")
        click.echo(section.sql.strip() or "-- (no-op)")


def _timestamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%d%H%M%S")


def _alias(command: click.Command, name: str) -> click.Command:
    return click.Command(
        name, callback=command.callback, params=command.params, help=f"Alias of '{command.name}' (Flask-Migrate habit).",
        short_help=f"Alias of '{command.name}'.",
    )  # fmt: skip


COMMANDS: list[click.Command] = [init_command, new_command, status_command, migrate_command, rollback_command]
ALIASES = {"upgrade": migrate_command, "downgrade": rollback_command, "current": status_command}


def register(group: click.Group, extra: list[click.Command] | None = None) -> click.Group:
    """Add every command and alias to a group (the standalone one, or the extension's ``flask db``)."""
    for command in [*COMMANDS, *(extra or [])]:
        group.add_command(command)
    for alias, command in ALIASES.items():
        group.add_command(_alias(command, alias))
    return group


# -- standalone ----------------------------------------------------------------------------------------------
class StandaloneSource:
    """Settings for ``pgmig``: --database-url / DATABASE_URL, --directory, and PGMIG_* environment variables."""

    command = "pgmig"

    def __init__(self, database_url: str | None, directory: str) -> None:
        self.database_url = database_url
        self._directory = Path(directory)

    def directory(self) -> Path:
        return self._directory

    def database_display(self) -> str:
        return redact_url(self.database_url) if self.database_url else "(none)"

    def migrator(self, events: Events) -> Migrator:
        from .core.config import env_mapping, settings_from_mapping

        if not self.database_url:
            raise ConfigError(
                "No database given. Pass --database-url, or set DATABASE_URL or PGMIG_DATABASE_URL."
            )
        settings = settings_from_mapping(env_mapping(), directory=self._directory, command=self.command)
        return Migrator(self.database_url, settings, events=events)


@click.group("pgmig", cls=PgMigGroup)
@click.version_option(__version__, prog_name="pgmig")
@click.option(
    "--database-url", metavar="URL", help="PostgreSQL URL [env: PGMIG_DATABASE_URL, then DATABASE_URL]."
)
@click.option(
    "--directory", metavar="DIR", envvar="PGMIG_DIRECTORY", default="migrations", show_default=True,
    help="The migrations directory [env: PGMIG_DIRECTORY].",
)  # fmt: skip
@click.pass_context
def cli(ctx: click.Context, database_url: str | None, directory: str) -> None:
    """Production-safe, SQL-first schema migrations for PostgreSQL."""
    url = database_url or os.environ.get("PGMIG_DATABASE_URL") or os.environ.get("DATABASE_URL")
    ctx.meta[SOURCE_KEY] = StandaloneSource(url, directory)


register(cli)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``pgmig`` console script."""
    cli.main(args=argv, prog_name="pgmig")

