"""Frozen Solvers: answer a question from an (emphasised) context. Never trained here.

A solver is anything with ``answer(questions, contexts) -> list[str | None]`` (``None``: this item
could not be answered, e.g. an HTTP error; the reward then leaves the row unscored). The context
it receives carries the ``<start_important>`` / ``<end_important>`` tags. A recipe picks one with a
mapping whose ``type`` is:

- ``lexical`` — the scripted offline solver of the demo (:class:`LexicalSolver`);
- ``fuzzy`` — a second scripted solver with a different retriever (:class:`FuzzySolver`), used to
  test transfer;
- ``callable`` — any Python function ``module:function``: ``fn(question, context) -> str``, or with
  ``batched: true`` ``fn(questions, contexts) -> list[str]``; ``params`` are passed as keywords;
- ``hf`` — a local Hugging Face causal LM (hub id, path, ``tiny:lm``), greedy decoding of the
  answer after a prompt template;
- ``openai`` — an OpenAI-compatible chat-completions endpoint: ``url`` (a base such as
  ``http://host:8000/v1``, or the full ``.../chat/completions``), ``model``, and the API key read
  from the environment variable named by ``api_key_env`` (``null``: no key is sent). Requests are
  made with httpx, ``concurrency`` at a time, retried on connection errors, 429 and 5xx.

**The scripted solvers' mechanism** (what makes emphasis matter offline). Words are ``\\w+`` in
lower case; ``STOPWORDS`` are function words; the question's *keywords* are its words minus
stopwords. The context is split into sentences (:func:`~rlhf.policies.emphasis.spans.segment`) of
the tag-free text; a sentence is *emphasised* if it overlaps a tagged span.

- ``lexical``: score(sentence) = number of distinct question keywords in it + ``emphasis_bonus`` if
  emphasised (default 100: any emphasised sentence beats any other — a hard preference). Ties go
  to the earliest sentence.
- ``fuzzy``: score(sentence) = ``rapidfuzz.fuzz.token_set_ratio(question, sentence) / 100`` +
  ``emphasis_bonus`` if emphasised (default 0.5: a soft preference that a much closer unemphasised
  sentence can still beat).
- Both answer with the last maximal run of words of the best sentence that are neither stopwords
  nor question keywords (punctuation ends a run): for "Where does Mia work?" and "Mia is a cook at
  the market." that is ``market``. A sentence that repeats the question's wording about someone
  else (a *distractor*) outscores the sentence that holds the answer, so the plain solver is
  fooled — unless the right sentence is emphasised.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated, Any, Literal, Protocol

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from rlhf.errors import UserError
from rlhf.policies.emphasis.spans import END_TAG, START_TAG, parse_tagged, segment

STOPWORDS = frozenset("""
a an the of in on at to for from by with as and or but not no is are was were be been being am do
does did has have had will would can could should may might must shall what which who whom whose
where when why how that this these those there here it its he she they them his her their him i
you your we our me my into out up about over after before than then so if each every all any
""".split())

_WORD_RE = re.compile(r"\w+")
_TOKEN_RE = re.compile(r"\w+(?:['’]\w+)*|[^\w\s]")

DEFAULT_LLM_PROMPT = (
    "Answer the question with a short span copied from the context. Text between "
    f"{START_TAG} and {END_TAG} was marked as important.\n\n"
    "Context: {context}\n\nQuestion: {question}\nAnswer:")
"""Prompt of the ``hf`` and ``openai`` solvers; placeholders ``{context}`` and ``{question}``."""


class Solver(Protocol):
    """What the emphasis reward and evaluation need from a solver."""

    def answer(self, questions: Sequence[str], contexts: Sequence[str]) -> list[str | None]:
        """One answer per (question, tagged context); ``None`` where this item failed."""


# -- the scripted solvers ---------------------------------------------------------------------


def keywords(text: str) -> set[str]:
    """Lower-cased words of ``text`` that are not stopwords."""
    return {w for w in _WORD_RE.findall(text.lower()) if w not in STOPWORDS}


def extract_answer(sentence: str, question_keywords: set[str]) -> str:
    """The last maximal run of words that are neither stopwords nor question keywords."""
    runs: list[list[str]] = [[]]
    for token in _TOKEN_RE.findall(sentence):
        low = token.lower()
        if _WORD_RE.match(token) and low not in STOPWORDS and low not in question_keywords:
            runs[-1].append(token)
        elif runs[-1]:
            runs.append([])
    found = [r for r in runs if r]
    return " ".join(found[-1]) if found else ""


def emphasised_sentences(tagged: str) -> list[tuple[str, bool]]:
    """The sentences of a tagged context with whether each overlaps a tagged span."""
    plain, spans = parse_tagged(tagged)
    out = []
    for unit in segment(plain, "sentence"):
        marked = any(s < unit.end and unit.start < e for s, e in spans)
        out.append((unit.text(plain), marked))
    return out


class _ScriptedSolver:
    def __init__(self, emphasis_bonus: float) -> None:
        self.emphasis_bonus = emphasis_bonus

    def similarity(self, question: str, sentence: str, q_keywords: set[str]) -> float:
        raise NotImplementedError

    def answer_one(self, question: str, context: str) -> str:
        sentences = emphasised_sentences(context)
        if not sentences:
            return ""
        q_keywords = keywords(question)
        scores = [self.similarity(question, s, q_keywords) + (self.emphasis_bonus if marked else 0)
                  for s, marked in sentences]
        best = max(range(len(scores)), key=lambda i: (scores[i], -i))  # ties: earliest
        return extract_answer(sentences[best][0], q_keywords)

    def answer(self, questions: Sequence[str], contexts: Sequence[str]) -> list[str | None]:
        return [self.answer_one(q, c) for q, c in zip(questions, contexts, strict=True)]


class LexicalSolver(_ScriptedSolver):
    """Keyword-overlap retriever with a hard preference for emphasised sentences."""

    def similarity(self, question: str, sentence: str, q_keywords: set[str]) -> float:
        return float(len(q_keywords & keywords(sentence)))


class FuzzySolver(_ScriptedSolver):
    """Fuzzy token-set retriever (rapidfuzz) with a soft preference for emphasised sentences."""

    def similarity(self, question: str, sentence: str, q_keywords: set[str]) -> float:
        from rapidfuzz import fuzz

        return fuzz.token_set_ratio(question.lower(), sentence.lower()) / 100.0


# -- callables, local HF models, OpenAI-compatible endpoints ----------------------------------


class CallableSolver:
    """A user's function as a solver."""

    def __init__(self, fn: Callable[..., Any], batched: bool, params: dict[str, Any]) -> None:
        self.fn, self.batched, self.params = fn, batched, params

    def answer(self, questions: Sequence[str], contexts: Sequence[str]) -> list[str | None]:
        if self.batched:
            out = list(self.fn(list(questions), list(contexts), **self.params))
            if len(out) != len(questions):
                raise ValueError(f"solver returned {len(out)} answers for {len(questions)} items")
        else:
            out = [self.fn(q, c, **self.params) for q, c in zip(questions, contexts, strict=True)]
        return [None if a is None else str(a) for a in out]


