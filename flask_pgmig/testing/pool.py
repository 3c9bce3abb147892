"""Spare clones of the template, made ahead of need on the background worker while the current test runs.

A test's set-up then only takes a database that is already there. The rules that keep this safe:

* a spare is handed out once, and only as a fresh copy: it is made for the next test and nobody connects to
  it before that test does (its name is this session's, never known to a test until handed out);
* a spare remembers the template it was cloned from (the template database's oid, which changes whenever the
  template is rebuilt); one cloned from a template that has since been rebuilt is dropped, never handed out;
* spares carry the session's database names (``pgmig_t_<session>_<n>``): the session drops them when it ends,
  and when it is killed, the next session's janitor drops them with the rest of its databases.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from .worker import BackgroundWorker

Connection = psycopg.Connection[Any]

#: Spare clones kept ahead of need. One is enough to clone while a test runs; more only add databases for each
#: DROP DATABASE's checkpoint to flush (measured: no faster at 2).
SPARES = 1
#: The STRATEGY of a spare's CREATE DATABASE from PostgreSQL 15 on. A spare lives through other tests' drops,
#: and each DROP DATABASE checkpoints: a WAL_LOG clone (the default strategy) would be written out and synced
#: there, file by file, slowing the drops down; FILE_COPY syncs its files as it copies them, on the cloning
#: thread. Measured at 1000 migrations with 0.3 s tests: 0.16-0.27 s per test with FILE_COPY spares, 0.47-0.67
#: with WAL_LOG spares. A clone made when asked keeps the server's default (WAL_LOG measured the faster there).
SPARE_STRATEGY = "FILE_COPY"


@dataclass(frozen=True)
class Spare:
    """A database being (or already) cloned on the worker, from the template whose oid is ``template_oid``."""

    name: str
    template_oid: int
    made: Future[None]


def clone_statement(name: str, template: str, strategy: str | None) -> sql.Composed:
    """``CREATE DATABASE name TEMPLATE template [STRATEGY s]`` (the clause exists from PostgreSQL 15 on)."""
    query = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(template))
    return query + sql.SQL(" STRATEGY {}").format(sql.SQL(strategy)) if strategy else query


class SparePool:
    """Up to ``size`` spares of one template, cloned in order on ``worker``.

    :param new_name: gives the name of the next database (the session's counter).
    :param strategy: the ``STRATEGY`` of ``CREATE DATABASE``, or None for the server's default.
    """

    def __init__(
        self, worker: BackgroundWorker, size: int, new_name: Callable[[], str], strategy: str | None
    ) -> None:
        self.worker = worker
        self.size = size
        self.new_name = new_name
        self.strategy = strategy
        self._spares: deque[Spare] = deque()
        self._handed: dict[str, float] = {}  # name -> when it was handed out
        self._last_held: float | None = None  # how long the last test held its database
        self._last_clone: float | None = None  # how long the last clone made when asked took

    def handed_out(self, name: str) -> None:
        """Database ``name`` goes to a test now."""
        self._handed[name] = time.perf_counter()

    def given_back(self, name: str) -> None:
        """Database ``name`` is dropped: its test is over."""
        handed = self._handed.pop(name, None)
        if handed is not None:
            self._last_held = time.perf_counter() - handed

    def cloned_when_asked(self, seconds: float) -> None:
        """A clone made on the caller's thread took ``seconds`` (what a test waits without spares)."""
        self._last_clone = seconds

    def wanted(self, ahead: bool | None) -> bool:
        """Make spares: always (True), never (False), or (None) while the last test held its database at
        least as long as the last clone made when asked took, so that the next spare can be ready in time."""
        if ahead is not None or self.size <= 0:
            return bool(ahead) and self.size > 0
        held, clone = self._last_held, self._last_clone
        return held is not None and clone is not None and held >= clone

    def __len__(self) -> int:
        return len(self._spares)

    def take(self, template_oid: int) -> str | None:
        """The oldest spare cloned from the current template (waiting for it if still being made), or None.

        A spare that failed (the caller clones at once instead, with its own retries) or that comes from an
        older template is dropped, never handed out.
        """
        while self._spares:
            spare = self._spares.popleft()
            if spare.template_oid != template_oid:
                self.worker.drop(spare.name)  # queued after its CREATE: the worker keeps order
                continue
            try:
                spare.made.result()
            except Exception:
                self.worker.drop(spare.name)  # normally nothing to drop; IF EXISTS makes sure
                continue
            return spare.name
        return None

    def fill(self, template: str, template_oid: int) -> None:
        """Queue clones of ``template`` until ``size`` spares are made or on their way."""
        while len(self._spares) < self.size:
            name = self.new_name()
            query = clone_statement(name, template, self.strategy)

            def create(conn: Connection, query: sql.Composed = query) -> None:
                conn.execute(query)

            self._spares.append(Spare(name, template_oid, self.worker.submit(create)))

    def discard(self) -> None:
        """Give up every spare: cancel the clones not started, queue a drop for the others."""
        while self._spares:
            spare = self._spares.popleft()
            if not spare.made.cancel():
                self.worker.drop(spare.name)


__all__ = ["Spare", "SparePool", "clone_statement"]
