"""Audio reward throughput: clips per second of each ``audio.*`` reward with 1 worker process and
with 2 (``workers: N`` in a reward design), on the committed speech fixtures (16 kHz eSpeak NG
clips of 1.1-2.8 s). The intelligibility cache is off, so every clip is decoded; pools are
started (and pocketsphinx loaded) before timing. Also prints the real-time factor of
``audio.intelligibility`` (seconds of compute per second of audio, one worker).

Then the quickstart's stage timings: the shipped ``quickstart`` recipe runs in a child process
(:mod:`bench.child`; its own embedded Argilla server in a temporary directory, started by the
``annotate`` stage and stopped afterwards), and each stage's wall time is read back from its
MLflow child run (start and end times); also the whole run's wall and CPU time (this process and
its children: reward workers, the Argilla server). ``BENCH_QUICKSTART_RUN=RUN_DIR`` reads the
timings of an existing run instead (its ``state.json`` names the MLflow runs; the tracking URI
is the run's ``rlhf.tracking_uri`` or ``sqlite:///<run's parent of runs/>/mlflow.db``).

    python -m bench audio          # or: python bench/audio.py [clips]
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "speech"


def clips(n: int) -> dict:
    from rlhf.audio.io import read_audio

    rows = [json.loads(line) for line in (FIXTURES / "manifest.jsonl").read_text().splitlines()
            if json.loads(line)["kind"] == "clean"]
    waves, texts = [], []
    for i in range(n):
        row = rows[i % len(rows)]
        wave, sr = read_audio(FIXTURES / row["audio"])
        waves.append(wave)
        texts.append(row["text"])
    return {"waveform": waves, "sample_rate": [sr] * n, "text": texts}


def main(n: int = 40) -> None:
    from rewards.compose import CompositeReward
    from rewards.spec import RewardSpec

    cols = clips(n)
    seconds = sum(len(w) / sr for w, sr in zip(cols["waveform"], cols["sample_rate"]))
    print(f"{n} clips, {seconds:.1f} s of audio")
    rewards = {"audio.duration": {}, "audio.clipping": {}, "audio.silence": {},
               "audio.intelligibility": {"cache_size": 0}}
    for name, params in rewards.items():
        rates = {}
        for workers in (1, 2):
            spec = RewardSpec(name=name, params=params, workers=workers)
            with CompositeReward([spec]) as design:
                warm = {k: v[:workers] for k, v in cols.items()}
                design.score(["p"] * workers, ["c"] * workers, **warm)  # start the pool
                start = time.perf_counter()
                result = design.score(["p"] * n, ["c"] * n, **cols)
                elapsed = time.perf_counter() - start
            assert result.unscored() == 0, result.errors
            rates[workers] = n / elapsed
            if name == "audio.intelligibility" and workers == 1:
                print(f"{name}: real-time factor {elapsed / seconds:.3f} (1 worker)")
        print(f"{name:24s} 1 worker {rates[1]:8.1f} clips/s   2 workers {rates[2]:8.1f} clips/s"
              f"   speed-up {rates[2] / rates[1]:.2f}x")
    import os

    report_quickstart(quickstart(os.environ.get("BENCH_QUICKSTART_RUN")))


def stage_timings(run_dir: Path, tracking_uri: str) -> dict[str, float]:
    """Seconds per stage (MLflow child run end − start), in the recipe's order."""
    from mlflow.tracking import MlflowClient

    state = json.loads((run_dir / "state.json").read_text(encoding="utf-8"))
    client = MlflowClient(tracking_uri)
    out = {}
    for name, stage in state["stages"].items():
        info = client.get_run(stage["mlflow_run_id"]).info
        if info.end_time:
            out[name] = (info.end_time - info.start_time) / 1000.0
    return out


def _quickstart_child(out: Path) -> None:
    """The child side: run the shipped quickstart in a temporary directory, write timings."""
    import os
    import resource
    import tempfile

    from annotation.server.embedded import EmbeddedServer
    from rlhf.quiet import quiet_libraries
    from rlhf.recipe import load_recipe
    from rlhf.recipe.runner import run_recipe

    quiet_libraries()
    with tempfile.TemporaryDirectory(prefix="bench-quickstart-") as tmp:
        base = Path(tmp)
        for key in ("ARGILLA_API_URL", "ARGILLA_API_KEY"):
            os.environ.pop(key, None)
        os.environ["RLHF_ARGILLA_DATA_DIR"] = str(base / "argilla")
        uri = f"sqlite:///{base}/mlflow.db"
        recipe = load_recipe("quickstart", [f"tracking.uri={uri}"])
        start = time.perf_counter()
        try:
            outcome = run_recipe(recipe, run_dir=base / "run")
        finally:
            EmbeddedServer(base / "argilla").stop()
        wall = time.perf_counter() - start
        cpu = sum(getattr(resource.getrusage(who), f) for who in
                  (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN) for f in ("ru_utime", "ru_stime"))
        ev = outcome.results["evaluate"].metrics
        result = {"stages": stage_timings(base / "run", uri), "wall_s": wall, "cpu_s": cpu,
                  "rm_accuracy": outcome.results["reward_model"].metrics.get("eval/accuracy"),
                  **{k: v for k, v in ev.items() if k.startswith("eval/")}}
    out.write_text(json.dumps(result, indent=2), encoding="utf-8")


def quickstart(run_dir: str | None = None) -> dict:
    """Timings of the quickstart (a fresh run in a child process, or ``run_dir``'s)."""
    if run_dir:
        path = Path(run_dir)
        uri = f"sqlite:///{path.resolve().parents[2]}/mlflow.db"
        return {"stages": stage_timings(path, uri)}
    from bench.child import run_child

    return run_child("bench.audio", "quickstart", 2)


def report_quickstart(result: dict) -> None:
    stages = result["stages"]
    total = sum(stages.values())
    print("quickstart stage timings (wall seconds, from MLflow):")
    for name, seconds in stages.items():
        print(f"  {name:14s} {seconds:7.1f} s  {seconds / total:6.1%}")
    print(f"  {'sum':14s} {total:7.1f} s")
    if "wall_s" in result:
        print(f"  whole run: {result['wall_s']:.1f} s wall, {result['cpu_s']:.1f} s CPU "
              f"(this process and its children)")
        print(f"  reward-model held-out accuracy {result['rm_accuracy']:.3f}; hidden preference "
              f"{result['eval/before/preference']:.3f} -> {result['eval/after/preference']:.3f}; "
              f"intelligibility {result['eval/before/audio.intelligibility']:.3f} -> "
              f"{result['eval/after/audio.intelligibility']:.3f}")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        _quickstart_child(Path(sys.argv[3]))
    else:
        main(int(sys.argv[1]) if len(sys.argv) > 1 else 40)
