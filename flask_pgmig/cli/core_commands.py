"""The everyday commands: init, new, migrate, rollback (each builds, validates, delegates); status has its own
module (status_commands.py), so that running it loads neither the linter nor the runner."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import click

from ..core.migrator import RunResult
from ..errors import ConfigError
from .check_commands import execution_json, lint_before_migrate, print_execution
from .common import emit_json, fail_unless, json_option, migrator, ms, source

EXAMPLE_MIGRATION = """-- migrate:up
-- Write the SQL that applies this migration here. Each file runs in its own transaction;
-- add 'transaction:false' to the line above for CREATE INDEX CONCURRENTLY and the like.

-- migrate:down
-- Write the SQL that reverts it here (leave empty if it cannot be reverted).
"""
PYTHON_TEMPLATE = '''"""{name}: a data migration.

Runs in one transaction with its history row. For batched work on big tables, set
``transaction = False`` at module level and call flask_pgmig.backfill in up() (one short transaction
per batch, resumable): ``backfill(conn, "tasks", "priority = 2", "priority IS NULL", batch_size=5000)``.

Give up() a second parameter to receive the Flask app under 'flask db'; do not import today's models
here: they change, a migration must not.
"""


def up(conn):
    """Apply. ``conn`` is a psycopg connection."""
    conn.execute("SELECT 1")


def down(conn):
    """Revert (delete this function if the migration cannot be reverted)."""
'''


@click.command("init")
def init_command() -> None:
    """Create the migrations directory with a first example migration."""
    directory = source().directory()
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
    from ..core.files import FILE_NAME

    slug = "_".join(name.strip().split())
    file_name = f"{_timestamp()}_{slug}.{'py' if python_file else 'sql'}"
    if FILE_NAME.match(file_name) is None:
        raise ConfigError(f"'{name}' cannot be a migration name. Use letters, digits, '_' and '-' only.")
    directory = source().directory()
    if not directory.is_dir():
        raise ConfigError(f"The migrations directory '{directory}' does not exist. Run 'init' first.")
    path = directory / file_name
    path.write_text(PYTHON_TEMPLATE.format(name=slug) if python_file else EXAMPLE_MIGRATION, encoding="utf-8")
    click.echo(str(path))


@click.command("migrate")
@click.option("--to", "to", metavar="VERSION", help="Apply pending migrations up to and including VERSION.")
@click.option("--dry-run", is_flag=True, help="Print the plan and its SQL; change nothing.")
@click.option(
    "--execute", is_flag=True, help="With --dry-run: run the plan in one transaction, then roll it back."
)
@click.option("--atomic", is_flag=True, help="Apply all pending migrations in one transaction.")
@click.option(
    "--allow-out-of-order",
    is_flag=True,
    default=None,
    help="Apply pending migrations older than applied ones.",
)
@click.option(
    "--resume", is_flag=True, help="Continue a failed transaction:false migration after its last statement."
)
@json_option
def migrate_command(
    to: str | None, dry_run: bool, execute: bool, atomic: bool, allow_out_of_order: bool | None, resume: bool,
    as_json: bool,
) -> None:  # fmt: skip
    """Apply pending migrations, each in its own transaction with its history row."""
    if execute and not dry_run:
        raise click.UsageError("--execute goes with --dry-run: 'migrate --dry-run --execute'.")
    engine = migrator(as_json)
    lint_before_migrate(lambda: [state.version for state in engine.status().pending])
    result = engine.migrate(
        to=to, dry_run=dry_run, atomic=atomic, allow_out_of_order=allow_out_of_order or None, resume=resume
    )
    if not execute:
        report_run(result, as_json)
        return
    execution = engine.dry_run_execute(to=to, allow_out_of_order=allow_out_of_order or None)
    if as_json:
        emit_json({**run_json(result), "execution": execution_json(execution)})
    else:
        print_plan(result)
        print_execution(execution)
    fail_unless(execution.ok)


@click.command("rollback")
@click.option(
    "--steps", type=click.IntRange(min=1), default=None, help="Revert the newest N migrations (default 1)."
)
@click.option("--to", "to", metavar="VERSION", help="Revert every migration newer than VERSION.")
@click.option("--all", "everything", is_flag=True, help="Revert every applied migration.")
@click.option("--dry-run", is_flag=True, help="Print what would be reverted and its SQL; change nothing.")
@click.option("--atomic", is_flag=True, help="Revert them all in one transaction.")
@json_option
def rollback_command(
    steps: int | None, to: str | None, everything: bool, dry_run: bool, atomic: bool, as_json: bool
) -> None:
    """Revert applied migrations, newest first."""
    if sum(x is not None and x is not False for x in (steps, to, everything or None)) > 1:
        raise click.UsageError("Give only one of --steps, --to and --all.")
    result = migrator(as_json).rollback(
        steps=steps if steps is not None else 1, to=to, everything=everything, dry_run=dry_run, atomic=atomic
    )
    report_run(result, as_json)


def report_run(result: RunResult, as_json: bool) -> None:
    """Print a migrate/rollback result (or its plan, for a dry run)."""
    if as_json:
        emit_json(run_json(result))
        return
    if result.dry_run:
        print_plan(result)
        return
    total = sum(step.duration_ms for step in result.steps)
    verb = "Applied" if result.action == "migrate" else "Reverted"
    if not result.steps:
        click.echo(
            "Nothing to migrate: the database is up to date."
            if result.action == "migrate"
            else "Nothing to roll back."
        )
    else:
        noun = "migration" if len(result.steps) == 1 else "migrations"
        click.echo(f"{verb} {len(result.steps)} {noun} in {ms(total)}.")


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
            {
                "version": r.version,
                "name": r.name,
                "transaction": r.down.options.transaction,
                "file": r.display,
            }
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
    defaults = migrator(True).settings  # the timeouts a section gets when its marker line sets none
    for ident, section, display in items:
        options = section.options
        mode = (
            "one transaction"
            if options.transaction
            else "transaction:false (autocommit, statement by statement)"
        )
        timeouts = [
            f"{name} {ms(value) if value else 'off'}{'' if own is not None else ' (' + key + ')'}"
            for name, own, value, key in (
                ("lock_timeout", options.lock_timeout_ms,
                 _either(options.lock_timeout_ms, defaults.lock_timeout_ms), "PGMIG_LOCK_TIMEOUT"),
                ("statement_timeout", options.statement_timeout_ms,
                 _either(options.statement_timeout_ms, defaults.statement_timeout_ms), "PGMIG_STATEMENT_TIMEOUT"),
            )
        ]  # fmt: skip
        click.echo(f"\n-- {ident} ({display}): {mode}{'; ' + ', '.join(timeouts) if timeouts else ''}")
        click.echo(section.sql.strip() or "-- (no-op)")


def _either(own: int | None, default: int | None) -> int | None:
    return own if own is not None else default


def _timestamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%d%H%M%S")


COMMANDS: list[click.Command] = [init_command, new_command, migrate_command, rollback_command]
