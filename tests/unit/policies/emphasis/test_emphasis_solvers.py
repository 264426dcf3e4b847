"""Solvers: the scripted mechanism, a local Hugging Face model, and an OpenAI-compatible endpoint
served by a real HTTP server started here."""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from rewards.base import REWARDS
from rewards.verifiable.qa import exact_match
from rlhf.errors import UserError
from rlhf.policies.emphasis.data import synthetic_examples, to_rl_row
from rlhf.policies.emphasis.solvers import (
    FuzzySolver, LexicalSolver, build_solver, clean_llm_answer, extract_answer, keywords,
    solve_unique,
)
from rlhf.policies.emphasis.spans import END_TAG, START_TAG, emphasize, segment


def test_lexical_solver_is_fooled_by_a_distractor_unless_the_fact_is_emphasised():
    question = "Where does Mia work each day?"
    context = "Mia is a cook at the market. Each day Tom does work at the bank. Ann sings."
    solver = LexicalSolver(100.0)
    assert keywords(question) == {"mia", "work", "day"}
    assert solver.answer_one(question, context) == "bank"  # 2 shared keywords beat 1
    tagged = emphasize(context, segment(context), [0]).tagged
    assert solver.answer_one(question, tagged) == "market"
    wrong = emphasize(context, segment(context), [2]).tagged
    assert solver.answer_one(question, wrong) == "Ann sings"  # emphasis always wins
    assert LexicalSolver(0.0).answer_one(question, tagged) == "bank"  # no bonus: no effect
    # the soft fuzzy solver also follows strong emphasis
    assert FuzzySolver(0.5).answer_one(question, context) == "bank"
    assert FuzzySolver(0.5).answer_one(question, tagged) == "market"


def test_answer_extraction_rule():
    q = keywords("Which town does Mia live in?")
    assert extract_answer("Mia has a small house in Oslo.", q) == "Oslo"
    assert extract_answer("Last spring Mia moved to New York.", q) == "New York"
    assert extract_answer("It was in the town, of course.", q) == "course"
    assert extract_answer("Mia lives in the town.", q) == "lives"
    assert extract_answer("the of in", q) == ""
    assert LexicalSolver(1.0).answer_one("q?", "") == ""


def test_scripted_solvers_on_synthetic_data():
    rows = synthetic_examples(200, seed=11, p_fool=0.5)
    for solver in (LexicalSolver(100.0), FuzzySolver(0.5)):
        plain = [exact_match(solver.answer_one(r["question"], r["context"]), r["answers"])
                 for r in rows]
        helped = [exact_match(solver.answer_one(
            r["question"], emphasize(r["context"], segment(r["context"]),
                                     r["gold_units"]).tagged), r["answers"]) for r in rows]
        assert 0.3 < sum(plain) / len(rows) < 0.7
        assert sum(helped) / len(rows) >= 0.95
    fooled = [r["fooling"] for r in rows]
    lexical = [exact_match(LexicalSolver(100.0).answer_one(r["question"], r["context"]),
                           r["answers"]) for r in rows]
    assert all((m == 0.0) == f for m, f in zip(lexical, fooled))


def test_solve_unique_asks_once_per_pair():
    asked = []

    class Counting:
        def answer(self, questions, contexts):
            asked.extend(questions)
            return [q.upper() for q in questions]

    assert solve_unique(Counting(), ["a", "b", "a"], ["x", "x", "x"]) == ["A", "B", "A"]
    assert asked == ["a", "b"] and solve_unique(Counting(), [], []) == []


def test_clean_llm_answer():
    assert clean_llm_answer("\n  Answer: Oslo\nbecause") == "Oslo"
    assert clean_llm_answer("  ") == ""


def test_hugging_face_solver_plumbing_with_a_tiny_model():
    solver = build_solver({"type": "hf", "model": "tiny:lm", "max_new_tokens": 4,
                           "batch_size": 2})
    rows = synthetic_examples(3, seed=0)
    answers = solver.answer([r["question"] for r in rows],
                            [emphasize(r["context"], segment(r["context"]), [0]).tagged
                             for r in rows])
    assert len(answers) == 3 and all(isinstance(a, str) for a in answers)


# -- an OpenAI-compatible chat endpoint on a real local HTTP server ----------------------------


