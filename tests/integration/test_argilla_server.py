"""The embedded Argilla server, for real: SDK in, annotators' queues out, CLI status/stop.

Uses the session-wide ``argilla_server`` fixture (tests/integration/conftest.py), plus one
short-lived server of its own for crash / restart / stop.
"""

from __future__ import annotations

import json
import stat
import time
import urllib.parse
import urllib.request
import uuid

import argilla as rg
import pytest
from typer.testing import CliRunner

from annotation.server.embedded import EmbeddedServer, free_port
from rlhf.cli.app import app as cli_app

PENDING_QUEUE = {"filters": {"and": [  # what the Argilla UI sends for an annotator's "Pending" tab
    {"type": "terms", "scope": {"entity": "response", "property": "status"}, "values": ["pending"]},
    {"type": "terms", "scope": {"entity": "record", "property": "status"}, "values": ["pending"]},
]}}


def _status_query(status: str) -> dict:
    return {"filters": {"and": [
        {"type": "terms", "scope": {"entity": "response", "property": "status"}, "values": [status]}]}}


def _search(server, dataset_id, body, api_key=None, *, me=True, limit=1000, offset=0):
    path = f"/api/v1/{'me/' if me else ''}datasets/{dataset_id}/records/search"
    code, payload = server.request("POST", path, body, api_key=api_key,
                                   params={"limit": limit, "offset": offset, "include": "responses"})
    assert code == 200, payload
    return payload


def _texts(payload) -> list[str]:
    return [item["record"]["fields"]["text"] for item in payload["items"]]


def _ids(payload) -> list[str]:
    return [item["record"]["id"] for item in payload["items"]]


def _respond(server, api_key, record_id, status, label=None):
    body = {"status": status}
    if label is not None:
        body["values"] = {"label": {"value": label}}
    code, payload = server.request("POST", f"/api/v1/records/{record_id}/responses", body, api_key=api_key)
    assert code == 201, payload
    return payload


def _make_dataset(server, workspace: str, n: int, min_submitted: int):
    client = rg.Argilla(api_url=server.url, api_key=server.api_key)
    if client.workspaces(workspace) is None:
        rg.Workspace(name=workspace, client=client).create()
    settings = rg.Settings(
        fields=[rg.TextField(name="text")],
        questions=[rg.LabelQuestion(name="label", labels=["a", "b"])],
        metadata=[rg.TermsMetadataProperty(name="policy"), rg.IntegerMetadataProperty(name="step")],
        distribution=rg.TaskDistribution(min_submitted=min_submitted),
    )
    name = f"ds-{uuid.uuid4().hex[:8]}"
    dataset = rg.Dataset(name=name, workspace=workspace, settings=settings, client=client).create()
    dataset.records.log([{"text": f"sample {i:02d}", "policy": f"p{i % 3}", "step": i} for i in range(n)])
    return dataset


@pytest.fixture(scope="module")
def team(argilla_server):
    """Workspace 'team' with annotators ann_a / ann_b (API keys)."""
    keys = {name: argilla_server.add_user(name, role="annotator", workspace="team") for name in ("ann_a", "ann_b")}
    return keys


def test_server_up_with_owner_and_private_credentials(argilla_server):
    code, status = argilla_server.request("GET", "/api/v1/status")
    assert code == 200 and status["search_engine"]["backend"] == "sqlite"
    code, me = argilla_server.request("GET", "/api/v1/me")
    assert code == 200 and me["role"] == "owner"
    for name in ("owner.json", "secret_key"):
        mode = stat.S_IMODE((argilla_server.data_dir / name).stat().st_mode)
        assert mode == 0o600, (name, oct(mode))
    assert argilla_server.request("GET", "/api/v1/me", api_key="wrong-key")[0] == 401


