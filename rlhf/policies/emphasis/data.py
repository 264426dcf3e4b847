"""Emphasis data: a synthetic long-context QA task with distractors, and SQuAD-2.0 / HotpotQA loaders.

Every record is ``{id, question, context, answers}`` (``answers``: gold strings; empty = the
question is unanswerable, SQuAD 2.0). :func:`to_rl_row` adds the actor's ``prompt`` and ``n_units``.

**Synthetic task** (:func:`synthetic_examples`). Each example asks for one attribute of a named
person ("Which place does Mia live near?", five relations). The context holds ``n_sentences``
sentences in random order:

- the *fact*: the person of the question with the answer, worded differently from the question
  (it shares one keyword with it: the name) — "Mia has a house by the river.";
- with probability ``p_fool`` a *distractor* about another person that repeats the question's
  wording with a wrong answer ("Tom does live near the park.": two or more shared keywords),
  which fools the lexical solver;
- fillers: neutral scenery sentences (``fillers="scenery"``, no names, no question keywords), or
  facts of other relations about other people (``fillers="facts"``); with
  ``weak_distractors=True`` a non-fooling example also gets a same-relation sentence about
  another person in the fact's wording ("Tom has a house by the park.").

Each example is checked with :class:`~rlhf.policies.emphasis.solvers.LexicalSolver` and redrawn
until (a) with no emphasis it is fooled exactly when it has a fooling distractor, (b) with the fact
emphasised it answers right, and (c) the fact alone fits the budget. So the plain solver's exact
match is about ``1 - p_fool``, emphasising the fact gives 1, and random emphasis of one sentence
about ``1 / n_sentences``. With the defaults the actor must learn which sentence states a fact
(not the question-echoing distractor, not scenery), a cue a 2-layer tiny actor learns on a CPU;
``fillers="facts"`` and ``weak_distractors`` make it match the question's relation and name too,
which needs a larger actor. Names are single tokens of the tiny tokenizer.

**Loaders** read the official nested JSON files (or JSON Lines); a bad entry raises
:class:`~rlhf.errors.DataError` naming ``file:line: field.path: problem`` (the line where the
offending JSON object starts).
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from json import scanner
from pathlib import Path
from typing import Any

from rlhf.errors import DataError
from rlhf.policies.emphasis.actor import actor_prompt
from rlhf.policies.emphasis.spans import (
    END_TAG, START_TAG, UnitKind, emphasize, segment, within_budget,
)

NAMES = ("Anna", "Ben", "Clara", "David", "Ella", "Finn", "Grace", "Hugo", "Iris", "Jack",
         "Lily", "Max", "Nora", "Omar", "Paul", "Rosa", "Sam", "Tom", "Uma", "Zoe")


@dataclass(frozen=True)
class Relation:
    """One question type: its question, fact wordings, distractor wordings and answers."""

    question: str
    facts: tuple[str, ...]
    fooling: str
    weak: str
    answers: tuple[str, ...]


RELATIONS: tuple[Relation, ...] = (
    Relation("Which place does {n} live near?", ("{n} has a house by the {a}.",),
             "{m} does live near the {a}.", "{m} has a house by the {a}.",
             ("river", "park", "forest", "market", "school", "sea", "garden", "road")),
    Relation("Where does {n} work each day?", ("{n} has a job at the {a}.",),
             "Each day {m} does work at the {a}.", "{m} has a job at the {a}.",
             ("bank", "mill", "shop", "hotel", "station", "library", "harbour", "cafe")),
    Relation("What pet does {n} love?", ("At home {n} has a {a}.",),
             "{m} does love the pet {a}.", "At home {m} has a {a}.",
             ("dog", "cat", "goat", "horse", "rabbit", "parrot", "turtle", "duck")),
    Relation("Which food does {n} like to eat?", ("For lunch {n} has {a}.",),
             "{m} does like to eat the food {a}.", "For lunch {m} has {a}.",
             ("soup", "rice", "bread", "cake", "fish", "pasta", "salad", "eggs")),
    Relation("Which instrument does {n} play?", ("{n} has lessons on the {a}.",),
             "{m} does play the instrument {a}.", "{m} has lessons on the {a}.",
             ("piano", "drums", "flute", "guitar", "violin", "harp", "cello", "trumpet")),
)
"""Five question types. Facts state the answer with ``has`` (one shared keyword with the
question: the name); fooling distractors echo the question's wording (two or three)."""


SCENERY = (
    "Rain fell.", "The sky was grey.", "Snow came early.", "The wind was cold.",
    "Birds sang.", "The sea was calm.", "Fog rolled in.", "The night was dark.",
    "Leaves fell.", "The sun was warm.", "Clouds gathered.", "A bell rang.",
)
"""Neutral filler sentences (no names, no question keywords)."""


