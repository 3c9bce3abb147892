"""Where the database connection comes from: DSNs from URLs and secrets providers (environment variable,
file, AWS Secrets Manager, a callable), libpq-style URLs, pgmig's connections, and password redaction for
everything displayed. Standard library and psycopg only; boto3 is imported lazily by the AWS provider."""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import re
import stat
import warnings
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import psycopg
from psycopg.conninfo import conninfo_to_dict

from flask_pgmig.errors import ConfigError, ConnectionFailed

_MASK = "***"
# A quote inside a password (RFC 3986 allows a raw ' in userinfo) but not one that closes a quoted message.
_INNER_QUOTE = r"'(?=[^\s,;)\]])"
# scheme://user:PASSWORD@ -- greedy up to the last '@' of the token: an unencoded '@' or ':' in a password is
# a common mistake, and hiding a bit of host name too is harmless whereas showing half a password is not.
_URL_PW = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@\"<>]*:)[^\s\"<>]+(?=@)")
_QUERY_PW = re.compile(rf"(?P<head>[?&][\w.-]*password=)(?:[^&#\s'\"]|{_INNER_QUOTE})*", re.IGNORECASE)
# {"password": "x"} / {'password': 'x'}: RDS secret JSON and dict reprs of conninfo end up in logs too.
_MAPPING_PW = re.compile(
    r"(?P<head>([\"'])[\w.-]*password\2\s*:\s*)(?P<q>[\"'])(?:(?!(?P=q))[^\\]|\\.)*(?P=q)", re.IGNORECASE
)
# key=value conninfo, also PGPASSWORD=x / DB_PASSWORD=x; a quoted value may be unterminated (hide to the end).
_KV_HEAD = r"(?P<head>(?<![\w.?&-])[\w.-]*password\s*=\s*)"
_KV_WORD = rf"(?:[^\s'\\]|\\.|{_INNER_QUOTE})+"
_KV_PW = re.compile(rf"{_KV_HEAD}(?:'(?:[^'\\]|\\.)*(?:'|$)|{_KV_WORD})", re.IGNORECASE)
# In a string known to be one conninfo, bare words after an unquoted password belong to a mis-quoted
# password ("password=se cret host=h"): libpq would echo "cret" in its parse error.
_KV_PW_GREEDY = re.compile(_KV_PW.pattern + rf"(?:\s+(?![\w.-]+\s*=){_KV_WORD})*", re.IGNORECASE)


def _mask(match: re.Match[str]) -> str:
    quote_char = match.groupdict().get("q") or ""
    return f"{match.group('head')}{quote_char}{_MASK}{quote_char}"


def _redact(text: str, kv: re.Pattern[str]) -> str:
    return kv.sub(_mask, _MAPPING_PW.sub(_mask, _QUERY_PW.sub(_mask, _URL_PW.sub(_mask, text))))


def redact(text: str) -> str:
    """Return ``text`` with every password replaced by ``***``.

    Handles URL userinfo (``postgresql://u:SECRET@h/db``, any scheme), ``?password=`` query parameters,
    conninfo ``password=SECRET`` / ``password='se cret'`` pairs and ``"password": "..."`` mappings. Used on
    every message, log line and exception text before display.
    """
    return _redact(text, _KV_PW)


def redact_url(url: str) -> str:
    """Return one URL or conninfo string with its password hidden, e.g. ``postgresql://app:***@db:5432/app``."""
    return _redact(url, _KV_PW_GREEDY)


_EXAMPLE_URL = "'postgresql://user:password@host:5432/dbname'"


