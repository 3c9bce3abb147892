"""The example app's embedded PostgreSQL server, used when no DATABASE_URL is configured.

Its data lives in ``<instance folder>/pgdata`` (``instance/`` next to the package). The first command that
needs it starts it; it keeps running in the background, and later commands reuse it, so the data survives
restarts of the app. See or stop it without loading the app (and without starting the server)::

    python -m example_app.embedded_db status
    python -m example_app.embedded_db stop
"""

from __future__ import annotations

from pathlib import Path

import click
from flask import Flask

from flask_pgmig.embedded import EmbeddedServer

#: The database the example app uses on its embedded server.
DATABASE = "example_app"


def server(app: Flask | None = None) -> EmbeddedServer:
    """The server whose data lives in the app's instance folder (not started)."""
    # A bare Flask object computes the same instance path as create_app() without configuring anything.
    instance_path = (app or Flask(__package__ or "example_app")).instance_path
    return EmbeddedServer(Path(instance_path, "pgdata"))


def database_url(app: Flask) -> str:
    """Start (or reuse) the server, create the app's database on first use, and return its URL."""
    import psycopg
    from psycopg import sql

    embedded = server(app)
    embedded.start()  # a no-op when it already runs, whichever process started it
    with psycopg.connect(embedded.url("postgres"), autocommit=True) as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE]).fetchone()
        if found is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE)))
    return embedded.url(DATABASE)


@click.group()
def cli() -> None:
    """Control the example app's embedded PostgreSQL server."""


@cli.command()
def status() -> None:
    """Say whether the server runs, and at which URL."""
    embedded = server()
    state = f"running at {embedded.url(DATABASE)}" if embedded.is_running() else "stopped"
    click.echo(f"Embedded PostgreSQL in {embedded.data_dir}: {state}")


@cli.command()
def stop() -> None:
    """Stop the server; its data stays, and the next command that needs it starts it again."""
    embedded = server()
    embedded.stop()
    click.echo(f"Stopped the embedded PostgreSQL in {embedded.data_dir}.")


if __name__ == "__main__":
    cli()
