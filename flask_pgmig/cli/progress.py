"""The progress display for long runs: a timer for a statement that runs a while; backfill rows, rate, ETA.

Nothing shows for work that ends within ``after`` seconds (``PGMIG_PROGRESS_AFTER``, default 3). On a terminal
the timer is one line rewritten in place and a backfill whose row count is known gets a click progress bar;
when the output is not a terminal (CI logs, pipes) it prints plain lines, at most one every ``interval``
seconds.

A statement blocks the main thread while it runs, so a daemon thread ticks the timer; every write holds one
lock.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any, TextIO

import click

DEFAULT_AFTER = 3.0
ENV_AFTER = "PGMIG_PROGRESS_AFTER"


def progress_after() -> float:
    """Seconds before the display appears: ``PGMIG_PROGRESS_AFTER`` from the environment, else 3."""
    text = os.environ.get(ENV_AFTER, "").strip().lower().removesuffix("s")
    try:
        return max(0.0, float(text)) if text else DEFAULT_AFTER
    except ValueError:
        return DEFAULT_AFTER


class ProgressDisplay:
    """Shows what a migration is doing once it has run for ``after`` seconds; the CLI's events drive it."""

    def __init__(
        self, stream: TextIO, *, tty: bool | None = None, after: float = DEFAULT_AFTER, interval: float = 5.0,
        clock: Callable[[], float] = time.monotonic, ticker: bool = True,
    ) -> None:  # fmt: skip
        self.stream = stream
        self.tty = stream.isatty() if tty is None else tty
        self.after = after
        self.interval = 1.0 if self.tty else interval
        self.clock = clock
        self.use_ticker = ticker
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._migration: str | None = None
        self._started = 0.0
        self._statement: str | None = None
        self._backfill: str | None = None
        self._bar: Any = None  # click's progress bar, on a terminal when the total is known
        self._last_line = float("-inf")
        self._line_open = False  # a tty line was written without its newline

    # -- driven by the events --------------------------------------------------------------------------------
    def migration_started(self, migration: str) -> None:
        """A migration starts: reset the timer and start ticking."""
        with self._lock:
            self._migration, self._started, self._statement, self._backfill = (
                migration,
                self.clock(),
                None,
                None,
            )
            self._last_line = float("-inf")
        if self.use_ticker and self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._tick_loop, name="pgmig-progress", daemon=True)
            self._thread.start()

    def statement_started(self, index: int, total: int, text: str) -> None:
        """Statement ``index`` of ``total`` starts; the timer line names it."""
        with self._lock:
            self._statement = f"statement {index}/{total}: {_excerpt(text)}"

    def backfill_started(self, name: str, rows_done: int, rows_total: int | None) -> None:
        """A backfill starts or resumes; the bar (or the lines) count its rows from here."""
        with self._lock:
            self._close_bar()
            self._backfill = name
            self._statement = f"backfill {name}"

    def batch_done(self, name: str, rows_done: int, rows_total: int | None, rate: float) -> None:
        """A batch committed: move the bar, or print a line if the last one is ``interval`` old."""
        with self._lock:
            now = self.clock()
            if now - self._started < self.after:
                return
            if self.tty and rows_total:
                self._update_bar(name, rows_done, rows_total, rate)
                return
            self._statement = f"backfill {name}: {_rows(rows_done, rows_total, rate)}"
            if self.tty or now - self._last_line >= self.interval:
                self._show(now)

    def backfill_finished(self, name: str, rows: int, duration_ms: int) -> None:
        """A backfill is done: close its bar, and say so if the display was showing."""
        with self._lock:
            shown = self._bar is not None or self._last_line > float("-inf")
            self._close_bar()
            self._clear_line()
            self._backfill = None
            self._statement = None
            if shown:
                self._write(f"  backfill {name}: {rows:,} rows in {_duration(duration_ms / 1000)}\n")

    def migration_finished(self) -> None:
        """The migration ended: clear the timer line before the CLI prints its result."""
        with self._lock:
            self._close_bar()
            self._clear_line()
            self._migration = None

    def before_print(self) -> None:
        """Someone else prints a line: clear the timer line or bar first (the bar redraws on its update)."""
        with self._lock:
            if self.tty and (self._line_open or self._bar is not None):
                self._write("\r\x1b[K")
                self._line_open = False

    def close(self) -> None:
        """Stop the ticker thread (the command ended, whatever its outcome)."""
        self.migration_finished()
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None

    # -- the timer -------------------------------------------------------------------------------------------
    def tick(self) -> None:
        """Show the timer line once a migration has run ``after`` seconds, at most every ``interval``."""
        with self._lock:
            if self._migration is None or self._bar is not None:
                return
            now = self.clock()
            if now - self._started >= self.after and now - self._last_line >= self.interval:
                self._show(now)

    def _tick_loop(self) -> None:
        while not self._stop.wait(0.5 if self.tty else 1.0):
            self.tick()

    def _show(self, now: float) -> None:
        elapsed = _duration(now - self._started)
        what = f", {self._statement}" if self._statement else ""
        line = f"  ... {self._migration}: running for {elapsed}{what}"
        if self.tty:
            width = max(20, _terminal_width() - 1)
            self._write("\r\x1b[K" + line[:width])
            self._line_open = True
        else:
            self._write(line + "\n")
        self._last_line = now

    # -- helpers ---------------------------------------------------------------------------------------------
    def _update_bar(self, name: str, rows_done: int, rows_total: int, rate: float) -> None:
        # the rate and ETA are the engine's (rows of this run): click's own ETA would count the rows a
        # resumed backfill did before as done in no time
        info = _rate_eta(rows_done, rows_total, rate)
        if self._bar is None:
            self._clear_line()
            self._bar = click.progressbar(
                length=rows_total, label=f"  backfill {name}", file=self.stream, show_eta=False,
                show_percent=True, show_pos=True, item_show_func=lambda text: text,
            )  # fmt: skip
        step = rows_done - self._bar.pos
        self._bar.update(max(step, 0), info)

    def _close_bar(self) -> None:
        if self._bar is not None:
            self._bar.render_finish()
            self._bar = None

    def _clear_line(self) -> None:
        if self._line_open:
            self._write("\r\x1b[K")
            self._line_open = False

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()


def _rows(done: int, total: int | None, rate: float) -> str:
    """'42,000/200,000 rows (21%), 8,400 rows/s, ETA 19 s' (what is known of it)."""
    if not total:
        return f"{done:,} rows, {rate:,.0f} rows/s"
    return f"{done:,}/{total:,} rows ({100 * done // total}%), {_rate_eta(done, total, rate)}"


def _rate_eta(done: int, total: int, rate: float) -> str:
    """'8,400 rows/s, ETA 19 s' (no ETA before a rate is known or once done)."""
    eta = f", ETA {_duration((total - done) / rate)}" if rate > 0 and total > done else ""
    return f"{rate:,.0f} rows/s{eta}"


def _duration(seconds: float) -> str:
    """'4 s', '3 min 20 s', '2 h 05 min'."""
    whole = int(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"


def _excerpt(text: str, limit: int = 60) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _terminal_width() -> int:
    try:
        return os.get_terminal_size().columns
    except OSError:
        return 80
