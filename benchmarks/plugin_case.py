"""The pytest plugin case: cost per test of a fresh migrated database, against re-running the migrations.

A throwaway pytest project (under work/) holds N migrations and three test modules. In two, every test takes the
plugin's ``pgmig_db`` (a clone of the template that was migrated once); in the third, a local fixture creates an
empty database and runs ``Migrator.migrate()`` into it, as a project without the plugin would. Every test
checks that its database really has the N tables.

The ``clone`` tests do nothing else: the plugin's worst case, since no test time can hide a clone, so the
plugin clones when asked (it makes spares only while tests hold their database as long as a clone takes). The
``long`` tests then sleep, which lets the plugin clone the next test's database while one runs.

Figures (seconds):

* ``fresh_database``: the fixture's set-up plus tear-down per test from ``--durations`` (median; the first
  plugin test of each run, which builds or finds the template, left out). Set-up includes any wait for the
  worker.
* ``fresh_database_wall``: how much longer the run takes per plugin test, the tests' own call phase excluded:
  (wall time of the run with every plugin test - wall time of the run with only the first one - the other
  tests' call phases) / their number. It also counts what no ``--durations`` line shows: the drops left to the
  end of the session, and background work that slows the tests down.
* ``remigrate_per_test``: set-up plus tear-down of the local re-migrating fixture.
* ``fresh_database_long_tests`` and ``fresh_database_long_tests_wall``: the same two figures for tests whose
  body also sleeps ``LONG_TEST_S`` (a test with something to do: the case where spares made while the test
  runs can be ready in time). A sleeping body leaves the CPU and disk to the background work; a busy one would
  compete with it.
"""

from __future__ import annotations

import re
import statistics
import subprocess
import time
from pathlib import Path

from .caseapi import AVAILABLE, FAILED, MISSING, CaseContext, CaseResult, migrations
from .paths import OWN_BIN, WORK
from .timing import clean_env

N = 1000
CLONE_TESTS = 11
LONG_TESTS = 11
LONG_TEST_S = 0.3
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
import time

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
    long = "\n".join(
        f"def test_long_{i}(pgmig_db):\n    assert count_tables(pgmig_db) == {N}\n    time.sleep({LONG_TEST_S})\n"
        for i in range(LONG_TESTS)
    )
    (root / "test_clone.py").write_text(TEST.format(tests=clone))
    (root / "test_long.py").write_text(TEST.format(tests=long))
    (root / "test_remigrate.py").write_text(TEST.format(tests=remigrate))


DURATION = re.compile(r"^([0-9.]+)s (setup|teardown|call)\s+\S+::(test_\w+?)_(\d+)\s*$")


def _fixture_costs(
    output: str, phases: tuple[str, ...] = ("setup", "teardown")
) -> dict[str, dict[int, float]]:
    """{'clone'|'long'|'remigrate': {test index: seconds in ``phases``}} from pytest's --durations lines."""
    costs: dict[str, dict[int, float]] = {"clone": {}, "long": {}, "remigrate": {}}
    for line in output.splitlines():
        match = DURATION.match(line.strip())
        if match and match.group(2) in phases:
            kind = match.group(3).removeprefix("test_")
            index = int(match.group(4))
            costs[kind][index] = costs[kind].get(index, 0.0) + float(match.group(1))
    return costs


def _run(args: list[str], root: Path, env: dict[str, str], timeout: float) -> tuple[float, str, int]:
    """Wall seconds, output and exit status of one pytest run."""
    started = time.perf_counter()
    run = subprocess.run(
        args, cwd=root, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    return time.perf_counter() - started, run.stdout + run.stderr, run.returncode


def _per_test(every: tuple[float, str, int], first: tuple[float, str, int], kind: str) -> tuple[float, float]:
    """Median set-up + tear-down (the first test left out) and wall seconds per test beyond its call phase."""
    costs = [v for k, v in _fixture_costs(every[1])[kind].items() if k != 0]
    calls = [v for k, v in _fixture_costs(every[1], ("call",))[kind].items() if k != 0]
    if not costs or len(calls) != len(costs):
        raise ValueError(f"no --durations lines for the {kind} tests in pytest's output")
    return statistics.median(costs), (every[0] - first[0] - sum(calls)) / len(calls)


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
    # 1: builds the template (its first test reported apart) and re-migrates; 2: finds the template and clones;
    # 3: the first clone test alone, for the wall-time difference (same start-up, template check, session end);
    # 4 and 5: the same two for the long tests
    selections = ("clone or remigrate", "clone", "test_clone_0", "long", "test_long_0")
    runs = [_run([*argv, "-k", selection], root, env, ctx.timeout) for selection in selections]
    for _, output, status in runs:
        if status != 0:
            tail = " | ".join(output.strip().splitlines()[-4:])
            return CaseResult("pytest-plugin", FAILED, DESCRIPTION, reason=f"pytest exited {status}: {tail}")
    first = _fixture_costs(runs[0][1])
    remigrate = list(first["remigrate"].values())
    try:
        fresh, wall = _per_test(runs[1], runs[2], "clone")
        long, long_wall = _per_test(runs[3], runs[4], "long")
    except ValueError as error:
        return CaseResult("pytest-plugin", FAILED, DESCRIPTION, reason=str(error))
    if not remigrate:
        return CaseResult("pytest-plugin", FAILED, DESCRIPTION, reason="no --durations lines for remigrate")
    again = statistics.median(remigrate)
    return CaseResult("pytest-plugin", AVAILABLE, DESCRIPTION, {
        "fresh_database": fresh,
        "fresh_database_wall": round(wall, 3),
        "fresh_database_long_tests": long,
        "fresh_database_long_tests_wall": round(long_wall, 3),
        "remigrate_per_test": again,
        "first_test_with_template_build": first["clone"].get(0),
        "speedup_ratio": round(again / fresh, 1) if fresh else None,
    })  # fmt: skip
