"""The click commands, served as ``flask db <command>`` (through the extension) and as the standalone ``pgmig``.

Commands live in small modules by subject; :func:`register` gives a group all of them through
:class:`LazyCommands`, which imports a command's module only when that command is looked up, so ``pgmig status``
loads neither the linter, the verifier nor the adoption code. Importing this package never imports Flask or
SQLAlchemy.
"""

from __future__ import annotations

import atexit
import importlib
import os
import sys
import threading
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import click

from .. import __version__
from ..core.dsn import redact_url
from ..errors import ConfigError
from .common import SOURCE_KEY, PgMigGroup, invoke_translating_errors

if TYPE_CHECKING:
    from ..core.events import Events
    from ..core.fleet import Target
    from ..core.migrator import Migrator, Settings

# Each command's module (in this package; its COMMANDS list defines it), and each alias's command. A test keeps
# this table and the modules' COMMANDS in step.
COMMAND_MODULES = {
    "init": "core_commands", "new": "core_commands", "migrate": "core_commands", "rollback": "core_commands",
    "status": "status_commands",
    "repair": "recovery_commands", "history": "recovery_commands",
    "check": "check_commands", "verify": "check_commands",
    "baseline": "adopt_commands", "import": "adopt_commands",
}  # fmt: skip
ALIASES = {"upgrade": "migrate", "downgrade": "rollback", "current": "status"}  # Flask-Migrate habits
SCALE_OUT_COMMANDS = ("migrate", "rollback", "status")


def _alias(command: click.Command, name: str) -> click.Command:
    return click.Command(
        name,
        callback=command.callback,
        params=command.params,
        help=f"Alias of '{command.name}' (Flask-Migrate habit).",
        short_help=f"Alias of '{command.name}'.",
    )  # fmt: skip


def load_command(name: str) -> click.Command:
    """Import the module of command (or alias) ``name`` and return the command, scale-out options attached."""
    target = ALIASES.get(name, name)
    module = importlib.import_module(f".{COMMAND_MODULES[target]}", __name__)
    command: click.Command = next(c for c in module.COMMANDS if c.name == target)
    if target in SCALE_OUT_COMMANDS:
        from .fleet_options import add_fleet_options

        add_fleet_options(command)  # idempotent: the standalone group and 'flask db' share the command
    return command if name == target else _alias(command, name)


class LazyCommands(MutableMapping[str, click.Command]):
    """A group's commands by name (click's ``Group.commands``), each loaded the first time it is looked up.

    Listing the names (``--help``, a typo's suggestions) needs no import; looking one up imports its module.
    """

    def __init__(self) -> None:
        self._loaded: dict[str, click.Command] = {}
        self._names = set(COMMAND_MODULES) | set(ALIASES)

    def __getitem__(self, name: str) -> click.Command:
        if name not in self._loaded:
            if name not in self._names:
                raise KeyError(name)
            self._loaded[name] = load_command(name)
        return self._loaded[name]

    def __setitem__(self, name: str, command: click.Command) -> None:
        self._names.add(name)
        self._loaded[name] = command

    def __delitem__(self, name: str) -> None:
        if name not in self._names:
            raise KeyError(name)
        self._names.discard(name)
        self._loaded.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._names))

    def __len__(self) -> int:
        return len(self._names)

    def __contains__(self, name: object) -> bool:
        return name in self._names


def all_commands() -> tuple[list[click.Command], dict[str, click.Command]]:
    """Every command and every alias, loaded (each module imported)."""
    commands = [load_command(name) for name in COMMAND_MODULES]
    return commands, {alias: load_command(alias) for alias in ALIASES}


def register(group: click.Group) -> click.Group:
    """Give a group (the standalone one, or the extension's ``flask db``) every command and alias, lazily."""
    lazy = LazyCommands()
    for name, command in group.commands.items():  # keep what the group already had
        lazy[name] = command
    group.commands = lazy
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
        from ..core.migrator import Migrator

        return Migrator(self.dsn(), self.settings(), events=events)

    def fleet_targets(
        self, *, targets_file: str | None, all_schemas: bool, all_binds: bool, bind: str | None
    ) -> list[Target]:
        """Targets for --targets FILE (one DSN a line) or --all-schemas (PGMIG_TENANT_SCHEMAS, a LIKE pattern)."""
        from ..core.fleet import targets_from_file, tenant_schemas, tenant_targets

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
    """Run ``pgmig`` with ``argv`` (default: the command line); ends in SystemExit, as click commands do."""
    cli.main(args=argv, prog_name="pgmig")


def run() -> NoReturn:
    """Entry point of the ``pgmig`` console script and of ``python -m flask_pgmig.cli``: :func:`main`, then
    the exit without the interpreter's teardown, which only frees memory the process is about to give back
    (tens of ms with a thousand migrations loaded). Every connection is closed by then. What else an exit
    does still happens: the atexit handlers run (logging's, and any that a Python migration registered), and
    what the process printed is flushed; while a thread that is not a daemon still runs, the usual exit waits
    for it."""
    try:
        main()
        status = 0
    except SystemExit as done:
        status = _exit_status(done.code)
    if any(not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        sys.exit(status)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:  # None when the process was started with the stream closed
                stream.flush()
        except (OSError, ValueError):  # a closed pipe: what Python's own exit would report as status 120
            status = status or 120
    os._exit(status)


def _exit_status(code: object) -> int:
    """The process status for ``SystemExit(code)``, as the interpreter computes it (printing a message)."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


__all__ = [
    "SOURCE_KEY", "LazyCommands", "PgMigGroup", "all_commands", "cli", "invoke_translating_errors", "load_command",
    "main", "register", "run",
]  # fmt: skip