def clean_llm_answer(text: str) -> str:
    """The first non-empty line of a generated answer, without an ``Answer:`` prefix."""
    for line in text.splitlines():
        line = line.strip()
        if line:
            return re.sub(r"^answer\s*:\s*", "", line, flags=re.IGNORECASE).strip()
    return ""


class HFSolver:
    """A local causal LM, loaded on first use, answering greedily after ``template``."""

    def __init__(self, spec: HFSolverSpec) -> None:
        self.spec = spec
        self._model: Any = None
        self._tokenizer: Any = None

    def _load(self) -> None:
        from rlhf.models import load_causal_lm, load_tokenizer

        self._tokenizer = load_tokenizer(self.spec.model, self.spec.trust_remote_code)
        self._tokenizer.padding_side = "left"
        self._tokenizer.truncation_side = "left"
        if self._tokenizer.pad_token_id is None:
            self._tokenizer.pad_token = self._tokenizer.eos_token
        self._model = load_causal_lm(self.spec.model, self.spec.trust_remote_code).eval()

    def answer(self, questions: Sequence[str], contexts: Sequence[str]) -> list[str | None]:
        import torch

        if self._model is None:
            self._load()
        tok, s = self._tokenizer, self.spec
        prompts = [s.template.format(question=q, context=c) for q, c in zip(questions, contexts,
                                                                             strict=True)]
        if s.chat and tok.chat_template:
            prompts = [tok.apply_chat_template([{"role": "user", "content": p}], tokenize=False,
                                               add_generation_prompt=True) for p in prompts]
        limit = getattr(self._model.config, "max_position_embeddings", None) or 2048
        out: list[str | None] = []
        with torch.no_grad():
            for start in range(0, len(prompts), s.batch_size):
                enc = tok(prompts[start:start + s.batch_size], return_tensors="pt", padding=True,
                          truncation=True, max_length=max(8, limit - s.max_new_tokens),
                          add_special_tokens=False)
                gen = self._model.generate(**enc, do_sample=False, max_new_tokens=s.max_new_tokens,
                                           pad_token_id=tok.pad_token_id)
                texts = tok.batch_decode(gen[:, enc["input_ids"].shape[1]:],
                                         skip_special_tokens=True)
                out += [clean_llm_answer(t) for t in texts]
        return out


