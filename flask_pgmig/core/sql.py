"""PostgreSQL-aware SQL handling: split statements, find what cannot run in a transaction, syntax check.

Pure (no database). PostgreSQL's own lexer and parser, through pglast, read strings, dollar quotes, quoted
identifiers and comments exactly as the server does. pglast is imported the first time something is lexed or
parsed, not with this module: ``status`` on unchanged files and the startup guard never need it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple, TypeVar

if TYPE_CHECKING:
    from pglast import ast, enums
    from pglast.parser import Token

__all__ = [
    "SqlSyntaxError",
    "Statement",
    "created_index_name",
    "is_blank",
    "is_concurrently",
    "non_transactional_reason",
    "position_to_line_column",
    "split_statements",
    "syntax_error",
    "transaction_control",
]

_T = TypeVar("_T")


@dataclass(frozen=True)
class Statement:
    """One SQL statement of a larger text, without its ';' and without leading or trailing comments."""

    text: str
    start: int
    line: int
    column: int


@dataclass(frozen=True)
class SqlSyntaxError:
    """Where and why PostgreSQL's parser rejects a text."""

    message: str
    line: int
    column: int
    near: str


def position_to_line_column(text: str, index: int) -> tuple[int, int]:
    """Map a 0-based character index of ``text`` to a 1-based (line, column)."""
    index = max(0, min(index, len(text)))
    line_start = text.rfind("\n", 0, index) + 1
    return text.count("\n", 0, index) + 1, index - line_start + 1


# pglast converts each token offset from UTF-8 bytes to characters with a linear search, so scanning a
# big data migration full of accents is quadratic (minutes for a few MB). Lexing a copy in which every
# non-ASCII character becomes one ASCII identifier character keeps every token boundary (PostgreSQL treats
# all non-ASCII bytes as identifier characters) and makes offsets equal indexes. '_' is neither a digit nor
# a string prefix (X'', E''). Only dollar-quote tags compare characters: they are checked on the real text.
_NON_ASCII = re.compile(r"[^\x00-\x7f]")
_COMMENTS = frozenset({"SQL_COMMENT", "C_COMMENT"})
_SEMICOLON, _OPEN, _CLOSE = "ASCII_59", "ASCII_40", "ASCII_41"
# psql's heuristic for SQL-standard bodies (BEGIN ATOMIC ... END), in CREATE [OR REPLACE] FUNCTION/PROCEDURE.
_ROUTINE_WORDS = frozenset({"create", "function", "procedure", "or", "replace"})


def _scan_prefix(text: str) -> tuple[list[Token], int | None]:
    """Tokens of ``text`` and the index where lexing failed (an unterminated quote or comment), if it did."""
    from pglast.parser import ParseError, scan

    try:
        return scan(text), None
    except ParseError as exc:
        failed = _error_index(exc) or 0
        try:
            return scan(text[:failed]), failed
        except ParseError:
            return [], 0


def _dollar_tags_match(sql: str, tokens: Iterable[Token]) -> bool:
    for tok in tokens:
        if tok.name == "SCONST" and sql[tok.start] == "$":
            body = sql[tok.start : tok.end + 1]
            tag = body[: body.index("$", 1) + 1]
            if len(body) < 2 * len(tag) or not body.endswith(tag):
                return False
    return True


def _tokens(sql: str) -> tuple[list[Token], int | None]:
    if sql.isascii():
        return _scan_prefix(sql)
    tokens, failed = _scan_prefix(_NON_ASCII.sub("_", sql))
    if _dollar_tags_match(sql, tokens):
        return tokens, failed
    return _scan_prefix(sql)  # two different non-ASCII tags became equal: lex the real text, slowly but right


def scan_tokens(sql: str) -> list[Token] | None:
    """PostgreSQL's tokens of ``sql`` whose offsets index the Python string (characters, not UTF-8 bytes).

    None when the text does not lex (an unterminated quote or comment). Fast on non-ASCII text too.
    """
    tokens, failed = _tokens(sql)
    return None if failed is not None else tokens


def _is_word(sql: str, tok: Token) -> bool:
    return (tok.kind != "NO_KEYWORD" or tok.name == "IDENT") and sql[tok.start] != '"'


