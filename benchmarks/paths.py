"""Where things live: the peers (installed, never committed), scratch work, committed results."""

from __future__ import annotations

import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
PEERS = BENCH / ".peers"
VENV_DIR = PEERS / "venv"
VENV_BIN = VENV_DIR / "bin"
NODE_DIR = PEERS / "node"
WORK = BENCH / "work"
RESULTS = BENCH / "results"
PROBES = BENCH / "probes"
# The project's own venv (the one running the harness): pgmig, flask, pytest for our cases.
OWN_BIN = Path(sys.executable).parent
