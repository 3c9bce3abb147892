"""Progress events: how the engine tells a front end what it is doing, without printing anything itself."""

from __future__ import annotations


class Events:
    """Receives progress from a :class:`~flask_pgmig.core.migrator.Migrator`; every method is a no-op here.

    Front ends subclass it (the CLI prints lines, the pytest plugin stays quiet).
    """

    def lock_waiting(self, holder: str) -> None:
        """The migration lock is held by someone else, described by ``holder``; we keep polling."""

    def migration_started(self, version: str, name: str, direction: str) -> None:
        """A migration starts; ``direction`` is ``"up"`` or ``"down"``."""

    def migration_finished(self, version: str, name: str, direction: str, duration_ms: int) -> None:
        """A migration was applied (or reverted) and recorded."""

    def statement_started(self, version: str, index: int, total: int, text: str) -> None:
        """Statement ``index`` (1-based) of ``total`` of a migration starts."""

    def retrying(self, version: str, attempt: int, delay: float, reason: str) -> None:
        """A migration hit a lock timeout and runs again from its start after ``delay`` seconds."""

    def notice(self, message: str) -> None:
        """Anything else worth telling the user (a stored down section used, an index dropped...)."""

    def backfill_started(self, version: str, name: str, rows_done: int, rows_total: int | None) -> None:
        """A batched backfill starts (or resumes with ``rows_done`` already done); ``rows_total`` if counted."""

    def batch_done(
        self, version: str, name: str, rows_done: int, rows_total: int | None, rate: float
    ) -> None:
        """A backfill batch committed: ``rows_done`` over every run so far, ``rate`` rows/s in this run."""

    def backfill_finished(self, version: str, name: str, rows: int, duration_ms: int) -> None:
        """A backfill found no row left to update; ``rows`` were updated over every run."""
