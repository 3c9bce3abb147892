"""Binds and many targets for ``flask db``: PGMIG_BINDS, ``--bind``, ``--all-binds``, ``--all-schemas``, ``--targets``.

A bind is another Flask-SQLAlchemy engine with migrations of its own. ``PGMIG_BINDS`` maps a bind key to its
migrations directory, or to a mapping of per-bind settings (``directory``, ``database_url``, ``secrets``,
``schema``, ``table``, ``role``). PGMIG_DATABASE_URL and PGMIG_SECRETS belong to the app's main database
(PGMIG_BIND) and never leak onto another bind, which would migrate one database with another bind's files.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from .core.dsn import redact
from .core.fleet import Target, targets_from_file, tenant_schemas, tenant_targets
from .errors import ConfigError

if TYPE_CHECKING:
    from .extension import PgMigState

#: Per-bind settings a PGMIG_BINDS entry may hold, and the PGMIG_* key each one replaces.
BIND_SETTINGS = {
    "directory": "PGMIG_DIRECTORY",
    "database_url": "PGMIG_DATABASE_URL",
    "secrets": "PGMIG_SECRETS",
    "schema": "PGMIG_SCHEMA",
    "table": "PGMIG_TABLE",
    "role": "PGMIG_ROLE",
}
_EXAMPLE = "{'analytics': 'migrations_analytics'}"


def configured_binds(config: Mapping[str, Any]) -> dict[str, Any]:
    """PGMIG_BINDS checked: a mapping of bind key to a directory or a mapping of per-bind settings."""
    binds = config.get("PGMIG_BINDS")
    if binds is None:
        return {}
    if not isinstance(binds, Mapping):
        raise ConfigError(f"PGMIG_BINDS is a {type(binds).__name__}; make it a dict such as {_EXAMPLE}.")
    for key, entry in binds.items():
        if not isinstance(key, str) or not key:
            raise ConfigError(
                f"PGMIG_BINDS has the key {key!r}; bind keys are the names in SQLALCHEMY_BINDS."
            )
        if isinstance(entry, Mapping):
            unknown = sorted(set(entry) - set(BIND_SETTINGS))
            if unknown:
                raise ConfigError(
                    f"PGMIG_BINDS['{key}'] has the unknown setting {unknown[0]!r}. Use only "
                    f"{', '.join(repr(name) for name in BIND_SETTINGS)}."
                )
            if not entry.get("directory"):
                raise ConfigError(
                    f"PGMIG_BINDS['{key}'] has no 'directory'. Add the bind's migrations directory."
                )
        elif not isinstance(entry, (str, os.PathLike)) or not os.fspath(entry):
            raise ConfigError(
                f"PGMIG_BINDS['{key}'] is {entry!r}; give the bind's migrations directory, e.g. {_EXAMPLE}."
            )
    return dict(binds)


def bind_config(config: Mapping[str, Any], bind: str) -> dict[str, Any]:
    """The PGMIG_* settings of another bind: the app's, without its DSN, with the bind's own entry applied."""
    binds = configured_binds(config)
    if bind not in binds:
        known = ", ".join(repr(key) for key in binds) or "none"
        raise ConfigError(
            f"The bind {bind!r} has no migrations directory in PGMIG_BINDS (it lists {known}). Add it, e.g. "
            f"PGMIG_BINDS = {{'{bind}': 'migrations_{bind}'}}."
        )
    entry = binds[bind]
    settings = dict(entry) if isinstance(entry, Mapping) else {"directory": entry}
    result = dict(config, PGMIG_DATABASE_URL=None, PGMIG_SECRETS=None)
    result.update({BIND_SETTINGS[name]: value for name, value in settings.items()})
    return result


def fleet_targets(
    state: PgMigState, *, targets_file: str | None, all_schemas: bool, all_binds: bool, bind: str | None
) -> list[Target]:
    """The targets of a scale-out run of ``flask db``: one option among --all-binds, --all-schemas, --targets."""
    chosen = [flag for flag, on in (("--all-binds", all_binds), ("--all-schemas", all_schemas),
                                    ("--targets", bool(targets_file))) if on]  # fmt: skip
    if len(chosen) > 1:
        raise ConfigError(f"{' and '.join(chosen)} cannot be combined. Choose one of them.")
    if all_binds:
        return bind_targets(state)
    base = state.for_bind(bind) if bind else state
    if targets_file:
        return targets_from_file(targets_file, base.settings)
    return schema_targets(base)


def bind_targets(state: PgMigState) -> list[Target]:
    """The main database (PGMIG_BIND, PGMIG_DIRECTORY) and every bind of PGMIG_BINDS, each with its own history."""
    binds = configured_binds(state.config)
    if not binds:
        raise ConfigError(
            f"--all-binds needs PGMIG_BINDS, a dict of bind key to directory such as {_EXAMPLE}."
        )
    states = [state] + [state.for_bind(key) for key in binds if key != state.bind]
    return [Target(s.bind or "default", s.dsn(), s.settings) for s in states]


def schema_targets(state: PgMigState) -> list[Target]:
    """One target per tenant schema: PGMIG_TENANT_SCHEMAS (a LIKE pattern or a callable) and PGMIG_TENANT_DIRECTORY."""
    spec = state.config.get("PGMIG_TENANT_SCHEMAS")
    if not spec:
        raise ConfigError(
            "--all-schemas needs PGMIG_TENANT_SCHEMAS: a LIKE pattern such as 'tenant_%', or a function "
            "returning the schema names."
        )
    tenant_directory = state.config.get("PGMIG_TENANT_DIRECTORY")
    if tenant_directory:
        state = state.with_directory(tenant_directory)
    dsn = state.dsn()
    if callable(spec):
        schemas = _called_schemas(state, spec)
    else:
        schemas = tenant_schemas(dsn, str(spec), state.settings.connect_kwargs)
    return tenant_targets(dsn, state.settings, schemas)


def _called_schemas(state: PgMigState, function: Callable[[], Iterable[str]]) -> list[str]:
    """Schema names from the user's function, called inside an app context (so it may query the app's db)."""
    with state.app.app_context():
        try:
            names = list(function())
        except Exception as exc:  # the user's code: one sentence, not a traceback
            raise ConfigError(
                f"The PGMIG_TENANT_SCHEMAS function raised {type(exc).__name__}: {redact(str(exc))}. Fix the function."
            ) from None
    bad = [name for name in names if not isinstance(name, str) or not name]
    if bad:
        raise ConfigError(
            f"The PGMIG_TENANT_SCHEMAS function returned {bad[0]!r}; it must return schema names (strings)."
        )
    return names


__all__ = [
    "BIND_SETTINGS",
    "bind_config",
    "bind_targets",
    "configured_binds",
    "fleet_targets",
    "schema_targets",
]