# What only PostgreSQL's lexer reads right: quotes, dollar quotes and parameters, comments, SQL-standard routine
# bodies (BEGIN ATOMIC), and any character beyond printable ASCII, tab and newlines (a non-ASCII letter belongs to
# an identifier, \f and \v depend on the server's version). Without them only ';' and parentheses matter.
_ODD_CHARACTERS = re.compile(r"[^\t\n\r\x20-\x7e]")
_ROUTINE_KEYWORDS = re.compile(r"\b(?:function|procedure)\b")


def _needs_lexer(sql: str) -> bool:
    """Whether sql holds any of the above. Checked one kind at a time: a single regex trying every alternative
    at every character costs several times more."""
    if "'" in sql or '"' in sql or "$" in sql or "/*" in sql or "--" in sql:
        return True
    if not sql.isascii() or _ODD_CHARACTERS.search(sql) is not None:
        return True
    lowered = sql.lower()
    return ("function" in lowered or "procedure" in lowered) and _ROUTINE_KEYWORDS.search(lowered) is not None


_SPLITTERS = re.compile(r"[();]")
_WHITESPACE = " \t\n\r"


@functools.lru_cache(maxsize=1024)
def _split(sql: str) -> tuple[Statement, ...]:
    if not _needs_lexer(sql):  # most schema migrations: no need to import and run pglast's lexer
        return _statements(sql, _plain_spans(sql))
    return _split_lexed(sql)


def _plain_spans(sql: str) -> list[tuple[int, int]]:
    """Statement spans of SQL with nothing for the lexer to read: split at ';' outside parentheses."""
    pieces: list[tuple[int, int]] = []
    begin = depth = 0
    for match in _SPLITTERS.finditer(sql):
        char = match.group()
        if char == "(":
            depth += 1
        elif char == ")":
            depth = max(0, depth - 1)
        elif depth == 0:
            pieces.append((begin, match.start()))
            begin = match.end()
    pieces.append((begin, len(sql)))
    spans = []
    for begin, end in pieces:
        piece = sql[begin:end]
        start, finish = begin + len(piece) - len(piece.lstrip(_WHITESPACE)), begin + len(piece.rstrip(_WHITESPACE))
        if start < finish:
            spans.append((start, finish))
    return spans


def _split_lexed(sql: str) -> tuple[Statement, ...]:
    tokens, failed = _tokens(sql)
    spans: list[tuple[int, int]] = []
    start = end = depth = begin_depth = 0
    routine: list[str] = []
    inside = False
    for tok in tokens:
        if tok.name in _COMMENTS:
            continue
        if tok.name == _SEMICOLON and depth == 0 and begin_depth == 0:
            if inside:
                spans.append((start, end))
            inside = False
            continue
        if not inside:
            inside, start, depth, begin_depth, routine = True, tok.start, 0, 0, []
        end = tok.end + 1
        if tok.name == _OPEN:
            depth += 1
        elif tok.name == _CLOSE:
            depth = max(0, depth - 1)
        elif _is_word(sql, tok):
            word = sql[tok.start : end].lower()
            if len(routine) < 4:
                routine.append(word[0] if word in _ROUTINE_WORDS else "-")
            head = "".join(routine)
            if depth == 0 and (head[:2] in ("cf", "cp") or head[:4] in ("corf", "corp")):
                if word == "begin" or (word == "case" and begin_depth > 0):
                    begin_depth += 1
                elif word == "end" and begin_depth > 0:
                    begin_depth -= 1
    if failed is not None:
        # The broken token swallows the rest of the input, as it would in the server: keep it all, so that
        # running it reports the error instead of silently dropping the tail.
        tail_end = len(sql.rstrip())
        if tail_end > (start if inside else failed):
            spans.append((start if inside else failed, tail_end))
    elif inside:
        spans.append((start, end))
    return _statements(sql, spans)


def _statements(sql: str, spans: list[tuple[int, int]]) -> tuple[Statement, ...]:
    statements: list[Statement] = []
    line, line_start, pos = 1, 0, 0
    for begin, finish in spans:
        newlines = sql.count("\n", pos, begin)
        if newlines:
            line += newlines
            line_start = sql.rfind("\n", pos, begin) + 1
        pos = begin
        statements.append(Statement(sql[begin:finish], begin, line, begin - line_start + 1))
    return tuple(statements)


