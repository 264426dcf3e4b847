"""What one pair looks like on the server: escaped text, audio players, A/B order, answers back.

The field values are markdown (``use_markdown=True``), which Argilla 2.8's UI renders with
``marked`` and then ``DOMPurify.sanitize`` (default allow-list plus ``embed``/``object``).
DOMPurify keeps ``<audio controls src="data:audio/...">``: ``audio`` is an allowed tag and
``data:`` URIs are allowed in the ``src`` of media tags. The server itself puts no limit on a
field's size; the SDK's own ``argilla.markdown.audio_to_html`` refuses files over 5 MB
(:data:`annotation.pairs.MAX_AUDIO_BYTES` does the same), and ~50 KB clips make ~67 KB of
base64 per side.

Model output is untrusted: prompt text is HTML-escaped (``& < > " '``), and the characters that
would start markdown syntax (emphasis, links and images, headings, code, tables, lists) are
written as numeric character references, which ``marked`` shows as the literal characters.
Line breaks become ``<br>``.

A/B order: each record shows its pair in the order ``AB`` (first clip = the pair's ``audio_a``)
or ``BA``, chosen from a hash of the record id (deterministic, about half each). The order is
kept in the record's metadata property ``order``, which is hidden from annotators, with the
original paths and the pair id in extra metadata (visible to owners and admins only).
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
from pathlib import Path
from typing import Any

from annotation.aggregate import DISCARDED, DRAFT, SUBMITTED, Vote
from annotation.pairs import AUDIO_SUFFIXES, Pair

# field, question and metadata names on the server
FIELD_PROMPT, FIELD_FIRST, FIELD_SECOND = "prompt", "clip_a", "clip_b"
Q_PREFERENCE, Q_NATURAL_FIRST, Q_NATURAL_SECOND, Q_COMMENT = (
    "preference", "naturalness_a", "naturalness_b", "comment")
META_ORDER = "order"
META_PAIR_ID, META_AUDIO_A, META_AUDIO_B, META_PAIR_METADATA = (
    "pair_id", "audio_a", "audio_b", "pair_metadata")
ORDERS = ("AB", "BA")

_MARKDOWN_SPECIAL = set("\\`*_[]{}()#!|~<>&\"'$")
_LINE_START = re.compile(r"^(\s*)([-+=>]|\d+[.)])")


def escape_text(text: str) -> str:
    """Untrusted text → markdown that renders as exactly that text (no HTML, no markdown)."""
    out = []
    for line in str(text).replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        m = _LINE_START.match(line)
        start = len(m.group(1)) if m else -1  # a list marker / heading underline at line start
        chars = []
        for i, ch in enumerate(line):
            if ch in ("&", "<", ">", '"', "'"):
                chars.append(html.escape(ch, quote=True).replace("&#x27;", "&#39;"))
            elif ch in _MARKDOWN_SPECIAL or i == start:
                chars.append(f"&#{ord(ch)};")
            else:
                chars.append(ch)
        out.append("".join(chars))
    return "<br>\n".join(out)


def audio_html(path: str | Path) -> str:
    """An ``<audio controls>`` player with the file inlined as a ``data:`` URI."""
    p = Path(path)
    mime = AUDIO_SUFFIXES.get(p.suffix.lower())
    if mime is None:
        raise ValueError(f"{p}: unsupported audio type")
    data = base64.b64encode(p.read_bytes()).decode("ascii")
    return f'<audio controls preload="auto" src="data:{mime};base64,{data}"></audio>'


def audio_from_html(value: str) -> tuple[str, bytes]:
    """``(mime, bytes)`` of the clip inside :func:`audio_html`'s output (annotators' side)."""
    m = re.search(r'src="data:([^;"]+);base64,([A-Za-z0-9+/=]+)"', value)
    if not m:
        raise ValueError("no inline audio found in the field")
    return m.group(1), base64.b64decode(m.group(2))


def display_order(key: str) -> str:
    """``AB`` or ``BA`` for the record with id ``key`` (deterministic)."""
    return ORDERS[hashlib.sha256(f"order:{key}".encode()).digest()[0] & 1]


def record_payload(pair: Pair) -> dict[str, Any]:
    """``{"id", "fields", "metadata"}`` of the record for ``pair`` (plain values)."""
    order = display_order(pair.key)
    first, second = (pair.audio_a, pair.audio_b) if order == "AB" else (pair.audio_b, pair.audio_a)
    return {
        "id": pair.key,
        "fields": {FIELD_PROMPT: escape_text(pair.prompt), FIELD_FIRST: audio_html(first),
                   FIELD_SECOND: audio_html(second)},
        "metadata": {META_ORDER: order, META_PAIR_ID: pair.id, META_AUDIO_A: pair.audio_a,
                     META_AUDIO_B: pair.audio_b,
                     META_PAIR_METADATA: json.dumps(pair.metadata, ensure_ascii=False, sort_keys=True)},
    }


def to_original(order: str, choice: Any) -> str | None:
    """A displayed answer (``A`` = first clip shown) in the pair's original orientation."""
    if choice not in ("A", "B", "tie"):
        return None
    if order == "BA" and choice != "tie":
        return "B" if choice == "A" else "A"
    return choice


def vote_from_answers(annotator: str, status: str, order: str,
                      values: dict[str, Any]) -> Vote:
    """One annotator's answers to a record (``{question: value}``, displayed orientation) as
    a :class:`Vote` in the original orientation."""
    first, second = values.get(Q_NATURAL_FIRST), values.get(Q_NATURAL_SECOND)
    rating_a, rating_b = (first, second) if order == "AB" else (second, first)
    status = status if status in (SUBMITTED, DISCARDED, DRAFT) else str(status)
    return Vote(annotator, status, to_original(order, values.get(Q_PREFERENCE)),
                rating_a if isinstance(rating_a, int) else None,
                rating_b if isinstance(rating_b, int) else None,
                values.get(Q_COMMENT))


def displayed_answer(order: str, choice: str) -> str:
    """The inverse of :func:`to_original`: an original-orientation label as shown."""
    return to_original(order, choice) or choice