class ChatHandler(BaseHTTPRequestHandler):
    """``POST /v1/chat/completions``: answers with the lexical solver read out of the prompt;
    checks the bearer key; fails once with 503 for a question containing 'flaky'; 400 for
    'reject'."""

    key = "sk-test-123"
    seen: list[dict] = []
    flaky_done: set[str] = set()

    def log_message(self, *args):  # quiet
        pass

    def _send(self, status, payload):
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):  # noqa: N802 - http.server API
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path != "/v1/chat/completions":
            return self._send(404, {"error": "not found"})
        if self.headers.get("Authorization") != f"Bearer {self.key}":
            return self._send(401, {"error": {"message": "bad key"}})
        type(self).seen.append(body)
        prompt = body["messages"][-1]["content"]
        context = re.search(r"Context: (.*)\n\nQuestion:", prompt, re.S).group(1)
        question = re.search(r"Question: (.*)\nAnswer:", prompt, re.S).group(1)
        if "reject" in question:
            return self._send(400, {"error": {"message": "rejected"}})
        if "flaky" in question and question not in type(self).flaky_done:
            type(self).flaky_done.add(question)
            return self._send(503, {"error": {"message": "try again"}})
        answer = LexicalSolver(100.0).answer_one(question, context)
        self._send(200, {"id": "x", "object": "chat.completion", "model": body["model"],
                         "choices": [{"index": 0, "finish_reason": "stop",
                                      "message": {"role": "assistant",
                                                  "content": f"Answer: {answer}\n"}}]})


@pytest.fixture
def server():
    ChatHandler.seen, ChatHandler.flaky_done = [], set()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), ChatHandler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


def test_openai_endpoint_solver_against_a_local_server(server, monkeypatch):
    monkeypatch.setenv("TEST_SOLVER_KEY", ChatHandler.key)
    spec = {"type": "openai", "url": server, "model": "tiny-solver",
            "api_key_env": "TEST_SOLVER_KEY", "retry_backoff": 0.01, "concurrency": 3}
    solver = build_solver(spec)
    question = "Where does Mia work each day?"
    context = "Mia is a cook at the market. Each day Tom does work at the bank."
    tagged = f"{START_TAG}Mia is a cook at the market.{END_TAG} Each day Tom does work at the bank."
    flaky = "Where does Mia work each day, flaky?"
    answers = solver.answer([question, question, flaky, "reject me?"],
                            [context, tagged, tagged, context])
    assert answers[:3] == ["bank", "market", "market"]  # the 503 was retried
    assert answers[3] is None and "400" in solver.last_errors[0]
    body = ChatHandler.seen[0]
    assert body["model"] == "tiny-solver" and body["temperature"] == 0.0
    assert body["messages"][-1]["role"] == "user"
    assert any(START_TAG in b["messages"][-1]["content"] for b in ChatHandler.seen)


def test_openai_endpoint_as_the_reward_solver(server, monkeypatch):
    monkeypatch.setenv("TEST_SOLVER_KEY", ChatHandler.key)
    rows = [to_rl_row(r) for r in synthetic_examples(6, seed=2)]
    reward = REWARDS.get("emphasis.solver")(solver={
        "type": "openai", "url": server + "/chat/completions", "model": "m",
        "api_key_env": "TEST_SOLVER_KEY"})
    values = reward([r["prompt"] for r in rows], [str(r["gold_units"][0]) for r in rows],
                    **{k: [r[k] for r in rows] for k in ("context", "question", "answers")})
    assert values == [1.0] * len(rows)


def test_openai_endpoint_key_errors(server, monkeypatch):
    monkeypatch.delenv("TEST_SOLVER_KEY", raising=False)
    solver = build_solver({"type": "openai", "url": server, "model": "m",
                           "api_key_env": "TEST_SOLVER_KEY"})
    with pytest.raises(UserError, match="TEST_SOLVER_KEY"):
        solver.answer(["q"], ["c."])
    monkeypatch.setenv("TEST_SOLVER_KEY", "wrong")
    assert solver.answer(["q?"], ["c."]) == [None] and "401" in solver.last_errors[0]
    keyless = build_solver({"type": "openai", "url": server, "model": "m", "api_key_env": None})
    assert keyless.answer(["q?"], ["c."]) == [None]  # the server wants a key
