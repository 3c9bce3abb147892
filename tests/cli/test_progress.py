"""The progress display: timer lines and backfill rows/rate/ETA, as plain lines without a terminal and as a
rewritten line / click progress bar on one. Unit tests drive a fake clock; end-to-end tests run ``pgmig`` on a
real database through pipes and through a pseudo-terminal."""

from __future__ import annotations

import io
import os
import pty
import subprocess
import sys
from pathlib import Path

from helpers import copy_scenario

from flask_pgmig.cli.progress import ProgressDisplay
from flask_pgmig.core.migrator import Migrator


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Terminal(io.StringIO):
    """A stream that says it is a terminal, so click draws its progress bar into it."""

    def isatty(self) -> bool:
        return True


def display(stream: io.StringIO, clock: Clock, *, tty: bool) -> ProgressDisplay:
    return ProgressDisplay(stream, tty=tty, after=3.0, interval=5.0, clock=clock, ticker=False)


def test_quick_work_shows_nothing_and_long_statements_get_a_timer_line() -> None:
    out, clock = io.StringIO(), Clock()
    progress = display(out, clock, tty=False)
    progress.migration_started("20260101000000_index")
    progress.statement_started(2, 3, "CREATE INDEX CONCURRENTLY big_idx\n  ON big (created_at)")
    clock.now += 2.9
    progress.tick()
    assert out.getvalue() == ""
    clock.now += 0.2
    progress.tick()
    assert out.getvalue() == (
        "  ... 20260101000000_index: running for 3 s, statement 2/3: CREATE INDEX CONCURRENTLY big_idx ON "
        "big (created_at)\n"
    )
    clock.now += 4
    progress.tick()
    assert out.getvalue().count("\n") == 1  # at most one line every interval
    clock.now += 1
    progress.tick()
    assert out.getvalue().splitlines()[-1].startswith("  ... 20260101000000_index: running for 8 s,")
    progress.migration_finished()
    clock.now += 60
    progress.tick()
    assert out.getvalue().count("\n") == 2  # nothing once the migration ended


def test_backfill_plain_lines_with_rows_rate_and_eta() -> None:
    out, clock = io.StringIO(), Clock()
    progress = display(out, clock, tty=False)
    progress.migration_started("20260102000000_fill")
    progress.backfill_started("events", 0, 200_000)
    clock.now += 1
    progress.batch_done("events", 10_000, 200_000, 10_000.0)  # under 3 s: nothing yet
    clock.now += 3
    progress.batch_done("events", 42_000, 200_000, 10_500.0)
    clock.now += 1
    progress.batch_done("events", 52_000, 200_000, 10_400.0)  # within the interval: no new line
    progress.backfill_finished("events", 200_000, 19_000)
    assert out.getvalue().splitlines() == [
        "  ... 20260102000000_fill: running for 4 s, backfill events: 42,000/200,000 rows (21%), "
        "10,500 rows/s, ETA 15 s",
        "  backfill events: 200,000 rows in 19 s",
    ]


def test_backfill_without_a_total_shows_rows_and_rate() -> None:
    out, clock = io.StringIO(), Clock()
    progress = display(out, clock, tty=False)
    progress.migration_started("20260102000000_fill")
    progress.backfill_started("events", 0, None)
    clock.now += 200
    progress.batch_done("events", 1_234_000, None, 6170.0)
    assert "backfill events: 1,234,000 rows, 6,170 rows/s" in out.getvalue()
    assert "running for 3 min 20 s" in out.getvalue() and "ETA" not in out.getvalue()


