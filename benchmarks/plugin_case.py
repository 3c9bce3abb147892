"""The pytest plugin case: cost per test of a fresh migrated database, against re-running the migrations.

A throwaway pytest project (under work/) holds N migrations and two test modules. In one, every test takes the
plugin's ``pgmig_db`` (a clone of the template that was migrated once); in the other, a local fixture creates an
empty database and runs ``Migrator.migrate()`` into it, as a project without the plugin would. Every test
checks that its database really has the N tables. The cost per test is the fixture's set-up plus tear-down as
pytest's ``--durations`` reports it (the first plugin test, which builds the template, is left out).
"""

from __future__ import annotations

import re
import statistics
import subprocess
from pathlib import Path

from .caseapi import AVAILABLE, FAILED, MISSING, CaseContext, CaseResult, migrations
from .paths import OWN_BIN, WORK
from .timing import clean_env

N = 1000
CLONE_TESTS = 6
REMIGRATE_TESTS = 1
DESCRIPTION = f"per-test fresh migrated database, N={N}: plugin clone vs migrating each test's database"

CONFTEST = '''
import os
import uuid

import psycopg
import pytest
from psycopg import sql

from flask_pgmig.core.config import settings_from_mapping
from flask_pgmig.core.migrator import Migrator

SERVER = os.environ["PGMIG_TEST_DATABASE_URL"]
MIGRATIONS = os.path.join(os.path.dirname(__file__), "migrations")


def count_tables(url):
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT count(*) FROM pg_tables WHERE tablename LIKE 'bench_t%'").fetchone()[0]


@pytest.fixture
def remigrated_db():
    """What a project without the plugin does: an empty database, then every migration, per test."""
    name = "pgmig_bench_remig_" + uuid.uuid4().hex[:8]
    with psycopg.connect(SERVER, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = SERVER.rsplit("/", 1)[0] + "/" + name
    settings = settings_from_mapping({}, directory=__import__("pathlib").Path(MIGRATIONS), command="pgmig")
    Migrator(url, settings).migrate()
    yield url
    with psycopg.connect(SERVER, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
'''

TEST = """
from conftest import count_tables

{tests}
"""


def _write_project(root: Path, directory: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    link = root / "migrations"
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(directory)
    (root / "conftest.py").write_text(CONFTEST)
    (root / "pytest.ini").write_text("[pytest]\naddopts = -p no:cacheprovider\n")
    clone = "\n".join(
        f"def test_clone_{i}(pgmig_db):\n    assert count_tables(pgmig_db) == {N}\n"
        for i in range(CLONE_TESTS)
    )
    remigrate = "\n".join(
        f"def test_remigrate_{i}(remigrated_db):\n    assert count_tables(remigrated_db) == {N}\n"
        for i in range(REMIGRATE_TESTS)
    )
    (root / "test_clone.py").write_text(TEST.format(tests=clone))
    (root / "test_remigrate.py").write_text(TEST.format(tests=remigrate))


DURATION = re.compile(r"^([0-9.]+)s (setup|teardown)\s+\S+::(test_\w+?)_(\d+)\s*$")


def _fixture_costs(output: str) -> dict[str, dict[int, float]]:
    """{'clone'|'remigrate': {test index: set-up + tear-down seconds}} from pytest's --durations lines."""
    costs: dict[str, dict[int, float]] = {"clone": {}, "remigrate": {}}
    for line in output.splitlines():
        match = DURATION.match(line.strip())
        if match:
            kind = match.group(3).removeprefix("test_")
            index = int(match.group(4))
            costs[kind][index] = costs[kind].get(index, 0.0) + float(match.group(1))
    return costs


def pytest_plugin_case(ctx: CaseContext) -> CaseResult:
    """Per-test cost of the plugin's migrated database (template clone) vs. migrating a new database per test."""
    try:
        import flask_pgmig.pytest_plugin as plugin
    except ImportError as exc:
        return CaseResult("pytest-plugin", MISSING, DESCRIPTION, reason=f"flask_pgmig.pytest_plugin: {exc}")
    if not hasattr(plugin, "pgmig_db"):
        return CaseResult("pytest-plugin", MISSING, DESCRIPTION, reason="the plugin has no pgmig_db fixture")
    root = WORK / "cases" / "plugin-project"
    _write_project(root, migrations(N))
    env = clean_env({"PGMIG_TEST_DATABASE_URL": ctx.server.url})
    argv = [
        str(OWN_BIN / "python"),
        "-m",
        "pytest",
        "-q",
        "--durations=0",
        "--durations-min=0",
        "-p",
        "no:randomly",
    ]
    # the first run builds the template (timed apart); the second finds it and only clones
    # the first run builds the template (reported apart) and re-migrates; the second finds the template and clones
    runs = [
        subprocess.run(
            args, cwd=root, env=env, capture_output=True, text=True, timeout=ctx.timeout, check=False
        )
        for args in (argv, [*argv, "-k", "clone"])
    ]
    for run in runs:
        if run.returncode != 0:
            tail = " | ".join((run.stdout + run.stderr).strip().splitlines()[-4:])
            return CaseResult(
                "pytest-plugin", FAILED, DESCRIPTION, reason=f"pytest exited {run.returncode}: {tail}"
            )
    first, second = _fixture_costs(runs[0].stdout), _fixture_costs(runs[1].stdout)
    clone = [v for k, v in second["clone"].items() if k != 0] + [
        v for k, v in first["clone"].items() if k != 0
    ]
    remigrate = list(first["remigrate"].values()) + list(second["remigrate"].values())
    if not clone or not remigrate:
        return CaseResult(
            "pytest-plugin", FAILED, DESCRIPTION, reason="no --durations lines found in pytest's output"
        )
    fresh, again = statistics.median(clone), statistics.median(remigrate)
    return CaseResult("pytest-plugin", AVAILABLE, DESCRIPTION, {
        "fresh_database": fresh,
        "remigrate_per_test": again,
        "first_test_with_template_build": first["clone"].get(0),
        "speedup_ratio": round(again / fresh, 1) if fresh else None,
    })  # fmt: skip
