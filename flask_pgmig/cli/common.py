"""What every command shares: where the Migrator comes from, error translation, progress lines, JSON.

This is the one place that turns library errors into ``Error: <sentence>`` on stderr with the error's exit code.
Never imports Flask or SQLAlchemy.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, Protocol

import click

from ..core.dsn import redact
from ..core.events import Events
from ..errors import ConfigError, PgMigError
from .progress import ProgressDisplay, progress_after

if TYPE_CHECKING:  # the source builds the Migrator; importing it here would load the engine with every command
    from ..core.migrator import Migrator

SOURCE_KEY = "pgmig.source"


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
        self.error = error  # every library error exits 1 (click's own usage errors exit 2)


def invoke_translating_errors(invoke: Callable[[], Any], ctx: click.Context) -> Any:
    """Run a group's invoke so that library errors end as one 'Error: ...' line with their exit code.

    SIGTERM (a deploy stopping the pod) is handled like Ctrl-C: psycopg cancels the running statement on the
    server, the engine records the outcome and releases the lock, and the command exits 130.
    """
    previous = _on_sigterm(_interrupt)
    try:
        return invoke()
    except PgMigError as error:
        raise PgMigCommandError(error) from None
    except KeyboardInterrupt:
        click.echo(
            "Error: interrupted; the running statement was cancelled and the lock released. Run 'status' to see "
            "what was recorded.",
            err=True,
        )
        ctx.exit(130)
    finally:
        if previous is not None:
            _on_sigterm(previous)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _on_sigterm(handler: Any) -> Any:
    """Install a SIGTERM handler and return the previous one (None when not in the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, handler) or signal.SIG_DFL


class PgMigGroup(click.Group):
    """A group whose commands' PgMigErrors end as one 'Error: ...' line, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        return invoke_translating_errors(lambda: super(PgMigGroup, self).invoke(ctx), ctx)


class CliEvents(Events):
    """Prints one line per migration with its duration, and what the lock holder and retries are doing."""

    def __init__(self, quiet: bool = False, *, progress: bool = False) -> None:
        self.quiet = quiet
        # the timer / backfill display of cli/progress.py, for one command run in the main thread
        self.progress = _progress_display() if progress and not quiet else None

    def _say(self, text: str) -> None:
        if not self.quiet:
            if self.progress is not None:
                self.progress.before_print()
            click.echo(text, err=True)

    def migration_started(self, version: str, name: str, direction: str) -> None:
        if self.progress is not None:
            self.progress.migration_started(f"{version}_{name}")

    def statement_started(self, version: str, index: int, total: int, text: str) -> None:
        if self.progress is not None:
            self.progress.statement_started(index, total, text)

    def backfill_started(self, version: str, name: str, rows_done: int, rows_total: int | None) -> None:
        if self.progress is not None:
            self.progress.backfill_started(name, rows_done, rows_total)

    def batch_done(self, version: str, name: str, rows_done: int, rows_total: int | None, rate: float) -> None:
        if self.progress is not None:
            self.progress.batch_done(name, rows_done, rows_total, rate)

    def backfill_finished(self, version: str, name: str, rows: int, duration_ms: int) -> None:
        if self.progress is not None:
            self.progress.backfill_finished(name, rows, duration_ms)

    def lock_waiting(self, holder: str) -> None:
        self._say(f"Waiting for the migration lock, held by {holder}")

    def migration_finished(self, version: str, name: str, direction: str, duration_ms: int) -> None:
        verb = "applied " if direction == "up" else "reverted"
        if self.progress is not None:
            self.progress.migration_finished()
        if not self.quiet:
            click.echo(f"  {verb}  {version}_{name}  ({ms(duration_ms)})")

    def retrying(self, version: str, attempt: int, delay: float, reason: str) -> None:
        self._say(f"  {version}: lock timeout ({reason}); retry {attempt} in {delay:.1f}s")

    def notice(self, message: str) -> None:
        self._say(f"  {message}")


def source() -> MigratorSource:
    """The MigratorSource the group put in the click context."""
    ctx = click.get_current_context()
    found = ctx.meta.get(SOURCE_KEY)
    if found is None:
        raise ConfigError("No database configured for this command. Use 'flask db' with PgMig, or 'pgmig'.")
    return found  # type: ignore[no-any-return]


def migrator(as_json: bool = False) -> Migrator:
    """A Migrator that prints progress lines (none with --json)."""
    return source().migrator(CliEvents(quiet=as_json, progress=True))


def _progress_display() -> ProgressDisplay:
    """A progress display on stderr, stopped when the command's click context closes."""
    display = ProgressDisplay(sys.stderr, after=progress_after())
    ctx = click.get_current_context(silent=True)
    if ctx is not None:
        ctx.call_on_close(display.close)
    return display


def ms(duration_ms: int) -> str:
    """A duration for humans."""
    return f"{duration_ms} ms" if duration_ms < 10_000 else f"{duration_ms / 1000:.1f} s"


def emit_json(data: dict[str, Any]) -> None:
    """Print a JSON document."""
    click.echo(json.dumps(data, indent=2, default=str, ensure_ascii=False))


json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print machine-readable JSON (stable fields)."
)


def fail_unless(ok: bool) -> None:
    """Exit 1 (a --check that is not clean)."""
    if not ok:
        sys.exit(1)
