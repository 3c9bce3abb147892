"""A transactional Python migration between two SQL ones: rollback --atomic runs its down in the same
transaction as theirs."""


def up(conn):
    conn.execute("INSERT INTO parents VALUES (1, 'one'), (2, 'two')")


def down(conn):
    conn.execute("DELETE FROM parents WHERE id IN (1, 2)")
