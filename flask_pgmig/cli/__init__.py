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
from ..core.fleet import Target, targets_from_file, tenant_schemas, tenant_targets
from ..core.migrator import Migrator, Settings
from ..errors import ConfigError
from . import adopt_commands, check_commands, core_commands, recovery_commands
from .common import SOURCE_KEY, PgMigGroup, invoke_translating_errors
from .fleet_options import add_fleet_options

SCALE_OUT_COMMANDS = ("migrate", "rollback", "status")


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
    modules = [core_commands, recovery_commands, check_commands, adopt_commands]
    commands = [command for module in modules for command in module.COMMANDS]
    for command in commands:
        if command.name in SCALE_OUT_COMMANDS:
            add_fleet_options(command)
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

    def dsn(self) -> str:
        """The database URL, or a ConfigError saying how to give one."""
        if not self.database_url:
            raise ConfigError(
                "No database given. Pass --database-url, or set DATABASE_URL or PGMIG_DATABASE_URL."
            )
        return self.database_url

    def settings(self) -> Settings:
        """Engine settings from the PGMIG_* environment variables."""
        from ..core.config import env_mapping, settings_from_mapping

        return settings_from_mapping(env_mapping(), directory=self._directory, command=self.command)

    def migrator(self, events: Events) -> Migrator:
        return Migrator(self.dsn(), self.settings(), events=events)

    def fleet_targets(
        self, *, targets_file: str | None, all_schemas: bool, all_binds: bool, bind: str | None
    ) -> list[Target]:
        """Targets for --targets FILE (one DSN a line) or --all-schemas (PGMIG_TENANT_SCHEMAS, a LIKE pattern)."""
        if all_binds or bind:
            raise ConfigError(
                "--bind and --all-binds need 'flask db' (Flask-SQLAlchemy binds); use --targets here."
            )
        if targets_file:
            return targets_from_file(targets_file, self.settings())
        pattern = os.environ.get("PGMIG_TENANT_SCHEMAS")
        if not pattern:
            raise ConfigError("--all-schemas needs PGMIG_TENANT_SCHEMAS, a LIKE pattern such as 'tenant_%'.")
        return tenant_targets(self.dsn(), self.settings(), tenant_schemas(self.dsn(), pattern))


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
