"""Column types as the linter sees them, and which ALTER COLUMN ... TYPE changes rewrite the table.

Pure. PostgreSQL skips the rewrite when the new type is binary-compatible with the old one and does not
constrain it more (``ATColumnChangeRequiresRewrite``): varchar to text, a longer varchar, a wider numeric of
the same scale, cidr to inet, removing a length limit. Anything else, or an old type the linter never saw,
is taken as a rewrite.
"""

from __future__ import annotations

from dataclasses import dataclass

from pglast import ast

# Names as pglast gives them (the parser maps SQL spellings to catalog names: "character varying" -> varchar).
_LENGTH_TYPES = frozenset({"varchar", "bpchar", "varbit", "bit"})
_UNLIMITED_TARGETS = {  # old type -> types it becomes without a rewrite when the target has no length limit
    "varchar": frozenset({"text", "varchar"}),
    "text": frozenset({"varchar"}),
    "varbit": frozenset({"varbit"}),
    "numeric": frozenset({"numeric"}),
    "cidr": frozenset({"inet"}),
    "citext": frozenset({"text"}),
}
_DISPLAY = {"int4": "integer", "int8": "bigint", "int2": "smallint", "bpchar": "char",
            "float8": "double precision", "float4": "real", "bool": "boolean",
            "timestamptz": "timestamp with time zone"}  # fmt: skip


@dataclass(frozen=True)
class TypeSpec:
    """A column type: catalog name, type modifiers (length, precision, scale) and whether it is an array."""

    name: str
    mods: tuple[int, ...] = ()
    array: bool = False

    @property
    def display(self) -> str:
        """How a message spells it, e.g. 'varchar(20)', 'integer[]'."""
        name = _DISPLAY.get(self.name, self.name)
        mods = f"({', '.join(map(str, self.mods))})" if self.mods else ""
        return f"{name}{mods}{'[]' if self.array else ''}"


def type_spec(type_name: ast.TypeName | None) -> TypeSpec | None:
    """The TypeSpec of a parsed type name; None when it has none or uses non-constant modifiers."""
    if type_name is None or not type_name.names:
        return None
    last = type_name.names[-1]
    if not isinstance(last, ast.String):
        return None
    mods: list[int] = []
    for mod in type_name.typmods or ():
        if isinstance(mod, ast.A_Const) and isinstance(mod.val, ast.Integer):
            mods.append(int(mod.val.ival or 0))
        else:
            return None
    return TypeSpec(str(last.sval).lower(), tuple(mods), bool(type_name.arrayBounds))


def rewrites(old: TypeSpec | None, new: TypeSpec | None, *, using: bool = False) -> bool:
    """Whether changing a column from ``old`` to ``new`` rewrites the table (True when unsure)."""
    if using or old is None or new is None or old.array != new.array:
        return True
    if old == new:
        return False
    if old.name == new.name and new.name in _LENGTH_TYPES:
        if new.name in ("bpchar", "bit"):
            return True  # fixed-length: every value is padded to the new length
        return bool(new.mods) and (not old.mods or new.mods[0] < old.mods[0])
    if old.name == new.name == "numeric":
        return _numeric_rewrites(old.mods, new.mods)
    if old.name in ("timestamp", "time", "timestamptz", "interval") and old.name == new.name:
        return bool(new.mods) and (not old.mods or new.mods[0] < old.mods[0])
    return not (new.name in _UNLIMITED_TARGETS.get(old.name, frozenset()) and not new.mods)


def _numeric_rewrites(old: tuple[int, ...], new: tuple[int, ...]) -> bool:
    if not new:
        return False  # unconstrained numeric holds every value
    if not old:
        return True
    old_scale = old[1] if len(old) > 1 else 0
    new_scale = new[1] if len(new) > 1 else 0
    return new_scale != old_scale or new[0] < old[0]


__all__ = ["TypeSpec", "rewrites", "type_spec"]
