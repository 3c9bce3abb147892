"""Small helpers shared by the test layers: scenario folders and one-line queries."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
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


def clean_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment without PGMIG_* and DATABASE_URL (a test sets what it means to), plus ``extra``."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PGMIG_") and k != "DATABASE_URL"}
    environment.update(extra or {})
    return environment


def pgmig(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the standalone ``pgmig`` command in a subprocess, as a user would, and wait for it."""
    return subprocess.run(
        [sys.executable, "-m", "flask_pgmig.cli", *args], capture_output=True, text=True,
        env=clean_environment(env), cwd=cwd, timeout=120,
    )  # fmt: skip


def pgmig_process(url: str, directory: Path, *args: str) -> subprocess.Popen[str]:
    """Start ``pgmig --database-url URL --directory DIR ARGS...`` in the background (to kill or signal it)."""
    command = [sys.executable, "-m", "flask_pgmig.cli", "--database-url", url, "--directory", str(directory)]
    return subprocess.Popen(
        [*command, *args], env=clean_environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
