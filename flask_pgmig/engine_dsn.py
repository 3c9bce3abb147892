"""The DSN of an SQLAlchemy engine, as a libpq URL that psycopg 3 accepts.

What SQLAlchemy would hand its DBAPI driver is captured from the engine's own ``do_connect`` event: the URL, the
``connect_args`` and whatever other ``do_connect`` listeners add (e.g. a short-lived IAM token as the password).
The capture runs on a throwaway copy of the engine's pool and stops before any network traffic, so nothing
connects and the app's pool is untouched. psycopg and psycopg2 arguments are libpq keywords already; pg8000's
are translated where a libpq equivalent exists (see :func:`pg8000_params`) and the rest are reported.
"""

from __future__ import annotations

import os
import re
import ssl
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlencode

import psycopg

from .errors import ConfigError

# Python-level driver options that change nothing about where or how to connect.
_DRIVER_ONLY = frozenset(
    {"connection_factory", "cursor_factory", "async_", "autocommit", "prepare_threshold", "context",
     "row_factory", "async_creator_fn", "tcp_keepalive", "application_name"}
)  # fmt: skip
_SOCKET_FILE = re.compile(r"^\.s\.PGSQL\.(\d+)$")


class _Captured(Exception):
    """Raised from our do_connect listener to stop SQLAlchemy before it connects."""

    def __init__(self, cargs: list[Any], cparams: dict[str, Any]) -> None:
        super().__init__("connection arguments captured")  # no arguments in the text: they hold the password
        self.cargs = cargs
        self.cparams = cparams


_capturing = threading.local()


def libpq_keywords() -> frozenset[str]:
    """The connection keywords the linked libpq understands."""
    return frozenset(option.keyword.decode() for option in psycopg.pq.Conninfo.get_defaults())


def capture_connect_args(engine: Any) -> tuple[list[Any], dict[str, Any]]:
    """The (cargs, cparams) that ``engine`` would pass to its DBAPI ``connect()``, without connecting."""
    from sqlalchemy import event

    def listener(dialect: Any, record: Any, cargs: list[Any], cparams: dict[str, Any]) -> None:
        # Only our own probe is stopped: other threads of the app connect through here too.
        if getattr(_capturing, "active", False):
            raise _Captured(list(cargs), dict(cparams))

    probe = engine.pool.recreate()
    event.listen(engine, "do_connect", listener)
    _capturing.active = True
    connection: Any = None
    try:
        connection = probe.connect()
    except _Captured as captured:
        return captured.cargs, captured.cparams
    except Exception:  # the app's own creator failed to connect; its text may hold the password
        pass
    finally:
        _capturing.active = False
        event.remove(engine, "do_connect", listener)
        probe.dispose()
    if connection is not None:
        connection.close()
    # A custom creator (or a listener) connected by itself, or tried to: we cannot see its arguments.
    raise ConfigError(
        "The SQLAlchemy engine connects through a custom 'creator' or 'do_connect' hook, so its connection "
        "arguments cannot be read. Set PGMIG_DATABASE_URL (or PGMIG_SECRETS) for migrations."
    )


def engine_params(engine: Any) -> tuple[dict[str, str], list[str]]:
    """libpq keywords for ``engine``'s database, and one note for each argument that had to be left out."""
    cargs, cparams = capture_connect_args(engine)
    driver = str(engine.dialect.driver)
    if driver == "pg8000":
        return pg8000_params(cparams)
    if driver not in ("psycopg", "psycopg2"):
        raise ConfigError(
            f"The SQLAlchemy engine uses the driver {driver!r}, which flask-pgmig cannot read connection "
            "arguments from. Use psycopg, psycopg2 or pg8000, or set PGMIG_DATABASE_URL."
        )
    base = cparams.pop("dsn", None) or cparams.pop("conninfo", None) or (cargs[0] if cargs else "")
    params: dict[str, Any] = dict(psycopg.conninfo.conninfo_to_dict(str(base or "")))
    params.update(cparams)
    return _libpq_only(params, driver)