def normalize_url(url: str) -> str:
    """Turn an SQLAlchemy-style URL into a libpq URL or conninfo that psycopg accepts.

    Driver suffixes (``postgresql+psycopg2://``, ``+psycopg``, ``+pg8000``, ...) and ``postgres://`` become
    ``postgresql://``; the rest is kept. A libpq ``key=value`` string is returned unchanged. Raises
    :class:`ConfigError` for empty input and for non-PostgreSQL schemes (``sqlite://``, ``mysql://``).
    """
    text = url.strip()
    scheme, sep, rest = text.partition("://")
    if not sep:
        if "=" in text:
            return text  # libpq key=value conninfo
        problem = "is neither a URL nor a key=value connection string" if text else "is empty"
        raise ConfigError(
            f"The database URL {redact_url(text)!r} {problem}. "
            f"Set PGMIG_DATABASE_URL to a PostgreSQL URL such as {_EXAMPLE_URL}."
        )
    if scheme.lower().partition("+")[0] not in ("postgresql", "postgres"):
        raise ConfigError(
            f"The database URL {redact_url(text)!r} is not a PostgreSQL URL (scheme {scheme!r}); flask-pgmig "
            f"migrates PostgreSQL only. Set PGMIG_DATABASE_URL to a URL such as {_EXAMPLE_URL}."
        )
    return "postgresql://" + rest


class SecretsFileWarning(UserWarning):
    """A secrets file holding a database password is readable by every user of the machine."""


_SPEC_FORMS = "'env:NAME', 'file:/path/to/secret', 'aws-secretsmanager:SECRET_ID' or 'package.module:func'"
_CALLABLE_SPEC = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*")


def resolve_secret(spec: str) -> str:
    """Return a DSN from a secrets-provider spec (``PGMIG_SECRETS``).

    ``env:NAME`` reads an environment variable; ``file:/run/secrets/db`` reads a file (warning with
    :class:`SecretsFileWarning` if it is world-readable); ``aws-secretsmanager:ID`` reads an AWS Secrets
    Manager secret holding a DSN or the RDS JSON format; ``package.module:function`` calls a function that
    returns a DSN or an RDS-style mapping. Every failure is a :class:`ConfigError` with no secret in it.
    """
    kind, _, arg = spec.strip().partition(":")
    arg = arg.strip()
    if kind == "env" and arg:
        value = os.environ.get(arg, "").strip()
        if not value:
            raise ConfigError(
                f"The environment variable {arg!r} named in PGMIG_SECRETS is not set or is empty. Set it."
            )
        return _dsn_from_value(value, f"environment variable {arg!r}")
    if kind == "file" and arg:
        return _dsn_from_value(_read_secrets_file(arg), f"secrets file {arg!r}")
    if kind == "aws-secretsmanager" and arg:
        return _dsn_from_value(_read_aws_secret(arg), f"AWS Secrets Manager secret {arg!r}")
    if _CALLABLE_SPEC.fullmatch(spec.strip()):
        return _dsn_from_value(_call_provider(spec.strip()), f"secrets provider {spec.strip()!r}")
    raise ConfigError(
        f"The secrets spec {redact_url(spec)!r} is not understood. Set PGMIG_SECRETS to one of {_SPEC_FORMS}."
    )


def _read_secrets_file(path: str) -> str:
    try:
        mode = os.stat(path).st_mode
        with open(path, encoding="utf-8") as handle:
            content = handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise ConfigError(
            f"The secrets file {path!r} cannot be read ({reason}). Check PGMIG_SECRETS and the file."
        ) from None
    # Only POSIX modes mean anything here; on Windows st_mode always looks world-readable.
    if os.name == "posix" and mode & stat.S_IROTH:
        text = f"The secrets file {path!r} is readable by every user of this machine (mode {mode & 0o777:o})."
        warnings.warn(f"{text} Restrict it with 'chmod 600 {path}'.", SecretsFileWarning, stacklevel=3)
    return content