class OpenAISolver:
    """An OpenAI-compatible ``/chat/completions`` endpoint, called with httpx."""

    RETRY_STATUS = frozenset({429, 500, 502, 503, 504})

    def __init__(self, spec: OpenAISolverSpec) -> None:
        self.spec = spec
        url = spec.url.rstrip("/")
        self.endpoint = url if url.endswith("/chat/completions") else url + "/chat/completions"
        self.last_errors: list[str] = []

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self.spec.api_key_env:
            key = os.environ.get(self.spec.api_key_env)
            if not key:
                raise UserError(f"solver {self.endpoint}: the environment variable "
                                f"{self.spec.api_key_env} (api_key_env) is not set")
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def _one(self, client: Any, headers: dict[str, str], question: str, context: str) -> str:
        import httpx

        s = self.spec
        messages = [{"role": "system", "content": s.system}] if s.system else []
        messages.append({"role": "user",
                         "content": s.template.format(question=question, context=context)})
        body = {"model": s.model, "messages": messages, "temperature": s.temperature,
                "max_tokens": s.max_tokens}
        for attempt in range(s.max_retries + 1):
            try:
                response = client.post(self.endpoint, json=body, headers=headers)
            except httpx.TransportError:
                if attempt == s.max_retries:
                    raise
            else:
                if response.status_code not in self.RETRY_STATUS or attempt == s.max_retries:
                    response.raise_for_status()
                    content = response.json()["choices"][0]["message"]["content"]
                    return clean_llm_answer(content or "")
            time.sleep(s.retry_backoff * 2 ** attempt)
        raise RuntimeError("unreachable")

    def answer(self, questions: Sequence[str], contexts: Sequence[str]) -> list[str | None]:
        import httpx

        headers = self._headers()
        self.last_errors = []

        def call(pair: tuple[str, str]) -> str | None:
            try:
                return self._one(client, headers, *pair)
            except (httpx.HTTPError, KeyError, IndexError, TypeError, ValueError) as exc:
                self.last_errors.append(f"{type(exc).__name__}: {exc}")
                return None

        with httpx.Client(timeout=self.spec.timeout) as client, \
                ThreadPoolExecutor(max_workers=self.spec.concurrency) as pool:
            return list(pool.map(call, zip(questions, contexts, strict=True)))


