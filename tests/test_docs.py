"""The documentation covers the code: every command and option, every PGMIG_* key, every error class.

The lists come from the code itself (the click group, ``core.config.KEYS``, the classes in ``errors.py``), so a
command, option, key or error added without documentation fails here, naming what is missing.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from flask_pgmig import errors
from flask_pgmig.cli import cli
from flask_pgmig.core.config import KEYS

DOCS = Path(__file__).resolve().parent.parent / "docs"


def docs_text() -> str:
    """Every reST page of the docs, concatenated."""
    pages = sorted(DOCS.glob("*.rst"))
    assert pages, f"no .rst pages in {DOCS}"
    return "\n".join(page.read_text(encoding="utf-8") for page in pages)


def walk(group: click.Group, prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    """Every command under group (sub-groups included), with its path of names."""
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None
        yield (*prefix, name), command
        if isinstance(command, click.Group):
            yield from walk(command, (*prefix, name))


COMMANDS = sorted(walk(cli), key=lambda item: item[0])


def test_the_walk_finds_the_core_commands() -> None:
    """Guard against a walk that silently finds nothing (and so checks nothing)."""
    names = {" ".join(path) for path, _ in COMMANDS}
    assert {"init", "new", "status", "migrate", "rollback", "upgrade", "downgrade", "current"} <= names


@pytest.mark.parametrize("path", [" ".join(path) for path, _ in COMMANDS])
def test_every_command_is_documented(path: str) -> None:
    """Each command appears as 'flask db NAME' or 'pgmig NAME' somewhere in the docs."""
    pattern = re.compile(rf"(?:flask db|pgmig) {re.escape(path)}(?![\w-])")
    assert pattern.search(docs_text()), (
        f"the command '{path}' is not documented: write 'flask db {path}' in docs/commands.rst "
        "(or the page of the feature it belongs to)"
    )


def _options() -> list[tuple[str, str]]:
    found = {
        (" ".join(path), flag)
        for path, command in COMMANDS
        for param in command.params
        if isinstance(param, click.Option)
        for flag in [*param.opts, *param.secondary_opts]
        if flag.startswith("--") and flag != "--help"
    }
    found |= {("(group)", flag) for param in cli.params for flag in param.opts if flag.startswith("--")}
    return sorted(found)


@pytest.mark.parametrize(("command", "flag"), _options())
def test_every_option_is_documented(command: str, flag: str) -> None:
    """Each long option of each command (and of the standalone group) appears in the docs."""
    pattern = re.compile(rf"``{re.escape(flag)}(?![\w-])")
    assert pattern.search(docs_text()), (
        f"the option '{flag}' of '{command}' is not documented: write ``{flag}`` in docs/commands.rst"
    )


@pytest.mark.parametrize("key", [key.name for key in KEYS])
def test_every_config_key_is_documented(key: str) -> None:
    """Each PGMIG_* key of core/config.py appears in the docs."""
    assert re.search(rf"\b{key}\b", docs_text()), f"the config key '{key}' does not appear in docs/*.rst"


def _error_classes() -> list[str]:
    return sorted(
        name
        for name, value in vars(errors).items()
        if inspect.isclass(value)
        and issubclass(value, errors.PgMigError)
        and value.__module__ == errors.__name__
    )


def test_the_error_list_is_not_empty() -> None:
    """Guard against checking nothing."""
    assert {"PgMigError", "ConfigError", "MigrationFailed", "PendingMigrationsError"} <= set(_error_classes())


@pytest.mark.parametrize("name", _error_classes())
def test_every_error_class_is_in_the_error_reference(name: str) -> None:
    """Each class of errors.py has an entry in docs/errors.rst."""
    text = (DOCS / "errors.rst").read_text(encoding="utf-8")
    assert re.search(rf"\b{name}\b", text), f"'{name}' from flask_pgmig/errors.py is not in docs/errors.rst"
