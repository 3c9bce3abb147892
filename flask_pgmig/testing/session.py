"""What one test session (one pytest process, one xdist worker) knows about its test databases.

The pytest plugin keeps one :class:`SessionDatabases`: the server URL, the default engine settings, and one
:class:`~flask_pgmig.testing.databases.TemplateDatabases` per template in use (usually one; a ``pgmig_app``
whose PgMig settings differ from the plugin's gets its own). It remembers a failed template build so that the
next tests fail at once with the same message instead of running every migration again, and it counts what it
did for the end-of-run summary. No pytest here: the plugin passes plain values in.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from ..core.migrator import Settings
from ..errors import ConfigError, PgMigError
from .databases import TemplateDatabases, TemplateInfo


@dataclass(frozen=True)
class SessionReport:
    """What a session did: the templates it used (built or reused) and how many databases it created."""

    templates: tuple[TemplateInfo, ...]
    databases: int

    def to_json(self) -> dict[str, Any]:
        """A plain dict (xdist sends it from a worker to the controller)."""
        return {"templates": [asdict(t) for t in self.templates], "databases": self.databases}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SessionReport:
        """The inverse of :meth:`to_json`."""
        return cls(tuple(TemplateInfo(**t) for t in data.get("templates", ())), int(data.get("databases", 0)))


class SessionDatabases:
    """The templates and per-test databases of one session, created on first use.

    :param server_url: where to create databases, or None when nothing configured one (fixtures then fail
        with ``missing_url_hint``).
    :param settings: the default engine settings (the plugin's migrations directory).
    """

    def __init__(self, server_url: str | None, settings: Settings, *, missing_url_hint: str) -> None:
        self.server_url = server_url
        self.settings = settings
        self.missing_url_hint = missing_url_hint
        self._templates: dict[tuple[str, str, str, str | None], TemplateDatabases] = {}
        # Every template cloned from, including one a conftest made itself (an overridden pgmig_templates).
        self._used: dict[int, TemplateDatabases] = {}
        self._failures: dict[str, PgMigError] = {}
        self.databases = 0

    def require_url(self) -> str:
        """The server URL, or :class:`ConfigError` saying how to give one."""
        if self.server_url is None:
            raise ConfigError(
                f"The pgmig pytest plugin has no PostgreSQL server to create test databases on. "
                f"{self.missing_url_hint}"
            )
        return self.server_url

    def templates(self, settings: Settings | None = None) -> TemplateDatabases:
        """The :class:`TemplateDatabases` for ``settings`` (default: the plugin's), made once per template."""
        settings = settings or self.settings
        # Hashing the directory reads every file: do it once per session, not once per test.
        key = (str(settings.directory.resolve()), settings.schema, settings.table, settings.role)
        existing = self._templates.get(key)
        if existing is None:
            existing = self._templates[key] = TemplateDatabases(self.require_url(), settings)
        return existing

    def clone(self, templates: TemplateDatabases) -> str:
        """A fresh migrated database from ``templates``; a failed build fails later calls the same way."""
        failure = self._failures.get(templates.template_name)
        if failure is not None:
            raise failure
        if not templates.settings.directory.is_dir():
            raise ConfigError(
                f"The pgmig pytest plugin found no migrations directory at '{templates.settings.directory}'. "
                "Pass --pgmig-directory=PATH, or set pgmig_directory in the pytest configuration."
            )
        try:
            templates.prepare()
        except PgMigError as error:
            self._failures[templates.template_name] = error
            raise
        url = templates.clone()
        self._used[id(templates)] = templates
        self.databases += 1
        return url

    def empty(self, templates: TemplateDatabases) -> str:
        """A fresh empty database (no template needed)."""
        url = templates.empty()
        self.databases += 1
        return url

    def report(self) -> SessionReport:
        """The templates this session used, and how many databases it created."""
        every = {id(t): t for t in self._templates.values()} | self._used
        used = tuple(t.info for t in every.values() if t.info is not None)
        return SessionReport(used, self.databases)

    def close(self) -> None:
        """Drop the databases still left, close every maintenance connection (templates stay, for reuse)."""
        errors: list[BaseException] = []
        for templates in self._templates.values():
            try:
                templates.close()
            except Exception as error:  # close the others anyway; report the first failure
                errors.append(error)
        self._templates.clear()
        self._used.clear()
        if errors:
            raise errors[0]


__all__ = ["SessionDatabases", "SessionReport"]