# -- specs (validated in recipes before any compute) ------------------------------------------


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class LexicalSolverSpec(_Spec):
    type: Literal["lexical"] = "lexical"
    emphasis_bonus: float = Field(100.0, ge=0)
    """Added to an emphasised sentence's keyword count (100: emphasis always wins)."""


class FuzzySolverSpec(_Spec):
    type: Literal["fuzzy"] = "fuzzy"
    emphasis_bonus: float = Field(0.5, ge=0)
    """Added to an emphasised sentence's similarity in [0, 1] (0.5: a soft preference)."""


class CallableSolverSpec(_Spec):
    type: Literal["callable"] = "callable"
    target: str
    """``module:function``."""
    batched: bool = False
    params: dict[str, Any] = Field(default_factory=dict)


class HFSolverSpec(_Spec):
    type: Literal["hf"] = "hf"
    model: str
    """Hub id, local path or ``tiny:lm``."""
    template: str = DEFAULT_LLM_PROMPT
    chat: bool = True
    """Wrap the prompt in the tokenizer's chat template when it has one."""
    max_new_tokens: int = Field(16, ge=1)
    batch_size: int = Field(8, ge=1)
    trust_remote_code: bool = False


class OpenAISolverSpec(_Spec):
    type: Literal["openai"] = "openai"
    url: str = Field(pattern=r"^https?://")
    model: str
    api_key_env: str | None = "OPENAI_API_KEY"
    """Name of the environment variable holding the key (``null``: send none)."""
    template: str = DEFAULT_LLM_PROMPT
    system: str | None = None
    temperature: float = Field(0.0, ge=0)
    max_tokens: int = Field(32, ge=1)
    timeout: float = Field(60.0, gt=0)
    """Seconds per request."""
    concurrency: int = Field(4, ge=1)
    max_retries: int = Field(2, ge=0)
    retry_backoff: float = Field(0.5, ge=0)
    """Seconds before the first retry; doubled each time."""


def _coerce(value: Any) -> Any:
    """``"lexical"`` / ``"fuzzy"`` as a shorthand for ``{type: ...}``."""
    if isinstance(value, str):
        return {"type": value}
    return value


SolverSpec = Annotated[
    LexicalSolverSpec | FuzzySolverSpec | CallableSolverSpec | HFSolverSpec | OpenAISolverSpec,
    Field(discriminator="type"), BeforeValidator(_coerce)]


def build_solver(spec: Any) -> Solver:
    """The solver of a spec (a spec model, or a mapping / shorthand string to validate)."""
    if not isinstance(spec, BaseModel):
        from pydantic import TypeAdapter

        spec = TypeAdapter(SolverSpec).validate_python(spec)
    if isinstance(spec, LexicalSolverSpec):
        return LexicalSolver(spec.emphasis_bonus)
    if isinstance(spec, FuzzySolverSpec):
        return FuzzySolver(spec.emphasis_bonus)
    if isinstance(spec, CallableSolverSpec):
        from rlhf.registry import import_target

        fn = import_target(spec.target, "solver")
        if not callable(fn):
            raise UserError(f"solver {spec.target!r} is not callable")
        return CallableSolver(fn, spec.batched, spec.params)
    if isinstance(spec, HFSolverSpec):
        return HFSolver(spec)
    if isinstance(spec, OpenAISolverSpec):
        return OpenAISolver(spec)
    raise TypeError(f"unknown solver spec {spec!r}")


def solve_unique(solver: Solver, questions: Sequence[str], contexts: Sequence[str]
                 ) -> list[str | None]:
    """Ask the solver once per distinct (question, context) pair; answers in input order."""
    keys = list(zip(questions, contexts, strict=True))
    unique = list(dict.fromkeys(keys))
    if not unique:
        return []
    answers = solver.answer([q for q, _ in unique], [c for _, c in unique])
    if len(answers) != len(unique):
        raise ValueError(f"solver returned {len(answers)} answers for {len(unique)} items")
    table = dict(zip(unique, answers, strict=True))
    return [table[k] for k in keys]
