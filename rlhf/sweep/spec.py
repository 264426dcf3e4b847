"""The sweep file: one recipe, seeds, named variants of overrides; validated before any compute.

A sweep file (YAML)::

    name: grpo_rewards                 # optional; default: the file's stem
    description: which reward design trains the better policy?
    recipe: grpo_tiny                  # a shipped recipe name, or a path (relative to this file
                                       # first, then to the working directory)
    seeds: [0, 1, 2]                   # every variant runs once per seed (the recipe's ``seed``)
    overrides: [rl.steps=20]           # optional: applied to every run, before the variant's
    variants:                          # name -> overrides, as a list of ``key.path=value``...
      verifiable_only: ["rl.rewards=[{name: synthetic.sentiment}]"]
      length_shaped:                   # ... or as a mapping of dotted key -> YAML value
        rl.rewards:
          - {name: synthetic.sentiment}
          - {name: length.overlong, params: {max_len: 12, cache: 4}}
    tracking: {uri: null, experiment: null}   # optional: set on every run

Overrides are the same as ``rlhf run``'s (see :mod:`rlhf.recipe.overrides`); each run gets, in
order, the sweep's ``overrides``, the variant's, ``seed=<n>`` and the ``tracking`` values. Every
variant x seed is loaded and validated with :func:`rlhf.recipe.loader.validate_recipe` before
anything runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from rlhf.errors import RecipeError, UserError
from rlhf.recipe.errors import describe_validation_error
from rlhf.recipe.schema import NAME_PATTERN, Recipe

SWEEPS_DIR = "sweeps"
"""Shipped sweep files live in ``recipes/sweeps/`` (``rlhf sweep NAME`` finds them)."""


class SweepTracking(BaseModel):
    """MLflow settings applied to every run of the sweep (``None``: the recipe's own)."""

    model_config = ConfigDict(extra="forbid")

    uri: str | None = None
    experiment: str | None = None


Overrides = list[str] | dict[str, Any]


class SweepSpec(BaseModel):
    """A sweep file, validated (unknown keys are errors)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, pattern=NAME_PATTERN)
    description: str = ""
    recipe: str
    seeds: list[int] = Field(min_length=1)
    overrides: Overrides = Field(default_factory=list)
    variants: dict[str, Overrides] = Field(min_length=1)
    tracking: SweepTracking = SweepTracking()

    @field_validator("seeds")
    @classmethod
    def _unique_seeds(cls, value: list[int]) -> list[int]:
        if len(set(value)) != len(value):
            raise ValueError(f"seeds must be distinct (got {value})")
        return value

    @field_validator("variants")
    @classmethod
    def _variant_names(cls, value: dict[str, Overrides]) -> dict[str, Overrides]:
        import re

        for name in value:
            if not re.match(NAME_PATTERN, str(name)):
                raise ValueError(f"variant name {name!r} is not valid (letters, digits, _ . -; "
                                 "it becomes a directory name)")
        return value


def override_strings(overrides: Overrides) -> list[str]:
    """A list of ``key.path=value`` strings; a mapping's values are written as flow YAML."""
    if isinstance(overrides, list):
        return [str(o) for o in overrides]
    out = []
    for key, value in overrides.items():
        text = yaml.safe_dump(value, default_flow_style=True, width=10**9, sort_keys=False)
        text = text.strip()
        if text.endswith("\n..."):  # a bare scalar's document end marker
            text = text[: -len("\n...")].strip()
        elif text.endswith("..."):
            text = text[:-3].strip()
        out.append(f"{key}={text}")
    return out


@dataclass
class PlannedRun:
    """One variant x seed of a sweep, validated."""

    variant: str
    seed: int
    overrides: list[str]
    recipe: Recipe
    fingerprint: str

    @property
    def key(self) -> str:
        """``<variant>/seed-<n>``: the run's place in the sweep and under its directory."""
        return f"{self.variant}/seed-{self.seed}"


@dataclass
class Sweep:
    """A loaded sweep file: its spec, where it came from, and the recipe it runs."""

    spec: SweepSpec
    name: str
    source: str
    recipe: str
    """What :func:`rlhf.recipe.loader.load_recipe` is given: an absolute path or a shipped name."""

    def planned(self) -> list[tuple[str, int, list[str]]]:
        """``(variant, seed, overrides)`` of every run, variant-major, in file order."""
        common = override_strings(self.spec.overrides)
        tracking = []
        if self.spec.tracking.uri is not None:
            tracking.append(f"tracking.uri={self.spec.tracking.uri}")
        if self.spec.tracking.experiment is not None:
            tracking.append(f"tracking.experiment={self.spec.tracking.experiment}")
        return [(variant, seed, [*common, *override_strings(ovr), f"seed={seed}", *tracking])
                for variant, ovr in self.spec.variants.items() for seed in self.spec.seeds]


def shipped_sweeps() -> dict[str, Path]:
    """Name -> file of every sweep shipped in ``recipes/sweeps/``."""
    root = resources.files("rlhf._recipes") / SWEEPS_DIR
    if not root.is_dir():
        return {}
    return {item.name.rsplit(".", 1)[0]: Path(str(item)) for item in root.iterdir()
            if item.is_file() and item.name.endswith((".yaml", ".yml"))}


def _find_file(name_or_path: str) -> Path:
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path
    shipped = shipped_sweeps()
    if name_or_path in shipped:
        return shipped[name_or_path]
    from rlhf.errors import did_you_mean

    if path.suffix in (".yaml", ".yml") or "/" in name_or_path:
        raise UserError(f"{name_or_path}: no such sweep file")
    raise UserError(f"no sweep named {name_or_path!r} and no such file; "
                    f"{did_you_mean(name_or_path, shipped)}")


def _recipe_target(value: str, sweep_file: Path) -> str:
    """The recipe of a sweep: a path beside the sweep file, a path, or a shipped name."""
    beside = (sweep_file.parent / value).expanduser()
    if not Path(value).is_absolute() and beside.is_file():
        return str(beside.resolve())
    if Path(value).expanduser().is_file():
        return str(Path(value).expanduser().resolve())
    return value


def load_sweep(name_or_path: str) -> Sweep:
    """Read and validate a sweep file (not yet its runs: see :func:`validate_runs`)."""
    from rlhf.recipe.loader import parse_yaml

    path = _find_file(name_or_path)
    source = str(path)
    raw = parse_yaml(path.read_text(encoding="utf-8"), source)
    try:
        spec = SweepSpec.model_validate(raw)
    except ValidationError as exc:
        raise RecipeError(f"{source}: " + describe_validation_error(exc, SweepSpec)) from None
    name = spec.name or path.stem
    return Sweep(spec, name, source, _recipe_target(spec.recipe, path))


def validate_runs(sweep: Sweep) -> list[PlannedRun]:
    """Load and validate every variant x seed; raise one :class:`UserError` naming each variant
    that fails (and why), before any compute."""
    from rlhf.recipe.loader import parse_yaml, read_recipe_text, validate_recipe
    from rlhf.recipe.runner import stage_rewards
    from rlhf.tracking import reward_fingerprint

    source, text = read_recipe_text(sweep.recipe)
    raw = parse_yaml(text, source)
    runs: list[PlannedRun] = []
    problems: dict[str, dict[int, str]] = {}
    for variant, seed, overrides in sweep.planned():
        try:
            recipe = validate_recipe(raw, source, overrides)
            if not recipe.tracking.enabled:
                raise UserError("tracking.enabled is false; a sweep needs MLflow tracking to "
                                "compare its runs")
        except UserError as exc:
            problems.setdefault(variant, {})[seed] = str(exc)
            continue
        fingerprint = reward_fingerprint([r for s in recipe.stages for r in stage_rewards(s)])
        runs.append(PlannedRun(variant, seed, overrides, recipe, fingerprint))
    if problems:
        lines = [f"{sweep.source}: {len(problems)} of {len(sweep.spec.variants)} variants do not "
                 "validate; nothing was run"]
        for variant, by_seed in problems.items():
            messages = set(by_seed.values())
            if len(messages) == 1 and len(by_seed) == len(sweep.spec.seeds):
                lines.append(f"variant {variant!r} (every seed): {messages.pop()}")
            else:
                lines += [f"variant {variant!r}, seed {seed}: {message}"
                          for seed, message in by_seed.items()]
        raise UserError("\n".join(lines))
    return runs
