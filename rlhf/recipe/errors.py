"""Turn pydantic validation errors into one short paragraph: key path, problem, nearest names."""

from __future__ import annotations

import types
import typing
from typing import Any

from pydantic import BaseModel, ValidationError

from rlhf.errors import did_you_mean


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model class inside an annotation (``Model | None``, ``list[Model]``...)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType, list, tuple, typing.Annotated):
        for arg in typing.get_args(annotation):
            found = _model_in(arg)
            if found is not None:
                return found
    return None


def _fields_at(model: type[BaseModel], loc: tuple[Any, ...]) -> set[str]:
    """Valid field names of the (nested) model that owns the last element of ``loc``."""
    current: type[BaseModel] | None = model
    for part in loc[:-1]:
        if current is None:
            return set()
        if isinstance(part, int) or part not in current.model_fields:
            continue
        current = _model_in(current.model_fields[part].annotation)
    return set(current.model_fields) if current is not None else set()


def format_path(prefix: str, loc: tuple[Any, ...]) -> str:
    parts = [prefix] if prefix else []
    for p in loc:
        if isinstance(p, int):
            parts[-1:] = [f"{parts[-1]}[{p}]"] if parts else [f"[{p}]"]
        elif isinstance(p, str) and not p.startswith(("function-", "union[", "literal[")):
            parts.append(p)
    return ".".join(parts)


def describe_validation_error(
    exc: ValidationError, model: type[BaseModel], prefix: str = "", limit: int = 3
) -> str:
    """Lines like ``dpo.trainer: unknown key 'lr'; did you mean 'learning_rate'?``."""
    lines: list[str] = []
    seen: set[str] = set()
    # unknown keys first: a misspelt key usually also causes the "missing" error of its real name
    errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
    for err in errors:
        loc = tuple(err.get("loc", ()))
        path = format_path(prefix, loc) or "(top level)"
        if err["type"] == "extra_forbidden":
            key = str(loc[-1]) if loc else "?"
            hint = did_you_mean(key, _fields_at(model, loc))
            line = f"{path}: unknown key; {hint}"
        elif err["type"] == "missing":
            line = f"{path}: required key is missing"
        else:
            value = err.get("input")
            shown = repr(value)
            shown = shown if len(shown) <= 60 else shown[:57] + "..."
            line = f"{path}: {err['msg']} (got {shown})"
        if line not in seen:
            seen.add(line)
            lines.append(line)
    more = len(lines) - limit
    out = lines[:limit]
    if more > 0:
        out.append(f"(and {more} more problem{'s' if more > 1 else ''})")
    return "\n".join(out)
