"""Drop test databases on a thread of their own, so that a test's teardown does not wait for DROP DATABASE.

``DROP DATABASE`` costs about as much as cloning one (it removes the files and syncs), and nothing after the
test needs to wait for it. The thread has its own connection; :meth:`BackgroundDropper.close` waits until
everything queued is dropped and returns the names it could not drop, for the caller to retry.
"""

from __future__ import annotations

import queue
import threading
from typing import Any

import psycopg
from psycopg import sql

from ..core import dsn as dsn_module


class BackgroundDropper:
    """A queue of database names and a thread that drops them (``WITH (FORCE)``), started on first use."""

    def __init__(self, server_url: str, application_name: str) -> None:
        self.server_url = server_url
        self.application_name = application_name
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._failed: list[str] = []

    def drop(self, name: str) -> None:
        """Queue database ``name`` to be dropped."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="pgmig-dropper", daemon=True)
            self._thread.start()
        self._queue.put(name)

    def close(self) -> list[str]:
        """Wait for every queued drop; return the names that failed (the caller retries them)."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None
        failed, self._failed = self._failed, []
        return failed

    def _run(self) -> None:
        conn: psycopg.Connection[Any] | None = None
        try:
            while (name := self._queue.get()) is not None:
                try:
                    if conn is None or conn.closed or conn.broken:
                        conn = dsn_module.connect(
                            self.server_url, autocommit=True, application_name=self.application_name
                        )
                    conn.execute(
                        sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                    )
                except Exception:  # the connection or the drop failed: close() hands it back to be retried
                    self._failed.append(name)
        finally:
            if conn is not None:
                conn.close()


__all__ = ["BackgroundDropper"]
