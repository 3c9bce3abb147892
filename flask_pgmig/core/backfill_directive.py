"""The SQL form of a backfill: ``-- pgmig:backfill`` above an ``UPDATE`` in a ``transaction:false`` section.

::

    -- migrate:up transaction:false
    -- pgmig:backfill batch_size:5000 sleep:50ms statement_timeout:30s
    UPDATE tasks SET priority = 2 WHERE priority IS NULL;

The UPDATE reads as what it does (and still works if the line is removed); with the line, the runner hands
its table, SET list and WHERE condition to :func:`flask_pgmig.core.backfill.backfill`. Pure: PostgreSQL's
lexer and parser through pglast, no database. Errors name the file and line and end with the fix.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import NoReturn

from ..errors import MigrationParseError
from .sql import Statement, split_statements

MARK = "pgmig:"
# The comment token's text; anything after "pgmig:" is checked so that typos are caught.
DIRECTIVE = re.compile(r"^--[ \t]*pgmig:[ \t]*(?P<word>\S*)(?P<rest>.*)$", re.DOTALL)
OPTION_NAMES = ("key", "batch_size", "sleep", "statement_timeout", "name")
_DURATION = re.compile(r"^(?P<number>\d+(?:\.\d+)?)(?P<unit>ms|s|min|m|h)?$")
_UNIT_MS = {"ms": 1, "s": 1000, "min": 60_000, "m": 60_000, "h": 3_600_000, None: 1000}
_NAME = re.compile(r"^[\w.:-]+$")
DEFAULT_STATEMENT_TIMEOUT_MS = 60_000


@dataclass(frozen=True)
class BackfillSpec:
    """One declared backfill: the UPDATE's parts and the directive's options; ``line`` is the directive's."""

    table: str
    schema: str | None
    set_sql: str
    where_sql: str | None
    line: int
    key: str = "id"
    batch_size: int = 1000
    sleep: float = 0.0
    statement_timeout_ms: int = DEFAULT_STATEMENT_TIMEOUT_MS
    name: str | None = None

    @property
    def qualified_table(self) -> str:
        """``schema.table`` when the UPDATE named a schema, else the table."""
        return f"{self.schema}.{self.table}" if self.schema else self.table


def parse_duration_ms(text: str) -> int | None:
    """'500ms', '30s', '5min', '2h', '0.5' (seconds) -> milliseconds; None if it is not a duration."""
    match = _DURATION.match(text.strip().lower())
    if match is None:
        return None
    return round(float(match["number"]) * _UNIT_MS[match["unit"]])


def backfill_statements(
    sql_text: str, first_line: int, *, transactional: bool, path: str, display: str
) -> dict[int, BackfillSpec]:
    """The backfills declared in one section, by index of the statement (in ``split_statements`` order).

    ``first_line`` is the file line where the section's text starts. Raises :class:`MigrationParseError` for
    a misspelled directive, a bad option, a directive in a transactional section, or one not followed by an
    UPDATE that can run in batches.
    """
    if MARK not in sql_text:
        return {}
    from pglast.parser import ParseError, scan  # only for a section with a directive: most have none

    try:
        tokens = scan(sql_text)
    except ParseError:
        return {}  # an unterminated quote: the syntax check reports it with its own line
    statements = split_statements(sql_text)
    found: dict[int, BackfillSpec] = {}
    for tok in tokens:
        if tok.name != "SQL_COMMENT":
            continue
        directive = DIRECTIVE.match(sql_text[tok.start : tok.end + 1].rstrip("\r\n"))
        if directive is None or directive["word"] == "allow":
            continue  # '-- pgmig:allow rule because ...' belongs to the linter, which checks it
        line = first_line + sql_text.count("\n", 0, tok.start)
        where = _Where(path, display, line)
        line_start = sql_text.rfind("\n", 0, tok.start) + 1
        if sql_text[line_start : tok.start].strip():
            where.fail(
                "has '-- pgmig:' after other text on the same line. Put the directive on a line of its own, "
                "directly above the UPDATE it applies to."
            )
        _check_word(directive["word"], where)
        if transactional:
            where.fail(
                "declares a backfill in a section that runs in one transaction, so its batches could not "
                "commit one by one. Add 'transaction:false' to the section's marker line (e.g. "
                "'-- migrate:up transaction:false') and keep the backfill in a migration of its own."
            )
        options = _parse_options(directive["rest"], where)
        if any(s.start < tok.start < s.start + len(s.text) for s in statements):
            where.fail("has '-- pgmig:backfill' inside a statement. Move it to the line above the UPDATE.")
        index = next((i for i, s in enumerate(statements) if s.start > tok.start), None)
        if index is None:
            where.fail("has '-- pgmig:backfill' with no statement after it. Put it directly above an UPDATE.")
        if index in found:
            where.fail(
                f"declares a second backfill for the statement below line {found[index].line}. Keep one "
                "'-- pgmig:backfill' line per UPDATE."
            )
        found[index] = _spec(statements[index], options, where)
        labels = [spec.name or spec.qualified_table for spec in found.values()]
        if len(set(labels)) < len(labels):
            where.fail(
                f"declares a second backfill of '{labels[-1]}' in this section, which would look finished. "
                "Give each one its own name (e.g. 'name:second')."
            )
    return found


