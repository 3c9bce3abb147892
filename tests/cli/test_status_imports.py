"""``pgmig status`` and ``flask db status`` import only what status needs (a behaviour, checked in a child).

Each test runs the real command in a fresh interpreter and reads back which modules it loaded: the command
table (cli/__init__.py) imports a command's module only when that command runs, and status parses (hence lexes
with pglast) only the files its history cannot vouch for.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import textwrap
from pathlib import Path

from click.testing import CliRunner
from helpers import clean_environment, copy_scenario

from flask_pgmig.cli import ALIASES, COMMAND_MODULES, cli
from flask_pgmig.core.migrator import Migrator

# What status never needs: the frameworks (for pgmig), other commands' modules, the runner and the adoption code.
NEVER_FOR_STATUS = (
    "flask_pgmig.cli.check_commands", "flask_pgmig.cli.adopt_commands", "flask_pgmig.cli.core_commands",
    "flask_pgmig.cli.recovery_commands", "flask_pgmig.core.lint", "flask_pgmig.core.verify",
    "flask_pgmig.core.adopt", "flask_pgmig.core.runner", "flask_pgmig.core.dry_run", "flask_pgmig.core.baseline",
)  # fmt: skip
FRAMEWORKS = ("flask", "sqlalchemy", "flask_sqlalchemy", "werkzeug")
PARSER = ("pglast", "flask_pgmig.core.backfill")


def run_and_list_modules(argv: list[str], entry: str, tmp_path: Path) -> tuple[str, set[str]]:
    """Run ``entry``'s main() on argv in a fresh interpreter: (its output, the modules it had loaded at exit)."""
    listing = tmp_path / "modules.json"
    code = textwrap.dedent(
        f"""
        import json, sys
        from {entry} import main
        sys.argv = ["prog", *{argv!r}]
        try:
            main()
        finally:
            with open({str(listing)!r}, "w") as out:
                json.dump(sorted(sys.modules), out)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=clean_environment(), cwd=tmp_path,
        timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout, set(json.loads(listing.read_text()))


def pgmig_status(database_url: str, migrations: Path, tmp_path: Path) -> tuple[str, set[str]]:
    argv = ["--database-url", database_url, "--directory", str(migrations), "status"]
    return run_and_list_modules(argv, "flask_pgmig.cli", tmp_path)


def test_pgmig_status_imports_no_framework_and_no_other_command(database_url: str, tmp_path: Path) -> None:
    migrations = copy_scenario("basic", tmp_path)
    Migrator.create(database_url, migrations).migrate()
    output, modules = pgmig_status(database_url, migrations, tmp_path)
    assert output.rstrip().endswith("3 applied.")
    assert "flask_pgmig.cli.status_commands" in modules  # the listing is real: the command's own module is there
    assert sorted(m for m in modules if m.split(".")[0] in FRAMEWORKS) == []
    assert sorted(m for m in modules if m.startswith(NEVER_FOR_STATUS)) == []


def test_pgmig_status_on_an_up_to_date_directory_imports_no_parser(database_url: str, tmp_path: Path) -> None:
    migrations = copy_scenario("basic", tmp_path)
    Migrator.create(database_url, migrations).migrate()
    output, modules = pgmig_status(database_url, migrations, tmp_path)
    assert output.rstrip().endswith("3 applied.")
    assert sorted(m for m in modules if m.startswith(PARSER)) == []


def test_a_changed_file_is_parsed_so_the_parser_is_loaded(database_url: str, tmp_path: Path) -> None:
    """The other side of the test above: the check does see pglast when status has to lex a file."""
    migrations = copy_scenario("basic", tmp_path)
    Migrator.create(database_url, migrations).migrate()
    edited = sorted(migrations.iterdir())[0]
    edited.write_text(edited.read_text().replace("-- migrate:down", "-- a comment\n-- migrate:down"))
    output, modules = pgmig_status(database_url, migrations, tmp_path)
    assert "modified  20260115093000_create_users" in output
    assert "pglast" in modules


def test_flask_db_status_imports_no_other_command(database_url: str, tmp_path: Path) -> None:
    migrations = copy_scenario("basic", tmp_path)
    Migrator.create(database_url, migrations).migrate()
    (tmp_path / "status_app.py").write_text(
        textwrap.dedent(
            f"""
            from flask import Flask
            from flask_pgmig import PgMig

            def create_app():
                app = Flask(__name__)
                app.config.update(PGMIG_DATABASE_URL={database_url!r}, PGMIG_DIRECTORY={str(migrations)!r})
                PgMig(app)
                return app
            """
        )
    )
    output, modules = run_and_list_modules(["--app", "status_app:create_app", "db", "status"], "flask.cli", tmp_path)
    assert output.rstrip().endswith("3 applied.")
    assert "flask_pgmig.cli.status_commands" in modules
    assert sorted(m for m in modules if m.startswith(NEVER_FOR_STATUS)) == []


def test_the_command_table_matches_the_command_modules() -> None:
    """Every command a module defines is in the table under that module, and nothing else is."""
    for module_name in set(COMMAND_MODULES.values()):
        module = importlib.import_module(f"flask_pgmig.cli.{module_name}")
        defined = sorted(command.name or "" for command in module.COMMANDS)
        assert defined == sorted(name for name, where in COMMAND_MODULES.items() if where == module_name)
    assert set(ALIASES.values()) <= set(COMMAND_MODULES)
    assert not set(ALIASES) & set(COMMAND_MODULES)


def test_lazy_group_lists_looks_up_and_suggests() -> None:
    runner = CliRunner()
    help_text = runner.invoke(cli, ["--help"]).output
    for name in [*COMMAND_MODULES, *ALIASES]:
        assert f"  {name} " in help_text
    typo = runner.invoke(cli, ["stauts"])
    assert typo.exit_code == 2 and "Did you mean 'status'?" in typo.output
    current = runner.invoke(cli, ["current", "--help"])
    assert current.exit_code == 0 and "Alias of 'status'" in current.output and "--all-schemas" in current.output
