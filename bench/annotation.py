"""Speed of the annotation loop against a real Argilla server: push, answer, pull.

For ``n`` pairs of WAV clips (``clip_kb`` KB each, so about ``2 × clip_kb`` KB of audio per
pair), prints records per second of

- ``push`` (:class:`annotation.argilla.ArgillaBackend`: outbox journal, A/B shuffling, inline
  players, batches acknowledged one by one) into a new dataset, and, in the same run, the plain
  SDK ``dataset.records.log`` of the very same records (same payloads) into another new dataset
  with the same settings, through a plain ``rg.Argilla(api_url, api_key)`` client; both timings
  include building the payloads (reading and encoding the audio);
- a repeated push (a no-op thanks to the outbox);
- one scripted annotator answering every record through the REST API (as the UI does);
- ``pull`` (all records with responses, aggregation, agreement) and, as its baseline, the plain
  SDK iteration ``list(dataset.records(with_responses=True))``. On a loopback server our client
  asks for uncompressed responses (see :meth:`annotation.argilla.connection.Connection.headers`);
  the plain client takes the server's gzip, as the SDK does by default.

Pushes and pulls alternate with their baselines, ``repeats`` times each (fresh datasets for the
pushes); the fastest of each is reported.

The server is ``$ARGILLA_API_URL`` (key ``$ARGILLA_API_KEY``) if set, else an embedded server
started in a temporary directory (stopped at the end; its start-up time is printed).

Run: ``python -m bench.annotation [n] [clip_kb] [repeats]`` (default 50 pairs, 25 KB, 2; 1000
pairs for the figures in the README), or ``python bench/annotation.py [n] [clip_kb] [repeats]``.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def write_pairs(out: Path, n: int, clip_kb: float, sample_rate: int = 16_000) -> Path:
    """``n`` pairs of distinct 16-bit WAV tones of about ``clip_kb`` KB each."""
    import numpy as np
    import soundfile as sf

    samples = int(clip_kb * 1000 / 2)
    t = np.arange(samples) / sample_rate
    rng = np.random.default_rng(0)
    rows = []
    (out / "audio").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        names = []
        for side in "ab":
            wave = 0.3 * np.sin(2 * np.pi * rng.uniform(150, 500) * t) + 0.01 * rng.standard_normal(samples)
            name = f"audio/{i:05d}-{side}.wav"
            sf.write(str(out / name), wave.astype(np.float32), sample_rate, subtype="PCM_16")
            names.append(name)
        rows.append({"id": f"b{i}", "prompt": f"Read aloud: sentence number {i}.",
                     "audio_a": names[0], "audio_b": names[1], "metadata": {"policy": "bench"}})
    path = out / "pairs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def main(n: int = 50, clip_kb: float = 25.0, repeats: int = 2) -> dict[str, float]:
    import warnings

    from annotation.argilla.backend import ArgillaBackend
    from annotation.argilla.connection import Connection
    from annotation.argilla.records import record_payload
    from annotation.argilla.settings import dataset_settings
    from annotation.pairs import load_pairs
    from annotation.simulate import loudness, make_annotators

    warnings.filterwarnings("ignore")
    os.environ.setdefault("TQDM_DISABLE", "1")
    tmp = Path(tempfile.mkdtemp(prefix="bench-annotation-"))
    server = None
    if os.environ.get("ARGILLA_API_URL") and os.environ.get("ARGILLA_API_KEY"):
        conn = Connection(os.environ["ARGILLA_API_URL"], os.environ["ARGILLA_API_KEY"], "env")
    else:
        from annotation.server.embedded import EmbeddedServer

        server = EmbeddedServer(tmp / "server", credentials_from_env=False)
        t0 = time.perf_counter()
        server.start(timeout=300)
        print(f"embedded server started in {time.perf_counter() - t0:.1f}s at {server.url}")
        conn = Connection(server.url, server.api_key, "embedded")
    out: dict[str, float] = {}
    try:
        pairs, _ = load_pairs(write_pairs(tmp / "data", n, clip_kb))
        audio_mb = sum(Path(p).stat().st_size for pr in pairs for p in (pr.audio_a, pr.audio_b)) / 1e6
        stamp = time.strftime("%H%M%S")
        print(f"{n} pairs, {audio_mb:.1f} MB of audio ({audio_mb * 1e3 / n:.0f} KB per pair)")

        import argilla as rg

        client = rg.Argilla(api_url=conn.api_url, api_key=conn.api_key)  # the plain SDK client
        datasets: list[str] = []

        def push_ours(round_: int) -> float:
            name = f"bench-ours-{stamp}-{round_}"
            datasets.append(name)
            ours = ArgillaBackend(conn, name, outbox=tmp / f"outbox-{round_}.jsonl")
            ours.dataset(create=True)  # dataset creation is not part of the timing
            t0 = time.perf_counter()
            report = ours.push(pairs)
            took = time.perf_counter() - t0
            assert report.sent == n, report
            return took

        def push_sdk(round_: int) -> float:
            ds = rg.Dataset(name=f"bench-sdk-{stamp}-{round_}", workspace="argilla", client=client,
                            settings=dataset_settings(1)).create()
            t0 = time.perf_counter()
            records = [rg.Record(id=p["id"], fields=p["fields"], metadata=p["metadata"])
                       for p in map(record_payload, pairs)]
            ds.records.log(records)
            return time.perf_counter() - t0

        # alternate, best of `repeats` (the machine is shared: the minimum is the least disturbed)
        times: dict[str, list[float]] = {"push_s": [], "sdk_log_s": []}
        for round_ in range(repeats):
            times["push_s"].append(push_ours(round_))
            times["sdk_log_s"].append(push_sdk(round_))
        out.update({k: min(v) for k, v in times.items()})
        t0 = time.perf_counter()
        again = ArgillaBackend(conn, datasets[0], outbox=tmp / "outbox-0.jsonl").push(pairs)
        out["repush_s"] = time.perf_counter() - t0
        assert again.sent == 0

        # one annotator answers everything, through the REST API
        annotator = make_annotators(conn, 1, "argilla", loudness(0.2), prefix="bench-")[0]
        t0 = time.perf_counter()
        answered = annotator.work(datasets[0], "argilla", batch=50)
        out["annotate_s"] = time.perf_counter() - t0
        assert answered == n

        ours = ArgillaBackend(conn, datasets[0])
        pulls, iters = [], []
        for _ in range(repeats):
            t0 = time.perf_counter()
            result = ours.pull()
            pulls.append(time.perf_counter() - t0)
            assert result.counts["total"] == n
            t0 = time.perf_counter()
            plain = client.datasets(name=datasets[0], workspace="argilla")
            fetched = list(plain.records(with_responses=True, with_suggestions=False))
            iters.append(time.perf_counter() - t0)
            assert len(fetched) == n
        out["pull_s"], out["sdk_iter_s"] = min(pulls), min(iters)
    finally:
        if server is not None:
            server.stop()

    rate = {k: n / v for k, v in out.items() if v > 0}
    print(f"{'step':<34}{'seconds':>10}{'records/s':>12}")
    rows = [("push (ours: outbox, batches of 50)", "push_s"), ("SDK records.log (same records)", "sdk_log_s"),
            ("re-push (no-op)", "repush_s"), ("1 scripted annotator, REST", "annotate_s"),
            ("pull (ours: + aggregation)", "pull_s"), ("SDK records iteration", "sdk_iter_s")]
    for label, key in rows:
        print(f"{label:<34}{out[key]:>10.2f}{rate.get(key, float('inf')):>12.1f}")
    print(f"push / SDK log time: {out['push_s'] / out['sdk_log_s']:.2f}x; "
          f"pull / SDK iteration time: {out['pull_s'] / out['sdk_iter_s']:.2f}x")
    return out


if __name__ == "__main__":
    args = sys.argv[1:]
    main(int(args[0]) if args else 50, float(args[1]) if len(args) > 1 else 25.0,
         int(args[2]) if len(args) > 2 else 2)
