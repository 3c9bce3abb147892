"""The flask-pgmig pytest plugin (registered through the ``pytest11`` entry point).

Fixtures are added by the pytest-plugin work (design section 7); until then the plugin registers nothing.
"""
