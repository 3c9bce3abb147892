"""Write the same N migrations in every tool's native format.

Migration ``i`` (1-based) creates one small table ``bench_t<i>`` (a bigint primary key, a text column and a
timestamp with a default) and its down section drops it. Every format below holds exactly that SQL; only the
wrapping differs (file names, section markers, plan files, Python revision modules).
"""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

BASE_TIME = datetime(2026, 1, 1, tzinfo=timezone.utc)
TABLE_PREFIX = "bench_t"


def table(i: int) -> str:
    """The table migration ``i`` creates."""
    return f"{TABLE_PREFIX}{i:05d}"


def up_sql(i: int) -> str:
    """The up SQL of migration ``i``: one small table."""
    return (
        f"CREATE TABLE {table(i)} (id bigint PRIMARY KEY, name text NOT NULL, "
        "created_at timestamptz NOT NULL DEFAULT now());"
    )


def down_sql(i: int) -> str:
    """The down SQL of migration ``i``."""
    return f"DROP TABLE {table(i)};"


def version(i: int) -> str:
    """A 14-digit UTC timestamp version, one minute apart, in order."""
    return (BASE_TIME + timedelta(minutes=i)).strftime("%Y%m%d%H%M%S")


def _fresh(directory: Path) -> Path:
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    return directory


def write_dbmate(directory: Path, n: int) -> Path:
    """dbmate's format, which is also flask-pgmig's: ``<version>_<name>.sql`` with migrate:up/down markers."""
    _fresh(directory)
    for i in range(1, n + 1):
        text = f"-- migrate:up\n{up_sql(i)}\n\n-- migrate:down\n{down_sql(i)}\n"
        (directory / f"{version(i)}_create_{table(i)}.sql").write_text(text)
    return directory


def write_psql(directory: Path, n: int) -> Path:
    """Plain up/down files plus psql driver scripts: all files in one transaction, or one transaction each."""
    _fresh(directory)
    (directory / "up").mkdir()
    (directory / "down").mkdir()
    for i in range(1, n + 1):
        (directory / "up" / f"{version(i)}.sql").write_text(up_sql(i) + "\n")
        (directory / "down" / f"{version(i)}.sql").write_text(down_sql(i) + "\n")
    ups = [f"up/{version(i)}.sql" for i in range(1, n + 1)]
    downs = [f"down/{version(i)}.sql" for i in range(n, 0, -1)]
    for name, files in (("up", ups), ("down", downs)):
        (directory / f"{name}_single.sql").write_text("".join(f"\\ir {f}\n" for f in files))
        (directory / f"{name}_each.sql").write_text("".join(f"BEGIN;\n\\ir {f}\nCOMMIT;\n" for f in files))
    return directory


ALEMBIC_REVISION = '''"""create {table}

Revision ID: {rev}
Revises: {down_rev}
"""
from alembic import op

revision = {rev!r}
down_revision = {down_rev!r}
branch_labels = None
depends_on = None


def upgrade():
    op.execute({up!r})


def downgrade():
    op.execute({down!r})
'''


def write_alembic_versions(directory: Path, n: int) -> Path:
    """Alembic revision modules (also what Flask-Migrate runs), each executing the same SQL."""
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.py"):
        stale.unlink()
    for i in range(1, n + 1):
        rev = f"r{i:05d}"
        down_rev = f"r{i - 1:05d}" if i > 1 else None
        text = ALEMBIC_REVISION.format(
            table=table(i), rev=rev, down_rev=down_rev, up=up_sql(i), down=down_sql(i)
        )
        (directory / f"{rev}_create_{table(i)}.py").write_text(text)
    return directory


def write_yoyo(directory: Path, n: int) -> Path:
    """yoyo's SQL format: ``<id>.sql`` plus ``<id>.rollback.sql``, ordered by file name."""
    _fresh(directory)
    for i in range(1, n + 1):
        stem = f"{version(i)}_create_{table(i)}"
        (directory / f"{stem}.sql").write_text(up_sql(i) + "\n")
        (directory / f"{stem}.rollback.sql").write_text(down_sql(i) + "\n")
    return directory


def write_node_pg_migrate(directory: Path, n: int) -> Path:
    """node-pg-migrate's SQL format: ``<timestamp>_<name>.sql`` with '-- Up Migration' / '-- Down Migration'."""
    _fresh(directory)
    for i in range(1, n + 1):
        text = f"-- Up Migration\n{up_sql(i)}\n\n-- Down Migration\n{down_sql(i)}\n"
        (directory / f"{version(i)}_create-{table(i)}.sql").write_text(text)
    return directory


SQITCH_CONF = """[core]
\tengine = pg
\tplan_file = sqitch.plan
\ttop_dir = .
"""


def write_sqitch(directory: Path, n: int) -> Path:
    """A sqitch project: sqitch.conf, sqitch.plan, deploy/ revert/ verify/ scripts as ``sqitch add`` writes them."""
    _fresh(directory)
    (directory / "sqitch.conf").write_text(SQITCH_CONF)
    for sub in ("deploy", "revert", "verify"):
        (directory / sub).mkdir()
    plan = ["%syntax-version=1.0.0", "%project=bench", ""]
    for i in range(1, n + 1):
        name = table(i)
        stamp = (BASE_TIME + timedelta(minutes=i)).strftime("%Y-%m-%dT%H:%M:%SZ")
        plan.append(f"{name} {stamp} Bench <bench@example.invalid> # create {name}")
        (directory / "deploy" / f"{name}.sql").write_text(
            f"-- Deploy bench:{name}\n\nBEGIN;\n\n{up_sql(i)}\n\nCOMMIT;\n"
        )
        (directory / "revert" / f"{name}.sql").write_text(
            f"-- Revert bench:{name}\n\nBEGIN;\n\n{down_sql(i)}\n\nCOMMIT;\n"
        )
        (directory / "verify" / f"{name}.sql").write_text(
            f"-- Verify bench:{name}\n\nBEGIN;\n\nSELECT id FROM {name} WHERE false;\n\nROLLBACK;\n"
        )
    (directory / "sqitch.plan").write_text("\n".join(plan) + "\n")
    return directory