class _Where:
    """Where a directive is, to raise errors that name it."""

    def __init__(self, path: str, display: str, line: int) -> None:
        self.path, self.display, self.line = path, display, line

    def fail(self, text: str) -> NoReturn:
        raise MigrationParseError(
            f"Line {self.line} of '{self.display}' {text}", path=self.path, line=self.line
        )


def _check_word(word: str, where: _Where) -> None:
    if word == "backfill":
        return
    guess = difflib.get_close_matches(word, ["backfill", "allow"], n=1, cutoff=0.5)
    hint = f" Did you mean '-- pgmig:{guess[0]}'?" if guess else ""
    where.fail(
        f"has an unknown directive '-- pgmig:{word}'.{hint} The '-- pgmig:' directives are "
        "'-- pgmig:backfill' (above an UPDATE) and '-- pgmig:allow RULE because REASON' (lint suppression)."
    )


def _parse_options(text: str, where: _Where) -> dict[str, int | str]:
    values: dict[str, int | str] = {}
    for word in text.split():
        key, sep, value = word.partition(":")
        if key not in OPTION_NAMES or not sep:
            guess = difflib.get_close_matches(key, OPTION_NAMES, n=1)
            hint = f" Did you mean '{guess[0]}'?" if guess else ""
            where.fail(
                f"has an unknown backfill option '{word}'.{hint} Valid options are "
                f"{', '.join(n + ':...' for n in OPTION_NAMES)}."
            )
        if key in values:
            where.fail(f"gives backfill option '{key}' twice. Keep one.")
        values[key] = _option_value(key, value, where)
    return values


def _option_value(key: str, value: str, where: _Where) -> int | str:
    if key == "batch_size":
        if value.isdigit() and int(value) > 0:
            return int(value)
        where.fail(
            f"sets batch_size to '{value}'. Use a whole number of rows above 0, like 'batch_size:5000'."
        )
    if key in ("sleep", "statement_timeout"):
        ms = parse_duration_ms(value)
        if ms is None or (key == "statement_timeout" and ms == 0):
            where.fail(
                f"sets {key} to '{value}', which is not a duration. Write it like '{key}:500ms', "
                f"'{key}:30s' or '{key}:2min'{' (above 0)' if key == 'statement_timeout' else ''}."
            )
        return ms
    if not _NAME.match(value):
        where.fail(f"sets {key} to '{value}'. Use letters, digits, '_', '.', ':' or '-'.")
    return value


def _spec(statement: Statement, options: dict[str, int | str], where: _Where) -> BackfillSpec:
    from pglast import ast
    from pglast.parser import ParseError, parse_sql

    what = "the statement below it" if not statement.text else f"'{_excerpt(statement.text)}'"
    try:
        nodes = parse_sql(statement.text)
    except ParseError as exc:
        where.fail(f"declares a backfill, but {what} is not valid SQL ({exc.args[0]}). Fix the UPDATE.")
    node = nodes[0].stmt if nodes else None
    if not isinstance(node, ast.UpdateStmt):
        where.fail(
            f"declares a backfill, but {what} is not an UPDATE. Put '-- pgmig:backfill' on the line directly "
            "above the UPDATE it should run in batches."
        )
    relation = node.relation
    assert relation is not None  # the grammar requires the table of an UPDATE
    returning = getattr(node, "returningList", None) or getattr(node, "returningClause", None)
    refusals = (
        (node.withClause, "a WITH clause"),
        (node.fromClause, "a FROM list (join in a subquery inside SET instead)"),
        (returning, "a RETURNING list"),
        (relation.alias, "a table alias (name columns by the table name instead)"),
        (isinstance(node.whereClause, ast.CurrentOfExpr), "WHERE CURRENT OF"),
        (relation.inh is False, "ONLY (the batches would update inheriting tables too)"),
    )
    for present, feature in refusals:
        if present:
            where.fail(f"declares a backfill, but its UPDATE has {feature}, which batches cannot reproduce.")
    set_sql, where_sql = _set_and_where(statement.text)
    return BackfillSpec(
        table=str(relation.relname),
        schema=relation.schemaname or None,
        set_sql=set_sql,
        where_sql=where_sql,
        line=where.line,
        key=str(options.get("key", "id")),
        batch_size=int(options.get("batch_size", 1000)),
        sleep=int(options.get("sleep", 0)) / 1000,
        statement_timeout_ms=int(options.get("statement_timeout", DEFAULT_STATEMENT_TIMEOUT_MS)),
        name=None if options.get("name") is None else str(options["name"]),
    )


def _set_and_where(text: str) -> tuple[str, str | None]:
    """The text between SET and WHERE, and after WHERE, at parenthesis depth 0 (the parser checked it)."""
    from pglast.parser import scan

    depth = 0
    set_end = where_start = where_end = None
    for tok in scan(text):
        if tok.name == "ASCII_40":
            depth += 1
        elif tok.name == "ASCII_41":
            depth -= 1
        elif depth == 0 and tok.name == "SET" and set_end is None:
            set_end = tok.end + 1
        elif depth == 0 and tok.name == "WHERE" and set_end is not None:
            where_start, where_end = tok.start, tok.end + 1
            break
    assert set_end is not None
    if where_start is None or where_end is None:
        return text[set_end:].strip(), None
    return text[set_end:where_start].strip(), text[where_end:].strip()


def _excerpt(text: str, limit: int = 80) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."
