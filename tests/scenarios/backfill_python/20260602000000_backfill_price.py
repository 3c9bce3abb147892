"""Backfill items.price in batches of 400, counting how often each row is touched."""

from flask_pgmig import backfill

transaction = False


def up(conn):
    backfill(conn, "items", "price = id * 2, touched = touched + 1", "price IS NULL", batch_size=400)


def down(conn):
    backfill(conn, "items", "price = NULL, touched = touched - 1", "price IS NOT NULL", batch_size=400)
