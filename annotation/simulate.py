"""Scripted annotators, for demos and tests: accounts that answer through the REST API.

Each :class:`ScriptedAnnotator` is an ordinary ``annotator`` user with its own API key. It does
what the annotation UI does: lists its datasets (``GET /api/v1/me/datasets``), takes records from
its *pending* queue (``POST /api/v1/me/datasets/{id}/records/search`` filtered on response status
and record status ``pending``, as the UI's queue), and posts one response per record
(``POST /api/v1/records/{id}/responses``). It sees what a person sees: the prompt and the two
clips in the displayed order, never the hidden ``order`` metadata.

Its answers follow a hidden preference function ``quality(wave, sample_rate, prompt) -> [0, 1]``
of each clip, plus noise: ``q + N(0, noise²)`` per clip; the higher noisy quality wins, ``tie``
when the two are within ``tie_band``; naturalness ratings are ``1 + 4·q`` rounded and clipped to
1-5; with probability ``discard_rate`` the record is discarded instead. The noise of one
annotator on one record is seeded by (seed, annotator name, record id), so runs repeat exactly
whatever order the records come in.

Built-in preference functions (:data:`PREFERENCES`): ``speaking_rate`` (words of the prompt per
minute of voiced audio, best at ``target_wpm``), ``loudness`` (RMS level, best at
``target_rms``) and ``prosody`` (speaking rate and median pitch, best at ``target_wpm`` and
``target_hz``; the quickstart's listeners). Any ``module:function`` returning such a function works too.
"""

from __future__ import annotations

import hashlib
import io
import math
import random
import secrets
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from annotation.argilla.connection import Connection
from annotation.argilla.records import (
    FIELD_FIRST, FIELD_PROMPT, FIELD_SECOND, Q_COMMENT, Q_NATURAL_FIRST, Q_NATURAL_SECOND,
    Q_PREFERENCE, audio_from_html,
)
from rlhf.errors import UserError

QualityFn = Callable[[np.ndarray, int, str], float]
HEADER = "X-Argilla-Api-Key"


# ---------------------------------------------------------------------------------------------
# Hidden preference functions
# ---------------------------------------------------------------------------------------------


def spoken_text(prompt: str) -> str:
    """The words to be spoken: the part after the first colon (``Read aloud: ...``), if any."""
    return prompt.split(":", 1)[1] if ":" in prompt else prompt


def voiced_seconds(wave: np.ndarray, sample_rate: int, threshold: float = 0.02) -> float:
    """Seconds between the first and last sample louder than ``threshold`` × the peak."""
    wave = np.asarray(wave, dtype=np.float32)
    if wave.size == 0:
        return 0.0
    peak = float(np.max(np.abs(wave)))
    if peak <= 0:
        return 0.0
    loud = np.nonzero(np.abs(wave) > threshold * peak)[0]
    return (loud[-1] - loud[0] + 1) / float(sample_rate)


def speaking_rate(target_wpm: float = 175.0, scale_wpm: float = 60.0) -> QualityFn:
    """Quality ``exp(-|wpm − target_wpm| / scale_wpm)``, wpm = prompt words per voiced minute."""
    def quality(wave: np.ndarray, sample_rate: int, prompt: str) -> float:
        words = max(1, len(spoken_text(prompt).split()))
        seconds = voiced_seconds(wave, sample_rate)
        if seconds <= 0:
            return 0.0
        return math.exp(-abs(words * 60.0 / seconds - target_wpm) / scale_wpm)
    return quality


def loudness(target_rms: float = 0.3) -> QualityFn:
    """Quality ``exp(-|rms − target_rms| / target_rms)`` of the whole clip."""
    def quality(wave: np.ndarray, sample_rate: int, prompt: str) -> float:
        rms = float(np.sqrt(np.mean(np.square(np.asarray(wave, dtype=np.float64))))) if len(wave) else 0.0
        return math.exp(-abs(rms - target_rms) / target_rms)
    return quality


