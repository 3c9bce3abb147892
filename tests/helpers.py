"""Small helpers shared by the test layers: scenario folders and one-line queries."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import psycopg

SCENARIOS = Path(__file__).parent / "scenarios"


def copy_scenario(name: str, target: Path) -> Path:
    """Copy tests/scenarios/<name> to target/migrations (tests may edit their copy) and return it."""
    destination = target / "migrations"
    shutil.copytree(SCENARIOS / name, destination)
    return destination


def query(url: str, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
    """Run one query on its own autocommit connection and return all rows."""
    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(sql.encode(), params)
        return cur.fetchall() if cur.description else []


def tables(url: str) -> set[str]:
    """Names of the ordinary tables in the public schema."""
    return {row[0] for row in query(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}


def history_versions(url: str, table: str = "public.pgmig_history") -> list[str]:
    """Versions recorded as applied, in order."""
    return [
        row[0] for row in query(url, f"SELECT version FROM {table} WHERE status = 'applied' ORDER BY version")
    ]