def _draw(rng: random.Random, n_sentences: int, fooling: bool, weak: bool, fillers: str
          ) -> tuple[dict[str, Any], int]:
    relation = rng.choice(RELATIONS)
    names = rng.sample(NAMES, n_sentences)
    answer, wrong = rng.sample(relation.answers, 2)
    fact = rng.choice(relation.facts).format(n=names[0], a=answer)
    others = [r for r in RELATIONS if r is not relation]
    sentences = [fact]
    if fooling or weak:
        distractor = relation.fooling if fooling else relation.weak
        sentences.append(distractor.format(m=names[1], a=wrong))
    if fillers == "scenery":
        sentences += rng.sample(SCENERY, n_sentences - len(sentences))
    for name in names[len(sentences):]:
        other = rng.choice(others)
        sentences.append(rng.choice(other.facts).format(n=name, a=rng.choice(other.answers)))
    order = list(range(n_sentences))
    rng.shuffle(order)
    row = {"question": relation.question.format(n=names[0]),
           "context": " ".join(sentences[i] for i in order), "answers": [answer]}
    return row, order.index(0)


def _checks(row: dict[str, Any], fact: int, fooling: bool, budget: float) -> bool:
    from rewards.verifiable.qa import exact_match
    from rlhf.policies.emphasis.solvers import LexicalSolver

    solver, context = LexicalSolver(100.0), row["context"]
    units = segment(context, "sentence")
    plain_right = exact_match(solver.answer_one(row["question"], context), row["answers"])
    marked = emphasize(context, units, [fact])
    helped = exact_match(solver.answer_one(row["question"], marked.tagged), row["answers"])
    return (plain_right == (not fooling) and helped == 1.0
            and within_budget(marked.marked_fraction, budget))


def synthetic_examples(n: int, seed: int, n_sentences: int = 4, p_fool: float = 0.6,
                       budget: float = 0.4, weak_distractors: bool = False,
                       fillers: str = "scenery", prefix: str = "syn") -> list[dict[str, Any]]:
    """``n`` synthetic QA records (see the module docstring); ``gold_units`` holds the fact's
    sentence index and ``fooling`` whether the distractor fools the plain lexical solver (both
    for analysis only: no reward reads them)."""
    if fillers not in ("scenery", "facts"):
        raise ValueError(f"fillers must be 'scenery' or 'facts', got {fillers!r}")
    if not 2 <= n_sentences <= len(NAMES):
        raise ValueError(f"n_sentences must be in 2..{len(NAMES)}, got {n_sentences}")
    rng = random.Random(seed)
    rows = []
    while len(rows) < n:
        fooling = rng.random() < p_fool
        for _ in range(100):
            row, fact = _draw(rng, n_sentences, fooling, weak_distractors, fillers)
            if _checks(row, fact, fooling, budget):
                break
        else:
            raise ValueError(f"no synthetic example passes its checks with budget {budget}: "
                             "raise the budget")
        rows.append({"id": f"{prefix}-{len(rows)}", **row, "gold_units": [fact],
                     "fooling": fooling})
    return rows


def to_rl_row(record: dict[str, Any], unit: UnitKind = "sentence") -> dict[str, Any]:
    """A record with the actor's ``prompt`` and the number of units (checked by the reward)."""
    units = segment(record["context"], unit)
    return {"prompt": actor_prompt(record["question"], record["context"], units), **record,
            "n_units": len(units)}


# -- position-aware JSON (for file:line in errors) ----------------------------------------------


class _LineDecoder(json.JSONDecoder):
    """A JSON decoder that records where each object starts (Python scanner, same results)."""

    def __init__(self) -> None:
        super().__init__()
        self.starts: dict[int, int] = {}

        def parse_object(s_and_end: tuple[str, int], *args: Any, **kwargs: Any) -> Any:
            obj, end = json.decoder.JSONObject(s_and_end, *args, **kwargs)
            self.starts[id(obj)] = s_and_end[1] - 1
            return obj, end

        self.parse_object = parse_object
        self.scan_once = scanner.py_make_scanner(self)