def split_statements(sql: str) -> list[Statement]:
    """Split SQL into statements with PostgreSQL's own lexer, the way psql does.

    Works on SQL with syntax errors. Semicolons inside strings, dollar quotes, quoted identifiers, comments,
    parentheses (CREATE RULE) and SQL-standard routine bodies (BEGIN ATOMIC ... END) do not split. A last
    statement without ';' is kept. Comments around statements are dropped; empty and comment-only input
    give []. An unterminated quote or comment makes the rest of the text one last statement.
    """
    return list(_split(sql))


def is_blank(sql: str) -> bool:
    """True when sql holds only whitespace, comments and empty statements (a no-op section)."""
    return not _split(sql)


def _error_index(exc: Exception) -> int | None:
    location = exc.args[1] if len(exc.args) > 1 else None
    return location if isinstance(location, int) else None


@functools.lru_cache(maxsize=1024)
def _syntax_error(sql: str) -> SqlSyntaxError | None:
    from pglast.parser import ParseError, parse_sql_json

    try:
        # JSON output: the syntax tree is not needed, and building pglast nodes costs far more than parsing.
        parse_sql_json(sql)
    except ParseError as exc:
        index = _error_index(exc)
        # pglast gives no index for "syntax error at end of input": point just after the last character.
        line, column = position_to_line_column(sql, len(sql.rstrip()) if index is None else index)
        lines = sql.splitlines()
        near = lines[line - 1].strip() if line <= len(lines) else ""
        return SqlSyntaxError(str(exc.args[0]), line, column, near)
    return None


def syntax_error(sql: str) -> SqlSyntaxError | None:
    """PostgreSQL's parser error for sql with its 1-based line and column in sql, or None when it parses.

    The parser reports positions in characters (not UTF-8 bytes), so they index the Python string directly.
    """
    return _syntax_error(sql)


# Building pglast's syntax tree costs far more than lexing, so a statement is parsed only when its first words
# allow it to be something classified here: never INSERT, UPDATE, COPY, CREATE TABLE, ...
_PARSE_ALWAYS = frozenset(
    {"REINDEX", "VACUUM", "CLUSTER", "DISCARD", "REFRESH", "BEGIN", "START", "COMMIT", "END", "ROLLBACK",
     "ABORT", "SAVEPOINT", "RELEASE", "PREPARE"}
)  # fmt: skip
_PARSE_IF_SECOND = {
    "CREATE": frozenset({"INDEX", "UNIQUE", "DATABASE", "TABLESPACE", "SUBSCRIPTION"}),
    "DROP": frozenset({"INDEX", "DATABASE", "TABLESPACE", "SUBSCRIPTION"}),
    "ALTER": frozenset({"SYSTEM", "SUBSCRIPTION", "DATABASE", "TABLE"}),
}
_HEAD = re.compile(r"([A-Za-z_]+)(?:\s+([A-Za-z_]+))?(?![\w$])")


def _worth_parsing(text: str, *, for_names: bool = True) -> bool:
    """Whether parsing ``text`` may find what is classified here; without ``for_names`` (only whether it can run
    in a transaction), a plain CREATE or DROP INDEX matters only with the word CONCURRENTLY in it."""
    head = _HEAD.match(text)
    if head is None:
        return True  # starts with a comment or parenthesis: let the parser decide
    first, second = head.group(1).upper(), (head.group(2) or "").upper()
    seconds = _PARSE_IF_SECOND.get(first)
    if seconds is None:
        return first in _PARSE_ALWAYS
    if (first == "ALTER" and second == "TABLE") or (not for_names and second in ("INDEX", "UNIQUE")):
        return "concurrently" in text.lower()  # only DETACH PARTITION, CREATE/DROP INDEX ... CONCURRENTLY matter
    return not second or second in seconds  # no second word: a comment may sit between them


@functools.lru_cache(maxsize=4096)
def _parse(text: str) -> tuple[tuple[ast.Node, ...], tuple[str, ...]]:
    """(parse trees, ()) of a statement, or ((), its upper-cased tokens) when it does not parse."""
    from pglast.parser import ParseError, parse_sql

    try:
        return tuple(raw.stmt for raw in parse_sql(text) if raw.stmt is not None), ()
    except ParseError:
        tokens, _ = _tokens(text)
        return (), tuple(text[t.start : t.end + 1].upper() for t in tokens if t.name not in _COMMENTS)


