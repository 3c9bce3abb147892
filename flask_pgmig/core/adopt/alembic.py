"""Alembic (Flask-Migrate): each revision's SQL, captured with Alembic's offline mode in a subprocess.

The engine never imports Alembic or SQLAlchemy: a small driver runs in a child Python (the same interpreter)
that loads the revision graph with Alembic's ``ScriptDirectory`` and renders every revision's ``upgrade()``
and ``downgrade()`` as PostgreSQL SQL, the way ``alembic upgrade A:B --sql`` does, without the project's
``env.py`` (a Flask-Migrate ``env.py`` needs a running app; the revision files do not). Revisions come out
base first in an order that respects every parent, merges included. ``op.get_context().autocommit_block()``
(``COMMIT``/``BEGIN`` in offline SQL) becomes ``transaction:false``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from ...errors import ConfigError, MigrationFileError
from .model import NOTE, WARNING, Finding, SourceMigration, SourceSection, SourceSet, require_directory, slug

DRIVER = r"""
import io, json, sys, traceback
from alembic.config import Config
from alembic.operations import Operations
from alembic.runtime.environment import EnvironmentContext
from alembic.script import ScriptDirectory

root = sys.argv[1]
config = Config()
config.set_main_option("script_location", root)
script = ScriptDirectory.from_config(config)

def render(revision, name):
    function = getattr(revision.module, name, None)
    if function is None:
        return None
    buffer = io.StringIO()
    with EnvironmentContext(config, script, as_sql=True) as env:
        env.configure(  # "named" like Alembic's own env.py template: '%' is not doubled in the SQL
            dialect_name="postgresql", output_buffer=buffer, literal_binds=True, dialect_opts={"paramstyle": "named"}
        )
        with Operations.context(env.get_context()):
            function()
    return buffer.getvalue()

revisions = list(script.walk_revisions("base", "heads"))
revisions.reverse()
out = {"heads": list(script.get_heads()), "revisions": []}
for revision in revisions:
    entry = {
        "id": revision.revision,
        "parents": [] if revision.down_revision is None else (
            [revision.down_revision] if isinstance(revision.down_revision, str) else list(revision.down_revision)
        ),
        "doc": revision.doc or "",
        "path": revision.path,
    }
    for name in ("upgrade", "downgrade"):
        try:
            entry[name] = render(revision, name)
        except Exception as exc:
            entry[name + "_error"] = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    out["revisions"].append(entry)
print(json.dumps(out))
"""


def read(root: Path) -> SourceSet:
    """Every Alembic revision under ``root`` (the folder with ``env.py`` and ``versions/``), base first."""
    require_directory(root, "Alembic")
    if not (root / "versions").is_dir():
        raise MigrationFileError(
            f"'{root}' has no 'versions' folder, so it is not an Alembic (Flask-Migrate) migrations directory. "
            "Give the folder that holds env.py and versions/ (usually 'migrations').",
            paths=[str(root)],
        )
    data = _run_driver(root)
    migrations = [_migration(root, entry) for entry in data["revisions"]]
    findings: list[Finding] = []
    heads = tuple(str(h) for h in data["heads"])
    if len(heads) > 1:
        findings.append(
            Finding(
                f"the revision graph has {len(heads)} heads ({', '.join(heads)}); they were imported one after "
                "the other, as 'alembic upgrade heads' would apply them"
            )
        )
    if not migrations:
        raise MigrationFileError(
            f"No Alembic revisions were found in '{root / 'versions'}'. Check the directory and --from.",
            paths=[str(root)],
        )
    return SourceSet("alembic", root, tuple(migrations), findings=tuple(findings), heads=heads)


def _run_driver(root: Path) -> dict[str, Any]:
    project = root.resolve().parent  # revision files may import the application's own modules
    try:
        done = subprocess.run(
            [sys.executable, "-c", DRIVER, str(root.resolve())],
            capture_output=True,
            text=True,
            cwd=project,
            timeout=600,
            env=_environment(project),
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ConfigError(
            f"Could not run Alembic to read '{root}': {exc}. Check the Python environment."
        ) from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        if "No module named 'alembic'" in done.stderr:
            raise ConfigError(
                "Importing Alembic migrations needs the 'alembic' package in this Python environment. Install it "
                "('pip install alembic') and import again."
            )
        raise MigrationFileError(
            f"Alembic could not load the revisions in '{root}': {last}. Fix the revision files (or the graph) "
            "so that 'alembic history' works, then import again.",
            paths=[str(root)],
        )
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def _environment(project: Path) -> dict[str, str]:
    import os

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(project), env.get("PYTHONPATH", "")) if p)
    return env


def _migration(root: Path, entry: dict[str, Any]) -> SourceMigration:
    path = Path(entry["path"])
    file = _relative(path, root)
    revision = str(entry["id"])
    if "upgrade_error" in entry:
        raise MigrationFileError(
            f"Alembic revision '{revision}' ('{file}') cannot be rendered as SQL in offline mode: "
            f"{entry['upgrade_error']}. Make its upgrade() work with 'alembic upgrade --sql' (no "
            "op.get_bind() queries), or replace it by plain op.execute() SQL, then import again.",
            paths=[str(path)],
        )
    findings: list[Finding] = []
    up, up_findings = _section(entry["upgrade"] or "", file)
    findings += up_findings
    down: SourceSection | None = None
    if "downgrade_error" in entry:
        findings.append(
            Finding(
                f"downgrade() cannot run offline ({entry['downgrade_error']}); the migration is irreversible",
                file,
                None,
                WARNING,
            )
        )
    elif entry.get("downgrade") is not None:
        down, down_findings = _section(entry["downgrade"], file)
        findings += down_findings
    parents = tuple(str(p) for p in entry["parents"])
    if len(parents) > 1:
        findings.append(Finding(f"merge revision of {', '.join(parents)}", file, None, NOTE))
    name = slug(entry["doc"].strip().splitlines()[0] if entry["doc"].strip() else revision)
    return SourceMigration(revision, name, up, down, (file,), tuple(findings), parents=parents)


def _section(text: str, file: str) -> tuple[SourceSection, list[Finding]]:
    """Offline SQL of one direction; autocommit blocks (COMMIT ... BEGIN) make it non-transactional."""
    from ..sql import split_statements, transaction_control

    statements = split_statements(text)
    control = [s for s in statements if transaction_control(s) in ("BEGIN", "COMMIT")]
    if not control:
        return SourceSection(text, file), []
    kept = [s.text + ";" for s in statements if s not in control]
    note = Finding("autocommit_block() became transaction:false", file, None, NOTE)
    return SourceSection("\n\n".join(kept) + "\n", file, 1, transaction=False), [note]


def _relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.name