def _load_json(path: Path) -> tuple[Any, Any]:
    """The parsed file and a ``line_of(obj)`` function (1-based line where ``obj`` starts)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not valid UTF-8: {exc.reason}") from None
    decoder = _LineDecoder()
    try:
        value = decoder.decode(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}:{exc.lineno}: not valid JSON: {exc.msg}") from None
    return value, lambda obj: text.count("\n", 0, decoder.starts.get(id(obj), 0)) + 1


def _iter_json_or_lines(path: Path) -> Iterator[tuple[Any, int, str]]:
    """``(entry, line, field prefix)`` of a JSON array file or a JSON Lines file."""
    if path.suffix == ".jsonl":
        try:
            lines = path.read_text(encoding="utf-8-sig").splitlines()
        except FileNotFoundError:
            raise DataError(f"{path}: file not found") from None
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                yield json.loads(line), number, ""
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{number}: not valid JSON: {exc.msg}") from None
        return
    value, line_of = _load_json(path)
    if not isinstance(value, list):
        raise DataError(f"{path}:1: expected a JSON array of examples (or a .jsonl file)")
    for i, entry in enumerate(value):
        yield entry, line_of(entry), f"[{i}]."


class _Checker:
    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, line: int, field: str, problem: str) -> DataError:
        return DataError(f"{self.path}:{line}: {field}: {problem}")

    def get(self, obj: Any, key: str, kind: type | tuple[type, ...], line: int, where: str,
            required: bool = True) -> Any:
        if not isinstance(obj, dict):
            raise self.fail(line, where.rstrip("."), "expected a JSON object")
        if key not in obj:
            if required:
                raise self.fail(line, where + key, "missing")
            return None
        value = obj[key]
        if not isinstance(value, kind) or (kind is str and not value.strip()):
            names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
            problem = "empty" if isinstance(value, str) else \
                f"expected {names}, got {type(value).__name__}"
            raise self.fail(line, where + key, problem)
        return value

    def context(self, text: str, line: int, field: str) -> str:
        if START_TAG in text or END_TAG in text:
            raise self.fail(line, field, f"contains an emphasis tag ({START_TAG}/{END_TAG})")
        return text


def load_squad2(path: str | Path) -> list[dict[str, Any]]:
    """Records of a SQuAD-2.0-format file (``{"data": [{"paragraphs": [{"context", "qas":
    [{"id", "question", "answers": [{"text", ...}], "is_impossible"}]}]}]}``). Unanswerable
    questions get ``answers: []``; duplicate gold texts are kept once, in order."""
    p = Path(path)
    value, line_of = _load_json(p)
    c = _Checker(p)
    articles = c.get(value, "data", list, 1, "")
    rows = []
    for a, article in enumerate(articles):
        where = f"data[{a}]."
        paragraphs = c.get(article, "paragraphs", list, line_of(article), where)
        for g, paragraph in enumerate(paragraphs):
            pwhere, pline = f"{where}paragraphs[{g}].", line_of(paragraph)
            context = c.context(c.get(paragraph, "context", str, pline, pwhere), pline,
                                pwhere + "context")
            for q, qa in enumerate(c.get(paragraph, "qas", list, pline, pwhere)):
                qwhere, qline = f"{pwhere}qas[{q}].", line_of(qa)
                qid = c.get(qa, "id", (str, int), qline, qwhere)
                question = c.get(qa, "question", str, qline, qwhere)
                impossible = c.get(qa, "is_impossible", bool, qline, qwhere, required=False)
                answers = c.get(qa, "answers", list, qline, qwhere)
                texts = []
                for k, ans in enumerate(answers):
                    texts.append(c.get(ans, "text", str, line_of(ans) if isinstance(ans, dict)
                                       else qline, f"{qwhere}answers[{k}]."))
                if not texts and not impossible:
                    raise c.fail(qline, qwhere + "answers", "empty for an answerable question "
                                 "(set is_impossible: true)")
                rows.append({"id": str(qid), "question": question, "context": context,
                             "answers": [] if impossible else list(dict.fromkeys(texts))})
    return rows


def load_hotpotqa(path: str | Path) -> list[dict[str, Any]]:
    """Records of a HotpotQA-format file: a JSON array (or JSON Lines) of ``{"_id", "question",
    "answer", "context": [[title, [sentence, ...]], ...]}``. The context is one line per
    paragraph, ``"<title>: <sentences joined by spaces>"``; ``supporting_facts`` is kept."""
    p = Path(path)
    c = _Checker(p)
    rows = []
    for entry, line, prefix in _iter_json_or_lines(p):
        if not isinstance(entry, dict):
            raise c.fail(line, prefix.rstrip(".") or "(row)", "expected a JSON object")
        key = "_id" if "_id" in entry else "id"
        qid = c.get(entry, key, (str, int), line, prefix)
        question = c.get(entry, "question", str, line, prefix)
        answer = c.get(entry, "answer", str, line, prefix)
        paragraphs = c.get(entry, "context", list, line, prefix)
        lines = []
        for k, paragraph in enumerate(paragraphs):
            field = f"{prefix}context[{k}]"
            if (not isinstance(paragraph, list) or len(paragraph) != 2
                    or not isinstance(paragraph[0], str) or not isinstance(paragraph[1], list)
                    or not all(isinstance(s, str) for s in paragraph[1])):
                raise c.fail(line, field, "expected [title, [sentence, ...]]")
            body = " ".join(" ".join(s.split()) for s in paragraph[1] if s.strip())
            lines.append(f"{' '.join(paragraph[0].split())}: {body}")
        if not lines:
            raise c.fail(line, prefix + "context", "empty")
        context = c.context("\n".join(lines), line, prefix + "context")
        row = {"id": str(qid), "question": question, "context": context, "answers": [answer]}
        if "supporting_facts" in entry:
            row["supporting_facts"] = entry["supporting_facts"]
        rows.append(row)
    return rows


LOADERS = {"squad2": load_squad2, "hotpotqa": load_hotpotqa}
"""Format name -> loader (``emphasis_data`` stage, ``source``)."""
