"""The same app with flask-pgmig instead of Flask-Migrate (in the project's venv): ``flask db`` and the guard."""

import os

from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_pgmig import PgMig

db = SQLAlchemy()
pgmig = PgMig()


def create_app() -> Flask:
    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["BENCH_SQLALCHEMY_URL"]
    app.config["PGMIG_DIRECTORY"] = os.environ["BENCH_MIGRATIONS_DIR"]
    app.config["PGMIG_GUARD"] = os.environ.get("BENCH_PGMIG_GUARD", "off")
    db.init_app(app)
    pgmig.init_app(app, db)
    return app
