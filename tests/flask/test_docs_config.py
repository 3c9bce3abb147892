"""docs/config.rst matches flask_pgmig.core.config.KEYS: one entry per key, with its real default and an example."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from flask_pgmig.core.config import KEYS

DOCS = Path(__file__).resolve().parents[2] / "docs"
ENTRY = re.compile(r"^\.\. data:: (PGMIG_\w+)\n(.*?)(?=^\.\. data:: |\Z)", re.MULTILINE | re.DOTALL)


def entries() -> dict[str, str]:
    return dict(ENTRY.findall((DOCS / "config.rst").read_text(encoding="utf-8")))


def test_every_key_has_one_entry_and_no_entry_is_unknown() -> None:
    text = (DOCS / "config.rst").read_text(encoding="utf-8")
    names = re.findall(r"^\.\. data:: (\S+)", text, re.MULTILINE)
    assert sorted(names) == sorted(key.name for key in KEYS)
    assert len(names) == len(set(names))


def test_each_entry_gives_the_real_default_and_an_example() -> None:
    documented = entries()
    for key in KEYS:
        body = documented[key.name]
        default = re.search(r"^\s+Default: ``(.+?)``\s*$", body, re.MULTILINE)
        assert default is not None, f"{key.name} has no 'Default:' line"
        assert ast.literal_eval(default.group(1)) == key.default, key.name
        assert f'app.config["{key.name}"] = ' in body, f"{key.name} has no example"


def test_flask_page_names_only_real_keys() -> None:
    known = {key.name for key in KEYS}
    for page in ("flask.rst", "config.rst"):
        mentioned = set(re.findall(r"\bPGMIG_[A-Z_]+\b", (DOCS / page).read_text(encoding="utf-8")))
        assert mentioned <= known, f"{page}: {sorted(mentioned - known)}"
