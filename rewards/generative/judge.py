"""LLM judges: something that turns judge prompts into judgment texts, and the code that fills
templates, runs a judge in both answer orders and parses the verdicts.

A judge is any object with ``generate(texts: list[str]) -> list[str]`` (one judgment per
rendered template). Two are provided:

- :class:`ModelJudge`: a causal LM and its tokenizer (``rlhf.models``), loaded on first use. Each
  text is wrapped in the tokenizer's chat template as one user turn (when it has one), batches
  are left-padded and decoded greedily for ``max_new_tokens`` tokens.
- :class:`CallableJudge`: any Python callable ``fn(list[str]) -> list[str]`` (a scripted judge in
  tests, an API client), found by ``"module:function"``.

Both go through the same :func:`judge_pairs` / :func:`judge_points`, so a scripted judge tests
exactly the path a model judge takes. Modes (StepAudio 2.5 / Step-Audio-R1.5):

- ``pairwise_reference``: the candidate against a reference answer (``reference`` column);
- ``pairwise``: the candidate against another candidate (``other`` column);
- ``pointwise``: the candidate alone, scored ``Score: N`` (optionally rubric-conditioned).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from rewards.base import completion_text
from rewards.generative.templates import PAIR_SLOTS, JudgeTemplate
from rewards.generative.verdict import Verdict, VerdictKind, parse_verdict, swap_verdict
from rlhf.errors import UserError

Mode = Literal["pairwise_reference", "pairwise", "pointwise"]
MODES: tuple[str, ...] = ("pairwise_reference", "pairwise", "pointwise")
DEFAULT_TEMPLATES: dict[str, str] = {"pairwise_reference": "vs_reference",
                                     "pairwise": "pairwise", "pointwise": "pointwise_rubric"}
"""The shipped template each mode uses when none is named."""


def verdict_kind(mode: str) -> VerdictKind:
    """``pairwise`` verdicts for the two pairwise modes, ``score`` for ``pointwise``."""
    return "score" if mode == "pointwise" else "pairwise"


def check_template(template: JudgeTemplate, mode: str) -> None:
    """A pairwise mode needs ``{response_a}`` and ``{response_b}`` (the swapped slots) and no
    ``{response}``; ``pointwise`` needs ``{response}`` and neither slot."""
    used = set(template.placeholders)
    if mode == "pointwise":
        if "response" not in used or used & set(PAIR_SLOTS):
            raise UserError(f"judge template {template.name!r} does not fit mode pointwise: it "
                            "must use {response} and not {response_a}/{response_b}")
    elif not set(PAIR_SLOTS) <= used or "response" in used:
        raise UserError(f"judge template {template.name!r} does not fit mode {mode}: it must use "
                        "{response_a} and {response_b} (swapped for position debiasing) and "
                        "not {response}")


def as_text(value: Any) -> str | None:
    """A prompt or answer as plain text (chat messages: their contents, one per line)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, list):
        return "\n".join(str(m.get("content", "")) if isinstance(m, dict) else str(m)
                         for m in value)
    return completion_text(value)


class Judge(Protocol):
    """Turns rendered judge prompts into judgment texts, one per prompt, in order."""

    def generate(self, texts: list[str]) -> list[str]: ...