def _analyse(stmt: Statement | str, for_names: bool) -> Iterable[tuple[tuple[ast.Node, ...], tuple[str, ...]]]:
    for text in (stmt.text,) if isinstance(stmt, Statement) else (s.text for s in _split(stmt)):
        if _worth_parsing(text, for_names=for_names):
            yield _parse(text)


def _first(
    stmt: Statement | str,
    on_node: Callable[[ast.Node], _T | None],
    on_words: Callable[[tuple[str, ...]], _T | None],
    *,
    for_names: bool = True,
) -> _T | None:
    for nodes, words in _analyse(stmt, for_names):
        for node in nodes:
            found = on_node(node)
            if found is not None:
                return found
        if words:
            found = on_words(words)
            if found is not None:
                return found
    return None


def _option(options: object, name: str, default: bool = False) -> bool:
    """The boolean value of option ``name`` in a DefElem list, read as PostgreSQL's defGetBoolean does."""
    from pglast import ast

    for opt in options if isinstance(options, tuple) else ():
        if isinstance(opt, ast.DefElem) and opt.defname == name:
            arg = opt.arg
            if isinstance(arg, ast.Boolean):
                return bool(arg.boolval)
            if isinstance(arg, ast.Integer):
                return arg.ival != 0
            if isinstance(arg, ast.TypeName) and arg.names:
                arg = arg.names[-1]
            if isinstance(arg, ast.String):
                return str(arg.sval).lower() not in ("false", "off", "0", "no")
            return True  # a bare option ("VERBOSE") is true; anything unknown is taken as true, to be safe
    return default


def _detaches_concurrently(node: ast.AlterTableStmt) -> bool:
    from pglast import ast, enums

    return any(
        isinstance(cmd, ast.AlterTableCmd)
        and cmd.subtype == enums.AlterTableType.AT_DetachPartition
        and isinstance(cmd.def_, ast.PartitionCmd)
        and bool(cmd.def_.concurrent)
        for cmd in node.cmds or ()
    )


class _NodeTables(NamedTuple):  # not a dataclass: creating one costs a millisecond at every import
    always_non_transactional: dict[type[ast.Node], str]
    reindex_many: dict[enums.ReindexObjectType, str]
    publication_changes: tuple[enums.AlterSubscriptionType, ...]
    transaction_kinds: dict[enums.TransactionStmtKind, str]


@functools.cache
def _node_tables() -> _NodeTables:
    """The tables keyed by pglast's node classes and enums, built when pglast is first needed."""
    from pglast import ast, enums

    return _NodeTables(
        always_non_transactional={
            ast.CreatedbStmt: "CREATE DATABASE",
            ast.DropdbStmt: "DROP DATABASE",
            ast.CreateTableSpaceStmt: "CREATE TABLESPACE",
            ast.DropTableSpaceStmt: "DROP TABLESPACE",
            ast.AlterSystemStmt: "ALTER SYSTEM",
            # Only when the subscription has a replication slot, which cannot be known offline.
            ast.DropSubscriptionStmt: "DROP SUBSCRIPTION",
        },
        reindex_many={
            enums.ReindexObjectType.REINDEX_OBJECT_SCHEMA: "REINDEX SCHEMA",
            enums.ReindexObjectType.REINDEX_OBJECT_DATABASE: "REINDEX DATABASE",
            enums.ReindexObjectType.REINDEX_OBJECT_SYSTEM: "REINDEX SYSTEM",
        },
        publication_changes=(
            enums.AlterSubscriptionType.ALTER_SUBSCRIPTION_SET_PUBLICATION,
            enums.AlterSubscriptionType.ALTER_SUBSCRIPTION_ADD_PUBLICATION,
            enums.AlterSubscriptionType.ALTER_SUBSCRIPTION_DROP_PUBLICATION,
        ),
        transaction_kinds={
            enums.TransactionStmtKind.TRANS_STMT_BEGIN: "BEGIN",
            enums.TransactionStmtKind.TRANS_STMT_START: "START TRANSACTION",
            enums.TransactionStmtKind.TRANS_STMT_COMMIT: "COMMIT",
            enums.TransactionStmtKind.TRANS_STMT_ROLLBACK: "ROLLBACK",
            enums.TransactionStmtKind.TRANS_STMT_SAVEPOINT: "SAVEPOINT",
            enums.TransactionStmtKind.TRANS_STMT_RELEASE: "RELEASE SAVEPOINT",
            enums.TransactionStmtKind.TRANS_STMT_ROLLBACK_TO: "ROLLBACK TO SAVEPOINT",
            enums.TransactionStmtKind.TRANS_STMT_PREPARE: "PREPARE TRANSACTION",
            enums.TransactionStmtKind.TRANS_STMT_COMMIT_PREPARED: "COMMIT PREPARED",
            enums.TransactionStmtKind.TRANS_STMT_ROLLBACK_PREPARED: "ROLLBACK PREPARED",
        },
    )