def _read_aws_secret(secret_id: str) -> str:
    try:
        import boto3
        import botocore.exceptions
    except ImportError:
        raise ConfigError(
            f"Reading the AWS secret {secret_id!r} needs boto3: pip install 'flask-pgmig[aws]'."
        ) from None
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    endpoint = os.environ.get("AWS_ENDPOINT_URL_SECRETS_MANAGER") or os.environ.get("AWS_ENDPOINT_URL")
    failure: str | None = None
    try:
        client = boto3.session.Session().client("secretsmanager", region_name=region, endpoint_url=endpoint)
        response: dict[str, Any] = client.get_secret_value(SecretId=secret_id)
    except botocore.exceptions.NoCredentialsError:
        failure = "no AWS credentials were found. Configure AWS_ACCESS_KEY_ID, a profile or a role"
    except botocore.exceptions.NoRegionError:
        failure = "no AWS region is configured. Set AWS_REGION or AWS_DEFAULT_REGION"
    except botocore.exceptions.ClientError as exc:
        error = exc.response.get("Error", {})
        if error.get("Code") == "ResourceNotFoundException":
            failure = f"it does not exist in region {region!r}. Check the secret name and AWS_REGION"
        else:
            text = redact(str(error.get("Message", "")))
            failure = f"AWS answered {error.get('Code')}: {text}. Check the secret's access policy"
    except botocore.exceptions.BotoCoreError as exc:
        failure = f"{redact(str(exc))}. Check the network, AWS_ENDPOINT_URL and AWS_REGION"
    if failure is not None:
        # Raised outside the except blocks so that no AWS exception is chained (and shown) behind it.
        raise ConfigError(f"Could not read the AWS Secrets Manager secret {secret_id!r}: {failure}.")
    return str(response.get("SecretString") or "")


def _call_provider(spec: str) -> object:
    module_name, _, func_name = spec.partition(":")
    try:
        target: Any = importlib.import_module(module_name)
        for part in func_name.split("."):
            target = getattr(target, part)
    except Exception as exc:  # ImportError, AttributeError, or whatever the module raises on import
        raise ConfigError(
            f"The secrets provider {spec!r} cannot be loaded ({type(exc).__name__}: {redact(str(exc))}). "
            "Check PGMIG_SECRETS and that the module is importable."
        ) from None
    try:
        return target()
    except Exception as exc:  # the user's code: report it in one sentence without leaking what it held
        message = f"The secrets provider {spec!r} raised {type(exc).__name__}: {redact(str(exc))}."
    raise ConfigError(message)


def _dsn_from_value(value: object, source: str) -> str:
    if isinstance(value, str) and value.strip().startswith("{"):
        try:
            value = json.loads(value)
        except ValueError:
            raise ConfigError(f"The {source} looks like JSON but does not parse. Fix its content.") from None
    if isinstance(value, Mapping):
        return _dsn_from_rds(value, source)
    if not isinstance(value, str) or not value.strip():
        kind = "an empty string" if isinstance(value, str) else f"a {type(value).__name__}"
        raise ConfigError(f"The {source} gave {kind}; it must give a database URL or an RDS-style mapping.")
    return value.strip()


def _dsn_from_rds(data: Mapping[Any, Any], source: str) -> str:
    """Build a URL from the RDS secret format: username, password, host, port, dbname/database, engine."""
    engine = str(data.get("engine") or "postgres").lower()
    if not engine.startswith(("postgres", "aurora-postgresql")):
        raise ConfigError(f"The {source} is for engine {engine!r}, not PostgreSQL. Use a PostgreSQL secret.")
    missing = [key for key in ("username", "host") if not data.get(key)]
    if missing:
        raise ConfigError(f"The {source} has no {' or '.join(map(repr, missing))} field; add it.")
    host = str(data["host"])
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # IPv6 literal
    port = str(data.get("port") or "")
    if not port.isdigit() and port:
        raise ConfigError(f"The {source} has a port that is not a number. Fix the secret's 'port' field.")
    userinfo = quote(str(data["username"]), safe="")
    if data.get("password") not in (None, ""):
        userinfo += ":" + quote(str(data["password"]), safe="")
    dbname = data.get("dbname") or data.get("database")
    url = f"postgresql://{userinfo}@{host}" + (f":{port}" if port else "")
    return url + (f"/{quote(str(dbname), safe='')}" if dbname else "")


