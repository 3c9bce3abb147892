"""200k rows in batches of 2000; the reliability test kills the process half-way and runs it again."""

from flask_pgmig import backfill

transaction = False


def up(conn):
    backfill(
        conn,
        "events",
        "score = length(kind) + id % 100, touched = touched + 1",
        None,
        batch_size=2000,
        sleep=0.005,
    )
