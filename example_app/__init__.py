"""A small task tracker that shows flask-pgmig in an app factory.

Without DATABASE_URL it starts (or reuses) an embedded PostgreSQL under ``instance/pgdata``, so
``flask --app example_app db migrate`` works on a machine with no PostgreSQL server.
"""

from __future__ import annotations

import os
from typing import Any

from flask import Flask, jsonify

from flask_pgmig import PgMig

from .models import Project, Task, db

pgmig = PgMig()


def database_url(app: Flask) -> str:
    """DATABASE_URL if set, else an embedded server under the instance folder (started on demand)."""
    url = os.environ.get("DATABASE_URL")
    if url:
        return url
    from flask_pgmig.embedded import EmbeddedServer

    server = EmbeddedServer(os.path.join(app.instance_path, "pgdata"))
    server.start()
    return server.url("postgres")


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """The app factory."""
    app = Flask(__name__, instance_relative_config=True)
    os.makedirs(app.instance_path, exist_ok=True)
    app.config.update(PGMIG_GUARD="error")
    app.config.update(config or {})
    if "SQLALCHEMY_DATABASE_URI" not in app.config:
        app.config["SQLALCHEMY_DATABASE_URI"] = database_url(app).replace(
            "postgresql://", "postgresql+psycopg://", 1
        )
    db.init_app(app)
    pgmig.init_app(app, db)

    @app.get("/api/projects")
    def projects() -> Any:
        rows = db.session.execute(db.select(Project).order_by(Project.id)).scalars()
        return jsonify([{"id": p.id, "name": p.name, "open_tasks": p.open_tasks()} for p in rows])

    @app.get("/")
    def index() -> str:
        count = db.session.execute(db.select(db.func.count(Task.id))).scalar_one()
        return f"<h1>Task tracker</h1><p>{count} tasks</p>"

    return app