def connection_kwargs(application_name: str = "pgmig") -> dict[str, str | int]:
    """Extra libpq keywords of every pgmig connection: application_name, UTF-8, TCP keepalives, a connect
    timeout.

    Migration files are UTF-8, and the server converts what they hold to the database's encoding (refusing, with
    the statement named, a character it has no room for); without it a LATIN1 database would store 'é' as 'Ã©'.
    Keepalives make a migration notice a dead server or a dropped NAT entry instead of hanging for hours.
    """
    return {
        "application_name": application_name,
        "client_encoding": "UTF8",
        "keepalives": 1,
        "keepalives_idle": 30,
        "keepalives_interval": 10,
        "keepalives_count": 3,
        "connect_timeout": 10,
    }


def connect(dsn: str, *, autocommit: bool = True, **extra: object) -> psycopg.Connection[tuple[Any, ...]]:
    """Open a psycopg connection with :func:`connection_kwargs` (``extra`` keywords override them).

    Any psycopg error becomes :class:`ConnectionFailed` with one redacted sentence naming the server and what
    to check; the psycopg error is not chained, since its text may quote the connection string. Its sqlstate,
    if any, is kept as ``exc.sqlstate``.
    """
    url = normalize_url(dsn)
    try:
        params: dict[str, Any] = {**connection_kwargs(), **extra}
        return psycopg.connect(url, autocommit=autocommit, **params)
    except psycopg.Error as exc:
        failure = _connection_failed(dsn, url, exc)
    # Raised outside the except block: "from None" would still leave the psycopg error in __context__.
    raise failure


_ADVICE = (
    (("password", "authentication"), "Check the user name and password."),
    (("does not exist",), "Check the database and user names, or create them."),
    (("pg_hba.conf",), "Allow this client in the server's pg_hba.conf, or connect as another user."),
    (("resolve", "name or service", "timeout"), "Check the host, the port and the network in between."),
)


def _connection_failed(dsn: str, url: str, exc: psycopg.Error) -> ConnectionFailed:
    shown = redact_url(dsn)
    lines = [line for line in str(exc).splitlines() if line.strip() and not line.startswith("\t")]
    reason = lines[0] if lines else type(exc).__name__
    for prefix in ("connection failed: ", "connection is bad: "):
        reason = reason.removeprefix(prefix)
    reason = re.sub(r"^connection to server .*? failed: ", "", reason)
    reason = re.sub(r"^(FATAL|ERROR):\s+", "", reason).rstrip(". ")
    # libpq quotes the bit of the connection string it chokes on; hide any quoted piece that is only in the
    # unredacted string, i.e. part of the password (e.g. 'missing "=" after "cret"' for password=se cret).
    reason = re.sub(r'"([^"]*)"', lambda m: '"***"' if m[1] in dsn and m[1] not in shown else m[0], reason)
    reason = redact(reason)
    with contextlib.suppress(psycopg.Error):  # belt and braces: no literal password, whatever libpq said
        password = str(conninfo_to_dict(url).get("password") or "")
        if len(password) >= 4:  # shorter ones would mask ordinary words
            reason = reason.replace(password, _MASK)
    reason = reason[:1].lower() + reason[1:] if reason[1:2].islower() else reason
    if isinstance(exc, psycopg.ProgrammingError):  # libpq refused the connection string itself
        message = f"The database URL {shown!r} is invalid: {reason}. Fix PGMIG_DATABASE_URL."
    else:
        advice = next((text for keys, text in _ADVICE if any(key in reason.lower() for key in keys)), None)
        advice = advice or "Check that the server is running and PGMIG_DATABASE_URL is right."
        message = f"Could not connect to PostgreSQL at {shown!r}: {reason}. {advice}"
    return ConnectionFailed(message, sqlstate=getattr(exc, "sqlstate", None))
