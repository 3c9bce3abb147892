"""Time one command (wall clock and peak memory of the process) and summarise repeated runs."""

from __future__ import annotations

import os
import statistics
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Run:
    """One timed command or sequence of commands (dbmate's rollback is one command per migration)."""

    seconds: float
    max_rss_kb: int
    ok: bool
    detail: str = ""


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment minus anything that would steer a tool elsewhere (PG*, PGMIG_*, DATABASE_URL), and minus
    PYTHONDONTWRITEBYTECODE: an installed tool runs from compiled .pyc files (pip writes them), so the untimed
    warm-up must be allowed to write them for the Python tools (ours and the peers alike)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PGMIG_", "PG", "SQITCH_", "DBMATE_", "FLASK_"))
        and k not in ("DATABASE_URL", "PYTHONDONTWRITEBYTECODE")
    }
    env.update(extra or {})
    return env


def _tail(path: Path, lines: int = 6) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(text[-lines:])


def run_commands(
    commands: Sequence[Sequence[str]],
    *,
    cwd: Path,
    env: Mapping[str, str],
    log: Path,
    timeout: float,
) -> Run:
    """Run commands one after another; time the whole; stop at the first failure.

    The peak memory is the largest ``ru_maxrss`` of the commands (read with wait4 for each child).
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    peak = 0
    started = time.perf_counter()
    with log.open("wb") as out:
        for argv in commands:
            proc = subprocess.Popen(
                list(argv),
                cwd=cwd,
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
            status, usage = _wait(proc, started + timeout)
            peak = max(peak, usage)
            if status != 0:
                elapsed = time.perf_counter() - started
                return Run(elapsed, peak, False, f"exit {status} from {' '.join(argv[:3])}...: {_tail(log)}")
    return Run(time.perf_counter() - started, peak, True)


def _wait(proc: subprocess.Popen[bytes], deadline: float) -> tuple[int, int]:
    """Block until the process ends (killed past the deadline); return its exit code and ru_maxrss in KiB."""
    timer = threading.Timer(max(0.0, deadline - time.perf_counter()), proc.kill)
    timer.start()
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    finally:
        timer.cancel()
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, int(usage.ru_maxrss)


def median(values: Sequence[float]) -> float | None:
    """The median, or None for no values."""
    return statistics.median(values) if values else None


def spread(values: Sequence[float]) -> tuple[float, float] | None:
    """(min, max), or None."""
    return (min(values), max(values)) if values else None