def median_f0(wave: np.ndarray, sample_rate: int, fmin: float = 60.0, fmax: float = 400.0
              ) -> float:
    """Median fundamental frequency (Hz) of the voiced 40 ms frames (hop 10 ms), by
    autocorrelation; 0.0 when no frame is voiced. A frame is voiced when its RMS is at least a
    tenth of the clip's peak and its autocorrelation peak in ``[1/fmax, 1/fmin]`` s reaches 0.3
    of its energy."""
    w = np.asarray(wave, dtype=np.float64)
    size, hop = int(0.04 * sample_rate), int(0.01 * sample_rate)
    peak = float(np.max(np.abs(w))) if w.size else 0.0
    if peak <= 0 or w.size < size:
        return 0.0
    lo, hi = max(1, int(sample_rate / fmax)), min(size - 1, int(sample_rate / fmin))
    found = []
    for start in range(0, w.size - size, hop):
        x = w[start:start + size]
        if np.sqrt(np.mean(x * x)) < 0.1 * peak:
            continue
        x = x - x.mean()
        ac = np.correlate(x, x, "full")[size - 1:]
        lag = lo + int(np.argmax(ac[lo:hi]))
        if ac[0] > 0 and ac[lag] > 0.3 * ac[0]:
            found.append(sample_rate / lag)
    return float(np.median(found)) if found else 0.0


def prosody(target_wpm: float = 200.0, scale_wpm: float = 60.0, target_hz: float = 120.0,
            scale_octaves: float = 0.25, pitch_weight: float = 0.5) -> QualityFn:
    """A listener with a taste in pace and voice height: quality
    ``(1 − w)·exp(−|wpm − target_wpm| / scale_wpm) + w·exp(−|log2(f0 / target_hz)| /
    scale_octaves)``, ``w = pitch_weight``; wpm as in :func:`speaking_rate`, f0 the median
    pitch (:func:`median_f0`, Hz). A clip with no voiced frame scores 0."""
    rate = speaking_rate(target_wpm, scale_wpm)

    def quality(wave: np.ndarray, sample_rate: int, prompt: str) -> float:
        f0 = median_f0(wave, sample_rate)
        if f0 <= 0:
            return 0.0
        pitch = math.exp(-abs(math.log2(f0 / target_hz)) / scale_octaves)
        return (1 - pitch_weight) * rate(wave, sample_rate, prompt) + pitch_weight * pitch
    return quality


PREFERENCES: dict[str, Callable[..., QualityFn]] = {"speaking_rate": speaking_rate,
                                                    "loudness": loudness, "prosody": prosody}


def preference_function(name: str, **params: Any) -> QualityFn:
    """A built-in preference function by name, or ``module:function`` (a factory taking the
    params and returning the quality function)."""
    if name in PREFERENCES:
        factory = PREFERENCES[name]
    elif ":" in name:
        from rlhf.registry import import_target

        factory = import_target(name, "preference function")
    else:
        from rlhf.errors import did_you_mean

        raise UserError(f"unknown preference function {name!r}; {did_you_mean(name, PREFERENCES)}"
                        " (or give module:function)")
    try:
        return factory(**params)
    except TypeError as exc:
        raise UserError(f"preference function {name!r}: {exc}") from None


def decode_clip(field_value: str) -> tuple[np.ndarray, int]:
    """The waveform inside an audio field (as the annotator's browser would play it)."""
    import soundfile as sf

    _mime, data = audio_from_html(field_value)
    wave, sr = sf.read(io.BytesIO(data), dtype="float32", always_2d=False)
    if wave.ndim == 2:
        wave = wave.mean(axis=1)
    return wave, int(sr)


# ---------------------------------------------------------------------------------------------
# Accounts
# ---------------------------------------------------------------------------------------------


def _http(url: str, key: str, timeout: float = 60.0) -> Any:
    import httpx

    headers = {HEADER: key, **Connection(url, key).headers()}
    return httpx.Client(base_url=url, headers=headers, timeout=timeout)


