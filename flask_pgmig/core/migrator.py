"""The Migrator: the facade every front end drives (status, migrate, rollback, and what other modules add).

It returns result objects and raises :mod:`flask_pgmig.errors`; it never prints and never exits. Progress goes
to the :class:`~flask_pgmig.core.events.Events` it is given.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql as pgsql

from ..errors import ConfigError, FailedMigration, MigrationFailed, PgMigError
from . import dsn as dsn_module
from . import plan as planning
from . import repair as recovery
from .events import Events
from .failures import translating
from .files import MigrationFile, discover, list_directory
from .history import HistoryTable
from .lock import lock_key, migration_lock
from .plan import HistoryRecord, RollbackStep, Status
from .quick_status import parse_all, read_files
from .sql import split_statements

if TYPE_CHECKING:  # imported when used: they build on the Migrator, or (runner) only running needs them
    from .baseline import BaselineResult
    from .dry_run import DryRunExecution
    from .runner import Runner
    from .verify import VerifyReport

Connection = psycopg.Connection[Any]


@dataclass(frozen=True)
class Settings:
    """Everything a Migrator needs besides the DSN; front ends fill it from PGMIG_* config or flags."""

    directory: Path
    schema: str = "public"
    table: str = "pgmig_history"
    lock_wait: float = 60.0
    lock_timeout_ms: int | None = 5000
    lock_retries: int = 3
    statement_timeout_ms: int | None = None
    out_of_order: bool = False
    role: str | None = None
    command: str = "flask db"
    context: Any = None
    connect_kwargs: dict[str, Any] = field(default_factory=dict)
    search_path: str | None = None  # a tenant schema: migrations create their objects there (then public)


@dataclass(frozen=True)
class AppliedStep:
    """One migration applied or reverted by a run, with its duration."""

    version: str
    name: str
    duration_ms: int

    @property
    def id(self) -> str:
        """``<version>_<name>``."""
        return f"{self.version}_{self.name}"


@dataclass(frozen=True)
class RunResult:
    """What a migrate or rollback run did (or, with ``dry_run``, would do)."""

    action: str
    steps: tuple[AppliedStep, ...] = ()
    planned: tuple[MigrationFile, ...] = ()
    rollback_plan: tuple[RollbackStep, ...] = ()
    dry_run: bool = False
    status: Status | None = None


class Migrator:
    """Drives one migrations directory against one database."""

    def __init__(self, dsn: str, settings: Settings, *, events: Events | None = None) -> None:
        self.dsn = dsn
        self.settings = settings
        self.events = events or Events()
        self.history = HistoryTable(settings.schema, settings.table)

    @classmethod
    def create(
        cls, dsn: str, directory: str | Path, *, events: Events | None = None, **options: Any
    ) -> Migrator:
        """Convenience constructor: ``Migrator.create(url, "migrations", lock_timeout_ms=2000)``."""
        return cls(dsn, Settings(directory=Path(directory), **options), events=events)

    # -- files and connections ---------------------------------------------------------------------------------
    def files(self) -> list[MigrationFile]:
        """Parse the migrations directory (every call reads it afresh)."""
        return discover(self.settings.directory, init_hint=f"{self.settings.command} init")

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        """An autocommit connection with application_name=pgmig, keepalives and PGMIG_ROLE applied."""
        conn = dsn_module.connect(self.dsn, autocommit=True, **self.settings.connect_kwargs)
        try:
            if self.settings.role:
                conn.execute(pgsql.SQL("SET ROLE {}").format(pgsql.Identifier(self.settings.role)))
            if self.settings.search_path:
                conn.execute(
                    pgsql.SQL("SET search_path TO {}, public").format(pgsql.Identifier(self.settings.search_path))
                )
            yield conn
        finally:
            conn.close()

    # -- status ----------------------------------------------------------------------------------------------
    @translating("status")
    def status(self) -> Status:
        """Every migration with its state, cosmetic edits told apart, INVALID indexes listed. Read-only.

        Files whose raw bytes hash to their applied history row's ``file_sha256`` are not parsed
        (:mod:`.quick_status`); the result is the same as parsing every file.
        """
        with self._connect_and_read() as (conn, files, records):
            status = planning.compute_status(files, records)
            return recovery.describe(conn, self.history, status, files)

    @contextmanager
    def _connect_and_read(self) -> Iterator[tuple[Connection, list[MigrationFile], list[HistoryRecord]]]:
        """A connection, the history rows, and the files read against them: a file whose raw bytes hash to its
        applied row's ``file_sha256`` is vouched for, not parsed (a deploy usually finds most files applied).
        When the database fails before the files are read, a broken file is still the error to report."""
        listed = list_directory(self.settings.directory, init_hint=f"{self.settings.command} init")
        files: list[MigrationFile] | None = None
        try:
            with self.connect() as conn:
                records = self.history.read(conn)
                files = read_files(listed, records)
                yield conn, files, records
        except (PgMigError, psycopg.Error):
            if files is None:
                parse_all(listed)
            raise

    # -- migrate ---------------------------------------------------------------------------------------------
    @translating("migrate")
    def migrate(
        self,
        *,
        to: str | None = None,
        dry_run: bool = False,
        atomic: bool = False,
        allow_out_of_order: bool | None = None,
        resume: bool = False,
    ) -> RunResult:
        """Apply pending migrations in version order (up to ``to``), each with its history row."""
        out_of_order = self.settings.out_of_order if allow_out_of_order is None else allow_out_of_order
        with self._connect_and_read() as (conn, files, records):
            return self._migrate(conn, files, records, to, dry_run, atomic, out_of_order, resume)

    def _migrate(
        self, conn: Connection, files: list[MigrationFile], records: list[HistoryRecord], to: str | None,
        dry_run: bool, atomic: bool, out_of_order: bool, resume: bool,
    ) -> RunResult:  # fmt: skip
        from .runner import preflight  # the runner (backfill, pglast) loads only when something may run

        status = planning.compute_status(files, records)
        for state in status.pending:  # refuse what cannot run before anything runs, even the history DDL
            assert state.file is not None
            preflight(state.file)
        if not status.having(planning.PENDING, planning.FAILED, planning.RUNNING) or dry_run:
            status = recovery.annotate_changes(conn, self.history, status)
            planning.validate(status, allow_out_of_order=out_of_order, command=self.settings.command)
            planned = planning.plan_migrate(status, to=to)
            return RunResult("migrate", planned=tuple(planned), dry_run=dry_run, status=status)
        with self._locked(conn):
            self.history.ensure(conn)
            status = planning.compute_status(files, self.history.read(conn))
            resumed = self._resume_target(conn, status) if resume else None
            status = recovery.annotate_changes(conn, self.history, status)
            planning.validate(
                _without(status, resumed), allow_out_of_order=out_of_order, command=self.settings.command
            )
            planned = planning.plan_migrate(status, to=to)
            if atomic:
                self._refuse_non_transactional(planned)
            self._refuse_read_only(conn)
            return self._run_migrations(conn, status, planned, resumed, atomic=atomic)

    def _run_migrations(
        self,
        conn: Connection,
        status: Status,
        planned: list[MigrationFile],
        resumed: tuple[MigrationFile, int] | None,
        *,
        atomic: bool,
    ) -> RunResult:
        runner = self._runner(conn)
        steps: list[AppliedStep] = []
        try:
            if resumed is not None:
                migration, done = resumed
                steps.append(
                    AppliedStep(migration.version, migration.name, runner.apply(migration, resume_from=done))
                )
            if atomic and planned:
                durations = runner.apply_atomic(planned)
                steps.extend(AppliedStep(m.version, m.name, d) for m, d in zip(planned, durations, strict=True))
            else:
                runner.apply_each(planned, lambda m, duration: steps.append(AppliedStep(m.version, m.name, duration)))
        except PgMigError as error:
            self._audit(conn, "migrate", "failed", [s.version for s in steps], {"error": error.message})
            raise
        except KeyboardInterrupt:
            self._audit(conn, "migrate", "interrupted", [s.version for s in steps], {"error": "Ctrl-C or SIGTERM"})
            raise
        except Exception as error:  # a database error translated further up, or one of the caller's callbacks
            self._audit(conn, "migrate", "failed", [s.version for s in steps], {"error": str(error)})
            raise
        self._audit(conn, "migrate", "ok", [s.version for s in steps], {"atomic": atomic})
        return RunResult("migrate", steps=tuple(steps), planned=tuple(planned), status=status)

    def _resume_target(self, conn: Connection, status: Status) -> tuple[MigrationFile, int] | None:
        from .runner import preflight

        stuck = status.having(planning.FAILED, planning.RUNNING)
        if not stuck:
            return None
        state = stuck[0]
        if state.file is None or state.record is None:
            raise FailedMigration(
                f"Migration '{state.id}' failed earlier and its file is gone, so it cannot be resumed. Restore "
                f"the file, or run '{self.settings.command} repair --mark-rolled-back {state.version}'.",
                version=state.version,
            )
        done = state.record.statements_done or 0
        stored = self.history.up_sql(conn, state.version) or ""
        statements = preflight(state.file)
        if [s.text for s in split_statements(stored)[:done]] != [s.text for s in statements[:done]]:
            raise FailedMigration(
                f"Migration '{state.id}' cannot be resumed: the {done} statements that already ran have changed in "
                f"the file since. Restore them, or resolve it with '{self.settings.command} repair "
                f"--mark-applied {state.version}' / '--mark-rolled-back {state.version}'.",
                version=state.version,
            )
        self.events.notice(f"{state.id}: resuming after statement {done} of {len(statements)}")
        return state.file, done

    def _refuse_non_transactional(self, planned: list[MigrationFile]) -> None:
        for migration in planned:
            if not migration.transactional:
                raise ConfigError(
                    f"--atomic runs every pending migration in one transaction, but '{migration.path.name}' is "
                    "transaction:false. Run without --atomic, or migrate up to the version before it first."
                )

    def _refuse_non_transactional_down(self, plan: list[RollbackStep]) -> None:
        for step in plan:
            if not step.down.options.transaction:
                raise ConfigError(
                    f"rollback --atomic reverts every planned migration in one transaction, but the down section "
                    f"of '{step.display}' is transaction:false. Run without --atomic, or roll back to "
                    f"{step.version} first and the rest after."
                )

    def _refuse_read_only(self, conn: Connection) -> None:
        row = conn.execute(
            "SELECT pg_is_in_recovery(), current_setting('transaction_read_only') = 'on'"
        ).fetchone()
        if row and (row[0] or row[1]):
            where = "a read-only standby (pg_is_in_recovery() is true)" if row[0] else "read-only"
            raise ConfigError(
                f"The database is {where}, so no migration can run on it. Point PGMIG_DATABASE_URL at the primary."
            )

    # -- rollback --------------------------------------------------------------------------------------------
    @translating("rollback")
    def rollback(
        self, *, steps: int | None = 1, to: str | None = None, everything: bool = False, dry_run: bool = False,
        atomic: bool = False,
    ) -> RunResult:  # fmt: skip
        """Revert applied migrations newest first: the newest ``steps``, everything after ``to``, or all.

        Each in its own transaction with the removal of its history row; with ``atomic``, all in one.
        """
        files = self.files()
        with self.connect() as conn:
            status = planning.compute_status(files, self.history.read(conn))
            plan = planning.plan_rollback(
                status, steps=steps, to=to, everything=everything, command=self.settings.command
            )
            self._refuse_unrunnable_down(status, plan)  # as migrate's dry run checks the up sections
            if dry_run or not plan:
                return RunResult("rollback", rollback_plan=tuple(plan), dry_run=dry_run, status=status)
            with self._locked(conn):
                self.history.ensure(conn)
                status = planning.compute_status(files, self.history.read(conn))
                plan = planning.plan_rollback(
                    status, steps=steps, to=to, everything=everything, command=self.settings.command
                )
                if atomic:
                    self._refuse_non_transactional_down(plan)
                self._refuse_read_only(conn)
                return self._run_rollback(conn, status, plan, atomic=atomic)

    @staticmethod
    def _refuse_unrunnable_down(status: Status, plan: list[RollbackStep]) -> None:
        """Refuse, before anything is reverted, a down section its transaction mode cannot run (a COMMIT in a
        transactional one would commit half of it and keep its history row)."""
        from .runner import preflight_down

        files = {m.version: m.file for m in status.migrations}
        for step in plan:
            preflight_down(step, files.get(step.version))

    def _run_rollback(
        self, conn: Connection, status: Status, plan: list[RollbackStep], *, atomic: bool
    ) -> RunResult:
        runner = self._runner(conn)
        by_version = {m.version: m.file for m in status.migrations}
        done: list[AppliedStep] = []
        try:
            if atomic:
                durations = runner.revert_atomic(plan, by_version)
                done.extend(AppliedStep(s.version, s.name, d) for s, d in zip(plan, durations, strict=True))
            else:
                runner.revert_each(
                    plan, by_version, lambda s, duration: done.append(AppliedStep(s.version, s.name, duration))
                )
        except PgMigError as error:
            self._audit(conn, "rollback", "failed", [s.version for s in done], {"error": error.message})
            raise
        except KeyboardInterrupt:
            self._audit(conn, "rollback", "interrupted", [s.version for s in done], {"error": "Ctrl-C or SIGTERM"})
            raise
        except Exception as error:  # a database error translated further up, or one of the caller's callbacks
            self._audit(conn, "rollback", "failed", [s.version for s in done], {"error": str(error)})
            raise
        self._audit(conn, "rollback", "ok", [s.version for s in done], {"atomic": atomic})
        return RunResult("rollback", steps=tuple(done), rollback_plan=tuple(plan), status=status)

    # -- recovery --------------------------------------------------------------------------------------------
    @translating("repair")
    def repair(self, action: str, version: str) -> recovery.RepairResult:
        """Resolve a failed or interrupted migration, or accept an edited checksum (audit-logged, under the lock)."""
        files = self.files()
        with self.connect() as conn, self._locked(conn):
            self.history.ensure(conn)
            status = planning.compute_status(files, self.history.read(conn))
            self._refuse_read_only(conn)
            return recovery.repair(conn, self.history, status, action, version, command=self.settings.command)

    @translating("reading the audit log")
    def audit_log(self, limit: int = 100) -> list[recovery.AuditEntry]:
        """The newest runs (migrate, rollback, repair, baseline), newest first. Read-only."""
        with self.connect() as conn:
            return [recovery.AuditEntry(*row) for row in self.history.audit_log(conn, limit)]

    # -- check and verify ------------------------------------------------------------------------------------
    def verify(self, scratch_dsn: str, *, strict: bool = False, require_empty: bool = True) -> VerifyReport:
        """Up, down and up again for every migration on the empty database ``scratch_dsn`` (core/verify.py)."""
        from .verify import verify_directory

        return verify_directory(
            scratch_dsn, self.settings, strict=strict, events=self.events, require_empty=require_empty
        )

    def dry_run_execute(
        self, *, to: str | None = None, allow_out_of_order: bool | None = None
    ) -> DryRunExecution:
        """``migrate --dry-run --execute``: run the plan in a transaction and roll it back (core/dry_run.py)."""
        from .dry_run import execute

        plan = self.migrate(to=to, dry_run=True, allow_out_of_order=allow_out_of_order)
        with self.connect() as conn:
            runner = self._runner(conn)
            runner.events = Events()  # nothing is applied for real: no "applied" lines
            return execute(conn, runner, self.history, plan.planned)

    # -- adoption --------------------------------------------------------------------------------------------
    def baseline(
        self,
        version: str | None = None,
        *,
        force: bool = False,
        from_schema: bool = False,
        pg_dump: str | None = None,
    ) -> BaselineResult:
        """Mark migrations up to ``version`` as applied without running them (see :mod:`.baseline`)."""
        from . import baseline as adoption

        if from_schema:
            return adoption.baseline_from_schema(self, version=version, pg_dump=pg_dump, force=force)
        if version is None:
            raise ConfigError(f"Give the version to baseline to, e.g. '{self.settings.command} baseline VERSION'.")
        return adoption.baseline(self, version, force=force)

    # -- shared ----------------------------------------------------------------------------------------------
    def _runner(self, conn: Connection) -> Runner:
        from .runner import Runner, RunSettings

        settings = RunSettings(
            lock_timeout_ms=self.settings.lock_timeout_ms,
            statement_timeout_ms=self.settings.statement_timeout_ms,
            lock_retries=self.settings.lock_retries,
            context=self.settings.context,
            role=self.settings.role,
            command=self.settings.command,
        )
        return Runner(conn, self.history, settings, self.events)

    @contextmanager
    def _locked(self, conn: Connection) -> Iterator[None]:
        database = conn.info.dbname
        key = lock_key(database, self.settings.schema, self.settings.table)
        with migration_lock(
            conn,
            key,
            wait_seconds=self.settings.lock_wait,
            on_wait=self.events.lock_waiting,
            target=f"database '{database}' ({self.history.display})",
        ):
            yield

    def _audit(
        self, conn: Connection, action: str, outcome: str, versions: list[str], detail: dict[str, Any]
    ) -> None:
        if conn.broken or conn.closed:
            return
        try:
            if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                conn.rollback()
            self.history.audit(conn, action, outcome, versions, detail)
        except psycopg.Error:
            pass  # the audit log must never hide the error that is being reported


def _without(status: Status, resumed: tuple[MigrationFile, int] | None) -> Status:
    """The status with the migration being resumed counted as pending, so validation lets it through."""
    if resumed is None:
        return status
    version = resumed[0].version
    return Status(
        tuple(replace(m, state=planning.PENDING) if m.version == version else m for m in status.migrations)
    )


__all__ = ["AppliedStep", "MigrationFailed", "Migrator", "RunResult", "Settings"]
