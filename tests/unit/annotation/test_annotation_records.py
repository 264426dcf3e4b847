"""Pairs files, escaping, audio players, hidden A/B order and answers back to the original."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pytest

from annotation.aggregate import aggregate_votes
from annotation.argilla.backend import unescape_text
from annotation.argilla.records import (
    FIELD_FIRST, FIELD_PROMPT, FIELD_SECOND, META_AUDIO_A, META_AUDIO_B, META_ORDER,
    audio_from_html, audio_html, display_order, escape_text, record_payload, to_original,
    vote_from_answers,
)
from annotation.pairs import content_key, load_pairs, make_pair
from rlhf.errors import DataError

from .conftest import write_tone

# ---------------------------------------------------------------------------- escaping


@pytest.mark.parametrize("text", [
    "<script>alert('x')</script>",
    'Say "hi" & <b>bye</b>',
    "*bold* _it_ `code` [link](javascript:alert(1)) ![img](http://x/y.png) # head | t | ~s~ $x^2$",
    "- item\n+ item\n1. one\n2) two\n> quote\n===",
    "line one\nline two\r\nline three",
    "plain text, nothing special: 3.5 apples",
])
def test_escape_round_trips_and_leaves_no_markup(text):
    out = escape_text(text)
    assert unescape_text(out) == text.replace("\r\n", "\n")
    body = re.sub(r"&#\d+;|&[a-z]+;", "", out.replace("<br>", ""))  # drop the references
    assert "<" not in body and ">" not in body and '"' not in body and "'" not in body
    for ch in "*_`[]()!#|~$":
        assert ch not in body  # markdown syntax characters are character references
    for line in out.split("<br>\n"):  # no list marker / heading underline starts a line
        assert not re.match(r"\s*([-+=>]|\d+[.)])", line), line


def test_script_is_stored_escaped():
    out = escape_text("<script>alert(1)</script>")
    assert "&lt;script&gt;" in out and "<script>" not in out


# ---------------------------------------------------------------------------- audio


def test_audio_html_round_trip(tmp_path):
    wav = write_tone(tmp_path / "x.wav")
    player = audio_html(wav)
    assert player.startswith('<audio controls preload="auto" src="data:audio/wav;base64,')
    assert player.endswith("></audio>")
    mime, data = audio_from_html(player)
    assert mime == "audio/wav" and data == wav.read_bytes()
    flac = write_tone(tmp_path / "x.flac")
    assert audio_from_html(audio_html(flac))[0] == "audio/flac"
    with pytest.raises(ValueError):
        audio_html(tmp_path / "x.mp3")


# ---------------------------------------------------------------------------- order


def test_display_order_is_deterministic_and_balanced():
    orders = [display_order(f"key-{i}") for i in range(400)]
    assert orders == [display_order(f"key-{i}") for i in range(400)]
    assert set(orders) == {"AB", "BA"} and 150 < orders.count("AB") < 250


def test_to_original_and_votes_in_original_orientation():
    assert to_original("AB", "A") == "A" and to_original("BA", "A") == "B"
    assert to_original("BA", "B") == "A" and to_original("BA", "tie") == "tie"
    assert to_original("AB", "nonsense") is None
    # shown BA: the first clip shown is audio_b. The annotator prefers the first clip (A shown)
    # and rates it 5, the second 2 -> original: B wins, rating_b 5, rating_a 2.
    vote = vote_from_answers("ann", "submitted", "BA", {
        "preference": "A", "naturalness_a": 5, "naturalness_b": 2, "comment": "ok"})
    assert (vote.choice, vote.rating_a, vote.rating_b, vote.comment) == ("B", 2, 5, "ok")
    out = aggregate_votes([vote])
    assert out.decision == "B" and out.margin == 3.0
    same = vote_from_answers("ann", "submitted", "AB", {"preference": "A", "naturalness_a": 5,
                                                       "naturalness_b": 2})
    assert (same.choice, same.rating_a, same.rating_b) == ("A", 5, 2)
    discard = vote_from_answers("ann", "discarded", "AB", {})
    assert discard.choice is None and not discard.counts()


def test_record_payload_shows_pair_in_hidden_order(tmp_path):
    a = write_tone(tmp_path / "a.wav", amp=0.1)
    b = write_tone(tmp_path / "b.wav", amp=0.5)
    for i in range(8):  # both orders occur
        pair = make_pair(f"<i>prompt</i> {i}", a, b, {"policy": "rl"}, id=f"p{i}")
        rec = record_payload(pair)
        order = rec["metadata"][META_ORDER]
        first = audio_from_html(rec["fields"][FIELD_FIRST])[1]
        second = audio_from_html(rec["fields"][FIELD_SECOND])[1]
        expect = (a, b) if order == "AB" else (b, a)
        assert (first, second) == (expect[0].read_bytes(), expect[1].read_bytes())
        assert rec["id"] == pair.key and rec["metadata"]["pair_id"] == f"p{i}"
        assert rec["metadata"][META_AUDIO_A] == str(a) and rec["metadata"][META_AUDIO_B] == str(b)
        assert json.loads(rec["metadata"]["pair_metadata"]) == {"policy": "rl"}
        assert "<i>" not in rec["fields"][FIELD_PROMPT]
        assert unescape_text(rec["fields"][FIELD_PROMPT]) == f"<i>prompt</i> {i}"


# ---------------------------------------------------------------------------- pairs files


def test_load_pairs_resolves_paths_and_hashes_content(pairs_file: Path):
    pairs, dups = load_pairs(pairs_file)
    assert len(pairs) == 6 and dups == 0
    p0 = pairs[0]
    assert p0.id == "p0" and Path(p0.audio_a).is_absolute() and Path(p0.audio_a).is_file()
    assert p0.audio_b.endswith("0-b.wav") and pairs[5].audio_b.endswith(".flac")
    assert p0.metadata == {"policy": "sft", "i": 0} and p0.source == f"{pairs_file}:1"
    assert len(p0.key) == 32 and p0.key == content_key("Say 0", p0.audio_a, p0.audio_b, "p0")
    again, _ = load_pairs(pairs_file)
    assert [p.key for p in again] == [p.key for p in pairs]  # stable


def test_content_key_depends_on_content_and_order(tmp_path):
    a = write_tone(tmp_path / "a.wav", amp=0.1)
    b = write_tone(tmp_path / "b.wav", amp=0.5)
    c = write_tone(tmp_path / "c.wav", amp=0.1)  # same bytes as a
    k = content_key("p", a, b)
    assert k == content_key("p", c, b)  # same content, other file name
    assert k != content_key("p", b, a) and k != content_key("q", a, b)
    assert k != content_key("p", a, b, user_id="x")


def test_duplicate_rows_are_kept_once(tmp_path):
    a = write_tone(tmp_path / "a.wav", amp=0.1)
    b = write_tone(tmp_path / "b.wav", amp=0.5)
    row = json.dumps({"prompt": "p", "audio_a": "a.wav", "audio_b": "b.wav"})
    f = tmp_path / "pairs.jsonl"
    f.write_text(f"{row}\n\n{row}\n")
    pairs, dups = load_pairs(f)
    assert len(pairs) == 1 and dups == 1 and pairs[0].id == pairs[0].key


def test_bad_rows_are_reported_by_file_line_and_field(tmp_path):
    write_tone(tmp_path / "a.wav")
    (tmp_path / "notaudio.wav").write_text("hello")
    big = tmp_path / "big.wav"
    big.write_bytes(b"\0" * 5_000_001)
    lines = [
        json.dumps({"prompt": "ok", "audio_a": "a.wav", "audio_b": "missing.wav"}),
        "{not json",
        json.dumps({"prompt": "", "audio_a": "a.mp3", "audio_b": "a.wav", "extra": 1}),
        json.dumps({"id": True, "prompt": "x", "audio_a": "a.wav", "audio_b": "notaudio.wav",
                    "metadata": []}),
        json.dumps({"prompt": "x", "audio_a": "a.wav", "audio_b": "a.wav"}),
        json.dumps({"prompt": "x", "audio_a": "a.wav", "audio_b": "big.wav"}),
        json.dumps(["a list"]),
    ]
    f = tmp_path / "pairs.jsonl"
    f.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError) as err:
        load_pairs(f)
    msg = str(err.value)
    assert msg.startswith(f"7 bad rows in {f}")
    assert f"{f}:1: audio_b: {tmp_path / 'missing.wav'}: file not found" in msg
    assert f"{f}:2: not valid JSON" in msg
    assert f"{f}:3: extra: unknown field" in msg and f"{f}:3: prompt: expected a non-empty" in msg
    assert f"{f}:3: audio_a: a.mp3: unsupported audio type" in msg
    assert f"{f}:4: id: expected" in msg and f"{f}:4: metadata: expected an object" in msg
    assert f"{f}:4: audio_b:" in msg and "not a readable audio file" in msg
    assert f"{f}:5: audio_b: the same file as audio_a" in msg
    assert f"{f}:6: audio_b:" in msg and "MB" in msg
    assert f"{f}:7: expected a JSON object" in msg


def test_same_id_for_different_pairs_is_an_error(tmp_path):
    write_tone(tmp_path / "a.wav", amp=0.1)
    write_tone(tmp_path / "b.wav", amp=0.5)
    f = tmp_path / "pairs.jsonl"
    f.write_text(json.dumps({"id": 1, "prompt": "x", "audio_a": "a.wav", "audio_b": "b.wav"}) + "\n"
                 + json.dumps({"id": 1, "prompt": "y", "audio_a": "a.wav", "audio_b": "b.wav"}) + "\n")
    with pytest.raises(DataError, match=r"pairs.jsonl:2: id: '1' is used by another pair"):
        load_pairs(f)


def test_empty_and_missing_files(tmp_path):
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(DataError, match="no pairs"):
        load_pairs(tmp_path / "empty.jsonl")
    with pytest.raises(DataError, match="file not found"):
        load_pairs(tmp_path / "nope.jsonl")


def test_html_escape_of_quotes_uses_numeric_reference():
    assert escape_text("it's") == "it&#39;s" and html.unescape("&#39;") == "'"