def _non_transactional_node(node: ast.Node) -> str | None:
    from pglast import ast, enums

    tables = _node_tables()
    if isinstance(node, ast.IndexStmt):
        return "CREATE INDEX CONCURRENTLY" if node.concurrent else None
    if isinstance(node, ast.DropStmt):
        return "DROP INDEX CONCURRENTLY" if node.concurrent else None
    if isinstance(node, ast.ReindexStmt):
        if _option(node.params, "concurrently"):
            return "REINDEX ... CONCURRENTLY"
        return tables.reindex_many.get(node.kind) if node.kind is not None else None
    if isinstance(node, ast.VacuumStmt):
        return "VACUUM" if node.is_vacuumcmd else None  # ANALYZE alone is fine in a transaction
    if isinstance(node, ast.ClusterStmt):
        return "CLUSTER" if node.relation is None else None
    if isinstance(node, ast.AlterTableStmt):
        return "ALTER TABLE ... DETACH PARTITION ... CONCURRENTLY" if _detaches_concurrently(node) else None
    if isinstance(node, ast.CreateSubscriptionStmt):
        # Creating the replication slot is what cannot be rolled back; create_slot defaults to connect.
        slot = _option(node.options, "create_slot", _option(node.options, "connect", True))
        return "CREATE SUBSCRIPTION" if slot else None
    if isinstance(node, ast.AlterSubscriptionStmt):
        if node.kind == enums.AlterSubscriptionType.ALTER_SUBSCRIPTION_REFRESH:
            return "ALTER SUBSCRIPTION ... REFRESH"
        if node.kind in tables.publication_changes and _option(node.options, "refresh", True):
            return "ALTER SUBSCRIPTION ... PUBLICATION with refresh"
        return None
    if isinstance(node, ast.AlterDatabaseStmt):
        names = {opt.defname for opt in node.options or () if isinstance(opt, ast.DefElem)}
        return "ALTER DATABASE ... SET TABLESPACE" if "tablespace" in names else None
    if isinstance(node, ast.DiscardStmt):
        return "DISCARD ALL" if node.target == enums.DiscardMode.DISCARD_ALL else None
    return tables.always_non_transactional.get(type(node))


_NON_TRANSACTIONAL_WORDS: dict[tuple[str, ...], str] = {
    ("CREATE", "DATABASE"): "CREATE DATABASE",
    ("DROP", "DATABASE"): "DROP DATABASE",
    ("CREATE", "TABLESPACE"): "CREATE TABLESPACE",
    ("DROP", "TABLESPACE"): "DROP TABLESPACE",
    ("ALTER", "SYSTEM"): "ALTER SYSTEM",
    ("CREATE", "SUBSCRIPTION"): "CREATE SUBSCRIPTION",
    ("DROP", "SUBSCRIPTION"): "DROP SUBSCRIPTION",
    ("DISCARD", "ALL"): "DISCARD ALL",
}


