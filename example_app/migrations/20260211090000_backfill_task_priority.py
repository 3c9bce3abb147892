"""Backfill: give every existing task a priority derived from its status, in batches.

``transaction = False``: each batch of 1000 rows commits on its own, with its progress, so live traffic
only ever waits for one short batch, and a run that is killed or interrupted (Ctrl-C) resumes after the
last committed batch the next time ``flask db migrate`` runs. The SQL only uses the tables as they are at
this point of the history; it does not import the app's models, which will have changed by the time
someone replays this migration on a fresh database.
"""

from flask_pgmig import backfill

transaction = False


def up(conn):
    backfill(
        conn,
        "tasks",
        "priority = CASE status WHEN 'doing' THEN 1 WHEN 'done' THEN 3 ELSE 2 END",
        "priority IS NULL",
        batch_size=1000,
        sleep=0.01,  # leave the database some room between batches
    )


def down(conn):
    # the column itself goes away with 20260210090000's down; here only the values go back to NULL
    backfill(conn, "tasks", "priority = NULL", "priority IS NOT NULL", batch_size=1000)
