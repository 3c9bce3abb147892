"""A transactional Python migration: runs in one transaction with its history row."""


def up(conn):
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO notes (body) VALUES (%s)", [("first",), ("second",)])
    # remember this transaction's id: the test checks that the history row was written by the same one
    conn.execute("CREATE TABLE seed_marker (xid text)")
    conn.execute("INSERT INTO seed_marker SELECT pg_current_xact_id()::xid::text")


def down(conn):
    conn.execute("DELETE FROM notes WHERE body IN ('first', 'second')")
    conn.execute("DROP TABLE seed_marker")
