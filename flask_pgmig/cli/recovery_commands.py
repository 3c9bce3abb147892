"""Recovering from failures: ``repair`` (mark applied, mark rolled back, accept a checksum) and ``history``."""

from __future__ import annotations

from collections.abc import Sequence

import click

from ..core.repair import ACCEPT_CHECKSUM, MARK_APPLIED, MARK_ROLLED_BACK, RepairResult
from .common import emit_json, json_option, migrator, source

SHOWN_VERSIONS = 5  # an audit entry names its versions up to this many, else the first, the last and how many


@click.command("repair")
@click.option("--mark-applied", "mark_applied", metavar="VERSION", help="Record a failed migration as applied.")
@click.option(
    "--mark-rolled-back", "mark_rolled_back", metavar="VERSION", help="Forget a migration's history row."
)
@click.option(
    "--accept-checksum", "accept_checksum", metavar="VERSION", help="Accept an applied migration's edited file."
)
@json_option
def repair_command(
    mark_applied: str | None, mark_rolled_back: str | None, accept_checksum: str | None, as_json: bool
) -> None:
    """Resolve a failed migration, or accept an edited checksum (audit-logged)."""
    given = {MARK_APPLIED: mark_applied, MARK_ROLLED_BACK: mark_rolled_back, ACCEPT_CHECKSUM: accept_checksum}
    chosen = [(action, version) for action, version in given.items() if version]
    if len(chosen) != 1:
        raise click.UsageError("Give exactly one of --mark-applied, --mark-rolled-back and --accept-checksum.")
    action, version = chosen[0]
    result = migrator(as_json).repair(action, version)
    if as_json:
        emit_json(result.as_dict())
    else:
        click.echo(describe_repair(result, source().command))


def describe_repair(result: RepairResult, command: str) -> str:
    """One sentence saying what the repair recorded."""
    if not result.changed:
        return f"Nothing to repair: '{result.id}' is applied and its file matches the recorded checksum."
    if result.action == MARK_APPLIED:
        return f"Recorded '{result.id}' as applied (it was {result.previous_state})."
    if result.action == MARK_ROLLED_BACK:
        return (
            f"Removed the history row of '{result.id}' (it was {result.previous_state}); "
            f"'{command} migrate' will run it again."
        )
    kind = "a cosmetic edit (whitespace or comments only)" if result.change == "cosmetic" else "an edit of its SQL"
    return f"Accepted the new checksum of '{result.id}': {kind}."


@click.command("history")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True, help="How many entries.")
@json_option
def history_command(limit: int, as_json: bool) -> None:
    """Show the audit log: every migrate, rollback, repair and baseline run."""
    entries = migrator(as_json).audit_log(limit)
    if as_json:
        emit_json({"database": source().database_display(), "entries": [e.as_dict() for e in entries]})
        return
    if not entries:
        click.echo("The audit log is empty: nothing has run on this database yet.")
        return
    for entry in entries:
        versions = _versions(entry.versions)
        who = f"{entry.role}@{entry.host or '?'}, pid {entry.pid}"
        click.echo(f"{entry.at:%Y-%m-%d %H:%M:%S}  {entry.action:<9} {entry.outcome:<7} {versions}  ({who})")
        if entry.outcome != "ok" and entry.detail.get("error"):
            click.echo(f"    {entry.detail['error']}")


def _versions(versions: Sequence[str]) -> str:
    """An entry's versions on its line: all of a few, the first and last of many (``--json`` has every one)."""
    if len(versions) > SHOWN_VERSIONS:
        return f"{versions[0]} ... {versions[-1]} ({len(versions)} migrations)"
    return ", ".join(versions) or "-"


COMMANDS: list[click.Command] = [repair_command, history_command]
