"""The Flask + Flask-SQLAlchemy + Flask-Migrate app the peers' ``flask db`` runs (in the peers venv)."""

import os

from flask import Flask
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy

db = SQLAlchemy()
migrate = Migrate()


def create_app() -> Flask:
    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["BENCH_SQLALCHEMY_URL"]
    db.init_app(app)
    migrate.init_app(app, db, directory=os.environ["BENCH_MIGRATIONS_DIR"])
    return app
