"""The PGMIG_* settings: one table of keys with defaults and documentation, and their parsing.

``flask db`` reads them from ``app.config``, the standalone ``pgmig`` from environment variables of the same names;
both go through :func:`settings_from_mapping` so a value means the same thing everywhere.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .migrator import Settings

LINT_MODES = ("off", "warn", "error")  # PGMIG_LINT, and check --lint


@dataclass(frozen=True)
class Key:
    """One documented configuration key."""

    name: str
    default: Any
    doc: str


KEYS: tuple[Key, ...] = (
    Key(
        "PGMIG_DIRECTORY", "migrations", "Migrations directory; relative paths start at the app's root_path."
    ),
    Key("PGMIG_DATABASE_URL", None, "DSN used for migrations instead of the app's engine (e.g. a DDL role)."),
    Key("PGMIG_BIND", None, "Flask-SQLAlchemy bind key whose engine is migrated (None: the default engine)."),
    Key(
        "PGMIG_SECRETS",
        None,
        "Secrets provider for the DSN: env:NAME, file:/path, aws-secretsmanager:ID, mod:func.",
    ),
    Key("PGMIG_SCHEMA", "public", "Schema of the history table and its audit log."),
    Key("PGMIG_TABLE", "pgmig_history", "Name of the history table (the audit log is <name>_audit)."),
    Key("PGMIG_LOCK_WAIT", "60s", "How long to wait for another run's migration lock before failing."),
    Key(
        "PGMIG_LOCK_TIMEOUT",
        "5s",
        "lock_timeout for every migration statement, so live traffic never queues.",
    ),
    Key(
        "PGMIG_LOCK_RETRIES", 3, "Retries of a migration that hit lock_timeout (exponential backoff, jitter)."
    ),
    Key("PGMIG_STATEMENT_TIMEOUT", None, "statement_timeout for migration statements (None: the server's)."),
    Key("PGMIG_OUT_OF_ORDER", False, "Apply pending migrations older than the newest applied one."),
    Key("PGMIG_ROLE", None, "Role to SET ROLE to before migrating, so objects get the right owner."),
    Key(
        "PGMIG_GUARD",
        "off",
        "Startup guard: off, warn (log) or error (refuse to boot) when migrations are behind.",
    ),
    Key("PGMIG_LINT", "off", "Lint before migrate: off, warn or error."),
    Key(
        "PGMIG_HEALTH_ENDPOINT",
        None,
        "URL path of a readiness endpoint serving the migration status as JSON.",
    ),
    Key(
        "PGMIG_BINDS",
        None,
        "Per-bind migration directories, e.g. {'analytics': 'migrations_analytics'}, or per-bind settings.",
    ),
    Key(
        "PGMIG_TENANT_SCHEMAS",
        None,
        "Per-schema migrations: a LIKE pattern such as 'tenant_%' or a callable.",
    ),
    Key(
        "PGMIG_TENANT_DIRECTORY",
        None,
        "Migrations directory run once per tenant schema (None: PGMIG_DIRECTORY).",
    ),
)
DEFAULTS: dict[str, Any] = {key.name: key.default for key in KEYS}

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|sec|min|m|h|d)?\s*$")
_UNIT_MS = {"ms": 1, "s": 1000, "sec": 1000, "min": 60_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


def parse_duration_ms(value: Any, key: str) -> int | None:
    """'5s', '500ms', '2h', 5 (seconds) -> milliseconds; None or '' -> None; '0' -> 0 (disabled)."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ConfigError(f"{key} must be a duration such as '5s', not {value!r}.")
    if isinstance(value, (int, float)):
        return round(value * 1000)
    match = _DURATION.match(str(value).lower())
    if match is None:
        raise ConfigError(
            f"{key} is {value!r}, which is not a duration. Write it like '500ms', '5s', '2min' or '1h'."
        )
    number, unit = match.groups()
    return round(float(number) * _UNIT_MS[unit or "s"])


def parse_bool(value: Any, key: str) -> bool:
    """True/False, or the strings 1/0, true/false, yes/no, on/off."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(f"{key} is {value!r}; use True or False.")


def parse_int(value: Any, key: str) -> int:
    """A non-negative whole number."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{key} is {value!r}; it must be a whole number.") from None
    if number < 0:
        raise ConfigError(f"{key} is {number}; it must be 0 or more.")
    return number


def parse_choice(value: Any, key: str, choices: tuple[str, ...]) -> str:
    """One of a fixed set of words."""
    text = str(value).strip().lower()
    if text not in choices:
        raise ConfigError(f"{key} is {value!r}; use one of {', '.join(repr(c) for c in choices)}.")
    return text


def settings_from_mapping(
    mapping: Mapping[str, Any], *, directory: Path, command: str, context: Any = None
) -> Settings:
    """Build engine settings from PGMIG_* keys (app.config or os.environ); absent keys take their defaults."""

    def get(name: str) -> Any:
        value = mapping.get(name)
        return DEFAULTS[name] if value is None else value

    lock_wait = parse_duration_ms(get("PGMIG_LOCK_WAIT"), "PGMIG_LOCK_WAIT")
    return Settings(
        directory=directory,
        schema=str(get("PGMIG_SCHEMA")),
        table=str(get("PGMIG_TABLE")),
        lock_wait=(lock_wait or 0) / 1000,
        lock_timeout_ms=parse_duration_ms(get("PGMIG_LOCK_TIMEOUT"), "PGMIG_LOCK_TIMEOUT"),
        lock_retries=parse_int(get("PGMIG_LOCK_RETRIES"), "PGMIG_LOCK_RETRIES"),
        statement_timeout_ms=parse_duration_ms(get("PGMIG_STATEMENT_TIMEOUT"), "PGMIG_STATEMENT_TIMEOUT"),
        out_of_order=parse_bool(get("PGMIG_OUT_OF_ORDER"), "PGMIG_OUT_OF_ORDER"),
        role=get("PGMIG_ROLE") or None,
        command=command,
        context=context,
    )


def env_mapping() -> dict[str, str]:
    """The PGMIG_* environment variables, for the standalone command."""
    return {key: value for key, value in os.environ.items() if key.startswith("PGMIG_")}
