"""One typed registry class for every kind of component (stage kinds, rewards, models, datasets).

Entries are registered explicitly, as lazy ``"module:attr"`` targets, so that listing names never
imports heavy libraries and an import error surfaces when the component is used, with its name,
instead of being swallowed at import time. Any ``"module:attr"`` string that is not a registered
name is also accepted and imported directly (for users' own components).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from rlhf.errors import RegistryError, did_you_mean

T = TypeVar("T")


@dataclass(frozen=True)
class Entry:
    """A registered component: its short name, where it lives and a one-line description."""

    name: str
    target: str
    description: str = ""
    meta: dict[str, Any] = field(default_factory=dict)


def import_target(target: str, what: str = "component") -> Any:
    """Import ``"package.module:attr"`` (attr may be dotted) and return the attribute."""
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise RegistryError(f"{what} {target!r} is not of the form 'module:attr'")
    try:
        obj: Any = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise RegistryError(f"{what} {target!r}: module {module_name!r} not found") from exc
        raise
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise RegistryError(f"{what} {target!r}: {module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    return obj


class Registry(Generic[T]):
    """Named, lazily imported components of one kind.

    ``kind`` is the human name used in error messages ("stage kind", "reward", ...).
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry] = {}
        self._loaded: dict[str, T] = {}

    def register(self, name: str, target: str, description: str = "", **meta: Any) -> None:
        """Register ``name`` -> ``"module:attr"``; a second registration of a name is an error."""
        if name in self._entries:
            raise ValueError(
                f"{self.kind} {name!r} is already registered "
                f"(as {self._entries[name].target!r}); names must be unique"
            )
        if ":" not in target:
            raise ValueError(f"{self.kind} {name!r}: target {target!r} must be 'module:attr'")
        self._entries[name] = Entry(name, target, description, dict(meta))

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[Entry]:
        return iter(sorted(self._entries.values(), key=lambda e: e.name))

    def names(self) -> list[str]:
        return sorted(self._entries)

    def entry(self, name: str) -> Entry:
        if name not in self._entries:
            raise RegistryError(f"unknown {self.kind} {name!r}; {did_you_mean(name, self.names())}")
        return self._entries[name]

    def get(self, name: str) -> T:
        """Resolve a registered short name or a ``"module:attr"`` path to the object."""
        if name in self._loaded:
            return self._loaded[name]
        if name in self._entries:
            obj = import_target(self._entries[name].target, f"{self.kind} {name!r}")
        elif ":" in name:
            obj = import_target(name, self.kind)
        else:
            raise RegistryError(f"unknown {self.kind} {name!r}; {did_you_mean(name, self.names())}")
        self._loaded[name] = obj
        return obj

    def is_known(self, name: str) -> bool:
        """True for a registered name or anything shaped like a ``module:attr`` path."""
        return name in self._entries or (":" in name and not name.startswith(":"))
