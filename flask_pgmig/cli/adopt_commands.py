"""Adoption commands: ``baseline`` (an existing database) and ``import`` (another tool's migrations)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ..core.adopt import FORMATS, read_source
from ..core.adopt.convert import Conversion, WriteResult, convert, write
from ..core.adopt.history import AdoptResult, adopt, read_source_history
from ..core.adopt.model import WARNING
from .common import emit_json, json_option, migrator, source


@click.command("baseline")
@click.argument("version", required=False)
@click.option("--force", is_flag=True, help="Baseline even though the history table already has rows.")
@click.option(
    "--from-schema", is_flag=True, help="First dump the live schema (pg_dump) into a migration file."
)
@click.option("--pg-dump", "pg_dump", metavar="PATH", help="The pg_dump to use with --from-schema.")
@json_option
def baseline_command(
    version: str | None, force: bool, from_schema: bool, pg_dump: str | None, as_json: bool
) -> None:
    """Mark every migration up to VERSION as applied without running it (adopt an existing database)."""
    result = migrator(as_json).baseline(version, force=force, from_schema=from_schema, pg_dump=pg_dump)
    if as_json:
        emit_json({"version": result.version, "recorded": list(result.recorded),
                   "already_recorded": list(result.unchanged),
                   "dump_file": str(result.dump_file) if result.dump_file else None})  # fmt: skip
        return
    if result.dump_file is not None:
        click.echo(f"Wrote the live schema to {result.dump_file}")
    click.echo(
        f"Baselined at {result.version}: recorded {len(result.recorded)} migration(s) as applied without "
        f"running them ({len(result.unchanged)} already recorded)."
    )


@click.command("import")
@click.option("--from", "tool", required=True, type=click.Choice([*FORMATS, "flask-migrate"], case_sensitive=False),
              help="The tool that wrote SOURCE_DIR.")  # fmt: skip
@click.argument("source_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--adopt-history", is_flag=True, help="Record what the tool's tracking table says was applied.")
@click.option(
    "--source-table", metavar="[SCHEMA.]TABLE", help="The tool's tracking table, if not its default."
)
@json_option
def import_command(
    tool: str, source_dir: Path, adopt_history: bool, source_table: str | None, as_json: bool
) -> None:
    """Convert another tool's migrations in SOURCE_DIR into the migrations directory, and report."""
    source_set = read_source(tool, source_dir)
    conversion = convert(source_set)
    engine = migrator(as_json) if adopt_history else None
    history = None
    if engine is not None:  # read (and refuse a dirty source state) before writing anything
        with engine.connect() as conn:
            history = read_source_history(conn, source_set, source_table)
    written = write(conversion, source().directory())
    adopted = adopt(engine, conversion, history) if engine is not None and history is not None else None
    if as_json:
        emit_json(import_json(conversion, written, adopted))
    else:
        print_import(conversion, written, adopted, source().directory())


def import_json(conversion: Conversion, written: WriteResult, adopted: AdoptResult | None) -> dict[str, Any]:
    """The stable JSON document of ``import --json``."""
    return {
        "from": conversion.tool,
        "source": str(conversion.root),
        "import_point": conversion.import_point,
        "migrations": [
            {
                "source_id": c.source.source_id,
                "source_files": list(c.source.files),
                "file": c.file_name,
                "version": c.version,
                "transaction": c.transactional,
                "findings": [{"level": f.level, "where": f.where, "message": f.message} for f in c.findings],
            }
            for c in conversion.migrations
        ],
        "findings": [{"level": f.level, "where": f.where, "message": f.message} for f in conversion.findings],
        "written": [p.name for p in written.written],
        "unchanged": [p.name for p in written.unchanged],
        "ignored": list(conversion.ignored),
        "adopted": None
        if adopted is None
        else {
            "source_table": adopted.table,
            "recorded": list(adopted.recorded),
            "already_recorded": list(adopted.unchanged),
        },
    }


def print_import(
    conversion: Conversion, written: WriteResult, adopted: AdoptResult | None, directory: Path
) -> None:
    """The human report: one line per migration, then what needs attention, then the totals."""
    warnings = 0
    for item in conversion.migrations:
        click.echo(f"  {item.source.source_id:>16}  ->  {item.file_name}")
        for finding in item.findings:
            warnings += finding.level == WARNING
            click.echo(f"{'':>22}{finding.level}: {finding.where}: {finding.message}")
    for finding in conversion.findings:
        warnings += finding.level == WARNING
        click.echo(f"{finding.level}: {finding.message}")
    if conversion.ignored:
        click.echo(f"Ignored (not {conversion.tool} migrations): {', '.join(conversion.ignored)}")
    click.echo(
        f"Imported {len(conversion.migrations)} {conversion.tool} migrations into {directory} "
        f"({len(written.written)} written, {len(written.unchanged)} already there); import point: "
        f"{conversion.import_point}."
    )
    if adopted is not None:
        click.echo(
            f"Adopted the history of {adopted.table}: recorded {len(adopted.recorded)} migration(s) as applied "
            f"({len(adopted.unchanged)} already recorded)."
        )
    if warnings:
        click.echo(f"{warnings} warning(s): review them before applying these migrations to a new database.")


COMMANDS = [baseline_command, import_command]
