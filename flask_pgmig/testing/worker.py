"""A thread with a connection of its own that runs database jobs in order: drops, and the clones of spares.

A test's database costs two statements: ``CREATE DATABASE ... TEMPLATE`` before the test and ``DROP DATABASE``
after it. Nothing after a test needs to wait for its ``DROP DATABASE`` (which removes the files and makes the
server checkpoint), so :class:`~flask_pgmig.testing.TemplateDatabases` queues it on a worker; another worker
clones spares (see :mod:`.pool`). :meth:`BackgroundWorker.close` runs what is queued, then hands back the
names whose drop failed, for the caller to retry.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

import psycopg
from psycopg import sql

from ..core import dsn as dsn_module

Connection = psycopg.Connection[Any]
T = TypeVar("T")
_Job = tuple[Callable[[Connection], Any], "Future[Any]"]


class BackgroundWorker:
    """A FIFO of jobs, each run with the worker's connection on its thread (started on first use).

    :param server_url: the server's maintenance database URL.
    :param application_name: of the worker's connection (never one the janitor reads as a live session).
    """

    def __init__(self, server_url: str, application_name: str) -> None:
        self.server_url = server_url
        self.application_name = application_name
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._failed_drops: list[str] = []

    def submit(self, job: Callable[[Connection], T]) -> Future[T]:
        """Queue ``job(connection)``; its result (or exception) arrives in the returned future."""
        future: Future[T] = Future()
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="pgmig-worker", daemon=True)
                self._thread.start()
            self._queue.put((job, future))
        return future

    def drop(self, name: str) -> None:
        """Queue ``DROP DATABASE name WITH (FORCE)``; a failure is kept for :meth:`close` to hand back."""

        def job(conn: Connection) -> None:
            try:
                drop_database(conn, name)
            except Exception:  # the connection or the drop failed: close() hands it back to be retried
                self._failed_drops.append(name)
                raise

        self.submit(job)

    def wait(self) -> None:
        """Return once every job queued so far has run (at once when none ever was)."""
        if self._thread is not None:
            self.submit(lambda conn: None).result()

    def close(self) -> list[str]:
        """Run every queued job, stop the thread; return the names whose drop failed (the caller retries)."""
        with self._lock:
            thread, self._thread = self._thread, None
            if thread is not None:
                self._queue.put(None)
        if thread is not None:
            thread.join()
        failed, self._failed_drops = self._failed_drops, []
        return failed

    def _run(self) -> None:
        conn: Connection | None = None
        try:
            while (item := self._queue.get()) is not None:
                job, future = item
                if not future.set_running_or_notify_cancel():
                    continue
                try:
                    if conn is None or conn.closed or conn.broken:
                        conn = dsn_module.connect(
                            self.server_url, autocommit=True, application_name=self.application_name
                        )
                    future.set_result(job(conn))
                except BaseException as error:  # handed to whoever waits on the future
                    future.set_exception(error)
        finally:
            if conn is not None:
                conn.close()


def drop_database(conn: Connection, name: str) -> None:
    """``DROP DATABASE IF EXISTS name WITH (FORCE)``: whoever is still connected is disconnected."""
    conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


__all__ = ["BackgroundWorker", "drop_database"]
