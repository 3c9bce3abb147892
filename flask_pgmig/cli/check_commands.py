"""``check`` (offline: files, syntax, transactions, unsafe DDL) and ``verify`` (up, down, up on a scratch DB).

Also the printing of ``migrate --dry-run --execute`` and the PGMIG_LINT run before ``migrate``, which the
``migrate`` command calls.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Any

import click

from ..core.config import LINT_MODES
from ..core.dsn import redact_url
from ..errors import ConfigError, MigrationFileError
from .common import CliEvents, emit_json, fail_unless, json_option, ms, source

if TYPE_CHECKING:  # the linter and verify load pglast: migrate imports this module, and loads them only to lint
    from ..core.dry_run import DryRunExecution
    from ..core.lint import CheckReport, Finding
    from ..core.verify import VerifyReport


@click.command("check")
@click.option(
    "--lint", type=click.Choice(LINT_MODES), default="error", show_default=True,
    help="Unsafe-DDL findings: fail (error), only print them (warn), or skip the linter (off).",
)  # fmt: skip
@json_option
def check_command(lint: str, as_json: bool) -> None:
    """Check the migrations offline: names, sections, options, SQL syntax, transactions, unsafe DDL."""
    from ..core.lint import check_directory

    report = check_directory(source().directory(), lint=lint)
    if as_json:
        emit_json(check_json(report))
    else:
        print_check(report)
    fail_unless(report.ok)


@click.command("verify")
@click.option(
    "--database-url", "scratch_url", metavar="URL",
    help="An empty database to verify on [default: a temporary one, created and dropped on the same server].",
)  # fmt: skip
@click.option("--strict", is_flag=True, help="Fail on migrations without a down section too.")
@json_option
def verify_command(scratch_url: str | None, strict: bool, as_json: bool) -> None:
    """Apply, revert and re-apply every migration on a scratch database, comparing catalog snapshots."""
    from ..core.verify import scratch_database

    migrator = source().migrator(CliEvents(quiet=True))
    scratch: AbstractContextManager[str] = (
        nullcontext(scratch_url)
        if scratch_url
        else scratch_database(migrator.dsn, migrator.settings.connect_kwargs)
    )
    with scratch as dsn:
        if not as_json:
            click.echo(f"Verifying on {redact_url(dsn)} ...", err=True)
        report = migrator.verify(dsn, strict=strict, require_empty=bool(scratch_url))
    if as_json:
        emit_json(verify_json(report))
    else:
        print_verify(report)
    fail_unless(report.ok)


def print_check(report: CheckReport) -> None:
    """``file:line:column: severity [rule] message``, then why and the fix of lint findings, and a summary."""
    for finding in report.findings:
        click.echo(f"{finding.location}: {finding.severity} [{finding.rule}] {finding.message}")
        if finding.why:
            click.echo(f"    why: {finding.why}")
            click.echo(f"    fix: {finding.fix}")
    errors, warnings = len(report.errors), len(report.warnings)
    allowed = f", {len(report.suppressed)} allowed by '-- pgmig:allow'" if report.suppressed else ""
    verdict = "ok" if report.ok else "failed"
    click.echo(
        f"check {verdict}: {report.files} migration(s), {errors} error(s), {warnings} warning(s){allowed}."
    )


def _finding_json(finding: Finding) -> dict[str, Any]:
    return {
        "rule": finding.rule, "severity": finding.severity, "file": finding.file, "line": finding.line,
        "column": finding.column, "message": finding.message, "why": finding.why or None,
        "fix": finding.fix or None,
    }  # fmt: skip


def check_json(report: CheckReport) -> dict[str, Any]:
    """The documented ``check --json`` document."""
    return {
        "ok": report.ok,
        "directory": report.directory,
        "files": report.files,
        "findings": [_finding_json(f) for f in report.findings],
        "suppressed": [_finding_json(f) for f in report.suppressed],
    }


def print_verify(report: VerifyReport) -> None:
    """Each difference on its own line, the irreversible migrations, then a verdict."""
    for line in report.differences:
        click.echo(f"  {line}")
    if report.irreversible:
        label = "error" if report.strict else "note"
        click.echo(f"  {label}: no down section (irreversible): {', '.join(report.irreversible)}")
    if report.ok:
        click.echo(f"verify ok: {len(report.checked)} migration(s) reversed exactly by their down section.")
    else:
        count = len(report.differences) + (len(report.irreversible) if report.strict else 0)
        click.echo(f"verify failed: {count} problem(s).")


def verify_json(report: VerifyReport) -> dict[str, Any]:
    """The documented ``verify --json`` document."""
    return {
        "ok": report.ok,
        "checked": report.checked,
        "differences": report.differences,
        "irreversible": report.irreversible,
        "strict": report.strict,
    }


def lint_mode() -> str:
    """PGMIG_LINT of the current source: the Flask app's config, else the environment (standalone)."""
    value = getattr(source(), "lint", None) or os.environ.get("PGMIG_LINT") or "off"
    text = str(value).strip().lower()
    if text not in LINT_MODES:
        raise ConfigError(f"PGMIG_LINT is {value!r}; use one of 'off', 'warn' or 'error'.")
    return text


def lint_before_migrate(pending: Callable[[], list[str]]) -> None:
    """Lint the pending migrations when PGMIG_LINT asks: print warnings, or refuse to migrate on errors.

    ``pending`` gives the pending versions; it is called (one read-only query) only when linting is on.
    """
    mode = lint_mode()
    versions = set(pending()) if mode != "off" else set()
    if not versions:
        return
    from ..core.lint import check_directory

    report = check_directory(source().directory(), lint=mode, versions=versions)
    for finding in report.findings:
        click.echo(f"{finding.location}: {finding.severity} [{finding.rule}] {finding.message}", err=True)
    if report.errors:
        first = report.errors[0]
        raise MigrationFileError(
            f"PGMIG_LINT is 'error' and the pending migrations have {len(report.errors)} problem(s), first "
            f"at '{first.location}' [{first.rule}]. Nothing was applied. Fix them, silence one on purpose "
            "with '-- pgmig:allow <rule-id> because <reason>' above the statement, or set PGMIG_LINT to "
            "'warn'.",
            paths=sorted({str(source().directory() / f.file) for f in report.errors}),
        )


def print_execution(result: DryRunExecution) -> None:
    """What ``migrate --dry-run --execute`` ran inside its rolled-back transaction."""
    click.echo("\nExecuted inside one transaction, then rolled back:")
    lines = {step.id: f"  ok        {step.id}  ({ms(step.duration_ms)})" for step in result.executed}
    lines.update({ident: f"  skipped   {ident}: {reason}" for ident, reason in result.skipped})
    if result.failed:
        lines[result.failed[0]] = f"  FAILED    {result.failed[0]}: {result.failed[1]}"
    for ident in result.order:  # in plan order
        click.echo(lines[ident])
    verdict = "every executed migration succeeded" if result.ok else "a migration failed"
    click.echo(f"Dry run: {verdict}; the transaction was rolled back and nothing was changed.")


def execution_json(result: DryRunExecution) -> dict[str, Any]:
    """The ``execution`` part of ``migrate --dry-run --execute --json``."""
    return {
        "ok": result.ok,
        "executed": [{"id": e.id, "duration_ms": e.duration_ms} for e in result.executed],
        "failed": {"id": result.failed[0], "error": result.failed[1]} if result.failed else None,
        "skipped": [{"id": ident, "reason": reason} for ident, reason in result.skipped],
    }


COMMANDS: list[click.Command] = [check_command, verify_command]
