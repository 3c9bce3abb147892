"""Smoke test of the benchmark harness at tiny N: it runs the psql floor and pgmig, checks their work, and
records a tool that does not do its job as failed. No timing is asserted (timings live in benchmarks/results).
"""

from __future__ import annotations

import os

import psycopg

from benchmarks import report
from benchmarks.compare import PAIRS, Results, compare, round_order
from benchmarks.db import RETIRED_PREFIX, Server
from benchmarks.tools import Commands, Pgmig, PgmigAtomic, PsqlEach, PsqlSingle, Target

N = 3


class LazyPsql(PsqlSingle):
    """A broken tool: 'applies' by running SELECT 1, so it creates no table."""

    name = "lazy-psql"
    steps = ("apply",)

    def commands(self, step: str, target: Target) -> Commands:
        return [self._psql(target, "-c", "SELECT 1")]


def _as_json(results: Results) -> dict[str, object]:
    return {
        str(n): {tool: {step: r.as_json() for step, r in steps.items()} for tool, steps in per.items()}
        for n, per in results.items()
    }


def test_harness_runs_floor_and_pgmig_and_catches_a_tool_that_does_nothing(pg_server_url: str) -> None:
    tools = [PsqlSingle(), Pgmig(), LazyPsql()]
    results = compare(tools, [N], 1, Server(pg_server_url), timeout=120, warm_up=False, checkpoint=False)

    for tool in ("psql", "pgmig"):
        for step in ("apply", "status", "rollback"):
            result = results[N][tool][step]
            assert result.failures == [], (tool, step, result.failures)
            assert result.median is not None and result.median > 0
    lazy = results[N]["lazy-psql"]["apply"]
    assert lazy.median is None
    assert f"left 0 tables, expected {N}" in lazy.failures[0]
    with psycopg.connect(pg_server_url, autocommit=True) as conn:  # every cycle's database is gone
        left = conn.execute(
            "SELECT datname FROM pg_database WHERE starts_with(datname, %s) OR datname = ANY(%s)",
            [f"{RETIRED_PREFIX}{os.getpid()}_", ["pgmig_bench_psql", "pgmig_bench_pgmig", "pgmig_bench_lazy_psql"]],
        ).fetchall()
    assert left == []

    data = {
        "started": "t0", "finished": "t1",
        "settings": {"command": "test", "n": [N], "repeat": 1, "load_note": ""},
        "machine": {"cpu": "cpu", "cores": "2", "memory": "1 GiB", "os": "os", "python": "3", "load": "0"},
        "server": {"version": "15", "kind": "test"},
        "tools": {t.name: {"label": t.label, "kind": t.kind, "version": "v", "missing": None} for t in tools},
        "compare": _as_json(results),
        "cases": {},
    }  # fmt: skip
    text = report.markdown(data)
    assert "| psql, all in one transaction (floor) | v | " in text and "(1.00×)" in text
    assert "| flask-pgmig: pgmig migrate / status / rollback --all | v | " in text
    assert "lazy-psql apply:" in text  # the failure is shown, not hidden


def test_each_floor_and_its_pgmig_run_back_to_back_taking_turns_at_going_first() -> None:
    tools = [PsqlSingle(), PsqlEach(), Pgmig(), PgmigAtomic(), LazyPsql()]
    orders = [[tool.name for tool in round_order(tools, rep)] for rep in range(4)]
    for order in orders:
        assert sorted(order) == sorted(tool.name for tool in tools)
        for floor, ours in PAIRS:
            assert abs(order.index(floor) - order.index(ours)) == 1, order
    assert [order[0] for order in orders] == ["psql", "pgmig", "lazy-psql", "pgmig-atomic"]  # rotates
    assert orders[0].index("psql") < orders[0].index("pgmig-atomic")
    assert orders[1].index("pgmig-atomic") < orders[1].index("psql")  # turns at going first


def _database_oid(server: Server, name: str) -> int | None:
    with psycopg.connect(server.url, autocommit=True) as conn:
        row = conn.execute("SELECT oid FROM pg_database WHERE datname = %s", [name]).fetchone()
    return int(row[0]) if row else None


def _database_name(server: Server, oid: int) -> str | None:
    with psycopg.connect(server.url, autocommit=True) as conn:
        row = conn.execute("SELECT datname FROM pg_database WHERE oid = %s", [oid]).fetchone()
    return str(row[0]) if row else None


def test_a_database_taken_out_of_use_is_dropped_only_once_the_next_one_exists(pg_server_url: str) -> None:
    server = Server(pg_server_url)
    name = "pgmig_bench_test_fresh"
    server.fresh(name)
    first = _database_oid(server, name)
    assert first is not None
    with psycopg.connect(server.url_for(name), autocommit=True) as conn:
        conn.execute("CREATE TABLE left_behind (id int)")

    server.drop(name)
    assert _database_oid(server, name) is None  # the name is free at once
    assert (_database_name(server, first) or "").startswith(RETIRED_PREFIX)  # its files are still there

    with psycopg.connect(server.url_for("postgres"), autocommit=True) as watcher:
        server.fresh(name)  # creates the new one, then drops the retired one
        second = _database_oid(server, name)
        assert second is not None and second != first
        assert _database_name(server, first) is None
        with psycopg.connect(server.url_for(name), autocommit=True) as conn:
            assert conn.execute("SELECT to_regclass('left_behind')").fetchone() == (None,)
            server.fresh(name)  # a session still on it does not stop the replacement
        assert watcher.execute("SELECT 1").fetchone() == (1,)  # sessions elsewhere are left alone

    third = _database_oid(server, name)
    server.drop(name)
    server.drop_retired()
    assert third is not None and _database_name(server, third) is None
