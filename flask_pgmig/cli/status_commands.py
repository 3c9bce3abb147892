"""``status`` (alias ``current``): every migration with its state.

A module of its own so that running it imports only what it needs, the engine's read-only path: not the linter,
the verifier, the runner or the adoption code (the lazy command table in ``cli/__init__.py`` imports it alone).
"""

from __future__ import annotations

from typing import Any

import click

from ..core.plan import MigrationState, Status
from .common import emit_json, fail_unless, json_option, migrator, source


@click.command("status")
@click.option("--check", is_flag=True, help="Exit 1 unless every migration is applied and clean.")
@json_option
def status_command(check: bool, as_json: bool) -> None:
    """Show every migration with its state: applied, pending, modified, missing, failed."""
    database = source().database_display()
    status = migrator(as_json).status()
    if as_json:
        emit_json(status_json(status, database))
    else:
        print_status(status, database)
    if check:
        fail_unless(status.clean and not status.invalid_indexes)


def status_json(status: Status, database: str) -> dict[str, Any]:
    """The documented ``status --json`` document."""
    return {
        "database": database,
        "clean": status.clean,
        "counts": {
            s: len(status.having(s))
            for s in ("applied", "pending", "modified", "missing", "failed", "running")
        },
        "migrations": [
            {
                "version": m.version,
                "name": m.name,
                "state": m.state,
                "applied_at": m.record.applied_at.isoformat() if m.record and m.record.applied_at else None,
                "duration_ms": m.record.duration_ms if m.record else None,
                "file": m.file.path.name if m.file else None,
                "change": m.change,
                "statements_done": m.record.statements_done if m.record else None,
                "statements_total": m.record.statements_total if m.record else None,
                "error": m.record.error if m.record else None,
            }
            for m in status.migrations
        ],
        "invalid_indexes": [
            {"schema": i.schema, "name": i.name, "table": i.table, "version": i.version}
            for i in status.invalid_indexes
        ],
    }


def print_status(status: Status, database: str) -> None:
    """One line per migration, then a summary line (written at once: click flushes every echo)."""
    lines = [f"Database: {database}"]
    if not status.migrations:
        click.echo("\n".join([*lines, "No migrations found."]))
        return
    for m in status.migrations:
        # "YYYY-MM-DD HH:MM:SS" in the session's time zone; isoformat is twice as fast as strftime
        when = m.record.applied_at.isoformat(" ", "seconds")[:19] if m.record and m.record.applied_at else ""
        lines.append(f"  {m.state:<9} {m.id}  {when}{_state_detail(m)}".rstrip())
    for index in status.invalid_indexes:
        made_by = f" (from migration {index.version})" if index.version else ""
        lines.append(
            f"  INVALID index {index.schema}.{index.name} on {index.table}{made_by}: a failed CREATE INDEX "
            "CONCURRENTLY left it; migrate drops and rebuilds it, or DROP INDEX CONCURRENTLY it by hand."
        )
    counts = ", ".join(f"{len(status.having(s))} {s}" for s in ("applied", "pending") if status.having(s))
    problems = [m for m in status.problems if m.state != "pending"]
    extra = f", {len(problems)} need attention" if problems else ""
    lines.append(f"{counts or 'nothing applied'}{extra}.")
    click.echo("\n".join(lines))


def _state_detail(m: MigrationState) -> str:
    """What a problem state means, on the migration's own line."""
    if m.state == "modified":
        return "  (file changed: only whitespace or comments)" if m.change == "cosmetic" else "  (file changed)"
    if m.state == "missing":
        return "  (file gone; rollback uses the stored down section)"
    if m.state in ("failed", "running") and m.record is not None:
        progress = f"{m.record.statements_done or 0} of {m.record.statements_total or '?'} statements done"
        what = "failed" if m.state == "failed" else "interrupted"
        return f"  ({what}: {progress}{'; ' + m.record.error if m.record.error else ''})"
    return ""


COMMANDS: list[click.Command] = [status_command]