class CallableJudge:
    """A judge that is a Python callable ``fn(list[str]) -> list[str]``.

    Give the callable itself, or ``target="module:function"`` (imported now, so a typo fails
    before any compute; re-imported after unpickling).
    """

    def __init__(self, fn: Callable[[list[str]], Sequence[str]] | None = None,
                 target: str | None = None) -> None:
        if fn is None:
            if not target:
                raise UserError("a callable judge needs a function or 'module:function'")
            fn = _import_fn(target)
        self.fn, self.target = fn, target

    def generate(self, texts: list[str]) -> list[str]:
        out = list(self.fn(list(texts)))
        if len(out) != len(texts):
            raise UserError(f"judge {self.target or self.fn!r} returned {len(out)} judgments "
                            f"for {len(texts)} prompts")
        return [o if isinstance(o, str) else str(o) for o in out]

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        if self.target:
            state["fn"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if self.fn is None:
            self.fn = _import_fn(self.target or "")


def _import_fn(target: str) -> Callable[[list[str]], Sequence[str]]:
    from rlhf.registry import import_target

    fn = import_target(target, "judge function")
    if not callable(fn):
        raise UserError(f"judge function {target!r} is not callable")
    return fn


def format_for_model(tokenizer: Any, text: str) -> str:
    """The text as one user turn of the tokenizer's chat template, ready for the assistant's
    reply (``add_generation_prompt``); the text itself when the tokenizer has no template."""
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template([{"role": "user", "content": text}],
                                             tokenize=False, add_generation_prompt=True)
    return text


class ModelJudge:
    """A causal-LM judge: greedy decoding of the chat-formatted judge prompts, in batches.

    Give a model spec (``tiny:lm``, a directory, a hub id; loaded on first use, dropped when
    pickled) or an already loaded ``model`` and ``tokenizer`` (e.g. a trainer's, for evaluation).
    """

    def __init__(self, spec: str | None = None, *, model: Any = None, tokenizer: Any = None,
                 max_new_tokens: int = 8, batch_size: int = 16,
                 trust_remote_code: bool = False) -> None:
        if spec is None and (model is None or tokenizer is None):
            raise UserError("a model judge needs a model spec, or a model and its tokenizer")
        self.spec, self.model, self.tokenizer = spec, model, tokenizer
        self.max_new_tokens, self.batch_size = max_new_tokens, batch_size
        self.trust_remote_code = trust_remote_code

    def _load(self) -> None:
        if self.model is None or self.tokenizer is None:
            from rlhf.models import load_causal_lm, load_tokenizer

            assert self.spec is not None
            self.tokenizer = load_tokenizer(self.spec, self.trust_remote_code)
            self.model = load_causal_lm(self.spec, self.trust_remote_code)

    def generate(self, texts: list[str]) -> list[str]:
        """Greedy judgments: ``max_new_tokens`` at most per text, special tokens dropped."""
        import torch

        self._load()
        tok, model = self.tokenizer, self.model
        formatted = [format_for_model(tok, t) for t in texts]
        side, tok.padding_side = tok.padding_side, "left"
        was_training = model.training
        model.eval()
        out: list[str] = []
        try:
            with torch.no_grad():
                for start in range(0, len(formatted), self.batch_size):
                    enc = tok(formatted[start:start + self.batch_size], return_tensors="pt",
                              padding=True, add_special_tokens=False).to(model.device)
                    gen = model.generate(**enc, do_sample=False, max_new_tokens=self.max_new_tokens,
                                         pad_token_id=tok.pad_token_id)
                    new = gen[:, enc["input_ids"].shape[1]:]
                    out.extend(tok.batch_decode(new, skip_special_tokens=True))
        finally:
            tok.padding_side = side
            model.train(was_training)
        return out

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        if self.spec is not None:  # reload from the spec in the other process
            state["model"] = state["tokenizer"] = None
        return state


@dataclass(frozen=True)
class PairJudgment:
    """Both orders of one pairwise judgment. ``forward``: the candidate in slot A; ``backward``:
    the candidate in slot B (as parsed, i.e. from the other answer's side), or ``None`` when
    swapping is off."""

    forward: Verdict
    backward: Verdict | None = None

    @property
    def verdicts(self) -> list[Verdict]:
        """The verdicts from the candidate's point of view (``A`` = the candidate wins)."""
        return [self.forward] + ([swap_verdict(self.backward)] if self.backward else [])

    @property
    def consistent(self) -> bool | None:
        """Both orders parsed and agree once un-swapped; ``None`` without the swapped order."""
        if self.backward is None:
            return None
        first, second = self.verdicts
        return first.ok and second.ok and first.value == second.value


def _fields(context: dict[str, Any], **slots: Any) -> dict[str, str | None]:
    out = {k: as_text(v) for k, v in context.items()}
    out.update({k: as_text(v) for k, v in slots.items()})
    return out


def contexts_of(n: int, prompts: Sequence[Any], fixed_rubric: str | None = None,
                **columns: Sequence[Any] | None) -> list[dict[str, Any]]:
    """Per-row template values shared by both orders: ``prompt``, ``rubric`` (a column wins
    over the fixed text) and any other named column (``reference``)."""
    rows = []
    for i in range(n):
        row: dict[str, Any] = {"prompt": prompts[i] if i < len(prompts) else None,
                               "rubric": fixed_rubric}
        for name, values in columns.items():
            value = values[i] if values is not None and i < len(values) else None
            if value is not None or name not in row:
                row[name] = value
        rows.append(row)
    return rows


def judge_pairs(judge: Judge, template: JudgeTemplate, contexts: Sequence[dict[str, Any]],
                candidates: Sequence[Any], others: Sequence[Any],
                swap: bool = True) -> list[PairJudgment]:
    """Judge each candidate against its comparator, in both slot orders when ``swap``.

    All ``2n`` (or ``n``) prompts go to the judge in one call (a model judge batches them).
    """
    texts = [template.render(_fields(c, response_a=a, response_b=b))
             for c, a, b in zip(contexts, candidates, others, strict=True)]
    if swap:
        texts += [template.render(_fields(c, response_a=b, response_b=a))
                  for c, a, b in zip(contexts, candidates, others, strict=True)]
    outputs = judge.generate(texts)
    n = len(candidates)
    forward = [parse_verdict(t, "pairwise") for t in outputs[:n]]
    if not swap:
        return [PairJudgment(f) for f in forward]
    backward = [parse_verdict(t, "pairwise") for t in outputs[n:]]
    return [PairJudgment(f, b) for f, b in zip(forward, backward, strict=True)]


def judge_points(judge: Judge, template: JudgeTemplate, contexts: Sequence[dict[str, Any]],
                 responses: Sequence[Any], scale: int) -> list[Verdict]:
    """Score each response alone (``Score: N`` on ``1..scale``)."""
    texts = [template.render(_fields(c, response=r))
             for c, r in zip(contexts, responses, strict=True)]
    return [parse_verdict(t, "score", scale) for t in judge.generate(texts)]
