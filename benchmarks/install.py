"""Install the peers under benchmarks/.peers/ (never committed): what cannot be installed is skipped with a note.

- Alembic, Flask-Migrate and yoyo from PyPI into their own venv (``.peers/venv``), so the project's venv is
  untouched and the peers get the same interpreter.
- dbmate and node-pg-migrate from the npm registry (``.peers/node``); dbmate's npm package ships its Go binary,
  which is run directly (not through the Node launcher).
- sqitch from Debian's apt (``apt-get install sqitch``) where apt is there and we are root.

Usage: ``python -m benchmarks.install`` (``benchmarks/run`` calls it first unless ``--no-install``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

from .paths import NODE_DIR, PEERS, VENV_DIR

PYPI_PEERS = [
    "alembic",
    "flask-migrate",
    "yoyo-migrations",
    "psycopg[binary]",
    "flask-sqlalchemy",
    "pyinstrument",
    "py-spy",
]
NPM_PEERS = ["dbmate", "node-pg-migrate", "pg"]
NOTES_FILE = PEERS / "install-notes.json"


def _run(argv: list[str], **kwargs: object) -> tuple[bool, str]:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=900, check=False, **kwargs)  # type: ignore[call-overload]
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, str(exc)
    output = (done.stdout + done.stderr).strip().splitlines()
    return done.returncode == 0, "\n".join(output[-5:])


def install_python_peers() -> str | None:
    """A venv with Alembic, Flask-Migrate and yoyo; returns a note when it could not be made."""
    python = VENV_DIR / "bin" / "python"
    if not python.exists():
        ok, out = _run([sys.executable, "-m", "venv", str(VENV_DIR)])
        if not ok:
            return f"could not create the peers venv: {out}"
    ok, out = _run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *PYPI_PEERS])
    return None if ok else f"pip install {' '.join(PYPI_PEERS)} failed: {out}"


def install_node_peers() -> str | None:
    """dbmate and node-pg-migrate from the npm registry; returns a note when npm is missing or fails."""
    npm = shutil.which("npm")
    if npm is None:
        return "npm is not installed (apt-get install npm), so dbmate and node-pg-migrate are skipped"
    NODE_DIR.mkdir(parents=True, exist_ok=True)
    package = NODE_DIR / "package.json"
    if not package.exists():
        package.write_text(json.dumps({"private": True, "name": "pgmig-bench-peers"}))
    ok, out = _run([npm, "install", "--no-audit", "--no-fund", "--silent", *NPM_PEERS], cwd=NODE_DIR)
    return None if ok else f"npm install {' '.join(NPM_PEERS)} failed: {out}"


def install_sqitch() -> str | None:
    """sqitch from apt; returns a note when it is not to be had."""
    if shutil.which("sqitch"):
        return None
    apt = shutil.which("apt-get")
    if apt is None or os.geteuid() != 0:
        return "sqitch is not installed and apt-get (as root) is not available"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    ok, out = _run([apt, "install", "-y", "-q", "sqitch"], env=env)
    if not ok:
        _run([apt, "update", "-q"], env=env)
        ok, out = _run([apt, "install", "-y", "-q", "sqitch"], env=env)
    return None if ok and shutil.which("sqitch") else f"apt-get install sqitch failed: {out}"


def install_all() -> dict[str, str]:
    """Install every peer; return {group: note} for what could not be installed (also saved to disk)."""
    PEERS.mkdir(parents=True, exist_ok=True)
    notes: dict[str, str] = {}
    for group, step in (
        ("python", install_python_peers),
        ("node", install_node_peers),
        ("sqitch", install_sqitch),
    ):
        print(f"installing {group} peers ...", file=sys.stderr, flush=True)
        note = step()
        if note:
            notes[group] = note
            print(f"  skipped: {note}", file=sys.stderr)
    NOTES_FILE.write_text(json.dumps(notes, indent=2))
    return notes


def saved_notes() -> dict[str, str]:
    """The notes of the last install, if any."""
    try:
        data = json.loads(NOTES_FILE.read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()}


if __name__ == "__main__":
    install_all()
