"""Load a recipe by shipped name or path, apply overrides, validate everything before compute."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from rlhf.errors import RecipeError, RegistryError, did_you_mean
from rlhf.recipe.catalog import shipped_recipes
from rlhf.recipe.errors import describe_validation_error
from rlhf.recipe.overrides import apply_overrides
from rlhf.recipe.schema import NAME_PATTERN, Recipe, RecipeHeader, ResolvedStage
from rlhf.stages.base import StageSpec, check_passthrough, references


def read_recipe_text(name_or_path: str) -> tuple[str, str]:
    """Return (source label, YAML text) for a file path or a shipped recipe name."""
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return str(path), path.read_text(encoding="utf-8")
    shipped = shipped_recipes()
    if name_or_path in shipped:
        return f"recipes/{shipped[name_or_path].file.name}", shipped[name_or_path].text()
    if path.suffix in (".yaml", ".yml") or "/" in name_or_path:
        raise RecipeError(f"{name_or_path}: no such recipe file")
    raise RecipeError(
        f"no recipe named {name_or_path!r} and no such file; {did_you_mean(name_or_path, shipped)}"
        " (rlhf recipes ls lists them)"
    )


def parse_yaml(text: str, source: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        problem = getattr(exc, "problem", None) or str(exc)
        raise RecipeError(f"{where}: not valid YAML: {problem}") from None
    if not isinstance(data, dict):
        raise RecipeError(f"{source}: a recipe must be a YAML mapping with name and stages")
    return data


def load_recipe(name_or_path: str, overrides: list[str] | None = None) -> Recipe:
    """Read, override and validate a recipe; raise :class:`RecipeError` naming file and key."""
    source, text = read_recipe_text(name_or_path)
    raw = parse_yaml(text, source)
    return validate_recipe(raw, source, overrides or [])


def validate_recipe(raw: dict[str, Any], source: str, overrides: list[str]) -> Recipe:
    raw = apply_overrides(raw, overrides)
    try:
        header = RecipeHeader.model_validate(raw)
    except ValidationError as exc:
        raise RecipeError(f"{source}: " + describe_validation_error(exc, RecipeHeader)) from None
    stages: list[ResolvedStage] = []
    for index, stage_raw in enumerate(header.stages):
        stages.append(_validate_stage(stage_raw, index, stages, source))
    return Recipe(header.name, header.description, header.cpu_time, header.seed, header.tracking,
                  stages, source, list(overrides), header.distributed)


def _validate_stage(raw: dict[str, Any], index: int, earlier: list[ResolvedStage],
                    source: str) -> ResolvedStage:
    from rlhf.stages import STAGES

    body = dict(raw)
    kind = body.pop("kind", None)
    name = body.pop("name", kind)
    label = f"stages[{index}]"
    if not isinstance(kind, str) or not kind:
        raise RecipeError(f"{source}: {label}.kind: required key is missing")
    if not isinstance(name, str) or not re.match(NAME_PATTERN, name):
        raise RecipeError(f"{source}: {label}.name: {name!r} is not a valid stage name")
    where = f"{name}"
    if any(s.name == name for s in earlier):
        raise RecipeError(f"{source}: {label}.name: stage name {name!r} is used twice")
    try:
        spec = STAGES.get(kind)
    except RegistryError as exc:
        raise RecipeError(f"{source}: {where}.kind: {exc}") from None
    if not isinstance(spec, StageSpec):
        raise RecipeError(f"{source}: {where}.kind: {kind!r} is not a StageSpec "
                          f"(got {type(spec).__name__})")
    try:
        options = spec.options.model_validate(body)
    except ValidationError as exc:
        raise RecipeError(
            f"{source}: " + describe_validation_error(exc, spec.options, prefix=where)
        ) from None
    for field_name, target in spec.passthrough.items():
        block = getattr(options, field_name, None) or {}
        try:
            check_passthrough(block, target, f"{where}.{field_name}")
        except RecipeError as exc:
            raise RecipeError(f"{source}: {exc}") from None
    names = [s.name for s in earlier]
    for ref in references(options.model_dump(mode="json")):
        if ref not in names:
            all_names = names + [name]
            hint = "it must come earlier" if ref == name else did_you_mean(ref, all_names)
            raise RecipeError(
                f"{source}: {where}: reference '@{ref}/...' does not name an earlier stage; {hint}"
            )
    return ResolvedStage(name, kind, spec, options)
