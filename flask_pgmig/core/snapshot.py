"""A comparable description of a database's schema (the catalog), and a readable diff of two of them.

Used by ``verify`` (up -> down must give back the schema of before) and by the pytest plugin's round trip.
Objects that belong to an extension are described by the extension alone; the history table and its audit log
are left out. Each object is keyed by its kind and display name (``public.`` omitted), and described by
the fields that a migration can change: definitions as PostgreSQL itself prints them (``pg_get_*def``), so
that two equal schemas give equal snapshots whatever order they were built in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql as pgsql

Connection = psycopg.Connection[Any]
Key = tuple[str, str]  # (kind, display name)

DEFAULT_EXCLUDE: tuple[tuple[str, str], ...] = (
    ("public", "pgmig_history"),
    ("public", "pgmig_history_audit"),
    ("public", "pgmig_history_backfill"),  # backfill progress (core/backfill.py)
)

# Composed with psycopg.sql into the queries below: {user} keeps user schemas (alias n), {member} drops
# objects that belong to an extension (the extension itself stands for them).
_USER_SCHEMA = pgsql.SQL(
    "n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%%' "
    "AND n.nspname NOT LIKE 'pg\\_temp\\_%%'"
)
_MEMBER = (
    "NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = {catalog}::regclass AND e.objid = {oid} "
    "AND e.deptype = 'e')"
)


def _not_member(catalog: str, oid: str) -> pgsql.Composed:
    return pgsql.SQL(_MEMBER).format(catalog=pgsql.Literal(catalog), oid=pgsql.SQL(oid))


def _qualified(schema: str, name: str) -> str:
    return name if schema in ("public", "") else f"{schema}.{name}"


# Each query returns (kind, schema, name, fields...) rows; the columns after the name become the description.
# Grants are compared as effective privileges: a NULL ACL is the owner's default (acldefault), so GRANT then
# REVOKE, which leaves an explicit ACL equal to the default, is no difference.
# %(excluded)s is the array of pg_class oids left out (the history table, its audit log, what hangs on them).
_QUERIES: dict[str, tuple[str, tuple[str, str] | None]] = {
    "schema": (
        """
        SELECT '', n.nspname, coalesce(n.nspacl, acldefault('n', n.nspowner))::text[] AS grants
        FROM pg_namespace n WHERE {user} AND {member}""",
        ("pg_namespace", "n.oid"),
    ),
    "relation": (
        """
        SELECT n.nspname, c.relname,
               CASE c.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'partitioned table' WHEN 'v' THEN 'view'
                    WHEN 'm' THEN 'materialized view' WHEN 'f' THEN 'foreign table'
                    WHEN 'c' THEN 'composite type'
               END AS kind,
               c.relpersistence AS persistence, c.reloptions::text[] AS options,
               coalesce(c.relacl, acldefault('r', c.relowner))::text[] AS grants,
               c.relrowsecurity AS row_security, c.relforcerowsecurity AS force_row_security,
               pg_get_expr(c.relpartbound, c.oid) AS partition_of,
               CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END AS partition_by,
               CASE WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid) END AS definition,
               (SELECT array_agg(p.oid::regclass::text ORDER BY i.inhseqno) FROM pg_inherits i
                JOIN pg_class p ON p.oid = i.inhparent WHERE i.inhrelid = c.oid) AS inherits
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'c') AND {user} AND c.oid <> ALL(%(excluded)s)
          AND {member}""",
        ("pg_class", "c.oid"),
    ),
    "column": (
        """
        SELECT n.nspname, c.relname || '.' || a.attname, format_type(a.atttypid, a.atttypmod) AS type,
               a.attnotnull AS not_null, pg_get_expr(d.adbin, d.adrelid) AS default,
               NULLIF(a.attidentity, '') AS identity, NULLIF(a.attgenerated, '') AS generated,
               CASE WHEN a.attcollation <> t.typcollation THEN a.attcollation::regcollation::text
               END AS collation,
               a.attacl::text[] AS grants
        FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_type t ON t.oid = a.atttypid
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'c')
          AND {user} AND c.oid <> ALL(%(excluded)s) AND {member}""",
        ("pg_class", "c.oid"),
    ),
    "constraint": (
        """
        SELECT n.nspname, coalesce(c.relname, t.typname) || '.' || con.conname,
               pg_get_constraintdef(con.oid) AS definition, con.convalidated AS validated
        FROM pg_constraint con JOIN pg_namespace n ON n.oid = con.connamespace
        LEFT JOIN pg_class c ON c.oid = con.conrelid LEFT JOIN pg_type t ON t.oid = con.contypid
        WHERE con.contype <> 'n' AND {user} AND con.conrelid <> ALL(%(excluded)s)
          AND {member}""",
        ("pg_constraint", "con.oid"),
    ),
    "index": (
        """
        SELECT n.nspname, ic.relname, pg_get_indexdef(i.indexrelid) AS definition, i.indisvalid AS valid
        FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
        JOIN pg_namespace n ON n.oid = ic.relnamespace
        WHERE {user} AND i.indrelid <> ALL(%(excluded)s) AND {member}""",
        ("pg_class", "ic.oid"),
    ),
    "sequence": (
        """
        SELECT n.nspname, c.relname, format_type(s.seqtypid, NULL) AS type, s.seqstart AS start,
               s.seqincrement AS increment, s.seqmin AS min, s.seqmax AS max, s.seqcache AS cache,
               s.seqcycle AS cycle,
               coalesce(c.relacl, acldefault('s', c.relowner))::text[] AS grants,
               (SELECT d.refobjid::regclass::text || '.' || a.attname FROM pg_depend d
                JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
                WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'a') AS owned_by
        FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE {user} AND c.oid <> ALL(%(excluded)s) AND {member}
          AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                          AND d.objid = c.oid AND d.deptype = 'i')""",
        ("pg_class", "c.oid"),
    ),
    "routine": (
        """
        SELECT n.nspname, p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')',
               CASE p.prokind WHEN 'p' THEN 'procedure' WHEN 'a' THEN 'aggregate'
                    WHEN 'w' THEN 'window function'
                    ELSE 'function' END AS kind,
               CASE WHEN p.prokind IN ('f', 'p', 'w') THEN pg_get_functiondef(p.oid) END AS definition,
               coalesce(p.proacl, acldefault('f', p.proowner))::text[] AS grants
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE {user} AND {member}
          AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass
                          AND d.objid = p.oid AND d.deptype = 'i')""",
        ("pg_proc", "p.oid"),
    ),
    "trigger": (
        """
        SELECT n.nspname, c.relname || '.' || tg.tgname, pg_get_triggerdef(tg.oid) AS definition,
               tg.tgenabled AS enabled
        FROM pg_trigger tg JOIN pg_class c ON c.oid = tg.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE NOT tg.tgisinternal AND {user} AND c.oid <> ALL(%(excluded)s)""",
        None,
    ),
    "type": (
        """
        SELECT n.nspname, t.typname,
               CASE t.typtype WHEN 'e' THEN 'enum type' WHEN 'd' THEN 'domain' WHEN 'r' THEN 'range type'
               END AS kind,
               CASE WHEN t.typtype = 'd' THEN format_type(t.typbasetype, t.typtypmod) END AS base,
               t.typnotnull AS not_null, t.typdefault AS default,
               coalesce(t.typacl, acldefault('T', t.typowner))::text[] AS grants,
               (SELECT format_type(r.rngsubtype, NULL) FROM pg_range r WHERE r.rngtypid = t.oid) AS subtype
        FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE t.typtype IN ('e', 'd', 'r') AND {user} AND {member}""",
        ("pg_type", "t.oid"),
    ),
    "enum label": (
        """
        SELECT n.nspname, t.typname || '.' || quote_literal(e.enumlabel),
               rank() OVER (PARTITION BY t.oid ORDER BY e.enumsortorder) AS position
        FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE {user} AND {member}""",
        ("pg_type", "t.oid"),
    ),
    "extension": (
        """
        SELECT '', x.extname, x.extversion AS version, n.nspname AS schema
        FROM pg_extension x JOIN pg_namespace n ON n.oid = x.extnamespace""",
        None,
    ),
    "policy": (
        """
        SELECT n.nspname, c.relname || '.' || p.polname, p.polcmd AS command, p.polpermissive AS permissive,
               (SELECT array_agg(CASE WHEN r = 0 THEN 'public' ELSE r::regrole::text END ORDER BY 1)
                FROM unnest(p.polroles) r) AS roles,
               pg_get_expr(p.polqual, p.polrelid) AS using,
               pg_get_expr(p.polwithcheck, p.polrelid) AS with_check
        FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE {user}""",
        None,
    ),
    "rule": (
        """
        SELECT n.nspname, c.relname || '.' || r.rulename, pg_get_ruledef(r.oid) AS definition
        FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE r.rulename <> '_RETURN' AND {user}""",
        None,
    ),
    "comment": (
        """
        SELECT '', pg_describe_object(d.classoid, d.objoid, d.objsubid), d.description AS text
        FROM pg_description d
        WHERE d.objoid >= 16384 AND d.classoid <> 'pg_extension'::regclass
          AND NOT (d.classoid = 'pg_class'::regclass AND d.objoid = ANY(%(excluded)s))
          AND NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = d.classoid AND e.objid = d.objoid
                          AND e.deptype = 'e')""",
        None,
    ),
    "default privileges": (
        """
        SELECT coalesce(n.nspname, ''), a.defaclrole::regrole::text || ' on ' || CASE a.defaclobjtype
                 WHEN 'r' THEN 'tables' WHEN 'S' THEN 'sequences' WHEN 'f' THEN 'functions'
                 WHEN 'T' THEN 'types'
                 WHEN 'n' THEN 'schemas' ELSE a.defaclobjtype::text END,
               a.defaclacl::text[] AS grants
        FROM pg_default_acl a LEFT JOIN pg_namespace n ON n.oid = a.defaclnamespace""",
        None,
    ),
}

_EXCLUDED_OIDS = """
    WITH named AS (
        SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE (n.nspname, c.relname) IN (SELECT * FROM unnest(%s::text[], %s::text[])))
    SELECT coalesce(array_agg(oid), '{}') FROM (
        SELECT oid FROM named
        UNION SELECT d.objid FROM pg_depend d
        WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
          AND d.refobjid IN (SELECT oid FROM named)) AS s"""


@dataclass(frozen=True)
class Snapshot:
    """Every schema object of a database: ``{(kind, name): {field: value}}``. Equal schemas compare equal."""

    objects: dict[Key, dict[str, Any]] = field(default_factory=dict)

    def names(self, kind: str) -> list[str]:
        """The display names of every object of one kind, sorted."""
        return sorted(name for k, name in self.objects if k == kind)


def snapshot(conn: Connection, *, exclude: Sequence[tuple[str, str]] = DEFAULT_EXCLUDE) -> Snapshot:
    """Describe every user object of the database ``conn`` is connected to (read-only).

    ``exclude`` lists (schema, table) pairs left out with their indexes, sequences, constraints, triggers and
    comments: by default the history table and audit log.
    """
    excluded = conn.execute(_EXCLUDED_OIDS, [[s for s, _ in exclude], [t for _, t in exclude]]).fetchone()
    params = {"excluded": excluded[0] if excluded else []}
    objects: dict[Key, dict[str, Any]] = {}
    for kind, (template, member) in _QUERIES.items():
        query = pgsql.SQL(template).format(
            user=_USER_SCHEMA, member=_not_member(*member) if member else pgsql.SQL("true")
        )
        with conn.cursor() as cur:
            cur.execute(query, params)
            names = [d.name for d in cur.description or ()][2:]
            for schema, name, *values in cur.fetchall():
                fields = {k: _normal(v) for k, v in zip(names, values, strict=True)}
                label = fields.pop("kind", None) or kind
                objects[(str(label), _qualified(schema, name))] = fields
    return Snapshot(objects)


def _normal(value: Any) -> Any:
    """Lists become sorted tuples where their order carries no meaning (grants, options)."""
    if isinstance(value, list):  # an empty list (all revoked) means the same as none
        return tuple(sorted(str(v) for v in value)) or None
    return value


@dataclass(frozen=True)
class Change:
    """One difference between two snapshots: an object added, removed, or one of its fields changed."""

    kind: str
    name: str
    change: str  # "added", "removed" or "changed"
    field: str = ""
    before: Any = None
    after: Any = None


def changes(before: Snapshot, after: Snapshot) -> list[Change]:
    """Every difference from ``before`` to ``after``, in a stable order."""
    found: list[Change] = []
    for key in sorted(before.objects.keys() | after.objects.keys()):
        old, new = before.objects.get(key), after.objects.get(key)
        if old is None:
            found.append(Change(key[0], key[1], "added"))
        elif new is None:
            found.append(Change(key[0], key[1], "removed"))
        else:
            for name in sorted(old.keys() | new.keys()):
                if old.get(name) != new.get(name):
                    found.append(Change(key[0], key[1], "changed", name, old.get(name), new.get(name)))
    return found


def show(value: Any) -> str:
    """A field value for a sentence: definitions flattened to one line, None as 'none'."""
    if value is None or value == ():
        return "none"
    if isinstance(value, tuple):
        return "[" + ", ".join(str(v) for v in value) + "]"
    text = " ".join(str(value).split())
    return text if len(text) <= 160 else text[:157] + "..."


def describe(change: Change) -> str:
    """One sentence for a change, e.g. "column users.email_verified was added"."""
    if change.change in ("added", "removed"):
        return f"{change.kind} {change.name} was {change.change}"
    label = change.field.replace("_", " ")
    return (
        f"{label} of {change.kind} {change.name} changed from {show(change.before)} to {show(change.after)}"
    )


def diff(before: Snapshot, after: Snapshot) -> list[str]:
    """Readable sentences, one per difference from ``before`` to ``after``; [] when the schemas are equal."""
    return [describe(change) for change in changes(before, after)]


__all__ = ["DEFAULT_EXCLUDE", "Change", "Snapshot", "changes", "describe", "diff", "show", "snapshot"]
