"""Test tools of flask-pgmig: template databases, a migration stepper, round-trip checks, Flask glue.

The pytest plugin (:mod:`flask_pgmig.pytest_plugin`) exposes these as fixtures; they work without pytest too.
``from flask_pgmig.testing import test_migrations_round_trip`` in a test module adds the round-trip test.
Importing this package never imports Flask or SQLAlchemy.
"""

from __future__ import annotations

from .databases import TemplateDatabases, TemplateInfo
from .flask_glue import point_app_at
from .janitor import drop_templates
from .round_trip import RoundTripError, round_trip, test_migrations_round_trip
from .session import SessionDatabases
from .tester import MigrationTester

__all__ = [
    "MigrationTester",
    "RoundTripError",
    "SessionDatabases",
    "TemplateDatabases",
    "TemplateInfo",
    "drop_templates",
    "point_app_at",
    "round_trip",
    "test_migrations_round_trip",
]
