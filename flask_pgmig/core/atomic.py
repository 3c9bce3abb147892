"""``migrate --atomic``: every planned migration in one transaction, all or nothing.

Round trips as psql's ``--single-transaction`` needs them: BEGIN travels with the first statement, each
statement goes alone, and the history rows of all migrations are written by one INSERT sent with the COMMIT.
No savepoint per migration: past 64 subtransactions PostgreSQL's per-backend cache overflows and every later
statement slows down. The timeouts are set again only when a file's options change them. A lock timeout
retries the whole transaction, since retrying one migration inside it would sleep while holding the locks
the earlier ones took.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .files import MigrationFile

if TYPE_CHECKING:
    from .runner import Runner

Timeouts = tuple[int | None, int | None]


def apply_atomic(runner: Runner, migrations: Sequence[MigrationFile]) -> list[int]:
    """Apply ``migrations`` in one transaction and record them; return each one's duration in ms."""
    from .runner import preflight

    plans = [(migration, preflight(migration)) for migration in migrations]
    durations: list[int] = []
    first, last = migrations[0].version, migrations[-1].version
    label = first if first == last else f"{first}..{last}"

    if runner.in_transaction:
        raise RuntimeError("--atomic opens its own transaction; it cannot run inside another one")

    def attempt() -> None:
        durations.clear()
        current: Timeouts | None = None
        prefix = "BEGIN; "
        try:
            for migration, statements in plans:
                runner.events.migration_started(migration.version, migration.name, "up")
                started = time.perf_counter()
                wanted = runner._timeouts(migration.up.options)
                if wanted != current:
                    query = runner.timeouts_query(wanted, local=True, reset_unset=current is not None)
                    prefix += "" if query is None else query.as_string(runner.conn) + "; "
                    current = wanted
                if migration.kind == "py":
                    if prefix:
                        runner.conn.execute(prefix.encode("utf-8"), prepare=False)
                    runner._run_python(migration, "up")
                else:
                    section = migration.up
                    runner.run_statements(
                        migration.version, migration.path.name, section, statements, prefix=prefix
                    )
                prefix = ""
                durations.append(round((time.perf_counter() - started) * 1000))
                runner.events.migration_finished(migration.version, migration.name, "up", durations[-1])
            write = runner.history.upsert_many_query(migrations, durations)
            runner.commit_with(label, runner.history_write(write, expected=len(migrations)))
        except BaseException:
            runner.rollback_quietly()
            raise

    runner._with_retries(label if first == last else f"{label} (--atomic)", attempt)
    return list(durations)


__all__ = ["apply_atomic"]
