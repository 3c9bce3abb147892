"""Readiness: ``pgmig.check()`` and the optional JSON endpoint (PGMIG_HEALTH_ENDPOINT).

The check is the startup guard's read (one directory scan, one connection, one query) and never raises: a
database that cannot be reached is "not ready", with the reason logged through ``app.logger``. The JSON says
which migrations are behind but not where the database is, since readiness endpoints are often reachable from
outside the app's network.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from flask import Blueprint, current_app, jsonify
from flask.typing import ResponseReturnValue

from .core import plan as planning
from .core.dsn import redact
from .errors import ConnectionFailed, PgMigError

if TYPE_CHECKING:
    from .extension import PgMigState

_STATES = (
    planning.APPLIED,
    planning.PENDING,
    planning.MODIFIED,
    planning.MISSING,
    planning.FAILED,
    planning.RUNNING,
)
# SQLSTATE class 28: invalid authorization (e.g. a password that was rotated since the secret was read).
_AUTH_FAILED = "28"


@dataclass(frozen=True)
class MigrationCheck:
    """The outcome of :meth:`PgMig.check`: truthy when every migration is applied and unchanged."""

    ok: bool
    counts: Mapping[str, int] = field(default_factory=dict)
    problems: tuple[tuple[str, str], ...] = ()
    error: str | None = None

    def __bool__(self) -> bool:
        return self.ok

    @property
    def status(self) -> str:
        """``ok``, ``behind`` (migrations to apply or fix) or ``error`` (the check itself failed)."""
        return "ok" if self.ok else "error" if self.error else "behind"

    @property
    def http_status(self) -> int:
        """200 when ready, 503 otherwise."""
        return 200 if self.ok else 503

    def to_dict(self) -> dict[str, Any]:
        """The JSON document of the health endpoint."""
        return {
            "status": self.status,
            "ok": self.ok,
            "counts": dict(self.counts),
            "problems": [{"state": state, "migration": ident} for state, ident in self.problems],
            "error": self.error,
        }


def check(state: PgMigState) -> MigrationCheck:
    """Compare the database, and every bind of PGMIG_BINDS, with their migrations; never raises.

    A problem of a bind is named ``<bind>:<migration>``; errors become a failed check, logged through app.logger.
    """
    from .binds import configured_binds

    results = [_check_one(state)]
    for key in configured_binds(state.config):
        if key != state.bind:
            try:
                bind_state = state.for_bind(key)
            except PgMigError as error:
                results.append(_failed(state, error))
                continue
            results.append(_check_one(bind_state, prefix=f"{key}:"))
    if len(results) == 1:
        return results[0]
    counts = {name: sum(r.counts.get(name, 0) for r in results) for name in _STATES}
    problems = tuple(problem for r in results for problem in r.problems)
    first_error = next((r.error for r in results if r.error), None)
    return MigrationCheck(all(r.ok for r in results), counts, problems, first_error)


def _check_one(state: PgMigState, prefix: str = "") -> MigrationCheck:
    from .guard import read_status

    try:
        try:
            status = read_status(state.dsn(), state.settings)
        except ConnectionFailed as failed:
            if not (state.secrets and (failed.sqlstate or "").startswith(_AUTH_FAILED)):
                raise
            state.refresh()  # the secret may have been rotated since it was read: read it once more
            status = read_status(state.dsn(), state.settings)
    except PgMigError as error:
        return _failed(state, error)
    counts = {name: len(status.having(name)) for name in _STATES}
    problems = tuple((m.state, f"{prefix}{m.id}") for m in status.problems)
    return MigrationCheck(not problems, counts, problems)


def _failed(state: PgMigState, error: PgMigError) -> MigrationCheck:
    state.app.logger.warning("flask-pgmig readiness check failed: %s", redact(error.message))
    return MigrationCheck(False, error=type(error).__name__)


def blueprint(path: str) -> Blueprint:
    """A blueprint serving the check as JSON at ``path``: 200 when up to date, 503 otherwise."""
    bp = Blueprint("pgmig_health", __name__)

    @bp.get(path)
    def migrations_health() -> ResponseReturnValue:
        result = check(current_app.extensions["pgmig"])
        return jsonify(result.to_dict()), result.http_status

    return bp


__all__ = ["MigrationCheck", "blueprint", "check"]
