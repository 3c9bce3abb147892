"""The unsafe-DDL rules' catalogue: each rule's id, why it is dangerous, and the safe alternative.

Pure. Rule ids follow squawk's where squawk has the rule, so users can look them up there too; the checks over
pglast parse trees are in :mod:`flask_pgmig.core.lint_checks`.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass


@dataclass(frozen=True)
class Rule:
    """One lint rule: its id (for ``-- pgmig:allow <id> because ...``), why it is dangerous, the safe way."""

    id: str
    why: str
    fix: str


_RULE_LIST = (
    Rule(
        "require-concurrent-index-creation",
        "CREATE INDEX without CONCURRENTLY holds a SHARE lock that blocks every write to the table for as "
        "long as the index takes to build.",
        "Use CREATE INDEX CONCURRENTLY in a migration of its own marked 'transaction:false' (for a "
        "partitioned table: CREATE INDEX ON ONLY the parent, CONCURRENTLY on each partition, then ATTACH).",
    ),
    Rule(
        "require-concurrent-index-deletion",
        "DROP INDEX without CONCURRENTLY takes an ACCESS EXCLUSIVE lock on the index's table, blocking "
        "reads and writes until it ends (and queueing behind any long query on that table).",
        "Use DROP INDEX CONCURRENTLY in a migration of its own marked 'transaction:false'.",
    ),
    Rule(
        "ban-drop-database",
        "DROP DATABASE destroys every table and row of a database, with no way back.",
        "Drop databases by hand, never from a migration.",
    ),
    Rule(
        "adding-field-with-default",
        "Adding a column whose value must be computed for every row (a volatile default, serial, identity "
        "or a stored generated column) rewrites the whole table under an ACCESS EXCLUSIVE lock, blocking "
        "reads and writes.",
        "Add the column without a default (or with a constant one), set the default in a second statement, "
        "and backfill existing rows in batches from a 'transaction:false' migration.",
    ),
    Rule(
        "adding-required-field",
        "Adding a NOT NULL column without a default fails as soon as the table has a row.",
        "Give the column a constant DEFAULT, or add it nullable, backfill it, then add a CHECK (col IS NOT "
        "NULL) NOT VALID constraint, VALIDATE it, and SET NOT NULL.",
    ),
    Rule(
        "adding-not-nullable-field",
        "SET NOT NULL scans the whole table under an ACCESS EXCLUSIVE lock, blocking reads and writes, "
        "unless a validated CHECK (col IS NOT NULL) constraint already proves it.",
        "First ADD CONSTRAINT ... CHECK (col IS NOT NULL) NOT VALID, then VALIDATE CONSTRAINT in a later "
        "migration, then SET NOT NULL (PostgreSQL 12+ skips the scan) and drop the CHECK.",
    ),
    Rule(
        "adding-foreign-key-constraint",
        "Adding a foreign key validates every existing row while holding a SHARE ROW EXCLUSIVE lock on both"
        " tables, blocking writes to them.",
        "Add it with NOT VALID (new rows are checked at once), then VALIDATE CONSTRAINT in a later "
        "migration, which only takes a SHARE UPDATE EXCLUSIVE lock.",
    ),
    Rule(
        "constraint-missing-not-valid",
        "Adding a CHECK constraint scans the whole table under an ACCESS EXCLUSIVE lock, blocking reads and"
        " writes.",
        "Add it with NOT VALID, then VALIDATE CONSTRAINT in a later migration (SHARE UPDATE EXCLUSIVE lock).",
    ),
    Rule(
        "constraint-validated-in-same-transaction",
        "VALIDATE CONSTRAINT in the transaction that added the constraint NOT VALID scans the table while "
        "the lock taken by ADD CONSTRAINT is still held, which is what NOT VALID was meant to avoid.",
        "Move VALIDATE CONSTRAINT to a later migration (or mark this one 'transaction:false').",
    ),
    Rule(
        "disallowed-unique-constraint",
        "Adding a UNIQUE, PRIMARY KEY or EXCLUDE constraint builds its index under an ACCESS EXCLUSIVE "
        "lock, blocking reads and writes for the whole build.",
        "CREATE UNIQUE INDEX CONCURRENTLY in a 'transaction:false' migration, then ADD CONSTRAINT ... "
        "UNIQUE USING INDEX (or PRIMARY KEY USING INDEX), which is instant.",
    ),
    Rule(
        "changing-column-type",
        "Changing a column's type rewrites the table and rebuilds its indexes under an ACCESS EXCLUSIVE "
        "lock, unless the new type is binary-compatible (varchar to text, a longer varchar, a wider "
        "numeric).",
        "Add a new column, write to both, backfill in batches, switch reads, then drop the old column.",
    ),
    Rule(
        "renaming-column",
        "Renaming a column breaks every running application instance that still uses the old name.",
        "Add the new column, write to both, backfill, move reads, stop writing the old one, then drop it; "
        "or rename behind a view.",
    ),
    Rule(
        "renaming-table",
        "Renaming a table breaks every running application instance that still uses the old name.",
        "Create the new table, write to both, backfill, move reads, then drop the old one; or leave an "
        "updatable view with the old name during the deploy.",
    ),
    Rule(
        "ban-drop-column",
        "Dropping a column breaks running application instances that still read or write it, and loses its "
        "data.",
        "Stop using the column in the application first (deploy), then drop it in a later migration.",
    ),
    Rule(
        "ban-drop-table",
        "Dropping a table breaks running application instances that still use it, and loses its data.",
        "Stop using the table in the application first (deploy), then drop it in a later migration.",
    ),
    Rule(
        "ban-vacuum-full",
        "VACUUM FULL rewrites the table under an ACCESS EXCLUSIVE lock, blocking reads and writes "
        "throughout.",
        "Use plain VACUUM, or pg_repack / pg_squeeze to compact the table online.",
    ),
    Rule(
        "ban-cluster",
        "CLUSTER rewrites the table under an ACCESS EXCLUSIVE lock, blocking reads and writes throughout.",
        "Use pg_repack (--order-by) to reorder the table online, or schedule a maintenance window.",
    ),
    Rule(
        "ban-lock-table",
        "An explicit LOCK TABLE in a mode that blocks writes (SHARE or stronger) stops live traffic until "
        "the migration commits.",
        "Remove it and rely on the locks each statement takes, or keep the migration very short.",
    ),
    Rule(
        "enum-value-used-in-transaction",
        "A value added with ALTER TYPE ... ADD VALUE cannot be used before the transaction that added it "
        "commits; the statement fails with 'unsafe use of new value'.",
        "Add the enum value in one migration and use it in a later one (or mark this one "
        "'transaction:false').",
    ),
    Rule(
        "require-concurrent-refresh",
        "REFRESH MATERIALIZED VIEW without CONCURRENTLY takes an ACCESS EXCLUSIVE lock, blocking every read"
        " of the view until the refresh ends.",
        "Use REFRESH MATERIALIZED VIEW CONCURRENTLY (it needs a unique index on the view) in a "
        "'transaction:false' migration.",
    ),
    Rule(
        "require-concurrent-reindex",
        "REINDEX without CONCURRENTLY blocks writes to the table (and reads that use the index) for the "
        "whole rebuild.",
        "Use REINDEX ... CONCURRENTLY (PostgreSQL 12+) in a 'transaction:false' migration.",
    ),
    Rule(
        "require-concurrent-partition-detach",
        "DETACH PARTITION without CONCURRENTLY takes an ACCESS EXCLUSIVE lock on the partitioned table, "
        "blocking reads and writes of every partition.",
        "Use DETACH PARTITION ... CONCURRENTLY (PostgreSQL 14+) in a 'transaction:false' migration.",
    ),
    Rule(
        "table-rewrite",
        "SET TABLESPACE, SET LOGGED / UNLOGGED and SET ACCESS METHOD rewrite the whole table under an "
        "ACCESS EXCLUSIVE lock, blocking reads and writes.",
        "Do it in a maintenance window, or copy the data online (pg_repack, logical replication).",
    ),
    Rule(
        "backfill-in-ddl-transaction",
        "An UPDATE in the same transaction as DDL on that table keeps the DDL's lock (usually ACCESS "
        "EXCLUSIVE) for the whole backfill, blocking reads and writes.",
        "Commit the DDL first and backfill in batches from a separate 'transaction:false' (or Python) "
        "migration.",
    ),
    Rule(
        "missing-down",
        "Without a down section the migration cannot be rolled back.",
        "Write a '-- migrate:down' section that reverts it, or put '-- pgmig:allow missing-down because "
        "...' in the empty down section to mark it irreversible on purpose.",
    ),
)
RULES: dict[str, Rule] = {rule.id: rule for rule in _RULE_LIST}


def closest_rule(word: str) -> str | None:
    """The rule id closest to a misspelled one, for 'did you mean' hints."""
    found = difflib.get_close_matches(word, list(RULES), n=1, cutoff=0.5)
    return found[0] if found else None


__all__ = ["RULES", "Rule", "closest_rule"]
