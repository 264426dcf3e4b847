"""Recipes shipped inside the installed package (``recipes/`` in the source tree)."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

import yaml


@dataclass(frozen=True)
class ShippedRecipe:
    name: str
    file: Traversable

    def text(self) -> str:
        return self.file.read_text(encoding="utf-8")

    def header(self) -> dict[str, Any]:
        data = yaml.safe_load(self.text()) or {}
        return data if isinstance(data, dict) else {}


def shipped_recipes() -> dict[str, ShippedRecipe]:
    """Name (file stem) -> shipped recipe, for every ``*.yaml`` at the top of ``recipes/``."""
    root = resources.files("rlhf._recipes")
    found: dict[str, ShippedRecipe] = {}
    for item in root.iterdir():
        if item.is_file() and item.name.endswith((".yaml", ".yml")):
            stem = item.name.rsplit(".", 1)[0]
            found[stem] = ShippedRecipe(stem, item)
    return dict(sorted(found.items()))