def test_annotator_pending_queue_submit_and_progress(argilla_server, team):
    dataset = _make_dataset(argilla_server, "team", n=12, min_submitted=1)
    ds_id = str(dataset.id)
    key_a, key_b = team["ann_a"], team["ann_b"]

    queue_a = _search(argilla_server, ds_id, PENDING_QUEUE, key_a)
    assert queue_a["total"] == 12 and sorted(_texts(queue_a)) == [f"sample {i:02d}" for i in range(12)]

    first = _ids(queue_a)[0]
    _respond(argilla_server, key_a, first, "submitted", "a")
    queue_a2 = _search(argilla_server, ds_id, PENDING_QUEUE, key_a)
    assert queue_a2["total"] == 11 and first not in _ids(queue_a2)
    submitted_a = _search(argilla_server, ds_id, _status_query("submitted"), key_a)
    assert _ids(submitted_a) == [first]
    assert submitted_a["items"][0]["record"]["responses"][0]["status"] == "submitted"
    # min_submitted=1: the record is completed, so it leaves ann_b's pending queue too
    queue_b = _search(argilla_server, ds_id, PENDING_QUEUE, key_b)
    assert queue_b["total"] == 11 and first not in _ids(queue_b)

    # ann_b discards one and drafts another
    ids_b = _ids(queue_b)
    _respond(argilla_server, key_b, ids_b[0], "discarded")
    _respond(argilla_server, key_b, ids_b[1], "draft", "b")
    assert _ids(_search(argilla_server, ds_id, _status_query("discarded"), key_b)) == [ids_b[0]]
    assert _ids(_search(argilla_server, ds_id, _status_query("draft"), key_b)) == [ids_b[1]]
    assert _search(argilla_server, ds_id, PENDING_QUEUE, key_b)["total"] == 9

    code, progress = argilla_server.request("GET", f"/api/v1/datasets/{ds_id}/progress")
    assert code == 200 and (progress["total"], progress["completed"], progress["pending"]) == (12, 1, 11)
    code, metrics_a = argilla_server.request("GET", f"/api/v1/me/datasets/{ds_id}/metrics", api_key=key_a)
    assert code == 200 and metrics_a["responses"] == {"total": 12, "submitted": 1, "discarded": 0,
                                                      "draft": 0, "pending": 11}
    code, metrics_b = argilla_server.request("GET", f"/api/v1/me/datasets/{ds_id}/metrics", api_key=key_b)
    assert metrics_b["responses"] == {"total": 12, "submitted": 0, "discarded": 1, "draft": 1, "pending": 10}
    # the SDK sees the same
    assert dataset.progress()["completed"] == 1


def test_queue_order_differs_between_annotators_and_is_stable(argilla_server, team):
    dataset = _make_dataset(argilla_server, "team", n=20, min_submitted=2)
    ds_id = str(dataset.id)
    order_a = _ids(_search(argilla_server, ds_id, PENDING_QUEUE, team["ann_a"]))
    order_b = _ids(_search(argilla_server, ds_id, PENDING_QUEUE, team["ann_b"]))
    assert sorted(order_a) == sorted(order_b) and len(order_a) == 20
    assert order_a != order_b
    assert order_a == _ids(_search(argilla_server, ds_id, PENDING_QUEUE, team["ann_a"]))
    # paging walks the same order
    pages = [_ids(_search(argilla_server, ds_id, PENDING_QUEUE, team["ann_a"], limit=7, offset=o))
             for o in (0, 7, 14)]
    assert sum(pages, []) == order_a
    # the owner's (non-/me) search is in insertion order
    owner = _search(argilla_server, ds_id, {}, me=False)
    assert _texts(owner) == [f"sample {i:02d}" for i in range(20)] and owner["total"] == 20


