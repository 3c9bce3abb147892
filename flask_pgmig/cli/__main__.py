"""``python -m flask_pgmig.cli``."""

from . import main

main()
