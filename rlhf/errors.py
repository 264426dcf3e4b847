"""Error types that the CLI maps to exit codes.

A :class:`UserError` is a mistake the user can fix (a bad recipe, a bad override, a bad data row):
the CLI prints its message as one short paragraph and exits with code 2, without a traceback.
Anything else is an internal error (exit code 1).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class UserError(Exception):
    """A user mistake, reported without a traceback (exit code 2)."""

    exit_code = 2


class RecipeError(UserError):
    """A recipe that does not validate: unknown key, wrong type, bad reference."""


class OverrideError(UserError):
    """A ``key.path=value`` override that cannot be applied."""


class DataError(UserError):
    """A data file or row that does not validate (``file:line: field: problem``)."""


class RegistryError(UserError):
    """A component name that is not registered or whose target cannot be imported."""


def nearest(name: str, candidates: Iterable[str], n: int = 3) -> list[str]:
    """Return up to ``n`` valid names closest to ``name`` (for did-you-mean hints)."""
    pool = sorted(set(candidates))
    close = difflib.get_close_matches(name, pool, n=n, cutoff=0.5)
    if not close:
        lowered = name.lower()
        close = [c for c in pool if lowered in c.lower() or c.lower() in lowered][:n]
    return close


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """A ``did you mean`` sentence, or a list of valid names when nothing is close."""
    pool = sorted(set(candidates))
    close = nearest(name, pool)
    if close:
        return "did you mean " + " or ".join(repr(c) for c in close) + "?"
    shown = ", ".join(pool[:12]) + (", ..." if len(pool) > 12 else "")
    return f"valid names: {shown}" if pool else "nothing is registered"
