"""Find templating the source tool (or the psql it ran under) would have expanded, so it is reported.

Nothing is expanded here: a placeholder left in imported SQL would reach the server as written, so every one
found becomes a warning naming the file and line. Pure: no database.
"""

from __future__ import annotations

import re

from pglast import parser as pg_parser

from .model import WARNING, Finding, SourceSection, lines

GO_TEMPLATE = re.compile(r"\{\{.*?\}\}")
FLYWAY_PLACEHOLDER = re.compile(r"\$\{[\w.:-]+\}")
PSQL_META = re.compile(r"^\s*\\[a-zA-Z!]")
PSQL_VARIABLE = re.compile(r"(?:(?<=[\s(,=])|^):(?:'[A-Za-z_]\w*'|\"[A-Za-z_]\w*\"|[A-Za-z_]\w*)")


def find_templating(section: SourceSection, tool: str) -> list[Finding]:
    """Warnings for Go templates, Flyway placeholders, psql meta-commands and psql variables in a section."""
    findings: list[Finding] = []
    code = _code_only(section.sql)
    for number, offset, line in lines(section.sql):
        where = section.line + number - 1
        code_line = code[offset : offset + len(line)]
        if GO_TEMPLATE.search(line):
            findings.append(_warn("a Go template expression ('{{ ... }}')", section.file, where))
        if tool == "flyway" and FLYWAY_PLACEHOLDER.search(line):
            findings.append(
                _warn("a Flyway placeholder ('${...}') that Flyway replaced", section.file, where)
            )
        if PSQL_META.match(line):
            findings.append(_warn("a psql meta-command", section.file, where))
        elif PSQL_VARIABLE.search(code_line):
            findings.append(_warn("a psql variable (':name')", section.file, where))
    return findings


def _warn(what: str, file: str, line: int) -> Finding:
    return Finding(
        f"{what} is copied as written (nothing was expanded): replace it before applying these migrations",
        file,
        line,
        WARNING,
    )


def _code_only(sql: str) -> str:
    """The text with string literals, quoted identifiers and comments blanked, so ':x' in them is not a variable.

    Where PostgreSQL's lexer cannot read the text (psql meta-commands), it is returned as it is.
    """
    try:
        tokens = pg_parser.scan(sql)
    except pg_parser.ParseError:
        return sql
    data = sql.encode("utf-8")
    blanked = bytearray(data)
    previous_end = -2
    previous_colon = False
    for token in tokens:
        quoted = token.name in ("SCONST", "USCONST", "SQL_COMMENT", "C_COMMENT") or (
            token.name == "IDENT" and data[token.start : token.start + 1] == b'"'
        )
        if quoted and not (previous_colon and previous_end == token.start - 1):  # keep :'var' and :"var"
            for index in range(token.start, token.end + 1):
                if blanked[index] != ord("\n"):
                    blanked[index] = ord(" ")
        previous_colon, previous_end = token.name == "ASCII_58", token.end
    return blanked.decode("utf-8", errors="replace")