def pg8000_params(cparams: Mapping[str, Any]) -> tuple[dict[str, str], list[str]]:
    """Translate pg8000 ``connect()`` arguments into libpq keywords.

    user, password, host (default ``localhost``, as pg8000), port, database, timeout (``connect_timeout``),
    unix_sock (its directory and port), startup_params (``options=-c key=value``) and ssl_context map;
    source_address and replication do not.
    """
    args = dict(cparams)
    params: dict[str, Any] = {}
    notes: list[str] = []
    for source, target in (
        ("user", "user"),
        ("password", "password"),
        ("port", "port"),
        ("database", "dbname"),
    ):
        if args.get(source) is not None:
            params[target] = args.pop(source)
    host, unix_sock = args.pop("host", None), args.pop("unix_sock", None)
    if unix_sock:
        folder, file_name = os.path.split(str(unix_sock))
        params["host"] = folder
        port = _SOCKET_FILE.match(file_name)
        if port:
            params["port"] = port.group(1)
    else:
        params["host"] = host or "localhost"
    timeout = args.pop("timeout", None)
    if timeout:
        params["connect_timeout"] = max(1, round(float(timeout)))
    startup = args.pop("startup_params", None) or {}
    options = [str(startup.get("options", ""))] + [
        f"-c {key}={_escape_option(str(value))}" for key, value in startup.items() if key != "options"
    ]
    if any(options):
        params["options"] = " ".join(option for option in options if option)
    params.update(_ssl_params(args.pop("ssl_context", None), notes))
    for key in sorted(args):
        if key not in _DRIVER_ONLY and args[key] is not None:
            notes.append(f"the pg8000 argument {key!r} has no libpq equivalent and is ignored")
    return {key: _text(value) for key, value in params.items()}, notes


def _ssl_params(context: Any, notes: list[str]) -> dict[str, str]:
    """pg8000's ssl_context as sslmode (+ the system CA store, as ssl.create_default_context() uses)."""
    if context is None or context is False:
        return {}
    if context is True:
        mode = "verify-full"
    elif isinstance(context, ssl.SSLContext):
        if context.verify_mode == ssl.CERT_NONE:
            mode = "require"
        else:
            mode = "verify-full" if context.check_hostname else "verify-ca"
        notes.append(
            "the pg8000 ssl_context is mapped to sslmode, but its CA file and client certificate cannot be read "
            "back from an SSLContext: put sslrootcert/sslcert/sslkey in PGMIG_DATABASE_URL if you use them"
        )
    else:
        raise ConfigError(
            f"The pg8000 'ssl_context' is a {type(context).__name__}; it must be True or an SSLContext."
        )
    params = {"sslmode": mode}
    if mode != "require" and psycopg.pq.version() >= 160000:
        params["sslrootcert"] = "system"  # the operating system's CA store (libpq 16+), as Python's default
    elif mode != "require":
        notes.append(
            f"sslmode={mode} verifies against ~/.postgresql/root.crt with this libpq (older than 16)"
        )
    return params


def _libpq_only(params: Mapping[str, Any], driver: str) -> tuple[dict[str, str], list[str]]:
    known = libpq_keywords()
    kept: dict[str, str] = {}
    notes: list[str] = []
    for key, value in params.items():
        if value is None:
            continue
        if key in known:
            kept[key] = _text(value)
        elif key not in _DRIVER_ONLY:
            notes.append(f"the {driver} argument {key!r} is not a libpq connection keyword and is ignored")
    return kept, notes


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (list, tuple)):
        return ",".join(str(item) for item in value)
    return str(value)


def _escape_option(value: str) -> str:
    """Escape a value for libpq's 'options' (-c key=value), where a space or backslash needs a backslash."""
    return value.replace("\\", "\\\\").replace(" ", "\\ ")


def params_to_url(params: Mapping[str, str]) -> str:
    """A ``postgresql://`` URL holding every keyword (simple host in the authority, the rest in the query)."""
    rest = dict(params)
    user, password = rest.pop("user", ""), rest.pop("password", None)
    dbname = rest.pop("dbname", "")
    host, port = rest.get("host", ""), rest.get("port", "")
    authority = ""
    if host and "," not in host and not host.startswith("/") and "," not in port:
        del rest["host"]
        authority = f"[{host}]" if ":" in host else quote(host, safe="")
        if port:
            authority += f":{rest.pop('port')}"
    userinfo = quote(user, safe="") + (f":{quote(password, safe='')}" if password is not None else "")
    url = f"postgresql://{userinfo}@{authority}" if userinfo else f"postgresql://{authority}"
    url += f"/{quote(dbname, safe='')}"
    return url + (f"?{urlencode(rest, quote_via=quote)}" if rest else "")


def engine_url(engine: Any) -> tuple[str, list[str]]:
    """The libpq URL of ``engine``'s database and the notes on arguments left out (see :func:`engine_params`)."""
    params, notes = engine_params(engine)
    return params_to_url(params), notes


__all__ = ["capture_connect_args", "engine_params", "engine_url", "params_to_url", "pg8000_params"]
