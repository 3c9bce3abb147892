"""A transaction = False Python migration: each statement commits on its own."""

transaction = False


def up(conn):
    conn.execute("CREATE TABLE batched (step int)")
    for step in range(3):
        conn.execute("INSERT INTO batched VALUES (%s)", [step])
