"""Fails half-way: what it did before the failure must not survive (one transaction)."""


def up(conn):
    conn.execute("INSERT INTO notes (body) VALUES ('written before the failure')")
    conn.execute("CREATE TABLE half_done (id int)")
    conn.execute("SELECT 1 / 0")


def down(conn):
    conn.execute("DROP TABLE half_done")
