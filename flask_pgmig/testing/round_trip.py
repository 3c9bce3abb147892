"""Round-trip verification as one test: every migration goes up, down, and up again on an empty database.

This is the engine's ``verify`` (:func:`flask_pgmig.core.verify.verify_directory`): after each down the
catalog must be what it was before the up, and the second up must give the schema of the first. A user adds
it to a suite with one line::

    from flask_pgmig.testing import test_migrations_round_trip  # noqa: F401

It runs on the ``migrator`` fixture's empty database, which the plugin drops afterwards (and a later session
drops if this one was killed).
"""

from __future__ import annotations

from ..core.verify import VerifyReport, verify_directory
from ..errors import PgMigError
from .tester import MigrationTester


class RoundTripError(AssertionError):
    """Some migration failed its up -> down -> up round trip; the message lists each problem."""

    def __init__(self, message: str, *, report: VerifyReport) -> None:
        super().__init__(message)
        self.message = message
        self.report = report

    def __str__(self) -> str:
        return self.message


def round_trip(tester: MigrationTester, *, strict: bool = False) -> VerifyReport:
    """Verify every migration on the tester's (empty) database; raise :class:`RoundTripError` if one fails.

    With ``strict``, a migration without a down section (irreversible) fails the check too.
    """
    report = verify_directory(tester.url, tester.migrator.settings, strict=strict)
    if report.ok:
        return report
    problems = list(report.differences)
    if strict:
        problems += [
            f"{ident}: has no '-- migrate:down' section (irreversible)" for ident in report.irreversible
        ]
    listing = "\n".join(f"  - {problem}" for problem in problems)
    raise RoundTripError(
        f"{len(problems)} problem(s) in the up -> down -> up round trip of the migrations in "
        f"'{tester.migrator.settings.directory}':\n{listing}\nMake each '-- migrate:down' section revert "
        "exactly what its up section does.",
        report=report,
    )


def test_migrations_round_trip(migrator: MigrationTester) -> None:
    """Every migration goes up, down and up again, and each down restores the schema (flask-pgmig verify)."""
    import pytest

    try:
        round_trip(migrator)
    except RoundTripError as error:
        pytest.fail(str(error), pytrace=False)
    except PgMigError as error:  # a file that does not parse, a database that is not empty...
        pytest.fail(f"flask-pgmig: {error.message}", pytrace=False)


__all__ = ["RoundTripError", "round_trip", "test_migrations_round_trip"]
