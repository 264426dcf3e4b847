"""Turn a resolved recipe config into MLflow params: flat string keys, string values, no secrets.

``flatten({"stages": [{"kind": "dapo"}], "lr": 1e-6})`` gives
``{"stages.0.kind": "dapo", "lr": "1e-06"}``. Values longer than MLflow's limit (6000 characters)
are cut and end with :data:`TRUNCATED_MARKER`; keys are made valid MLflow names.
:func:`redact` replaces the value of every secret-looking key (``api_key``, ``token``, ...) by
``"***"``, so credentials never land in the tracking store.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

# Limits of mlflow.utils.validation (MAX_PARAM_VAL_LENGTH, MAX_ENTITY_KEY_LENGTH,
# MAX_TAG_VAL_LENGTH), copied so that this module does not import MLflow; a unit test checks
# that they still agree.
MAX_PARAM_VALUE = 6000
MAX_KEY = 250
MAX_TAG_VALUE = 8000
TRUNCATED_MARKER = "...[truncated]"
REDACTED = "***"

_SECRET = re.compile(
    r"(^|[_\-.])(api[_\-]?key|token|secret|secret[_\-]?key|password|passwd)$", re.IGNORECASE
)
_BAD_KEY_CHARS = re.compile(r"[^/\w.\- :]")


def clip(value: str, limit: int = MAX_PARAM_VALUE) -> str:
    """``value`` cut to ``limit`` characters, ending with the truncation marker when cut."""
    if len(value) <= limit:
        return value
    return value[: limit - len(TRUNCATED_MARKER)] + TRUNCATED_MARKER


def safe_key(key: str) -> str:
    """A valid MLflow param/metric/tag name: characters outside ``[/\\w.\\- :]`` become ``_``,
    empty path parts and leading/trailing slashes are dropped, length capped at 250."""
    key = _BAD_KEY_CHARS.sub("_", str(key))
    key = "/".join(part for part in key.split("/") if part not in ("", ".", ".."))
    return (key or "_")[:MAX_KEY]


def _leaf(value: Any) -> str:
    if isinstance(value, Mapping):
        return "{}"
    if isinstance(value, (list, tuple)):
        return "[]"
    return str(value)


def _walk(value: Any, prefix: str, sep: str, out: dict[str, str]) -> None:
    if isinstance(value, Mapping) and value:
        for key, child in value.items():
            _walk(child, f"{prefix}{sep}{key}" if prefix else str(key), sep, out)
    elif isinstance(value, (list, tuple)) and value:
        for index, child in enumerate(value):
            _walk(child, f"{prefix}{sep}{index}" if prefix else str(index), sep, out)
    else:
        out[safe_key(prefix)] = clip(_leaf(value))


def flatten(config: Mapping[str, Any], sep: str = ".") -> dict[str, str]:
    """Flatten nested dicts and lists into ``{"a.b.0.c": "value"}``.

    List items are indexed (``stages.0.kind``); scalars become ``str(value)`` (``None`` ->
    ``"None"``, ``True`` -> ``"True"``); empty dicts/lists become ``"{}"``/``"[]"``. Values over
    6000 characters are truncated with :data:`TRUNCATED_MARKER`. Pydantic models are dumped first.
    """
    if hasattr(config, "model_dump"):
        config = config.model_dump(mode="json")
    out: dict[str, str] = {}
    for key, value in config.items():
        _walk(value, str(key), sep, out)
    return out


def is_secret_key(key: str, sep: str = ".") -> bool:
    """True when any segment of ``key`` names a secret (``api_key``, ``apikey``, ``token``,
    ``secret``, ``password``, ``passwd``, also with a prefix such as ``hf_token``), ignoring case.

    ``max_new_tokens`` and ``tokenizer`` are not secrets (whole-word match at the end)."""
    return any(_SECRET.search(part) for part in str(key).split(sep))


def redact(flat: Mapping[str, Any], sep: str = ".") -> dict[str, Any]:
    """A copy of ``flat`` where every secret-looking key's value is ``"***"``."""
    return {k: (REDACTED if is_secret_key(k, sep) else v) for k, v in flat.items()}


def to_params(config: Mapping[str, Any], sep: str = ".") -> dict[str, str]:
    """``redact(flatten(config))``: what a stage logs as MLflow params."""
    return redact(flatten(config, sep), sep)


def redact_tree(value: Any) -> Any:
    """A copy of a nested mapping/list with the values of secret-looking keys replaced by ``***``."""
    if isinstance(value, Mapping):
        return {k: "***" if is_secret_key(str(k)) else redact_tree(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_tree(v) for v in value]
    return value
