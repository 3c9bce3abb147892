"""The framework-free migration engine: files, SQL, plan, history, lock, runner and the Migrator facade.

Imports psycopg, pglast and the standard library only (``tests/test_layering.py`` enforces it).
"""
