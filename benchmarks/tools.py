"""The tools compared side by side: how each is prepared for N migrations and which commands do each step.

Steps are ``apply`` (all pending), ``status`` (when up to date) and ``rollback`` (everything). A tool without a
step leaves it out. Each tool runs against its own database, dropped and created afresh for every run.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from . import generate
from .db import Server
from .install import saved_notes
from .paths import NODE_DIR, OWN_BIN, PROBES, REPO, VENV_BIN
from .timing import clean_env

STEPS = ("apply", "status", "rollback")
Commands = list[list[str]]


@dataclass(frozen=True)
class Target:
    """Where a tool runs: its scratch directory for this N, and its database."""

    root: Path
    database: str
    server: Server
    n: int


def _output(argv: list[str], cwd: Path | None = None) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False, cwd=cwd)
    except OSError as exc:
        return f"? ({exc})"
    text = (done.stdout or done.stderr).strip()
    return text.splitlines()[0] if text else "?"


def _dist_version(bin_dir: Path, dist: str) -> str:
    return _output(
        [str(bin_dir / "python"), "-c", f"import importlib.metadata as m; print(m.version({dist!r}))"]
    )


class Tool:
    """One tool: its name (for --tools), its label (for the table), and how to run it."""

    name = ""
    label = ""
    kind = "peer"  # "floor", "own" or "peer"
    transaction = "each"  # how apply uses transactions by default: "each" migration, or all in "one"
    steps: tuple[str, ...] = STEPS

    def missing(self) -> str | None:
        """Why the tool cannot run here, or None."""
        return None

    def version(self) -> str:
        """The version that was measured."""
        return "?"

    def prepare(self, target: Target) -> None:
        """Write the N migrations (and any scaffolding) under target.root."""
        raise NotImplementedError

    def commands(self, step: str, target: Target) -> Commands:
        """The commands that do one step."""
        raise NotImplementedError

    def env(self, target: Target) -> dict[str, str]:
        """The environment the commands run in."""
        return clean_env()


# -- the floors ------------------------------------------------------------------------------------------------
class PsqlSingle(Tool):
    name = "psql"
    label = "psql, all in one transaction (floor)"
    kind = "floor"
    transaction = "one"

    def missing(self) -> str | None:
        return None if shutil.which("psql") else "psql is not installed (apt-get install postgresql-client)"

    def version(self) -> str:
        return _output(["psql", "--version"])

    def prepare(self, target: Target) -> None:
        generate.write_psql(target.root, target.n)

    def _psql(self, target: Target, *args: str) -> list[str]:
        s = target.server
        return [
            "psql",
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            s.host,
            "-p",
            str(s.port),
            "-U",
            s.user,
            "-d",
            target.database,
            *args,
        ]

    def commands(self, step: str, target: Target) -> Commands:
        if step == "status":
            return [self._psql(target, "-Atc", "SELECT 1")]
        script = "up_single.sql" if step == "apply" else "down_single.sql"
        return [self._psql(target, "-1", "-f", script)]


class PsqlEach(PsqlSingle):
    name = "psql-each"
    label = "psql, one transaction per file, one session"
    transaction = "each"
    steps = ("apply", "rollback")

    def commands(self, step: str, target: Target) -> Commands:
        return [self._psql(target, "-f", "up_each.sql" if step == "apply" else "down_each.sql")]


# -- ours ------------------------------------------------------------------------------------------------------
def _git_describe() -> str:
    return _output(["git", "-C", str(REPO), "log", "-1", "--format=%h"])


class Pgmig(Tool):
    name = "pgmig"
    label = "flask-pgmig: pgmig migrate / status / rollback --all"
    kind = "own"

    def missing(self) -> str | None:
        return None if (OWN_BIN / "pgmig").exists() else f"no pgmig script in {OWN_BIN}"

    def version(self) -> str:
        return f"{_dist_version(OWN_BIN, 'flask-pgmig')} (git {_git_describe()})"

    def prepare(self, target: Target) -> None:
        generate.write_dbmate(target.root / "migrations", target.n)

    def _pgmig(self, target: Target, *args: str) -> list[str]:
        url = target.server.url_for(target.database)
        return [str(OWN_BIN / "pgmig"), "--database-url", url, "--directory", "migrations", *args]

    def commands(self, step: str, target: Target) -> Commands:
        args = {"apply": ["migrate"], "status": ["status"], "rollback": ["rollback", "--all"]}[step]
        return [self._pgmig(target, *args)]


class PgmigAtomic(Pgmig):
    name = "pgmig-atomic"
    label = "flask-pgmig: pgmig migrate --atomic / rollback --all --atomic"
    transaction = "one"
    steps = ("apply", "rollback")

    def commands(self, step: str, target: Target) -> Commands:
        args = {"apply": ["migrate"], "rollback": ["rollback", "--all"]}[step]
        return [self._pgmig(target, *args, "--atomic")]


class FlaskPgmig(Pgmig):
    name = "flask-pgmig"
    label = "flask-pgmig: flask db upgrade / status / rollback --all"

    def env(self, target: Target) -> dict[str, str]:
        return clean_env(
            {
                "PYTHONPATH": str(PROBES),
                "BENCH_SQLALCHEMY_URL": target.server.url_for(target.database, "postgresql+psycopg"),
                "BENCH_MIGRATIONS_DIR": str(target.root / "migrations"),
            }
        )

    def commands(self, step: str, target: Target) -> Commands:
        args = {"apply": ["upgrade"], "status": ["status"], "rollback": ["rollback", "--all"]}[step]
        return [[str(OWN_BIN / "flask"), "--app", "pgmig_app:create_app", "db", *args]]


# -- Python peers ----------------------------------------------------------------------------------------------
def _venv_missing(script: str) -> str | None:
    note = saved_notes().get("python")
    if (VENV_BIN / script).exists():
        return None
    return note or f"{VENV_BIN / script} is missing: run benchmarks/run --install-only"


class Alembic(Tool):
    name = "alembic"
    label = "Alembic (upgrade head / current / downgrade base; one transaction by default)"
    transaction = "one"  # transactional DDL on PostgreSQL, transaction_per_migration off

    def missing(self) -> str | None:
        return _venv_missing("alembic")

    def version(self) -> str:
        return _dist_version(VENV_BIN, "alembic")

    def prepare(self, target: Target) -> None:
        if target.root.exists():
            shutil.rmtree(target.root)
        target.root.mkdir(parents=True)
        subprocess.run(
            [str(VENV_BIN / "alembic"), "init", "-t", "generic", "alembic"],
            cwd=target.root,
            check=True,
            capture_output=True,
        )
        ini = target.root / "alembic.ini"
        url = target.server.url_for(target.database, "postgresql+psycopg")
        ini.write_text(re.sub(r"(?m)^sqlalchemy\.url = .*$", f"sqlalchemy.url = {url}", ini.read_text()))
        generate.write_alembic_versions(target.root / "alembic" / "versions", target.n)

    def commands(self, step: str, target: Target) -> Commands:
        args = {"apply": ["upgrade", "head"], "status": ["current"], "rollback": ["downgrade", "base"]}[step]
        return [[str(VENV_BIN / "alembic"), *args]]


class FlaskMigrate(Tool):
    name = "flask-migrate"
    label = "Flask-Migrate (flask db upgrade / current / downgrade base; one transaction by default)"
    transaction = "one"

    def missing(self) -> str | None:
        return _venv_missing("flask")

    def version(self) -> str:
        return f"{_dist_version(VENV_BIN, 'Flask-Migrate')} (Alembic {_dist_version(VENV_BIN, 'alembic')})"

    def env(self, target: Target) -> dict[str, str]:
        return clean_env(
            {
                "PYTHONPATH": str(PROBES),
                "BENCH_SQLALCHEMY_URL": target.server.url_for(target.database, "postgresql+psycopg"),
                "BENCH_MIGRATIONS_DIR": str(target.root / "migrations"),
            }
        )

    def prepare(self, target: Target) -> None:
        if target.root.exists():
            shutil.rmtree(target.root)
        target.root.mkdir(parents=True)
        subprocess.run(
            [*self._flask(), "init"], cwd=target.root, env=self.env(target), check=True, capture_output=True
        )
        generate.write_alembic_versions(target.root / "migrations" / "versions", target.n)

    def _flask(self) -> list[str]:
        return [str(VENV_BIN / "flask"), "--app", "fm_app:create_app", "db"]

    def commands(self, step: str, target: Target) -> Commands:
        args = {"apply": ["upgrade"], "status": ["current"], "rollback": ["downgrade", "base"]}[step]
        return [[*self._flask(), *args]]


class Yoyo(Tool):
    name = "yoyo"
    label = "yoyo (apply / list / rollback --all)"

    def missing(self) -> str | None:
        return _venv_missing("yoyo")

    def version(self) -> str:
        return _dist_version(VENV_BIN, "yoyo-migrations")

    def prepare(self, target: Target) -> None:
        generate.write_yoyo(target.root / "migrations", target.n)

    def commands(self, step: str, target: Target) -> Commands:
        url = target.server.url_for(target.database, "postgresql+psycopg")
        common = ["--no-config-file", "--database", url, "migrations"]
        args = {
            "apply": ["apply", "--batch"],
            "status": ["list"],
            "rollback": ["rollback", "--batch", "--all"],
        }[step]
        return [[str(VENV_BIN / "yoyo"), *args, *common]]


# -- npm peers -------------------------------------------------------------------------------------------------
def _node_missing(package: str) -> str | None:
    if (NODE_DIR / "node_modules" / package / "package.json").exists():
        return None
    return saved_notes().get("node") or f"{package} is not installed: run benchmarks/run --install-only"


def _node_version(package: str) -> str:
    try:
        data = json.loads((NODE_DIR / "node_modules" / package / "package.json").read_text())
    except (OSError, ValueError):
        return "?"
    return str(data.get("version", "?"))


class Dbmate(Tool):
    name = "dbmate"
    label = "dbmate (migrate / status / rollback x N)"

    def _binary(self) -> Path | None:
        found = sorted((NODE_DIR / "node_modules" / "@dbmate").glob("*/bin/dbmate"))
        return found[0] if found else None

    def missing(self) -> str | None:
        return _node_missing("dbmate") or (None if self._binary() else "dbmate's platform binary is missing")

    def version(self) -> str:
        binary = self._binary()
        return _output([str(binary), "--version"]).removeprefix("dbmate version ") if binary else "?"

    def prepare(self, target: Target) -> None:
        generate.write_dbmate(target.root / "migrations", target.n)

    def commands(self, step: str, target: Target) -> Commands:
        url = target.server.url_for(target.database, "postgres", "sslmode=disable")
        base = [str(self._binary()), "--url", url, "--migrations-dir", "migrations", "--no-dump-schema"]
        if step == "rollback":  # dbmate reverts one migration per invocation
            return [[*base, "rollback"] for _ in range(target.n)]
        return [[*base, "migrate" if step == "apply" else "status"]]


class NodePgMigrate(Tool):
    name = "node-pg-migrate"
    label = "node-pg-migrate (up / up when current / down N; one transaction by default)"
    transaction = "one"  # --single-transaction defaults to true

    def missing(self) -> str | None:
        if shutil.which("node") is None:
            return "node is not installed"
        return _node_missing("node-pg-migrate")

    def version(self) -> str:
        return _node_version("node-pg-migrate")

    def env(self, target: Target) -> dict[str, str]:
        return clean_env({"DATABASE_URL": target.server.url_for(target.database, "postgres")})

    def prepare(self, target: Target) -> None:
        generate.write_node_pg_migrate(target.root / "migrations", target.n)

    def commands(self, step: str, target: Target) -> Commands:
        binary = str(NODE_DIR / "node_modules" / ".bin" / "node-pg-migrate")
        args = {"apply": ["up"], "status": ["up"], "rollback": ["down", str(target.n)]}[step]
        return [[binary, *args, "-m", "migrations"]]


# -- apt peer --------------------------------------------------------------------------------------------------
class Sqitch(Tool):
    name = "sqitch"
    label = "sqitch (deploy / status / revert)"

    def missing(self) -> str | None:
        if shutil.which("sqitch"):
            return None
        return saved_notes().get("sqitch") or "sqitch is not installed: run benchmarks/run --install-only"

    def version(self) -> str:
        return _output(["sqitch", "--version"]).removeprefix("sqitch (App::Sqitch) ")

    def env(self, target: Target) -> dict[str, str]:
        return clean_env({"SQITCH_FULLNAME": "Bench", "SQITCH_EMAIL": "bench@example.invalid"})

    def prepare(self, target: Target) -> None:
        generate.write_sqitch(target.root, target.n)

    def commands(self, step: str, target: Target) -> Commands:
        uri = target.server.url_for(target.database, "db:pg")
        args = {"apply": ["deploy"], "status": ["status"], "rollback": ["revert", "-y"]}[step]
        return [["sqitch", *args, uri]]


ALL: tuple[Tool, ...] = (
    PsqlSingle(),
    PsqlEach(),
    Pgmig(),
    PgmigAtomic(),
    FlaskPgmig(),
    Alembic(),
    FlaskMigrate(),
    Dbmate(),
    NodePgMigrate(),
    Yoyo(),
    Sqitch(),
)
BY_NAME = {tool.name: tool for tool in ALL}


def database_for(tool: Tool) -> str:
    """Each tool's own database name."""
    return "pgmig_bench_" + tool.name.replace("-", "_")