def _check(resp: Any, what: str, ok: tuple[int, ...] = (200, 201)) -> Any:
    if resp.status_code not in ok:
        raise UserError(f"{what}: HTTP {resp.status_code}: {resp.text[:300]}")
    return resp.json() if resp.content else None


def ensure_annotators(owner: Connection, names: list[str], workspace: str) -> dict[str, str]:
    """Create annotator users (if missing) in ``workspace`` with the owner's key; return
    ``{name: api_key}``. Works on any Argilla server where the key is an owner's."""
    with _http(owner.api_url, owner.api_key) as http:
        ws = next((w for w in _check(http.get("/api/v1/me/workspaces"), "listing workspaces")["items"]
                   if w["name"] == workspace), None)
        if ws is None:
            ws = _check(http.post("/api/v1/workspaces", json={"name": workspace}),
                        f"creating workspace {workspace!r}")
        keys = {}
        listing = None
        for name in names:
            resp = http.post("/api/v1/users", json={
                "first_name": name, "username": name, "role": "annotator",
                "password": secrets.token_urlsafe(16)})
            if resp.status_code == 409:
                if listing is None:
                    listing = _check(http.get("/api/v1/users"), "listing users")["items"]
                user = next((u for u in listing if u["username"] == name), None)
                if user is None:
                    raise UserError(f"user {name!r} exists but cannot be listed")
            else:
                user = _check(resp, f"creating user {name!r}")
            if user["role"] != "annotator":
                raise UserError(f"user {name!r} exists with role {user['role']}; scripted "
                                "annotators must be annotators (pick another name prefix)")
            _check(http.post(f"/api/v1/workspaces/{ws['id']}/users", json={"user_id": user["id"]}),
                   f"adding {name!r} to {workspace!r}", ok=(200, 201, 409))
            keys[name] = user["api_key"]
        return keys


# ---------------------------------------------------------------------------------------------
# The annotator
# ---------------------------------------------------------------------------------------------

PENDING_FILTER = {"and": [
    {"type": "terms", "scope": {"entity": "response", "property": "status"}, "values": ["pending"]},
    {"type": "terms", "scope": {"entity": "record", "property": "status"}, "values": ["pending"]},
]}


