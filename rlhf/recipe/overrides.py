"""``key.path=value`` overrides applied to a raw recipe mapping before validation.

Values are YAML scalars (or flow collections): ``trainer.max_steps=20``, ``policy.lora.r=8``,
``tracking.enabled=false``, ``rewards=[asr.wer]``. The first key of the path picks the target:

- a top-level recipe key (``seed``, ``tracking``, ...) sets it;
- ``stages.<index or name>.rest`` or ``<stage name>.rest`` sets a key in one stage;
- any other first key is applied to every stage whose kind has that option (so
  ``trainer.max_steps=2`` shortens every trainer stage at once).
"""

from __future__ import annotations

import copy
from typing import Any

import yaml

from rlhf.errors import OverrideError, RegistryError, did_you_mean

TOP_LEVEL = ("name", "description", "cpu_time", "seed", "tracking", "distributed", "stages")


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``a.b.c=value`` into (["a", "b", "c"], parsed YAML value)."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise OverrideError(f"override {text!r}: expected key.path=value")
    parts = key.split(".")
    if any(not p for p in parts):
        raise OverrideError(f"override {text!r}: empty key in path {key!r}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        if raw.strip().startswith(("[", "{", '"', "'")):
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise OverrideError(f"override {text!r}: value is not valid YAML ({problem})") from None
        value = raw.strip()  # e.g. @stage/file.jsonl: a plain string YAML cannot parse
    return parts, value


def _set_path(target: dict[str, Any], parts: list[str], value: Any, text: str) -> None:
    node: Any = target
    for i, part in enumerate(parts[:-1]):
        if isinstance(node, list):
            node = node[_index(part, len(node), text)]
            continue
        nxt = node.get(part)
        if nxt is None:
            nxt = node[part] = {}
        elif not isinstance(nxt, (dict, list)):
            where = ".".join(parts[: i + 1])
            raise OverrideError(f"override {text!r}: {where} is a value, not a mapping")
        node = nxt
    last = parts[-1]
    if isinstance(node, list):
        node[_index(last, len(node), text)] = value
    else:
        node[last] = value


def _index(part: str, size: int, text: str) -> int:
    try:
        idx = int(part)
    except ValueError:
        raise OverrideError(f"override {text!r}: {part!r} is not a list index") from None
    if not -size <= idx < size:
        raise OverrideError(f"override {text!r}: index {idx} out of range (size {size})")
    return idx


def _stage_fields(kind: Any) -> set[str]:
    from rlhf.stages import STAGES

    if not isinstance(kind, str):
        return set()
    try:
        return set(STAGES.get(kind).options.model_fields)
    except RegistryError:
        return set()


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Return a copy of ``raw`` with every override applied, in order."""
    result = copy.deepcopy(raw)
    for text in overrides:
        parts, value = parse_override(text)
        stages = result.get("stages") if isinstance(result.get("stages"), list) else []
        by_name = {s.get("name"): s for s in stages if isinstance(s, dict)}
        head = parts[0]
        if head == "stages" and len(parts) > 2:
            key = parts[1]
            if key in by_name:
                stage = by_name[key]
            elif key.lstrip("-").isdigit():
                stage = stages[_index(key, len(stages), text)]
            else:
                raise OverrideError(
                    f"override {text!r}: no stage {key!r}; {did_you_mean(key, by_name)}")
            _set_path(stage, parts[2:], value, text)
        elif head in TOP_LEVEL:
            _set_path(result, parts, value, text)
        elif head in by_name and len(parts) > 1:
            _set_path(by_name[head], parts[1:], value, text)
        else:
            targets = [s for s in stages if isinstance(s, dict) and head in _stage_fields(s.get("kind"))]
            if not targets:
                names = set(TOP_LEVEL) | set(by_name)
                for s in stages:
                    if isinstance(s, dict):
                        names |= _stage_fields(s.get("kind"))
                raise OverrideError(
                    f"override {text!r}: {head!r} is not a recipe key, a stage name or an "
                    f"option of any stage; {did_you_mean(head, names)}"
                )
            for stage in targets:
                _set_path(stage, parts, copy.deepcopy(value), text)
    return result
