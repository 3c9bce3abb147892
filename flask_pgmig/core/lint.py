"""``check``: everything that can be wrong with a migrations directory, found offline (no database) and fast.

File names, sections and options (through :mod:`.files`), every statement through PostgreSQL's own parser
(pglast) with the file, line, column and offending text of a syntax error, statements that cannot run inside
the transaction of a transactional migration, a missing down section where the up creates something, and the
unsafe-DDL lint rules of :mod:`.lint_rules`. A finding is silenced for one statement by a comment above it or
at the end of its line: ``-- pgmig:allow <rule-id>[, <rule-id>] because <reason>``.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

from pglast import ast, parse_sql
from pglast.parser import ParseError

from ..errors import MigrationFileError, MigrationParseError
from . import lint_checks, sql
from .backfill_directive import backfill_statements
from .config import LINT_MODES
from .files import (
    FILE_NAME,
    MigrationFile,
    Section,
    is_ignored,
    looks_like_migration,
    parse_file,
    version_key,
)
from .lint_rules import RULES, closest_rule

ALLOW = re.compile(
    r"--[ \t]*pgmig:allow\b[ \t]*(?P<rules>[\w-]+(?:[ \t]*,[ \t]*[\w-]+)*)?"
    r"(?:[ \t]+because\b[ \t]*(?P<why>.*))?"
)
# Only statements whose first word is one of these can break a rule; the others are not parsed into trees
# (building pglast nodes is what costs time on a big data migration).
_LINTED = frozenset({"CREATE", "ALTER", "DROP", "VACUUM", "CLUSTER", "LOCK", "REFRESH", "REINDEX", "UPDATE"})
_HEAD = re.compile(r"\s*([A-Za-z]+)")
_CREATES = (ast.CreateStmt, ast.IndexStmt, ast.ViewStmt, ast.CreateTableAsStmt, ast.CreateSeqStmt,
            ast.CreateFunctionStmt, ast.CreateTrigStmt, ast.CreateEnumStmt, ast.CompositeTypeStmt,
            ast.CreateDomainStmt, ast.CreateRangeStmt, ast.CreateSchemaStmt, ast.CreateExtensionStmt,
            ast.CreatePolicyStmt, ast.DefineStmt, ast.RuleStmt)  # fmt: skip
_ADDS = (lint_checks.AT.AT_AddColumn, lint_checks.AT.AT_AddConstraint, lint_checks.AT.AT_AddIndex)


@dataclass(frozen=True)
class Finding:
    """One problem: ``rule`` is a lint rule id, or file, syntax, transaction, backfill or suppression."""

    rule: str
    severity: str  # "error" or "warning"
    file: str
    line: int | None
    column: int | None
    message: str
    why: str = ""
    fix: str = ""

    @property
    def location(self) -> str:
        """``file:line:column`` as editors and CI annotations read it."""
        parts = [self.file] + [str(p) for p in (self.line, self.column) if p is not None]
        return ":".join(parts)


@dataclass
class CheckReport:
    """What ``check`` found; ``suppressed`` holds findings silenced by ``-- pgmig:allow``."""

    directory: str
    files: int = 0
    findings: list[Finding] = field(default_factory=list)
    suppressed: list[Finding] = field(default_factory=list)

    @property
    def errors(self) -> list[Finding]:
        """Findings that make ``check`` exit 1."""
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        """Findings that are printed but do not fail."""
        return [f for f in self.findings if f.severity == "warning"]

    @property
    def ok(self) -> bool:
        """True when nothing is an error."""
        return not self.errors


def check_directory(
    directory: str | os.PathLike[str], *, lint: str = "error", versions: Collection[str] | None = None
) -> CheckReport:
    """Check every migration of ``directory``; lint findings are errors, warnings, or skipped (``lint``).

    With ``versions``, only those migrations are reported on (the earlier ones are still read, so that the
    linter knows the tables and columns they made).
    """
    root = Path(directory)
    report = CheckReport(str(root))
    if not root.is_dir():
        raise MigrationFileError(
            f"The migrations directory '{root}' does not exist. Create it, or point PGMIG_DIRECTORY (or "
            "--directory) at the right folder.",
            paths=[str(root)],
        )
    known = lint_checks.Known()
    for migration in _read_files(root, report, versions):
        report.files += 1
        reported = versions is None or migration.version in versions
        FileChecker(migration, lint, known, report if reported else CheckReport(str(root))).run()
    return report


def _read_files(root: Path, report: CheckReport, versions: Collection[str] | None) -> list[MigrationFile]:
    """Parse each well-named file; every bad name, duplicate version or unparsable file is a finding."""
    seen: dict[int, str] = {}
    found: list[MigrationFile] = []
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        name = unicodedata.normalize("NFC", entry.name)
        if not entry.is_file() or is_ignored(name):
            continue
        match = FILE_NAME.match(name)
        if match is None:
            if looks_like_migration(name):
                report.findings.append(Finding("file", "error", name, None, None, (
                    f"'{name}' does not follow the migration file name grammar. Rename it to "
                    "'<version>_<name>.sql' (or .py): 14 digits (YYYYMMDDHHMMSS) or 8 (YYYYMMDD), then "
                    "letters, digits, '_' or '-'.")))  # fmt: skip
            continue
        key = version_key(match["version"])
        if key in seen:
            report.findings.append(Finding("file", "error", name, None, None, (
                f"'{name}' has the same version as '{seen[key]}'. Give one of them a new version, keeping "
                "their order.")))  # fmt: skip
            continue
        seen[key] = name
        try:
            found.append(parse_file(Path(entry.path), name))
        except MigrationFileError as error:
            if versions is None or match["version"] in versions:
                line = getattr(error, "line", None)
                report.findings.append(Finding("file", "error", name, line, getattr(error, "column", None),
                                               error.message))  # fmt: skip
    return sorted(found, key=lambda m: m.key)


class FileChecker:
    """Checks one parsed migration file and adds its findings to a report."""

    def __init__(
        self, migration: MigrationFile, lint: str, known: lint_checks.Known, report: CheckReport
    ) -> None:
        self.migration = migration
        self.lint = lint
        self.known = known
        self.report = report
        self.name = migration.path.name

    def run(self) -> None:
        """Syntax and transaction checks on both sections, then the linter on the up section."""
        if self.migration.kind != "sql":
            return  # Python migrations: their shape was checked by the parser; their SQL is not visible
        sections = [("up", self.migration.up), ("down", self.migration.down)]
        clean = all([self._syntax(section) for _, section in sections if section is not None])
        for direction, section in sections:
            if section is not None:
                self._transactions(direction, section)
        if clean and self.lint != "off":
            self._lint_up()

    def _add(self, finding: Finding, section: Section | None = None, start: int = 0, end: int = 0) -> None:
        allowed = _allowed(section.sql[start:end]) if section is not None else {}
        if finding.rule in allowed:
            self.report.suppressed.append(finding)
        else:
            self.report.findings.append(finding)

    def _syntax(self, section: Section) -> bool:
        if sql.syntax_error(section.sql) is None:
            return True
        for statement in sql.split_statements(section.sql):
            error = sql.syntax_error(statement.text)
            if error is None:
                continue
            line = section.line + statement.line - 1 + error.line - 1
            column = statement.column + error.column - 1 if error.line == 1 else error.column
            where = _near(statement.text, error.line, error.column)
            self._add(Finding("syntax", "error", self.name, line, column, (
                f"Line {line}, column {column} of '{self.name}' has a syntax error: {error.message} {where} "
                f"in '{_excerpt(statement.text)}'. Fix the SQL (PostgreSQL would reject it).")))  # fmt: skip
        return False

    def _transactions(self, direction: str, section: Section) -> None:
        if "pgmig:" in section.sql:  # the directive's own checks, as migrate would run them
            try:
                backfill_statements(section.sql, section.line, transactional=section.options.transaction,
                                    path=str(self.migration.path), display=self.name)  # fmt: skip
            except MigrationParseError as error:
                self._add(Finding("backfill", "error", self.name, error.line, None, error.message))
        if not section.options.transaction:
            return
        for statement in sql.split_statements(section.sql):
            control = sql.transaction_control(statement)
            reason = sql.non_transactional_reason(statement) or control
            if reason is None:
                continue
            line = section.line + statement.line - 1
            fix = (
                "Remove it: each migration already runs in its own transaction."
                if control
                else "Add 'transaction:false' to its marker line "
                f"('-- migrate:{direction} transaction:false'), and keep such statements in a migration of "
                "their own."
            )
            self._add(Finding("transaction", "error", self.name, line, statement.column, (
                f"Line {line} of '{self.name}' has {reason}, which cannot run inside a transaction: "
                f"'{_excerpt(statement.text)}'. {fix}")))  # fmt: skip

    def _lint_up(self) -> None:
        section = self.migration.up
        severity = "error" if self.lint == "error" else "warning"
        scope = lint_checks.Scope(transactional=section.options.transaction)
        statements = sql.split_statements(section.sql)
        region_start = 0
        creates: int | None = None
        for statement in statements:
            region_end = _line_end(section.sql, statement.start + len(statement.text))
            line = section.line + statement.line - 1
            for node in _trees(statement.text, scope):
                if creates is None and _creates(node):
                    creates = line
                for rule, what in lint_checks.check(node, line, scope, self.known):
                    info = RULES[rule]
                    message = f"Line {line} of '{self.name}' {what}."
                    finding = Finding(
                        rule, severity, self.name, line, statement.column, message, info.why, info.fix
                    )
                    self._add(finding, section, region_start, region_end)
            self._check_allow_comments(section, region_start, region_end, line)
            region_start = region_end
        if creates is not None and self.migration.down is None:
            self._missing_down(creates, severity)

    def _missing_down(self, line: int, severity: str) -> None:
        info = RULES["missing-down"]
        finding = Finding("missing-down", severity, self.name, line, None, (
            f"'{self.name}' has no down section, but its up section creates something (line {line})."),
            info.why, info.fix)  # fmt: skip
        if "missing-down" in _allowed(self.migration.source):
            self.report.suppressed.append(finding)
        else:
            self.report.findings.append(finding)

    def _check_allow_comments(self, section: Section, start: int, end: int, line: int) -> None:
        for match in ALLOW.finditer(section.sql[start:end]):
            rules = [r.strip() for r in (match["rules"] or "").split(",") if r.strip()]
            unknown = [r for r in rules if r not in RULES]
            problem = ""
            if not rules:
                problem = "names no rule"
            elif unknown:
                guess = closest_rule(unknown[0])
                problem = f"names an unknown rule '{unknown[0]}'" + (
                    f" (did you mean '{guess}'?)" if guess else ""
                )
            elif not (match["why"] or "").strip():
                problem = "gives no reason"
            if problem:
                self.report.findings.append(Finding("suppression", "error", self.name, line, None, (
                    f"The '-- pgmig:allow' comment before line {line} of '{self.name}' {problem}. Write it "
                    "as '-- pgmig:allow <rule-id> because <reason>'.")))  # fmt: skip


def _allowed(text: str) -> dict[str, str]:
    """Rule ids silenced by well-formed ``-- pgmig:allow ... because ...`` comments in ``text``."""
    allowed: dict[str, str] = {}
    for match in ALLOW.finditer(text):
        why = (match["why"] or "").strip()
        for rule in (match["rules"] or "").split(","):
            if rule.strip() and why:
                allowed[rule.strip()] = why
    return allowed


def _trees(text: str, scope: lint_checks.Scope) -> list[ast.Node]:
    head = _HEAD.match(text)
    word = head.group(1).upper() if head else ""
    labels = scope.enum_values and any(label in text for label in scope.enum_values)
    if word not in _LINTED and not labels:
        return []
    try:
        return [raw.stmt for raw in parse_sql(text) if raw.stmt is not None]
    except ParseError:
        return []


def _creates(node: ast.Node) -> bool:
    if isinstance(node, _CREATES):
        return True
    if isinstance(node, ast.AlterTableStmt):
        return any(isinstance(c, ast.AlterTableCmd) and c.subtype in _ADDS for c in node.cmds or ())
    return False  # ALTER TYPE ... ADD VALUE is not counted: PostgreSQL has no way to drop an enum label


def _line_end(text: str, index: int) -> int:
    end = text.find("\n", index)
    return len(text) if end < 0 else end


def _near(text: str, line: int, column: int) -> str:
    lines = text.splitlines()
    if line > len(lines) or column > len(lines[line - 1]):
        return "at the end of the statement"
    rest = lines[line - 1][column - 1 :].strip()
    return f"at '{rest[:40]}{'...' if len(rest) > 40 else ''}'"


def _excerpt(text: str, limit: int = 100) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


__all__ = ["ALLOW", "LINT_MODES", "CheckReport", "Finding", "check_directory"]
