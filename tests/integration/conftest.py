"""Integration fixtures: the session-wide embedded Argilla server, ``argilla_server``, lives in
``tests/conftest.py`` (the recipe tests with an ``annotate`` stage share it)."""