@dataclass
class ScriptedAnnotator:
    """One scripted annotator (see the module docstring)."""

    name: str
    api_url: str
    api_key: str = field(repr=False)
    quality: QualityFn = field(default_factory=speaking_rate, repr=False)
    noise: float = 0.0
    tie_band: float = 0.0
    discard_rate: float = 0.0
    seed: int = 0
    answered: int = 0

    def _http(self) -> Any:
        return _http(self.api_url, self.api_key)

    def dataset_id(self, dataset: str, workspace: str | None = None) -> str:
        """The id of ``dataset`` among the datasets this annotator can see."""
        with self._http() as http:
            items = _check(http.get("/api/v1/me/datasets"), "listing datasets")["items"]
            ws_ids = None
            if workspace:
                ws_ids = {w["id"] for w in _check(http.get("/api/v1/me/workspaces"),
                                                   "listing workspaces")["items"]
                          if w["name"] == workspace}
        for ds in items:
            if ds["name"] == dataset and (ws_ids is None or ds["workspace_id"] in ws_ids):
                return ds["id"]
        raise UserError(f"annotator {self.name!r} sees no dataset {dataset!r}")

    def pending(self, dataset_id: str, limit: int = 20, http: Any = None) -> tuple[list[dict], int]:
        """``(records, total)`` of this annotator's pending queue, as the UI asks for it."""
        own = http is None
        http = http or self._http()
        try:
            data = _check(http.post(f"/api/v1/me/datasets/{dataset_id}/records/search",
                                    params={"offset": 0, "limit": limit},
                                    json={"filters": PENDING_FILTER}), "reading the queue")
        finally:
            if own:
                http.close()
        return [item["record"] for item in data["items"]], int(data["total"])

    def _rng(self, record_id: str) -> random.Random:
        digest = hashlib.sha256(f"{self.seed}:{self.name}:{record_id}".encode()).digest()
        return random.Random(int.from_bytes(digest[:8], "big"))

    def answer(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """The response body for a record (displayed orientation, as the UI would send it)."""
        rng = self._rng(str(record.get("external_id") or record["id"]))
        if self.discard_rate and rng.random() < self.discard_rate:
            return {"status": "discarded"}
        fields = record["fields"]
        from annotation.argilla.backend import unescape_text

        prompt = unescape_text(fields.get(FIELD_PROMPT) or "")
        scores = []
        for name in (FIELD_FIRST, FIELD_SECOND):
            wave, sr = decode_clip(fields[name])
            q = float(self.quality(wave, sr, prompt))
            scores.append(q + (rng.gauss(0.0, self.noise) if self.noise else 0.0))
        diff = scores[0] - scores[1]
        choice = "tie" if abs(diff) <= self.tie_band else ("A" if diff > 0 else "B")
        ratings = [int(min(5, max(1, round(1 + 4 * min(1.0, max(0.0, s)))))) for s in scores]
        values = {Q_PREFERENCE: {"value": choice}, Q_NATURAL_FIRST: {"value": ratings[0]},
                  Q_NATURAL_SECOND: {"value": ratings[1]}}
        if choice == "tie":
            values[Q_COMMENT] = {"value": "too close to call"}
        return {"status": "submitted", "values": values}

    def work(self, dataset: str, workspace: str | None = None, max_records: int | None = None,
             stop: threading.Event | None = None, batch: int = 20) -> int:
        """Answer pending records until the queue is empty (or ``max_records``, or ``stop``);
        returns how many this call answered."""
        dataset_id = self.dataset_id(dataset, workspace)
        done = 0
        with self._http() as http:
            while max_records is None or done < max_records:
                if stop is not None and stop.is_set():
                    break
                records, _total = self.pending(dataset_id, limit=batch, http=http)
                if not records:
                    break
                progressed = False
                for record in records:
                    if (max_records is not None and done >= max_records) or (stop and stop.is_set()):
                        break
                    resp = http.post(f"/api/v1/records/{record['id']}/responses",
                                     json=self.answer(record))
                    if resp.status_code == 409:  # answered meanwhile (a concurrent session)
                        continue
                    _check(resp, f"{self.name}: submitting a response")
                    done += 1
                    progressed = True
                if not progressed:
                    break
        self.answered += done
        return done


def make_annotators(owner: Connection, n: int, workspace: str, quality: QualityFn, *,
                    prefix: str = "sim-annotator-", noise: float = 0.0, tie_band: float = 0.0,
                    discard_rate: float = 0.0, seed: int = 0,
                    noise_per_annotator: list[float] | None = None) -> list[ScriptedAnnotator]:
    """``n`` scripted annotators (accounts created if missing) in ``workspace``."""
    if n < 1:
        raise UserError(f"simulate.annotators must be at least 1, got {n}")
    names = [f"{prefix}{i + 1}" for i in range(n)]
    keys = ensure_annotators(owner, names, workspace)
    noises = noise_per_annotator or [noise] * n
    return [ScriptedAnnotator(name, owner.api_url, keys[name], quality, noises[i % len(noises)],
                              tie_band, discard_rate, seed) for i, name in enumerate(names)]


def run_annotators(annotators: list[ScriptedAnnotator], dataset: str, workspace: str | None = None,
                   stop: threading.Event | None = None) -> dict[str, int]:
    """Let every annotator work through its queue, concurrently (one thread each); returns
    ``{name: answered}``. The first error of any annotator is raised after all have stopped."""
    results: dict[str, int] = {}
    errors: list[BaseException] = []

    def one(a: ScriptedAnnotator) -> None:
        try:
            results[a.name] = a.work(dataset, workspace, stop=stop)
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(a,), name=f"annotator-{a.name}", daemon=True)
               for a in annotators]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results
