"""The side-by-side comparison: every tool, every N, alternating tools, fresh databases, median of the runs.

One cycle of a tool is: fresh database, CHECKPOINT, apply all (timed), count the tables; status (timed); roll
back all (timed), count again. A step that fails, or leaves the wrong number of tables, is recorded as failed
with the reason and never enters a median.

The tools of a target measured as a ratio to a psql floor (:data:`PAIRS`) run back to back in every round,
taking turns at going first: a machine whose speed drifts from minute to minute (a shared host) then moves
both sides of the ratio together, and each round gives a paired ratio.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field

from .db import Server
from .paths import WORK
from .timing import Run, median, run_commands, spread
from .tools import Target, Tool, database_for


@dataclass
class StepResult:
    """Every run of one step of one tool at one N."""

    runs: list[Run] = field(default_factory=list)

    @property
    def good(self) -> list[float]:
        """Wall times of the successful runs."""
        return [r.seconds for r in self.runs if r.ok]

    @property
    def median(self) -> float | None:
        """Median wall time of the successful runs."""
        return median(self.good)

    @property
    def failures(self) -> list[str]:
        """Why runs failed."""
        return [r.detail for r in self.runs if not r.ok]

    def as_json(self) -> dict[str, object]:
        """The JSON form: median, spread, every run, peak memory, failures."""
        low_high = spread(self.good)
        return {
            "median_s": self.median,
            "min_s": low_high[0] if low_high else None,
            "max_s": low_high[1] if low_high else None,
            "runs_s": [round(r.seconds, 4) for r in self.runs if r.ok],
            "max_rss_kb": max((r.max_rss_kb for r in self.runs if r.ok), default=None),
            "failures": self.failures,
        }


# results[n][tool name][step]
Results = dict[int, dict[str, dict[str, StepResult]]]

# (floor, ours): the targets measured as a ratio to the floor
PAIRS = (("psql", "pgmig-atomic"), ("psql-each", "pgmig"))


def round_order(tools: Sequence[Tool], rep: int) -> list[Tool]:
    """The order of round ``rep``: the tools rotated by one place a round (a pair of :data:`PAIRS` counts as
    one place and stays together, the two taking turns at going first), so no tool always goes first."""
    by_name = {tool.name: tool for tool in tools}
    partner = {a: b for a, b in PAIRS if a in by_name and b in by_name}
    paired = set(partner.values())
    blocks = [[tool, by_name[partner[tool.name]]] if tool.name in partner else [tool]
              for tool in tools if tool.name not in paired]  # fmt: skip
    shift = rep % len(blocks)
    rotated = [*blocks[shift:], *blocks[:shift]]
    return [tool for block in rotated for tool in (block[::-1] if rep % 2 else block)]


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _target(tool: Tool, n: int, server: Server) -> Target:
    return Target(WORK / tool.name / f"n{n}", database_for(tool), server, n)


def _expected(step: str, n: int) -> int:
    return 0 if step == "rollback" else n


def _step(tool: Tool, step: str, target: Target, label: str, timeout: float) -> Run:
    log = WORK / "logs" / f"{tool.name}-n{target.n}-{label}-{step}.log"
    run = run_commands(
        tool.commands(step, target), cwd=target.root, env=tool.env(target), log=log, timeout=timeout
    )
    if run.ok:
        found = target.server.bench_tables(target.database)
        if found != _expected(step, target.n):
            return Run(
                run.seconds,
                run.max_rss_kb,
                False,
                f"{step} left {found} tables, expected {_expected(step, target.n)} (log: {log})",
            )
    return run


def _cycle(
    tool: Tool,
    target: Target,
    label: str,
    timeout: float,
    slow_cap: float,
    results: dict[str, StepResult],
    checkpoint: bool = True,
) -> None:
    server = target.server
    server.fresh(target.database)
    try:
        for step in tool.steps:
            done = results.get(step)
            if done and done.good and min(done.good) > slow_cap:  # measured once; more runs would not fit
                if step == "apply":
                    break  # the later steps need what apply makes: they keep their first run too
                continue
            if checkpoint:
                server.checkpoint()
            run = _step(tool, step, target, label, timeout)
            results.setdefault(step, StepResult()).runs.append(run)
            status = f"{run.seconds:8.3f} s" if run.ok else f"FAILED: {run.detail}"
            _say(f"  {label:>7}  {tool.name:<16} {step:<8} {status}")
            if not run.ok:
                break
    finally:
        server.drop(target.database)


def compare(
    tools: Sequence[Tool],
    ns: Sequence[int],
    repeat: int,
    server: Server,
    timeout: float,
    slow_cap: float = 60.0,
    *,
    warm_up: bool = True,
    checkpoint: bool = True,
) -> Results:
    """Run every tool ``repeat`` times per N in the order of :func:`round_order`.

    A step whose first run took longer than ``slow_cap`` seconds is not repeated (dbmate rolls back one
    migration per process: 1000 processes take minutes, and its ratio to the others is not in doubt).
    ``warm_up`` and ``checkpoint`` are turned off only by the harness's smoke test (speed over fairness).
    """
    results: Results = {}
    if not tools:
        return results
    for n in ns:
        per_tool = results.setdefault(n, {})
        _say(f"== N = {n}: preparing {len(tools)} tools")
        for tool in tools:
            target = _target(tool, n, server)
            tool.prepare(target)
            per_tool[tool.name] = {}
            # untimed warm-up: compiles .pyc files, warms the page cache
            if warm_up and "status" in tool.steps:
                server.fresh(target.database)
                try:
                    run_commands(
                        tool.commands("status", target),
                        cwd=target.root,
                        env=tool.env(target),
                        log=WORK / "logs" / f"{tool.name}-n{n}-warmup.log",
                        timeout=timeout,
                    )
                finally:
                    server.drop(target.database)
        try:
            for rep in range(repeat):
                for tool in round_order(tools, rep):
                    _cycle(
                        tool,
                        _target(tool, n, server),
                        f"{rep + 1}/{repeat}",
                        timeout,
                        slow_cap,
                        per_tool[tool.name],
                        checkpoint,
                    )
        finally:
            server.drop_retired()  # the last cycle's databases (each is dropped once the next one exists)
    return results
