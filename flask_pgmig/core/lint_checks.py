"""The unsafe-DDL checks over pglast parse trees (the rules themselves are described in :mod:`.lint_rules`).

Pure. Each check sees one parsed statement with what the linter knows at that point: the tables created
earlier in the same migration (those are new, so locking them hurts nobody) and what earlier migrations of the
directory established (column types, validated ``CHECK (col IS NOT NULL)`` constraints).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from pglast import ast, enums

from .lint_types import TypeSpec, rewrites, type_spec

AT = enums.AlterTableType
# Functions whose result differs per row: as a column default they force a table rewrite (PostgreSQL 11+
# stores any non-volatile default without touching rows).
VOLATILE_FUNCTIONS = frozenset({
    "random", "random_normal", "gen_random_uuid", "uuidv4", "uuidv7", "uuid_generate_v1",
    "uuid_generate_v1mc", "uuid_generate_v4", "clock_timestamp", "timeofday", "nextval", "setval",
    "gen_random_bytes",
})  # fmt: skip
SERIAL_TYPES = frozenset({"serial", "bigserial", "smallserial", "serial2", "serial4", "serial8"})
_SHARE_LOCK = 5  # LOCK TABLE modes from SHARE up block writes
_KEEPS_TRAFFIC = frozenset({AT.AT_ValidateConstraint, AT.AT_SetStatistics, AT.AT_DetachPartition})
_REWRITES = {AT.AT_SetTableSpace: "SET TABLESPACE", AT.AT_SetLogged: "SET LOGGED",
             AT.AT_SetUnLogged: "SET UNLOGGED", AT.AT_SetAccessMethod: "SET ACCESS METHOD"}  # fmt: skip
_INDEX_CONSTRAINTS = {
    enums.ConstrType.CONSTR_UNIQUE: "UNIQUE",
    enums.ConstrType.CONSTR_PRIMARY: "PRIMARY KEY",
    enums.ConstrType.CONSTR_EXCLUSION: "EXCLUDE",
}


@dataclass
class Known:
    """What earlier statements of the directory established, in version order."""

    column_types: dict[tuple[str, str], TypeSpec | None] = field(default_factory=dict)
    pending_checks: dict[tuple[str, str], frozenset[str]] = field(default_factory=dict)
    not_null_proven: set[tuple[str, str]] = field(default_factory=set)


@dataclass
class Scope:
    """What the linter knows inside one up section."""

    transactional: bool = True
    created: set[str] = field(default_factory=set)
    indexes: set[str] = field(default_factory=set)  # created in this migration, so nobody uses them yet
    altered: set[str] = field(default_factory=set)
    not_valid: set[tuple[str, str]] = field(default_factory=set)
    enum_values: dict[str, int] = field(default_factory=dict)  # label -> line of its ADD VALUE


Hit = tuple[str, str]  # (rule id, what this statement does wrong)


def walk(node: object) -> Iterator[ast.Node]:
    """Every node of a parse tree, depth first."""
    if isinstance(node, ast.Node):
        yield node
        for name in getattr(type(node), "__slots__", ()):
            yield from walk(getattr(node, name, None))
    elif isinstance(node, tuple):
        for item in node:
            yield from walk(item)


def table_name(rangevar: object) -> str:
    """The table name as PostgreSQL stores it (the parser already folded unquoted names)."""
    return str(rangevar.relname) if isinstance(rangevar, ast.RangeVar) and rangevar.relname else ""


def check(node: ast.Node, line: int, scope: Scope, known: Known) -> list[Hit]:
    """The rules this statement breaks, then what it teaches the linter about later statements."""
    hits = list(_check(node, scope, known))
    if scope.enum_values and not isinstance(node, ast.AlterEnumStmt):
        used = sorted({_string(n) for n in walk(node)} & scope.enum_values.keys())
        hits += [("enum-value-used-in-transaction", f"uses enum value '{v}' added on line "
                  f"{scope.enum_values[v]} in the same transaction") for v in used]  # fmt: skip
    _learn(node, line, scope, known)
    return hits


def _string(node: ast.Node) -> str:
    if isinstance(node, ast.A_Const) and isinstance(node.val, ast.String):
        return str(node.val.sval)
    return ""


def _check(node: ast.Node, scope: Scope, known: Known) -> Iterator[Hit]:
    if isinstance(node, ast.IndexStmt):
        table = table_name(node.relation)
        inherits = node.relation is None or node.relation.inh  # ON ONLY parent is instant
        if not node.concurrent and inherits and table not in scope.created:
            kind = "CREATE UNIQUE INDEX" if node.unique else "CREATE INDEX"
            yield (
                "require-concurrent-index-creation",
                f"runs {kind} on existing table '{table}' without CONCURRENTLY",
            )
    elif isinstance(node, ast.AlterTableStmt) and node.objtype == enums.ObjectType.OBJECT_TABLE:
        table = table_name(node.relation)
        if table not in scope.created:
            for cmd in node.cmds or ():
                if isinstance(cmd, ast.AlterTableCmd):
                    yield from _check_alter(table, cmd, scope, known)
    elif isinstance(node, ast.RenameStmt):
        table = table_name(node.relation)
        if node.renameType == enums.ObjectType.OBJECT_TABLE and table not in scope.created:
            yield "renaming-table", f"renames existing table '{table}' to '{node.newname}'"
        elif (
            node.renameType == enums.ObjectType.OBJECT_COLUMN
            and node.relationType == enums.ObjectType.OBJECT_TABLE
            and table not in scope.created
        ):
            yield "renaming-column", f"renames column '{table}.{node.subname}' to '{node.newname}'"
    elif isinstance(node, ast.DropStmt) and node.removeType == enums.ObjectType.OBJECT_TABLE:
        for table in _dropped_tables(node):
            if table not in scope.created:
                yield "ban-drop-table", f"drops existing table '{table}'"
    elif isinstance(node, ast.DropStmt) and node.removeType == enums.ObjectType.OBJECT_INDEX:
        existing = [name for name in _dropped_tables(node) if name not in scope.indexes]
        if existing and not node.concurrent:
            yield "require-concurrent-index-deletion", f"drops index '{existing[0]}' without CONCURRENTLY"
    elif isinstance(node, ast.DropdbStmt):
        yield "ban-drop-database", f"drops database '{node.dbname}'"
    else:
        yield from _check_maintenance(node, scope)


def _dropped_tables(node: ast.DropStmt) -> list[str]:
    """The (unqualified) names a DROP TABLE or DROP INDEX statement names."""
    names: list[str] = []
    for parts in node.objects or ():
        last = parts[-1] if isinstance(parts, tuple) and parts else None
        if isinstance(last, ast.String):
            names.append(str(last.sval))
    return names


def _check_maintenance(node: ast.Node, scope: Scope) -> Iterator[Hit]:
    if isinstance(node, ast.VacuumStmt) and node.is_vacuumcmd and _has_option(node.options, "full"):
        yield "ban-vacuum-full", "runs VACUUM FULL"
    elif isinstance(node, ast.ClusterStmt) and table_name(node.relation) not in scope.created:
        yield "ban-cluster", "runs CLUSTER" + (f" on '{table_name(node.relation)}'" if node.relation else "")
    elif isinstance(node, ast.LockStmt) and (node.mode or 0) >= _SHARE_LOCK:
        tables = [table_name(r) for r in node.relations or ()]
        if any(t not in scope.created for t in tables):
            yield "ban-lock-table", f"locks {', '.join(repr(t) for t in tables)} in a mode that blocks writes"
    elif isinstance(node, ast.RefreshMatViewStmt) and not node.concurrent and not node.skipData:
        view = table_name(node.relation)
        if view not in scope.created:
            yield "require-concurrent-refresh", f"refreshes materialized view '{view}' without CONCURRENTLY"
    elif isinstance(node, ast.ReindexStmt) and not _has_option(node.params, "concurrently"):
        if node.relation is None or table_name(node.relation) not in scope.created:
            target = f" '{table_name(node.relation)}'" if node.relation else ""
            yield "require-concurrent-reindex", f"runs REINDEX{target} without CONCURRENTLY"
    elif isinstance(node, ast.UpdateStmt) and scope.transactional:
        table = table_name(node.relation)
        if table in scope.altered:
            yield "backfill-in-ddl-transaction", f"updates '{table}' in the transaction that altered it"


def _has_option(options: object, name: str) -> bool:
    for opt in options if isinstance(options, tuple) else ():
        if isinstance(opt, ast.DefElem) and opt.defname == name:
            arg = opt.arg
            if isinstance(arg, ast.String):
                return str(arg.sval).lower() not in ("false", "off", "0")
            if isinstance(arg, ast.Boolean):
                return bool(arg.boolval)
            if isinstance(arg, ast.Integer):
                return bool(arg.ival)
            return True
    return False


def _check_alter(table: str, cmd: ast.AlterTableCmd, scope: Scope, known: Known) -> Iterator[Hit]:
    kind, name, spec = cmd.subtype, str(cmd.name or ""), cmd.def_
    if kind == AT.AT_AddColumn and isinstance(spec, ast.ColumnDef):
        yield from _check_add_column(table, spec)
    elif kind == AT.AT_AddConstraint and isinstance(spec, ast.Constraint):
        yield from _check_add_constraint(table, spec)
    elif kind == AT.AT_ValidateConstraint:
        if scope.transactional and (table, name) in scope.not_valid:
            yield (
                "constraint-validated-in-same-transaction",
                f"validates constraint '{name}' in the transaction that added it",
            )
    elif kind == AT.AT_SetNotNull:
        if (table, name) not in known.not_null_proven:
            yield "adding-not-nullable-field", f"sets column '{table}.{name}' NOT NULL on an existing table"
    elif kind == AT.AT_AlterColumnType and isinstance(spec, ast.ColumnDef):
        old = known.column_types.get((table, name))
        new = type_spec(spec.typeName)
        if rewrites(old, new, using=spec.raw_default is not None):
            to = new.display if new else "another type"
            yield "changing-column-type", f"changes the type of column '{table}.{name}' to {to}"
    elif kind == AT.AT_DropColumn:
        yield "ban-drop-column", f"drops column '{table}.{name}'"
    elif kind == AT.AT_DetachPartition and isinstance(spec, ast.PartitionCmd) and not spec.concurrent:
        yield (
            "require-concurrent-partition-detach",
            f"detaches partition '{table_name(spec.name)}' from '{table}' without CONCURRENTLY",
        )
    elif kind in _REWRITES:
        yield "table-rewrite", f"runs ALTER TABLE '{table}' {_REWRITES[kind]}"


def _check_add_column(table: str, column: ast.ColumnDef) -> Iterator[Hit]:
    where = f"column '{table}.{column.colname}'"
    constraints = {c.contype: c for c in column.constraints or () if isinstance(c, ast.Constraint)}
    default = constraints.get(enums.ConstrType.CONSTR_DEFAULT)
    generated = constraints.get(enums.ConstrType.CONSTR_GENERATED)
    spec = type_spec(column.typeName)
    filled = True
    if spec is not None and spec.name in SERIAL_TYPES:
        yield "adding-field-with-default", f"adds {spec.name} {where} to an existing table"
    elif enums.ConstrType.CONSTR_IDENTITY in constraints or (column.identity or "\x00") != "\x00":
        yield "adding-field-with-default", f"adds identity {where} to an existing table"
    elif generated is not None and _stored(generated):
        yield "adding-field-with-default", f"adds stored generated {where} to an existing table"
    elif default is not None and (volatile := _volatile_call(default.raw_expr)):
        yield (
            "adding-field-with-default",
            f"adds {where} with volatile default {volatile}() to an existing table",
        )
    else:
        filled = default is not None or generated is not None
    if not filled and (column.is_not_null or enums.ConstrType.CONSTR_NOTNULL in constraints):
        yield "adding-required-field", f"adds NOT NULL {where} without a default to an existing table"
    for contype, label in _INDEX_CONSTRAINTS.items():
        if contype in constraints:
            yield "disallowed-unique-constraint", f"adds {where} with an inline {label} constraint"
    # An inline REFERENCES on a new column is not flagged: PostgreSQL knows the column is all NULL and skips
    # the validating scan. An inline CHECK is validated by a scan under the ACCESS EXCLUSIVE lock.
    if enums.ConstrType.CONSTR_CHECK in constraints:
        yield "constraint-missing-not-valid", f"adds {where} with an inline CHECK constraint"


def _stored(generated: ast.Constraint) -> bool:
    # PostgreSQL 18 adds VIRTUAL generated columns (no rewrite); STORED is the only kind before it.
    return getattr(generated, "generated_kind", "s") != "v"


def _volatile_call(expr: object) -> str | None:
    for node in walk(expr):
        if isinstance(node, ast.FuncCall) and node.funcname:
            last = node.funcname[-1]
            name = str(last.sval).lower() if isinstance(last, ast.String) else ""
            if name in VOLATILE_FUNCTIONS:
                return name
    return None


def _check_add_constraint(table: str, con: ast.Constraint) -> Iterator[Hit]:
    name = f"constraint '{con.conname}'" if con.conname else "a constraint"
    if con.contype == enums.ConstrType.CONSTR_FOREIGN and not con.skip_validation:
        yield "adding-foreign-key-constraint", f"adds foreign key {name} to '{table}' without NOT VALID"
    elif con.contype == enums.ConstrType.CONSTR_CHECK and not con.skip_validation:
        yield "constraint-missing-not-valid", f"adds CHECK {name} to '{table}' without NOT VALID"
    elif con.contype in _INDEX_CONSTRAINTS and not con.indexname:
        label = _INDEX_CONSTRAINTS[con.contype]
        yield "disallowed-unique-constraint", f"adds {label} {name} to '{table}', building its index in place"


def _learn(node: ast.Node, line: int, scope: Scope, known: Known) -> None:
    if isinstance(node, ast.CreateStmt):
        table = table_name(node.relation)
        scope.created.add(table)
        for element in node.tableElts or ():
            if isinstance(element, ast.ColumnDef):
                known.column_types[(table, str(element.colname))] = type_spec(element.typeName)
    elif isinstance(node, ast.IndexStmt) and node.idxname:
        scope.indexes.add(str(node.idxname))
    elif isinstance(node, ast.CreateTableAsStmt) and isinstance(node.into, ast.IntoClause):
        scope.created.add(table_name(node.into.rel))
    elif isinstance(node, ast.AlterTableStmt) and node.objtype == enums.ObjectType.OBJECT_TABLE:
        table = table_name(node.relation)
        cmds = [cmd for cmd in node.cmds or () if isinstance(cmd, ast.AlterTableCmd)]
        for cmd in cmds:
            _learn_alter(table, cmd, scope, known)
        if (
            scope.transactional
            and table not in scope.created
            and any(c.subtype not in _KEEPS_TRAFFIC for c in cmds)
        ):
            scope.altered.add(table)
    elif isinstance(node, ast.RenameStmt):
        _learn_rename(node, scope, known)
    elif isinstance(node, ast.AlterEnumStmt) and node.oldVal is None and node.newVal and scope.transactional:
        scope.enum_values[str(node.newVal)] = line
    elif isinstance(node, ast.DropStmt) and node.removeType == enums.ObjectType.OBJECT_TABLE:
        for table in _dropped_tables(node):
            scope.created.discard(table)


def _learn_alter(table: str, cmd: ast.AlterTableCmd, scope: Scope, known: Known) -> None:
    kind, spec = cmd.subtype, cmd.def_
    if kind in (AT.AT_AddColumn, AT.AT_AlterColumnType) and isinstance(spec, ast.ColumnDef):
        column = str(spec.colname) if kind == AT.AT_AddColumn else str(cmd.name)
        known.column_types[(table, column)] = type_spec(spec.typeName)
    elif kind == AT.AT_AddConstraint and isinstance(spec, ast.Constraint) and spec.conname:
        name = str(spec.conname)
        columns = (
            not_null_columns(spec.raw_expr) if spec.contype == enums.ConstrType.CONSTR_CHECK else frozenset()
        )
        if spec.skip_validation:
            scope.not_valid.add((table, name))
            if columns:
                known.pending_checks[(table, name)] = columns
        else:
            known.not_null_proven.update((table, column) for column in columns)
    elif kind == AT.AT_AddConstraint and isinstance(spec, ast.Constraint):
        columns = (
            not_null_columns(spec.raw_expr) if spec.contype == enums.ConstrType.CONSTR_CHECK else frozenset()
        )
        if not spec.skip_validation:
            known.not_null_proven.update((table, column) for column in columns)
    elif kind == AT.AT_ValidateConstraint:
        columns = known.pending_checks.pop((table, str(cmd.name)), frozenset())
        known.not_null_proven.update((table, column) for column in columns)


def _learn_rename(node: ast.RenameStmt, scope: Scope, known: Known) -> None:
    table, new = table_name(node.relation), str(node.newname)
    if node.renameType == enums.ObjectType.OBJECT_TABLE:
        if table in scope.created:
            scope.created.add(new)
        for (owner, column), spec in list(known.column_types.items()):
            if owner == table:
                known.column_types[(new, column)] = spec
    elif (
        node.renameType == enums.ObjectType.OBJECT_COLUMN and (table, str(node.subname)) in known.column_types
    ):
        known.column_types[(table, new)] = known.column_types[(table, str(node.subname))]
    renamed = node.renameType in (enums.ObjectType.OBJECT_TABLE, enums.ObjectType.OBJECT_COLUMN)
    if renamed and scope.transactional and table not in scope.created:
        scope.altered.add(new if node.renameType == enums.ObjectType.OBJECT_TABLE else table)


def not_null_columns(expr: object) -> frozenset[str]:
    """The columns a CHECK expression proves NOT NULL: ``col IS NOT NULL`` terms joined by AND."""
    if isinstance(expr, ast.NullTest) and expr.nulltesttype == enums.NullTestType.IS_NOT_NULL:
        fields = expr.arg.fields if isinstance(expr.arg, ast.ColumnRef) and expr.arg.fields else ()
        if fields and isinstance(fields[-1], ast.String):
            return frozenset({str(fields[-1].sval)})
    if isinstance(expr, ast.BoolExpr) and expr.boolop == enums.BoolExprType.AND_EXPR:
        return frozenset().union(*(not_null_columns(arg) for arg in expr.args or ()))
    return frozenset()


__all__ = ["Hit", "Known", "Scope", "check", "not_null_columns", "table_name", "walk"]
