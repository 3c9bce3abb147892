"""What every case shares: the result type, the context, and helpers to time pgmig and run probes."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from . import generate
from .db import Server
from .paths import OWN_BIN, PROBES, WORK
from .timing import Run, clean_env, run_commands

Figures = dict[str, float | int | str | None]
AVAILABLE, MISSING, FAILED = "ok", "not available yet", "failed"


@dataclass
class CaseResult:
    """What one case measured (seconds unless the key says otherwise)."""

    name: str
    status: str
    description: str
    figures: Figures = field(default_factory=dict)
    reason: str = ""

    def as_json(self) -> dict[str, object]:
        """The JSON form."""
        return {
            "status": self.status,
            "description": self.description,
            "figures": self.figures,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class CaseContext:
    """What every case gets: the server, how many repeats, the per-command time limit."""

    server: Server
    repeat: int
    timeout: float


def say(text: str) -> None:
    """Progress on stderr."""
    print(text, file=sys.stderr, flush=True)


def migrations(n: int) -> Path:
    """A shared directory of N migrations in flask-pgmig's format (generated once per run)."""
    directory = WORK / "cases" / f"migrations-n{n}"
    if not directory.is_dir() or len(list(directory.glob("*.sql"))) != n:
        generate.write_dbmate(directory, n)
    return directory


def pgmig_argv(ctx: CaseContext, database: str, directory: Path, *args: str) -> list[str]:
    """The standalone pgmig command line for one database and directory."""
    return [
        str(OWN_BIN / "pgmig"),
        "--database-url",
        ctx.server.url_for(database),
        "--directory",
        str(directory),
        *args,
    ]


def timed(ctx: CaseContext, name: str, argv: list[str], env: dict[str, str] | None = None) -> Run:
    """Run one command once, timed; its output goes to work/logs/case-<name>.log."""
    WORK.mkdir(parents=True, exist_ok=True)
    log = WORK / "logs" / f"case-{name}.log"
    return run_commands([argv], cwd=WORK, env=env or clean_env(), log=log, timeout=ctx.timeout)


def has_command(command: str) -> bool:
    """Whether the installed pgmig has this command (features land while the benchmark is being built)."""
    done = subprocess.run([str(OWN_BIN / "pgmig"), command, "--help"], capture_output=True, check=False)
    return done.returncode == 0


def migrated(ctx: CaseContext, database: str, n: int) -> Path:
    """A fresh database with N migrations applied by pgmig (untimed set-up); returns the directory."""
    directory = migrations(n)
    ctx.server.fresh(database)
    run = timed(ctx, f"setup-{database}", pgmig_argv(ctx, database, directory, "migrate"))
    if not run.ok:
        raise RuntimeError(f"setting up {database} failed: {run.detail}")
    return directory


def probe(python: Path, script: str, env: dict[str, str], ctx: CaseContext) -> dict[str, object]:
    """Run a probe script from probes/ in a fresh process; return the JSON object it prints last."""
    WORK.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [str(python), str(PROBES / script)],
        capture_output=True,
        text=True,
        env=env,
        cwd=WORK,
        timeout=ctx.timeout,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{script} exited {done.returncode}: {done.stderr.strip().splitlines()[-1:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))
