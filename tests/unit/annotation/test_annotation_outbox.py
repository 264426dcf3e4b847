"""The outbox journal, and push over a fake server that fails before / after storing a batch."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest

from annotation.argilla.backend import ArgillaBackend
from annotation.argilla.connection import Connection
from annotation.outbox import Outbox
from annotation.pairs import load_pairs
from rlhf.errors import UserError

# ---------------------------------------------------------------------------- journal


def test_add_pending_and_mark_sent(tmp_path, pairs_file):
    pairs, _ = load_pairs(pairs_file)
    path = tmp_path / "out" / "outbox.jsonl"
    with Outbox(path, header={"dataset": "d"}) as box:
        assert box.add(pairs[:4]) == 4 and box.add(pairs) == 2  # only the new ones
        assert [p.key for p in box.pending("ds1")] == [p.key for p in pairs]
        box.mark_sent([pairs[0].key, pairs[1].key], "ds1")
        assert [p.key for p in box.pending("ds1")] == [p.key for p in pairs[2:]]
        assert len(box.pending("ds2")) == 6  # sent to another dataset id: not sent here
        with pytest.raises(KeyError):
            box.mark_sent(["nope"], "ds1")
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert lines[0]["op"] == "header" and lines[0]["dataset"] == "d"
    again = Outbox(path)  # replay
    assert len(again) == 6 and again.is_sent(pairs[1].key, "ds1")
    assert not again.is_sent(pairs[2].key, "ds1")
    assert again.pairs[pairs[0].key] == pairs[0]  # round trip of the pair itself


def test_a_line_cut_short_by_a_crash_is_dropped(tmp_path, pairs_file):
    pairs, _ = load_pairs(pairs_file)
    path = tmp_path / "outbox.jsonl"
    with Outbox(path) as box:
        box.add(pairs[:2])
        box.mark_sent([pairs[0].key], "ds")
    with path.open("a") as fh:  # a crash in the middle of writing the "sent" of pair 1
        fh.write('{"op": "sent", "dataset_id": "ds", "keys": ["' + pairs[1].key[:10])
    assert not Outbox(path).is_sent(pairs[1].key, "ds")  # read-only: ignored, file untouched
    with Outbox(path) as box:  # under the lock: repaired
        assert path.read_text().endswith("\n")
        assert [p.key for p in box.pending("ds")] == [pairs[1].key]
        box.mark_sent([pairs[1].key], "ds")
    assert Outbox(path).pending("ds") == []


def test_corrupt_line_is_a_user_error(tmp_path):
    path = tmp_path / "outbox.jsonl"
    path.write_text('{"op": "header"}\nnot json\n')
    with pytest.raises(UserError, match=r"outbox.jsonl:2: corrupt outbox line"):
        Outbox(path)


# ---------------------------------------------------------------------------- push, fake server


class FakeServer:
    """Records keyed by external id (like Argilla's upsert); can fail on a chosen call."""

    def __init__(self):
        self.records: dict[str, dict] = {}
        self.calls: list[list[str]] = []
        self.fail_on: dict[int, str] = {}  # call index -> "before" | "after"
        self.lock = threading.Lock()

    def upsert(self, payloads):
        with self.lock:
            index = len(self.calls)
            self.calls.append([p["id"] for p in payloads])
            mode = self.fail_on.pop(index, None)
            if mode == "before":
                raise httpx.ConnectError("connection refused")
            for p in payloads:
                self.records[p["id"]] = p
            if mode == "after":  # stored, but the answer never arrives
                raise httpx.ReadError("server closed the connection")


class FakeBackend(ArgillaBackend):
    def __init__(self, server: FakeServer, outbox: Path, dataset_id: str = "ds-1", **kw):
        super().__init__(Connection("http://fake", "secret-key-123"), "speech", outbox=outbox,
                         **kw)
        self.server = server
        self.dataset_id = dataset_id

    def dataset(self, create=False):
        return SimpleNamespace(id=self.dataset_id, name="speech")

    def _upsert(self, dataset_id, payloads):
        self.server.upsert(payloads)


def test_push_sends_everything_once_and_repush_is_a_no_op(tmp_path, pairs_file):
    pairs, _ = load_pairs(pairs_file)
    server = FakeServer()
    seen = []
    report = FakeBackend(server, tmp_path / "ob.jsonl", batch_size=4).push(
        pairs, on_batch=lambda done, total: seen.append((done, total)))
    assert (report.total, report.added, report.sent, report.already_sent) == (6, 6, 6, 0)
    assert report.batches == 2 and report.complete and seen == [(4, 6), (6, 6)]
    assert set(server.records) == {p.key for p in pairs}
    calls = len(server.calls)
    again = FakeBackend(server, tmp_path / "ob.jsonl").push(pairs)
    assert (again.sent, again.already_sent, again.added) == (0, 6, 0)
    assert len(server.calls) == calls  # nothing sent


@pytest.mark.parametrize("mode", ["before", "after"])
def test_failed_batch_loses_and_duplicates_nothing(tmp_path, pairs_file, mode):
    pairs, _ = load_pairs(pairs_file)
    server = FakeServer()
    server.fail_on = {1: mode}  # the second batch fails, before or after the server stored it
    box = tmp_path / "ob.jsonl"
    with pytest.raises(UserError, match=r"did not answer.*2 of 6 pairs are on the server"):
        FakeBackend(server, box, batch_size=2, retry_seconds=0).push(pairs)
    assert not Outbox(box).is_sent(pairs[2].key, "ds-1")  # not acknowledged: not marked
    assert Outbox(box).is_sent(pairs[1].key, "ds-1")
    report = FakeBackend(server, box, batch_size=2).push(pairs)
    assert (report.sent, report.already_sent) == (4, 2)
    assert sorted(server.records) == sorted(p.key for p in pairs)  # each exactly once
    sent_ids = [k for call in server.calls for k in call]
    assert sent_ids.count(pairs[2].key) == 2 and sent_ids.count(pairs[0].key) == 1


def test_transient_failures_are_retried_within_the_window(tmp_path, pairs_file):
    pairs, _ = load_pairs(pairs_file)
    server = FakeServer()
    server.fail_on = {0: "before", 1: "after", 3: "before"}
    report = FakeBackend(server, tmp_path / "ob.jsonl", batch_size=3, retry_seconds=30).push(pairs)
    assert report.complete and report.sent == 6
    assert sorted(server.records) == sorted(p.key for p in pairs)


def test_pairs_from_an_earlier_push_are_sent_too(tmp_path, pairs_file):
    pairs, _ = load_pairs(pairs_file)
    server = FakeServer()
    box = tmp_path / "ob.jsonl"
    with Outbox(box) as ob:
        ob.add(pairs[:3])  # journalled by a push that crashed before sending anything
    report = FakeBackend(server, box).push(pairs[3:])
    assert report.total == 6 and report.sent == 6 and len(server.records) == 6


def test_a_new_dataset_id_gets_everything_again(tmp_path, pairs_file):
    pairs, _ = load_pairs(pairs_file)
    box = tmp_path / "ob.jsonl"
    FakeBackend(FakeServer(), box).push(pairs)
    fresh = FakeServer()  # the dataset was deleted and made again
    report = FakeBackend(fresh, box, dataset_id="ds-2").push(pairs)
    assert report.sent == 6 and len(fresh.records) == 6


def test_missing_audio_at_send_time_names_the_pair(tmp_path, pairs_file):
    pairs, _ = load_pairs(pairs_file)
    Path(pairs[0].audio_a).unlink()
    with pytest.raises(UserError, match=r"pair p0 .*pairs.jsonl:1.*cannot read its audio"):
        FakeBackend(FakeServer(), tmp_path / "ob.jsonl").push(pairs)


def test_connection_repr_hides_the_key():
    conn = Connection("http://x", "rlhf.supersecretkey")
    assert "supersecret" not in repr(conn) and "supersecret" not in str(conn)
    backend = FakeBackend(FakeServer(), Path("unused"))
    assert "secret-key" not in repr(backend)


def test_unwritable_outbox_is_a_user_error(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")  # the outbox's folder would have to be inside a file
    with pytest.raises(UserError, match="cannot write the outbox"):
        with Outbox(blocker / "ob.jsonl"):
            pass
