"""Names of the test databases, and the fingerprint of a migrations directory that keys the template.

Pure: reads files, never touches a database.

* A *project key* (8 hex digits) is a hash of the migrations directory's absolute path: every template of one
  project starts with ``pgmig_tpl_<project key>_``, so a session only ever cleans up its own project's
  templates.
* A *fingerprint* (16 hex digits) is a hash of every file in the directory (name and content), the history
  table settings and the flask-pgmig version: any change to a migration gives a new template name, hence a
  rebuild.
* A *session id* (12 hex digits) is random per pytest process; per-test databases are
  ``pgmig_t_<session>_<n>``, so concurrent sessions (xdist workers, two runs at once) never clash on names.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from urllib.parse import quote, urlencode

from psycopg.conninfo import conninfo_to_dict

from .. import __version__
from ..core.dsn import normalize_url
from ..core.files import FILE_NAME, is_ignored
from ..core.migrator import Settings

TEMPLATE_PREFIX = "pgmig_tpl_"
CLONE_PREFIX = "pgmig_t_"
#: application_name of a session's maintenance connection: ``pgmig-pytest <session id> <template suffix>``.
#: Other sessions read it from pg_stat_activity to tell live sessions from dead ones.
APPLICATION_PREFIX = "pgmig-pytest"
CLONE_NAME = re.compile(rf"^{CLONE_PREFIX}(?P<session>[0-9a-f]{{12}})_\d+$")


def project_key(directory: Path) -> str:
    """8 hex digits naming the project by its migrations directory's absolute path."""
    return hashlib.sha256(os.fsencode(directory.resolve())).hexdigest()[:8]


def fingerprint(directory: Path, settings: Settings) -> str:
    """16 hex digits that change whenever a file in the directory, or what the template depends on, changes.

    Every regular file that is not clearly ignored (dotfiles, READMEs, ``*.md``) counts, byte for byte: a
    changed down section or a renamed file rebuilds the template too. A missing directory hashes as empty, so
    that the Migrator, not this function, reports it with its usual message.
    """
    digest = hashlib.sha256()
    for part in (__version__, settings.schema, settings.table, settings.role or ""):
        digest.update(part.encode() + b"\0")
    entries = sorted(os.scandir(directory), key=lambda e: e.name) if directory.is_dir() else []
    for entry in entries:
        if entry.is_file() and not is_ignored(entry.name):
            with open(entry.path, "rb") as handle:
                content = hashlib.sha256(handle.read()).hexdigest()
            digest.update(f"{entry.name}\0{content}\0".encode())
    return digest.hexdigest()[:16]


def migration_count(directory: Path) -> int:
    """How many files in the directory have a migration file name (cheap: nothing is parsed)."""
    if not directory.is_dir():
        return 0
    return sum(1 for entry in os.scandir(directory) if entry.is_file() and FILE_NAME.match(entry.name))


def template_name(project: str, print_: str) -> str:
    """``pgmig_tpl_<project key>_<fingerprint>`` (35 characters, well under PostgreSQL's 63)."""
    return f"{TEMPLATE_PREFIX}{project}_{print_}"


def clone_name(session: str, number: int) -> str:
    """``pgmig_t_<session id>_<n>``: the n-th database of one session."""
    return f"{CLONE_PREFIX}{session}_{number}"


def application_name(session: str, template: str) -> str:
    """The maintenance connection's application_name, which advertises the session and its template."""
    return f"{APPLICATION_PREFIX} {session} {template.removeprefix(TEMPLATE_PREFIX)}"


def url_with_dbname(url: str, dbname: str) -> str:
    """A ``postgresql://`` URL for database ``dbname`` on the server of ``url`` (a URL or key=value conninfo).

    Everything but the database name is kept: user, password, host, port and query parameters (sslmode...).
    """
    params = {k: str(v) for k, v in conninfo_to_dict(normalize_url(url)).items() if v is not None}
    params.pop("dbname", None)
    netloc = ""
    user = params.pop("user", None)
    password = params.pop("password", None)
    if user is not None:
        netloc = quote(user, safe="")
        if password is not None:
            netloc += ":" + quote(password, safe="")
        netloc += "@"
    host = params.get("host", "")
    # A socket directory or a multi-host list cannot sit in the netloc; libpq takes both as query parameters.
    if host and not host.startswith("/") and "," not in host:
        params.pop("host")
        netloc += f"[{host}]" if ":" in host else host
        port = params.pop("port", None)
        if port is not None and "," not in port:
            netloc += f":{port}"
        elif port is not None:
            params["port"] = port
    query = urlencode(params, safe="/,")
    return f"postgresql://{netloc}/{quote(dbname, safe='')}" + (f"?{query}" if query else "")


def dbname_of(url: str) -> str:
    """The database name of a URL or conninfo string (libpq's default, the user name, when absent)."""
    params = conninfo_to_dict(normalize_url(url))
    return str(params.get("dbname") or params.get("user") or os.environ.get("PGDATABASE") or "postgres")


__all__ = [
    "APPLICATION_PREFIX",
    "CLONE_PREFIX",
    "TEMPLATE_PREFIX",
    "application_name",
    "clone_name",
    "dbname_of",
    "fingerprint",
    "migration_count",
    "project_key",
    "template_name",
    "url_with_dbname",
]
