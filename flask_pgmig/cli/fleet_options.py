"""Scale-out options for migrate, rollback and status: --bind, --all-binds, --all-schemas, --targets, --jobs.

They are attached to the existing commands (so each command stays one function): without them a command runs
as usual; ``--bind NAME`` swaps in that bind's database and directory; the others run the command on many targets
with :func:`flask_pgmig.core.fleet.run_fleet` and print one summary table, exiting 1 if any target failed.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from ..core.migrator import Migrator, RunResult
from ..core.plan import Status
from ..errors import ConfigError
from .common import SOURCE_KEY, CliEvents, emit_json, ms

if TYPE_CHECKING:  # the fleet runner is imported when a fleet option is used, not for every command
    from ..core.fleet import FleetReport, Target, TargetOutcome

FLEET_OPTIONS = ("bind", "all_binds", "all_schemas", "targets", "jobs", "fail_fast")


def _params() -> list[click.Parameter]:
    return [
        click.Option(
            ["--bind"], metavar="NAME", help="Use the Flask-SQLAlchemy bind NAME and its migrations."
        ),
        click.Option(
            ["--all-binds"], is_flag=True, help="Run on the main database and every bind of PGMIG_BINDS."
        ),
        click.Option(
            ["--all-schemas"], is_flag=True, help="Run once per schema matching PGMIG_TENANT_SCHEMAS."
        ),
        click.Option(
            ["--targets"], metavar="FILE", type=click.Path(dir_okay=False), help="Run on every DSN in FILE."
        ),
        click.Option(
            ["--jobs"], type=click.IntRange(min=1), default=1, show_default=True, help="Targets at once."
        ),
        click.Option(["--fail-fast"], is_flag=True, help="Start no new target once one has failed."),
    ]


def operation_for(command: str, options: dict[str, Any]) -> Callable[[Migrator], RunResult | Status]:
    """What to run on each target, from the command's own options."""
    if command == "migrate":
        return lambda m: m.migrate(
            to=options.get("to"),
            dry_run=bool(options.get("dry_run")),
            atomic=bool(options.get("atomic")),
            allow_out_of_order=options.get("allow_out_of_order") or None,
            resume=bool(options.get("resume")),
        )
    if command == "rollback":
        return lambda m: m.rollback(
            steps=options.get("steps") or 1,
            to=options.get("to"),
            everything=bool(options.get("everything")),
            dry_run=bool(options.get("dry_run")),
            atomic=bool(options.get("atomic")),
        )
    return lambda m: m.status()


def add_fleet_options(command: click.Command) -> click.Command:
    """Give a command the scale-out options; idempotent."""
    if any(p.name == "all_binds" for p in command.params):
        return command
    original = command.callback
    assert original is not None and command.name is not None
    name = command.name
    command.params.extend(_params())

    def callback(**kwargs: Any) -> Any:
        fleet = {key: kwargs.pop(key) for key in FLEET_OPTIONS}
        ctx = click.get_current_context()
        source = ctx.meta.get(SOURCE_KEY)
        if source is None:
            raise ConfigError(
                "No database configured for this command. Use 'flask db' with PgMig, or 'pgmig'."
            )
        if fleet["bind"] and not (fleet["all_binds"] or fleet["all_schemas"] or fleet["targets"]):
            ctx.meta[SOURCE_KEY] = _capability(source, "for_bind", "--bind")(fleet["bind"])
            return original(**kwargs)
        if not (fleet["all_binds"] or fleet["all_schemas"] or fleet["targets"]):
            return original(**kwargs)
        if kwargs.get("execute"):
            raise click.UsageError(
                "--dry-run --execute proves one database at a time; run it without --all-binds, --all-schemas "
                "and --targets (for example with --bind NAME)."
            )
        targets: list[Target] = _capability(source, "fleet_targets", "--all-binds/--all-schemas/--targets")(
            targets_file=fleet["targets"], all_schemas=fleet["all_schemas"], all_binds=fleet["all_binds"],
            bind=fleet["bind"],
        )  # fmt: skip
        as_json = bool(kwargs.get("as_json"))
        from ..core.fleet import run_fleet

        report = run_fleet(
            targets,
            operation_for(name, kwargs),
            jobs=fleet["jobs"],
            fail_fast=fleet["fail_fast"],
            events_for=lambda target: PrefixedEvents(target.name, quiet=as_json or fleet["jobs"] > 1),
        )
        print_report(report, as_json)
        check_failed = name == "status" and kwargs.get("check") and any(o.count for o in report.outcomes)
        if not report.ok or check_failed:
            sys.exit(1)
        return None

    command.callback = callback
    return command


def _capability(source: object, attribute: str, flag: str) -> Any:
    found = getattr(source, attribute, None)
    if found is None:
        raise ConfigError(f"{flag} is not available here: binds need 'flask db'; use --targets with 'pgmig'.")
    return found


class PrefixedEvents(CliEvents):
    """Progress lines that say which target they belong to."""

    def __init__(self, target: str, quiet: bool) -> None:
        super().__init__(quiet=quiet)
        self.target = target

    def migration_finished(self, version: str, name: str, direction: str, duration_ms: int) -> None:
        if not self.quiet:
            verb = "applied " if direction == "up" else "reverted"
            click.echo(f"  [{self.target}] {verb}  {version}_{name}  ({ms(duration_ms)})")


def print_report(report: FleetReport, as_json: bool) -> None:
    """One line per target, then the totals."""
    if as_json:
        emit_json({"ok": report.ok, "targets": [_outcome_json(o) for o in report.outcomes]})
        return
    width = max([len(o.target) for o in report.outcomes] + [6])
    click.echo(f"{'target':<{width}}  {'outcome':<10}  detail")
    for o in report.outcomes:
        click.echo(f"{o.target:<{width}}  {o.outcome:<10}  {o.detail}".rstrip())
    totals: dict[str, int] = {}
    for o in report.outcomes:
        totals[o.outcome] = totals.get(o.outcome, 0) + 1
    click.echo(
        f"{len(report.outcomes)} targets: " + ", ".join(f"{n} {state}" for state, n in totals.items()) + "."
    )


def _outcome_json(outcome: TargetOutcome) -> dict[str, Any]:
    return {
        "target": outcome.target,
        "outcome": outcome.outcome,
        "count": outcome.count,
        "detail": outcome.detail,
        "duration_ms": outcome.duration_ms,
    }
