"""Which Argilla server to talk to, and with which key.

First match wins, for the URL and the key separately:

1. explicit values (``--api-url``, the stage's ``api_url``; a key only from code, never a flag);
2. the SDK's own variables ``ARGILLA_API_URL`` / ``ARGILLA_API_KEY``;
3. the embedded server (``rlhf annotate serve``) in ``data_dir`` (default: the CLI's default
   data directory): its URL if it is running, and its owner key when the URL is its own.

Keys never appear in messages, reprs or logs (:func:`mask`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlhf.errors import UserError

ENV_URL, ENV_KEY = "ARGILLA_API_URL", "ARGILLA_API_KEY"


def mask(secret: str | None) -> str:
    if not secret:
        return "<none>"
    return secret[:4] + "…" if len(secret) > 8 else "…"


def default_server_dir() -> Path:
    """The embedded server's default data directory (as ``rlhf annotate serve`` uses it)."""
    try:
        from rlhf.cli.annotate import default_data_dir
    except ImportError:  # pragma: no cover - the CLI module is part of the package
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
        return Path(os.environ.get("RLHF_ARGILLA_DATA_DIR") or base / "rlhf" / "argilla")
    return default_data_dir()


@dataclass(frozen=True)
class Connection:
    """An Argilla URL and API key (the key is kept out of ``repr``)."""

    api_url: str
    api_key: str = field(repr=False)
    source: str = "arguments"

    def __str__(self) -> str:
        return f"{self.api_url} (key {mask(self.api_key)}, from {self.source})"

    @property
    def is_local(self) -> bool:
        """Whether the server runs on this machine (loopback address)."""
        from urllib.parse import urlparse

        return (urlparse(self.api_url).hostname or "") in ("127.0.0.1", "localhost", "::1")

    def headers(self) -> dict[str, str]:
        """Extra request headers: on a loopback server, ask for uncompressed responses. Records
        carry their audio as base64 text, which gzip barely shrinks; compressing it costs the
        server more time than the transfer it saves on one machine (a pull of 300 records of
        ~140 KB: 2.9 s gzipped, 0.8 s plain). Remote servers keep gzip."""
        return {"Accept-Encoding": "identity"} if self.is_local else {}

    def client(self, timeout: int = 120, retries: int = 0) -> Any:
        """An ``argilla.Argilla`` client. ``retries``: connection retries of the HTTP transport
        (the push retries whole batches itself)."""
        import argilla as rg

        return rg.Argilla(api_url=self.api_url, api_key=self.api_key, timeout=timeout,
                          retries=retries, headers=self.headers())


def resolve(api_url: str | None = None, api_key: str | None = None,
            server_dir: str | Path | None = None) -> Connection:
    """The connection to use (see the module docstring); :class:`UserError` when there is none."""
    url, url_from = api_url, "arguments"
    if not url and os.environ.get(ENV_URL):
        url, url_from = os.environ[ENV_URL], f"${ENV_URL}"
    key, key_from = api_key, "arguments"
    if not key and os.environ.get(ENV_KEY):
        key, key_from = os.environ[ENV_KEY], f"${ENV_KEY}"
    server = None
    if not url or not key:
        from annotation.server.embedded import EmbeddedServer

        data_dir = Path(server_dir).expanduser() if server_dir else default_server_dir()
        candidate = EmbeddedServer(data_dir, credentials_from_env=False)
        if candidate.port and candidate.is_running():
            server = candidate
        if not url:
            if server is None:
                raise UserError(
                    "no Argilla server: pass --api-url (or the stage's api_url), set "
                    f"{ENV_URL}, or start the embedded one with `rlhf annotate serve`"
                    f" (looked for it in {data_dir})")
            url, url_from = server.url, f"embedded server in {server.data_dir}"
        if not key:
            if server is None or server.url.rstrip("/") != url.rstrip("/"):
                raise UserError(f"no API key for {url}: set {ENV_KEY}")
            key, key_from = server.api_key, f"embedded server in {server.data_dir}"
    source = url_from if url_from == key_from else f"{url_from}; key from {key_from}"
    return Connection(url.rstrip("/"), key, source)
