"""``python -m flask_pgmig.cli``."""

from . import run

run()