def _non_transactional_words(words: tuple[str, ...]) -> str | None:
    # Only for statements the parser rejects (e.g. syntax newer than pglast's): err on the side of "not in a
    # transaction", which costs the user a 'transaction:false' at worst.
    first, rest = words[0], words[1:]
    if first == "VACUUM":
        return "VACUUM"
    if first in ("CREATE", "DROP") and "CONCURRENTLY" in rest[:3] and "INDEX" in rest[:2]:
        return f"{first} INDEX CONCURRENTLY"
    if first == "REINDEX":
        if "CONCURRENTLY" in rest:
            return "REINDEX ... CONCURRENTLY"
        kind = next((w for w in rest if w in ("INDEX", "TABLE", "SCHEMA", "DATABASE", "SYSTEM")), "")
        return f"REINDEX {kind}" if kind in ("SCHEMA", "DATABASE", "SYSTEM") else None
    if first == "CLUSTER" and all(w in ("VERBOSE", "(", ")", ",") for w in rest):
        return "CLUSTER"
    if words[:2] == ("ALTER", "TABLE") and "DETACH" in rest and "CONCURRENTLY" in rest:
        return "ALTER TABLE ... DETACH PARTITION ... CONCURRENTLY"
    if words[:2] == ("ALTER", "SUBSCRIPTION") and "REFRESH" in rest:
        return "ALTER SUBSCRIPTION ... REFRESH"
    return _NON_TRANSACTIONAL_WORDS.get(words[:2])


def non_transactional_reason(stmt: Statement | str) -> str | None:
    """The name of the construct that keeps this statement out of a transaction block, else None.

    E.g. 'CREATE INDEX CONCURRENTLY', 'VACUUM', 'ALTER SYSTEM', 'CREATE DATABASE', 'REINDEX SCHEMA'. Decided
    from the parse tree; a statement that does not parse is judged by its keywords. A str may hold several
    statements: the first one that cannot run in a transaction is named.
    """
    return _first(stmt, _non_transactional_node, _non_transactional_words, for_names=False)


_TRANSACTION_WORDS = {"BEGIN": "BEGIN", "START": "START TRANSACTION", "COMMIT": "COMMIT", "END": "COMMIT",
                      "ROLLBACK": "ROLLBACK", "ABORT": "ROLLBACK", "SAVEPOINT": "SAVEPOINT",
                      "RELEASE": "RELEASE SAVEPOINT"}  # fmt: skip


def _transaction_node(node: ast.Node) -> str | None:
    from pglast import ast

    if isinstance(node, ast.TransactionStmt) and node.kind is not None:
        return _node_tables().transaction_kinds.get(node.kind)
    return None


def _transaction_words(words: tuple[str, ...]) -> str | None:
    if words[:2] == ("PREPARE", "TRANSACTION"):
        return "PREPARE TRANSACTION"
    return _TRANSACTION_WORDS.get(words[0])


def transaction_control(stmt: Statement | str) -> str | None:
    """'BEGIN', 'COMMIT', 'ROLLBACK', 'SAVEPOINT', ... when the statement is transaction control, else None.

    END counts as 'COMMIT' and ABORT as 'ROLLBACK'. A str may hold several statements: the first is named.
    """
    return _first(stmt, _transaction_node, _transaction_words, for_names=False)


def _concurrently_node(node: ast.Node) -> bool | None:
    from pglast import ast

    if isinstance(node, (ast.IndexStmt, ast.DropStmt, ast.RefreshMatViewStmt)):
        return True if node.concurrent else None
    if isinstance(node, ast.ReindexStmt):
        return True if _option(node.params, "concurrently") else None
    if isinstance(node, ast.AlterTableStmt):
        return True if _detaches_concurrently(node) else None
    return None


def _concurrently_words(words: tuple[str, ...]) -> bool | None:
    return True if "CONCURRENTLY" in words else None


def is_concurrently(stmt: Statement | str) -> bool:
    """True for CREATE/DROP INDEX, REINDEX, REFRESH MATERIALIZED VIEW, DETACH PARTITION ... CONCURRENTLY."""
    return bool(_first(stmt, _concurrently_node, _concurrently_words, for_names=False))


def _index_name(node: ast.Node) -> tuple[str | None, str] | None:
    from pglast import ast

    if isinstance(node, ast.IndexStmt) and node.idxname:
        # An index always lives in its table's schema.
        return (node.relation.schemaname if node.relation else None), node.idxname
    return None


def created_index_name(stmt: Statement | str) -> tuple[str | None, str] | None:
    """(schema or None, index name) for CREATE INDEX [CONCURRENTLY] [IF NOT EXISTS] name ON [schema.]table.

    Names are as PostgreSQL stores them (unquoted names folded to lower case). None for other statements and
    for CREATE INDEX without a name, whose name the server chooses.
    """
    return _first(stmt, _index_name, lambda _words: None)