def test_filters_sorts_text_and_metadata_metrics(argilla_server, team):
    dataset = _make_dataset(argilla_server, "team", n=9, min_submitted=2)
    ds_id = str(dataset.id)

    def owner_search(body, **kw):
        return _search(argilla_server, ds_id, body, me=False, **kw)

    terms = {"filters": {"and": [{"type": "terms", "scope": {"entity": "metadata", "metadata_property": "policy"},
                                  "values": ["p1"]}]}}
    assert _texts(owner_search(terms)) == ["sample 01", "sample 04", "sample 07"]
    rng = {"filters": {"and": [{"type": "range", "scope": {"entity": "metadata", "metadata_property": "step"},
                                "ge": 3, "le": 5}]}}
    assert owner_search(rng)["total"] == 3
    by_step_desc = {"sort": [{"scope": {"entity": "metadata", "metadata_property": "step"}, "order": "desc"}]}
    assert _texts(owner_search(by_step_desc))[:3] == ["sample 08", "sample 07", "sample 06"]
    text = {"query": {"text": {"q": "sample 04", "field": "text"}}}
    assert _texts(owner_search(text)) == ["sample 04"]
    paged = owner_search({}, limit=4, offset=4)
    assert _texts(paged) == ["sample 04", "sample 05", "sample 06", "sample 07"] and paged["total"] == 9

    # response-value filter (per user) and the SDK's own filter syntax
    ids = _ids(owner_search({}))
    _respond(argilla_server, team["ann_a"], ids[0], "submitted", "a")
    _respond(argilla_server, team["ann_a"], ids[1], "submitted", "b")
    label_a = {"filters": {"and": [{"type": "terms", "scope": {"entity": "response", "question": "label"},
                                    "values": ["a"]}]}}
    assert _ids(_search(argilla_server, ds_id, label_a, team["ann_a"])) == [ids[0]]
    assert _search(argilla_server, ds_id, label_a, team["ann_b"])["total"] == 0
    found = list(dataset.records(query=rg.Query(filter=rg.Filter(("metadata.policy", "==", "p2")))))
    assert sorted(r.fields["text"] for r in found) == ["sample 02", "sample 05", "sample 08"]
    found = list(dataset.records(query=rg.Query(filter=rg.Filter(("response.status", "==", "submitted"))),
                                 with_responses=True))
    assert len(found) == 2

    code, props = argilla_server.request("GET", f"/api/v1/me/datasets/{ds_id}/metadata-properties")
    assert code == 200
    metrics = {p["name"]: argilla_server.request("GET", f"/api/v1/metadata-properties/{p['id']}/metrics")[1]
               for p in props["items"]}
    assert metrics["step"]["min"] == 0 and metrics["step"]["max"] == 8
    assert metrics["policy"]["total"] == 9
    assert sorted((v["term"], v["count"]) for v in metrics["policy"]["values"]) == [("p0", 3), ("p1", 3), ("p2", 3)]


def test_worker_recomputes_record_status_when_distribution_changes(argilla_server, team):
    dataset = _make_dataset(argilla_server, "team", n=3, min_submitted=2)
    ds_id = str(dataset.id)
    record = _ids(_search(argilla_server, ds_id, {}, me=False))[0]
    _respond(argilla_server, team["ann_a"], record, "submitted", "a")
    assert argilla_server.request("GET", f"/api/v1/datasets/{ds_id}/progress")[1]["completed"] == 0
    code, payload = argilla_server.request("PATCH", f"/api/v1/datasets/{ds_id}",
                                           {"distribution": {"strategy": "overlap", "min_submitted": 1}})
    assert code == 200, payload
    deadline = time.monotonic() + 60  # an rq job run by the embedded worker
    while argilla_server.request("GET", f"/api/v1/datasets/{ds_id}/progress")[1]["completed"] != 1:
        assert time.monotonic() < deadline, "the worker did not update the record status"
        time.sleep(0.3)


