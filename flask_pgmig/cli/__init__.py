"""The click commands, served as ``flask db <command>`` (through the extension) and as the standalone ``pgmig``.

Commands live in small modules by subject and are collected here by :func:`register`; each builds, validates
and delegates to the Migrator in a few lines. Importing this package never imports Flask or SQLAlchemy.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from .. import __version__
from ..core.dsn import redact_url
from ..core.events import Events
from ..core.migrator import Migrator
from ..errors import ConfigError
from . import core_commands
from .common import SOURCE_KEY, PgMigGroup, invoke_translating_errors


def _alias(command: click.Command, name: str) -> click.Command:
    return click.Command(
        name,
        callback=command.callback,
        params=command.params,
        help=f"Alias of '{command.name}' (Flask-Migrate habit).",
        short_help=f"Alias of '{command.name}'.",
    )  # fmt: skip


def all_commands() -> tuple[list[click.Command], dict[str, click.Command]]:
    """Every command and every alias, from each command module."""
    modules = [core_commands]
    commands = [command for module in modules for command in module.COMMANDS]
    aliases = {
        name: command for module in modules for name, command in getattr(module, "ALIASES", {}).items()
    }
    return commands, aliases


def register(group: click.Group) -> click.Group:
    """Add every command and alias to a group (the standalone one, or the extension's ``flask db``)."""
    commands, aliases = all_commands()
    for command in commands:
        group.add_command(command)
    for alias, command in aliases.items():
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
        from ..core.config import env_mapping, settings_from_mapping

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


__all__ = ["SOURCE_KEY", "PgMigGroup", "cli", "invoke_translating_errors", "main", "register"]
