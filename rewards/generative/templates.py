"""Judge prompt templates: plain-text files with named placeholders.

A template is a text file holding some of the placeholders in :data:`PLACEHOLDERS`
(``{prompt}``, ``{response_a}``, ``{response_b}``, ``{reference}``, ``{rubric}``,
``{response}``). Other braces (a JSON example, say) are left as they are, but a brace pair around
a lowercase name that is not a placeholder (``{respnse}``) is a user error with a did-you-mean.

A recipe names a template by a shipped name (``pairwise``, ``vs_reference``,
``pointwise_rubric``: ``recipes/judge_templates/<name>.txt``, installed as
``rlhf._recipes/judge_templates``) or by a path to its own ``.txt`` file.

Rendering fills the placeholders in one pass (a value that itself contains ``{prompt}`` is not
filled again). A placeholder without a value is a :class:`~rlhf.errors.UserError` naming the
template and the placeholder.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from rlhf.errors import UserError, did_you_mean

PLACEHOLDERS = ("prompt", "response_a", "response_b", "reference", "rubric", "response")
"""Every placeholder a judge template may use."""
PAIR_SLOTS = ("response_a", "response_b")
"""The two positional slots of a pairwise template (swapped for position debiasing)."""

_FIELD = re.compile(r"\{([a-z_][a-z0-9_]*)\}")


@dataclass(frozen=True)
class JudgeTemplate:
    """A loaded template: its name (shipped name or path), text and the placeholders it uses."""

    name: str
    text: str

    @property
    def placeholders(self) -> tuple[str, ...]:
        """The placeholders the text uses, in order of first appearance."""
        seen: dict[str, None] = {}
        for match in _FIELD.finditer(self.text):
            seen.setdefault(match.group(1), None)
        return tuple(seen)

    def uses(self, placeholder: str) -> bool:
        return placeholder in self.placeholders

    def render(self, values: dict[str, str | None]) -> str:
        """The text with every placeholder replaced by ``values[name]`` (must not be None)."""
        for name in self.placeholders:
            if values.get(name) is None:
                raise UserError(f"judge template {self.name!r} uses {{{name}}} but no value was "
                                f"given for it{_hint(name)}")
        return _FIELD.sub(lambda m: str(values[m.group(1)]), self.text)


def _hint(name: str) -> str:
    hints = {"rubric": " (set the judge's `rubric`, or give a `rubric` column)",
             "reference": " (give a `reference` column)",
             "prompt": " (the row has no prompt)"}
    return hints.get(name, "")


def shipped_dir() -> Path:
    """The folder of shipped templates (``recipes/judge_templates`` in the source tree)."""
    return Path(str(resources.files("rlhf._recipes") / "judge_templates"))


def shipped_templates() -> list[str]:
    """Names of the shipped templates (file stems)."""
    folder = shipped_dir()
    return sorted(p.stem for p in folder.glob("*.txt")) if folder.is_dir() else []


def _looks_like_path(spec: str) -> bool:
    return "/" in spec or "\\" in spec or spec.endswith(".txt") or spec.startswith("~")


def template_path(spec: str, base_dir: Path | None = None) -> Path:
    """The file of a template spec: a shipped name, or a path (relative to ``base_dir`` if set)."""
    if not spec or not spec.strip():
        raise UserError("judge template: empty name; use one of "
                        + ", ".join(shipped_templates()) + " or a path to a .txt file")
    if not _looks_like_path(spec):
        path = shipped_dir() / f"{spec}.txt"
        if not path.is_file():
            raise UserError(f"unknown judge template {spec!r}; "
                            f"{did_you_mean(spec, shipped_templates())} (or give a path)")
        return path
    path = Path(spec).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    if not path.is_file():
        raise UserError(f"judge template file {spec!r} does not exist ({path.absolute()})")
    return path


def load_template(spec: str, base_dir: Path | None = None) -> JudgeTemplate:
    """Load and check a template: every ``{name}`` must be a known placeholder."""
    path = template_path(spec, base_dir)
    text = path.read_text(encoding="utf-8")
    text = text[:-1] if text.endswith("\n") else text
    template = JudgeTemplate(spec, text)
    for name in template.placeholders:
        if name not in PLACEHOLDERS:
            raise UserError(f"judge template {spec!r}: unknown placeholder {{{name}}}; "
                            f"{did_you_mean(name, PLACEHOLDERS)}")
    if not template.placeholders:
        raise UserError(f"judge template {spec!r} uses no placeholder; valid ones: "
                        + ", ".join("{" + p + "}" for p in PLACEHOLDERS))
    return template
