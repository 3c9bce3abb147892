"""A data backfill in Python: never linted (its SQL is not visible offline)."""

transaction = False


def up(conn):
    conn.execute("UPDATE users SET score = 0 WHERE score IS NULL")
