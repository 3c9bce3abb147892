"""Eight ``pgmig migrate`` processes started at the same moment on one database: each migration once, all exit 0."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from helpers import copy_scenario, query

RUNNERS = 8


def test_eight_processes_racing(database_url: str, tmp_path: Path) -> None:
    migrations = copy_scenario("basic", tmp_path)
    # a slow migration so that the others really wait for the lock while it runs
    (migrations / "20260118000000_slow.sql").write_text(
        "-- migrate:up\nSELECT pg_sleep(1.5);\nCREATE TABLE slow_done (id int);\n"
        "-- migrate:down\nDROP TABLE slow_done;\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PGMIG_")}
    env.update(DATABASE_URL=database_url, PGMIG_DIRECTORY=str(migrations))
    code = "import flask_pgmig.cli as c, sys; c.main(sys.argv[1:])"
    barrier = tmp_path / "go"
    starter = f"import os, time\nwhile not os.path.exists({str(barrier)!r}): time.sleep(0.005)\n{code}"
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", starter, "migrate"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(RUNNERS)
    ]
    barrier.touch()
    outputs = [p.communicate(timeout=120) for p in processes]
    assert [p.returncode for p in processes] == [0] * RUNNERS, outputs
    applied_lines = sum(out.count("  applied  ") for out, _ in outputs)
    assert applied_lines == 4  # each migration applied by exactly one process
    rows = query(
        database_url, "SELECT version, count(*) FROM pgmig_history GROUP BY version ORDER BY version"
    )
    assert [r[1] for r in rows] == [1, 1, 1, 1]
    assert any("Waiting for the migration lock" in err for _, err in outputs)
