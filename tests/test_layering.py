"""The engine stays framework-free: flask_pgmig/core imports only the standard library, psycopg and pglast.

The standalone ``pgmig`` command must not import Flask or SQLAlchemy either (start-up time, and no framework for
a CI job that only migrates).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "flask_pgmig"
FORBIDDEN = ("flask", "click", "sqlalchemy", "flask_sqlalchemy", "pytest", "werkzeug", "jinja2")
ALLOWED_THIRD_PARTY = (
    "psycopg",
    "pglast",
    "boto3",
    "botocore",
)  # boto3 only lazily, for the AWS secrets provider


def imported_modules(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.ImportFrom) and node.level > 0:
            # resolve "from ..x import y" against the file's own package
            package = list(path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1])
            base = package[: len(package) - node.level + 1]
            found.append((node.lineno, ".".join([*base, *([node.module] if node.module else [])])))
    return found


# What the engine may use of its own package: itself, the error tree, and the version.
OWN_ALLOWED = ("flask_pgmig.core", "flask_pgmig.errors")


def test_core_imports_no_framework() -> None:
    core_files = sorted((PACKAGE / "core").rglob("*.py"))
    assert len(core_files) >= 10
    offending = []
    stdlib = set(sys.stdlib_module_names)
    for path in core_files:
        for line, module in imported_modules(path):
            top = module.split(".")[0]
            if top == "flask_pgmig":
                if module != "flask_pgmig" and not module.startswith(OWN_ALLOWED):
                    offending.append(f"{path.relative_to(PACKAGE)}:{line} imports {module}")
            elif top in FORBIDDEN or (top not in stdlib and top not in ALLOWED_THIRD_PARTY):
                offending.append(f"{path.relative_to(PACKAGE)}:{line} imports {module}")
    assert offending == []


def test_errors_module_is_standard_library_only() -> None:
    modules = {module.split(".")[0] for _, module in imported_modules(PACKAGE / "errors.py")}
    assert modules <= set(sys.stdlib_module_names)


def test_standalone_cli_does_not_import_flask_or_sqlalchemy() -> None:
    code = (
        "import sys\n"
        "from flask_pgmig.cli import cli\n"
        "from flask_pgmig.cli import all_commands\n"
        "all_commands()\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('flask', 'sqlalchemy', 'flask_sqlalchemy')))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_importing_the_package_is_cheap() -> None:
    code = (
        "import sys, flask_pgmig\n"
        "print(sorted(m for m in ('flask', 'psycopg', 'pglast', 'sqlalchemy') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_every_error_is_exported_from_the_package() -> None:
    import flask_pgmig
    import flask_pgmig.errors

    assert set(flask_pgmig.errors.__all__) <= set(flask_pgmig.__all__)
    assert all(
        getattr(flask_pgmig, name) is getattr(flask_pgmig.errors, name) for name in flask_pgmig.errors.__all__
    )
