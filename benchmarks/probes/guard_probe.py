"""Time one app creation in a fresh process (project venv): ``python guard_probe.py``; prints JSON.

The app's own imports (flask, flask_sqlalchemy, flask_pgmig) are done before the clock starts, as they are in
any app module; create_app() then builds the engine and, with BENCH_PGMIG_GUARD=error, runs the startup guard.
"""

import json
import time

import flask  # noqa: F401
import flask_sqlalchemy  # noqa: F401
import pgmig_app

started = time.perf_counter()
try:
    pgmig_app.create_app()
    outcome = "created"
except Exception as exc:  # the guard refusing to boot is an outcome, not a crash
    outcome = type(exc).__name__
print(json.dumps({"seconds": time.perf_counter() - started, "outcome": outcome}))