def test_on_a_terminal_the_timer_rewrites_one_line_and_a_backfill_gets_a_bar() -> None:
    out, clock = Terminal(), Clock()
    progress = display(out, clock, tty=True)
    progress.migration_started("20260102000000_fill")
    progress.statement_started(1, 1, "UPDATE events SET score = 1")
    clock.now += 3
    progress.tick()
    clock.now += 1
    progress.tick()
    timer = out.getvalue()
    assert timer.count("\r\x1b[K") == 2 and "\n" not in timer and "running for 4 s" in timer
    progress.backfill_started("events", 0, 1000)
    progress.batch_done("events", 500, 1000, 250.0)
    progress.batch_done("events", 1000, 1000, 250.0)
    progress.backfill_finished("events", 1000, 4000)
    progress.migration_finished()
    drawn = out.getvalue()[len(timer) :]
    assert "backfill events  [" in drawn and "500/1000" in drawn and "1000/1000" in drawn and "100%" in drawn
    assert "#" * 10 in drawn and "250 rows/s, ETA 2 s" in drawn
    assert drawn.endswith("  backfill events: 1,000 rows in 4 s\n")


def test_a_resumed_backfill_bar_starts_where_it_stopped_with_the_runs_own_eta() -> None:
    out, clock = Terminal(), Clock()
    progress = display(out, clock, tty=True)
    progress.migration_started("20260102000000_fill")
    progress.backfill_started("events", 600, 1000)
    clock.now += 3
    progress.batch_done("events", 800, 1000, 50.0)  # 200 rows at 50 rows/s: 4 s to go, not 1
    assert "800/1000   80%  50 rows/s, ETA 4 s" in out.getvalue()


def test_close_stops_the_ticker_thread() -> None:
    progress = ProgressDisplay(io.StringIO(), tty=False, after=3600)
    progress.migration_started("20260101000000_x")
    thread = progress._thread
    assert thread is not None and thread.is_alive()
    progress.close()
    assert not thread.is_alive()


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PGMIG_") and k != "DATABASE_URL"}
    env.update(extra)
    return env


def _command(url: str, directory: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "flask_pgmig.cli",
        "--database-url",
        url,
        "--directory",
        str(directory),
        "migrate",
    ]


def test_without_a_terminal_pgmig_prints_plain_progress_lines(database_url: str, tmp_path: Path) -> None:
    migrations = copy_scenario("backfill_python", tmp_path)
    # by default a run that ends within 3 s shows no progress at all
    quick = subprocess.run(
        _command(database_url, migrations), env=_env(), capture_output=True, text=True, timeout=120
    )
    assert quick.returncode == 0, quick.stderr
    assert "backfill items" not in quick.stderr and "running for" not in quick.stderr
    Migrator.create(database_url, migrations).rollback(everything=True)

    result = subprocess.run(
        _command(database_url, migrations), env=_env(PGMIG_PROGRESS_AFTER="0"), capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "  ... 20260602000000_backfill_price: running for " in result.stderr
    assert "backfill items: 400/5,000 rows (8%)" in result.stderr and "rows/s" in result.stderr
    assert "  backfill items: 5,000 rows in " in result.stderr
    assert "\r" not in result.stderr and "\x1b" not in result.stderr
    assert "applied   20260602000000_backfill_price" in result.stdout


def test_on_a_terminal_pgmig_draws_a_progress_bar(database_url: str, tmp_path: Path) -> None:
    migrations = copy_scenario("backfill_python", tmp_path)
    main, secondary = pty.openpty()
    process = subprocess.Popen(
        _command(database_url, migrations), env=_env(PGMIG_PROGRESS_AFTER="0", COLUMNS="120"),
        stdin=secondary, stdout=secondary, stderr=secondary, close_fds=True,
    )  # fmt: skip
    os.close(secondary)
    output = b""
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:  # the terminal closed: the process has exited
            break
        if not chunk:
            break
        output += chunk
    os.close(main)
    assert process.wait(timeout=120) == 0, output
    text = output.decode()
    assert "  backfill items  [" in text and "/5000" in text and "100%" in text
    assert "\r" in text  # the bar is redrawn in place
    assert "  backfill items: 5,000 rows in " in text and "applied   20260602000000_backfill_price" in text