def test_add_user_is_idempotent_and_cli_users_add(argilla_server):
    key = argilla_server.add_user("ann_c", workspace="other")
    assert argilla_server.add_user("ann_c", workspace="other") == key
    assert argilla_server.request("GET", "/api/v1/me", api_key=key)[1]["role"] == "annotator"
    code, spaces = argilla_server.request("GET", "/api/v1/me/workspaces", api_key=key)
    assert [w["name"] for w in spaces["items"]] == ["other"]

    runner = CliRunner()
    result = runner.invoke(cli_app, ["annotate", "users", "add", "ann_cli", "--data-dir",
                                     str(argilla_server.data_dir)])
    assert result.exit_code == 0, result.output
    cli_key = argilla_server.user_api_key("ann_cli")
    assert cli_key not in result.output and "users.json" in result.output
    assert argilla_server.request("GET", "/api/v1/me", api_key=cli_key)[1]["username"] == "ann_cli"
    result = runner.invoke(cli_app, ["annotate", "status", "--data-dir", str(argilla_server.data_dir)])
    assert result.exit_code == 0 and "running at" in result.output and argilla_server.url in result.output
    assert argilla_server.api_key not in result.output


def _token(server, username, password) -> str:
    data = urllib.parse.urlencode({"username": username, "password": password}).encode()
    with urllib.request.urlopen(urllib.request.Request(f"{server.url}/api/v1/token", data=data), timeout=10) as r:
        return json.loads(r.read())["access_token"]


