"""Many targets at once: binds, tenant schemas, or a list of databases, each with its own lock and history.

A target that fails does not stop the others (unless ``fail_fast``); the report says, per target, what was
applied, what was already up to date, and why a target failed. Re-running retries only what is behind, since every
target's own history decides what is pending.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..errors import ConfigError, PgMigError
from . import dsn as dsn_module
from .events import Events
from .migrator import Migrator, RunResult, Settings
from .plan import Status

APPLIED, UP_TO_DATE, FAILED, SKIPPED, BEHIND = "applied", "up to date", "failed", "skipped", "behind"


@dataclass(frozen=True)
class Target:
    """One database (or one schema in it) to drive: a display name, a DSN and its settings."""

    name: str
    dsn: str
    settings: Settings


@dataclass(frozen=True)
class TargetOutcome:
    """What happened to one target."""

    target: str
    outcome: str
    count: int = 0
    detail: str = ""
    duration_ms: int = 0
    result: RunResult | Status | None = None


@dataclass(frozen=True)
class FleetReport:
    """Every target's outcome, in the order the targets were given."""

    outcomes: tuple[TargetOutcome, ...]

    @property
    def failed(self) -> list[TargetOutcome]:
        """Targets that failed."""
        return [o for o in self.outcomes if o.outcome == FAILED]

    @property
    def ok(self) -> bool:
        """True when no target failed or was skipped."""
        return all(o.outcome not in (FAILED, SKIPPED) for o in self.outcomes)


Operation = Callable[[Migrator], "RunResult | Status"]


def run_fleet(
    targets: Sequence[Target],
    operation: Operation,
    *,
    jobs: int = 1,
    fail_fast: bool = False,
    events_for: Callable[[Target], Events] | None = None,
) -> FleetReport:
    """Run ``operation`` on every target with ``jobs`` workers; never raises for a target's own failure."""
    if jobs < 1:
        raise ConfigError(f"--jobs must be 1 or more, not {jobs}.")
    names = [t.name for t in targets]
    if len(set(names)) != len(names):
        duplicate = next(n for n in names if names.count(n) > 1)
        raise ConfigError(f"Target '{duplicate}' is listed twice. List each database or schema once.")
    stop = threading.Event()
    outcomes: dict[int, TargetOutcome] = {}

    def run_one(target: Target) -> TargetOutcome:
        if stop.is_set():
            return TargetOutcome(
                target.name, SKIPPED, detail="not started: an earlier target failed (--fail-fast)"
            )
        events = events_for(target) if events_for else Events()
        started = time.perf_counter()
        try:
            result = operation(Migrator(target.dsn, target.settings, events=events))
        except PgMigError as error:
            if fail_fast:
                stop.set()
            return TargetOutcome(
                target.name, FAILED, detail=dsn_module.redact(error.message), duration_ms=_ms(started)
            )
        return _outcome(target.name, result, _ms(started))

    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="pgmig-target") as pool:
        pending: dict[Future[TargetOutcome], int] = {}
        queue = list(enumerate(targets))
        while queue or pending:
            while queue and len(pending) < jobs:
                index, target = queue.pop(0)
                pending[pool.submit(run_one, target)] = index
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                outcomes[pending.pop(future)] = future.result()
    return FleetReport(tuple(outcomes[i] for i in range(len(targets))))


def _outcome(name: str, result: RunResult | Status, duration_ms: int) -> TargetOutcome:
    if isinstance(result, Status):
        behind = len(result.problems)
        state = UP_TO_DATE if result.clean else BEHIND
        detail = "" if result.clean else ", ".join(f"{len(result.having(s))} {s}" for s in _states(result))
        return TargetOutcome(name, state, behind, detail, duration_ms, result)
    count = len(result.steps) if not result.dry_run else len(result.planned) + len(result.rollback_plan)
    state = APPLIED if count else UP_TO_DATE
    verb = "reverted" if result.action == "rollback" else "applied"
    detail = f"{count} {'planned' if result.dry_run else verb}" if count else ""
    return TargetOutcome(name, state, count, detail, duration_ms, result)


def _states(status: Status) -> list[str]:
    return [s for s in ("pending", "modified", "missing", "failed", "running") if status.having(s)]


def _ms(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)


# -- target lists --------------------------------------------------------------------------------------------------
def targets_from_file(path: str | Path, base: Settings) -> list[Target]:
    """One DSN a line (blank lines and '#' comments ignored), each a target with the same settings."""
    file = Path(path)
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(
            f"Could not read the targets file '{file}': {exc.strerror}. Check the path."
        ) from None
    targets = []
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        if "://" not in text and "=" not in text:
            raise ConfigError(
                f"Line {number} of '{file}' is not a PostgreSQL URL or conninfo string. Write one DSN a line."
            )
        targets.append(Target(dsn_module.redact_url(text), text, base))
    if not targets:
        raise ConfigError(f"The targets file '{file}' lists no database. Write one DSN a line.")
    return targets


def tenant_schemas(dsn: str, pattern: str, connect_kwargs: dict[str, Any] | None = None) -> list[str]:
    """Schema names matching a LIKE pattern such as 'tenant_%', in name order."""
    with dsn_module.connect(dsn, **(connect_kwargs or {})) as conn:
        rows = conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE %s ORDER BY nspname", [pattern]
        ).fetchall()
    return [str(row[0]) for row in rows]


def tenant_targets(dsn: str, base: Settings, schemas: Sequence[str]) -> list[Target]:
    """One target per schema: history table and search_path in that schema, its own lock."""
    if not schemas:
        raise ConfigError(
            "No tenant schema matched PGMIG_TENANT_SCHEMAS. Create the schemas first, or check the pattern."
        )
    return [Target(schema, dsn, replace(base, schema=schema, search_path=schema)) for schema in schemas]
