"""Flask-Migrate's "is the database current?" check, timed in-process after app creation (peers venv).

It is what an app would run at start-up to refuse to boot behind its migrations: Alembic's script directory
heads (which loads every revision module) compared with the database's current heads.
"""

import json
import time

import fm_app
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

app = fm_app.create_app()
with app.app_context():
    started = time.perf_counter()
    config = app.extensions["migrate"].migrate.get_config()
    script = ScriptDirectory.from_config(config)
    with fm_app.db.engine.connect() as conn:
        current = set(MigrationContext.configure(conn).get_current_heads())
    heads = set(script.get_heads())
    seconds = time.perf_counter() - started
print(json.dumps({"seconds": seconds, "outcome": "current" if current == heads else "behind"}))
