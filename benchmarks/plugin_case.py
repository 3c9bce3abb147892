"""The pytest plugin case: cost per test of a fresh migrated database, against re-running the migrations."""

from __future__ import annotations

from .caseapi import MISSING, CaseContext, CaseResult


def pytest_plugin_case(ctx: CaseContext) -> CaseResult:
    """Per-test cost of the plugin's migrated database (template clone) vs. migrating a new database per test."""
    return CaseResult(
        "pytest-plugin",
        MISSING,
        "per-test fresh migrated database, N=1000",
        reason="flask_pgmig.pytest_plugin defines no fixtures yet",
    )