def _me_with_token(server, token) -> int:
    req = urllib.request.Request(f"{server.url}/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_cli_serve_crash_restart_keeps_data_and_logins_then_cli_stop(tmp_path, monkeypatch):
    """``rlhf annotate serve`` with ARGILLA_API_KEY set: the owner gets that key; kill -9 and
    restart keep users, data and UI logins; ``status`` / ``stop`` work from another process."""
    env_key = "env-owner-key-" + uuid.uuid4().hex
    monkeypatch.setenv("ARGILLA_API_KEY", env_key)
    monkeypatch.delenv("ARGILLA_USERNAME", raising=False)
    monkeypatch.delenv("ARGILLA_PASSWORD", raising=False)
    data_dir = tmp_path / "argilla"
    runner = CliRunner()
    server = EmbeddedServer(data_dir, credentials_from_env=False)
    try:
        t0 = time.monotonic()
        result = runner.invoke(cli_app, ["annotate", "serve", "--port", str(free_port()), "--data-dir", str(data_dir)])
        print(f"embedded server start (CLI serve): {time.monotonic() - t0:.1f}s")
        assert result.exit_code == 0, result.output
        server = EmbeddedServer(data_dir, credentials_from_env=False)
        assert server.url in result.output and str(server.credentials_path) in result.output
        assert env_key not in result.output and server.api_key == env_key
        assert server.request("GET", "/api/v1/me", api_key=env_key)[1]["role"] == "owner"
        key = server.add_user("ann_r", password="secret-pass-1")
        token = _token(server, "ann_r", "secret-pass-1")
        assert _me_with_token(server, token) == 200

        server.kill()
        assert not server.is_running()
        result = runner.invoke(cli_app, ["annotate", "status", "--json", "--data-dir", str(server.data_dir)])
        assert result.exit_code == 0 and json.loads(result.output)["running"] is False

        port = server.port
        server.restart(timeout=300)
        assert server.is_running() and server.port == port
        assert server.request("GET", "/api/v1/me", api_key=key)[1]["username"] == "ann_r"
        assert _me_with_token(server, token) == 200  # ARGILLA_AUTH_SECRET_KEY persisted

        # status / stop from "another process": a fresh EmbeddedServer on the same data dir
        other = EmbeddedServer(server.data_dir)
        assert other.is_running() and other.url == server.url
        result = runner.invoke(cli_app, ["annotate", "stop", "--data-dir", str(server.data_dir)])
        assert result.exit_code == 0 and "stopped" in result.output
        assert not server.is_running() and all(p is None for p in server.pids().values())
        result = runner.invoke(cli_app, ["annotate", "status", "--data-dir", str(server.data_dir)])
        assert result.exit_code == 0 and "not running" in result.output
    finally:
        server.stop()


def test_suggestions_ratings_and_vector_similarity(argilla_server, team):
    client = rg.Argilla(api_url=argilla_server.url, api_key=argilla_server.api_key)
    settings = rg.Settings(
        fields=[rg.TextField(name="text")],
        questions=[rg.LabelQuestion(name="label", labels=["a", "b"]),
                   rg.RatingQuestion(name="rating", values=[1, 2, 3, 4, 5]),
                   rg.MultiLabelQuestion(name="tags", labels=["x", "y", "z"])],
        vectors=[rg.VectorField(name="emb", dimensions=3)],
        metadata=[rg.FloatMetadataProperty(name="score")])
    dataset = rg.Dataset(name=f"adv-{uuid.uuid4().hex[:8]}", workspace="team", settings=settings,
                         client=client).create()
    dataset.records.log([rg.Record(
        fields={"text": f"Héllo wörld {i}"}, metadata={"score": i / 10}, vectors={"emb": [1.0, float(i), 0.0]},
        suggestions=[rg.Suggestion("label", "a" if i % 2 else "b", score=i / 6, agent="model-x"),
                     rg.Suggestion("tags", ["x", "y"] if i < 3 else ["z"])]) for i in range(6)])
    ds_id = str(dataset.id)

    def last_digits(body, **kw):
        return [t[-1] for t in _texts(_search(argilla_server, ds_id, body, me=False, **kw))]

    def sugg(question, prop, **flt):
        kind = "terms" if "values" in flt else "range"
        return {"filters": {"and": [{"type": kind, "scope": {"entity": "suggestion", "question": question,
                                                             "property": prop}, **flt}]}}

    assert last_digits(sugg("label", "value", values=["a"])) == ["1", "3", "5"]
    assert last_digits(sugg("label", "score", ge=0.5)) == ["3", "4", "5"]
    assert last_digits(sugg("tags", "value", values=["y"])) == ["0", "1", "2"]  # multi-label: any element
    assert last_digits({"sort": [{"scope": {"entity": "suggestion", "question": "label", "property": "score"},
                                  "order": "desc"}]}) == ["5", "4", "3", "2", "1", "0"]
    assert last_digits({"query": {"text": {"q": "wörld 3"}}}) == ["3"]
    assert last_digits({"filters": {"and": [{"type": "range", "scope": {"entity": "metadata",
                                             "metadata_property": "score"}, "ge": 0.2, "le": 0.4}]}}) == ["2", "3", "4"]

    key = team["ann_a"]
    ids = _ids(_search(argilla_server, ds_id, {}, me=False))
    for j, rid in enumerate(ids[:4]):
        code, payload = argilla_server.request("POST", f"/api/v1/records/{rid}/responses", {
            "values": {"label": {"value": "a"}, "rating": {"value": j + 1}, "tags": {"value": ["x"]}},
            "status": "submitted"}, api_key=key)
        assert code == 201, payload
    rating = {"scope": {"entity": "response", "question": "rating"}}
    found = _search(argilla_server, ds_id, {"filters": {"and": [{"type": "range", **rating, "ge": 2, "le": 3}]},
                                            "sort": [{**rating, "order": "desc"}]}, key)
    assert [it["record"]["responses"][0]["values"]["rating"]["value"] for it in found["items"]] == [3, 2]
    ordered = _search(argilla_server, ds_id, {"sort": [{**rating, "order": "asc"}]}, key)
    ratings = [(it["record"].get("responses") or [{}])[0].get("values", {}).get("rating", {}).get("value")
               for it in ordered["items"]]
    assert ratings == [1, 2, 3, 4, None, None]  # missing values last

    code, similar = argilla_server.request("POST", f"/api/v1/datasets/{ds_id}/records/search", {
        "query": {"vector": {"name": "emb", "value": [1.0, 5.0, 0.0], "order": "most_similar"}}},
        params={"limit": 3})
    assert code == 200, similar
    assert [it["record"]["fields"]["text"][-1] for it in similar["items"]] == ["5", "4", "3"]
    assert len(list(dataset.records(query=rg.Query(similar=rg.Similar(name="emb", value=[1.0, 2.0, 0.0])),
                                    limit=2))) == 2
