"""Training throughput of our ``reward_model`` stage against a plain ``trl.RewardTrainer`` script.

Both sides train the offline ``tiny:reward`` preset on the same 1024 synthetic Bradley–Terry
pairs (:func:`rewards.preference.data.bradley_terry_pairs`), with the same trainer arguments:
``BATCH`` pairs per step, ``WARMUP`` + ``TIMED`` steps, learning rate 1e-3, ``max_length`` 128,
logging every 5 steps, no checkpoints, seed 0, ``THREADS`` torch threads. Ours goes through
``run_recipe`` (validation, data filtering, our trainer subclass, MLflow callback with tracking
disabled, progress bar, saving and held-out evaluation); the plain side builds the trainer
directly. Each side runs in its own child process, one after the other, alternating for
``ROUNDS`` rounds; each side's fastest run is reported.

Prints training samples (pairs) per second over the ``TIMED`` steps of each side (clocked by a
trainer callback between the end of step ``WARMUP`` and the end of the last step), the ratio
ours / plain (goal >= 0.95), and each side's wall time from the start of the work to the end.

Run: ``python -m bench reward_model``, ``python -m bench.reward_model`` or
``python bench/reward_model.py``.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.child import run_child  # noqa: E402

MODEL = "tiny:reward"
N_PAIRS = 1024
BATCH = 32
WARMUP, TIMED = 5, 60
LEARNING_RATE = 1e-3
MAX_LENGTH = 128
THREADS = 1
"""One torch thread per side: the model is tiny, and a shared 2-core machine makes 2-thread
timings swing several-fold (OpenMP threads spin while waiting for a core)."""
ROUNDS = 2
SEED = 0
TRAINER_ARGS: dict[str, Any] = {
    "max_steps": WARMUP + TIMED, "per_device_train_batch_size": BATCH,
    "learning_rate": LEARNING_RATE, "max_length": MAX_LENGTH, "logging_steps": 5,
    "save_strategy": "no", "seed": SEED, "disable_tqdm": True, "report_to": "none",
    "dataloader_num_workers": 0,
}


def write_data(path: Path) -> Path:
    from rewards.preference.data import bradley_terry_pairs

    rows = bradley_terry_pairs(N_PAIRS, seed=SEED)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def clock() -> tuple[Any, dict[str, float]]:
    """A trainer callback that notes the time at the end of steps ``WARMUP`` and the last."""
    from transformers import TrainerCallback

    marks: dict[str, float] = {}

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001, ANN201
            if state.global_step == WARMUP:
                marks["start"] = time.perf_counter()
                marks["bf16"] = bool(args.bf16)
            if state.global_step == WARMUP + TIMED:
                marks["end"] = time.perf_counter()

    return Clock(), marks


def run_ours(tmp: Path, data: Path) -> dict[str, Any]:
    from rlhf.algorithms import trl_common
    from rlhf.recipe.loader import validate_recipe
    from rlhf.recipe.runner import run_recipe

    callback, marks = clock()
    original = trl_common.callbacks
    trl_common.callbacks = lambda ctx: [*original(ctx), callback]  # type: ignore[assignment]
    raw = {"name": "bench_rm", "seed": SEED, "tracking": {"enabled": False}, "stages": [{
        "name": "rm", "kind": "reward_model", "model": {"model": MODEL},
        "data": {"train": str(data)}, "trainer": dict(TRAINER_ARGS)}]}
    start = time.perf_counter()
    run_recipe(validate_recipe(raw, "bench", []), run_dir=tmp / "run")
    return {**marks, "wall": time.perf_counter() - start}


def run_plain(tmp: Path, data: Path) -> dict[str, Any]:
    from datasets import Dataset
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from trl import RewardConfig, RewardTrainer

    from rlhf.models import preset_path

    start = time.perf_counter()
    rows = [json.loads(line) for line in data.read_text(encoding="utf-8").splitlines()]
    dataset = Dataset.from_list([{k: r[k] for k in ("prompt", "chosen", "rejected")}
                                 for r in rows])
    path = preset_path(MODEL)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1,
                                                               dtype="float32")
    callback, marks = clock()
    args = RewardConfig(output_dir=str(tmp / "plain"), use_cpu=True, **TRAINER_ARGS)
    trainer = RewardTrainer(model=model, args=args, train_dataset=dataset,
                            processing_class=tokenizer, callbacks=[callback])
    trainer.train()
    trainer.save_model(str(tmp / "plain" / "model"))
    return {**marks, "wall": time.perf_counter() - start}


SIDES = {"ours": run_ours, "plain": run_plain}


def _child(side: str, out: Path) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from rlhf.quiet import quiet_libraries

    quiet_libraries()
    import torch

    torch.set_num_threads(THREADS)
    with tempfile.TemporaryDirectory(prefix=f"bench-rm-{side}-") as tmp:
        data = write_data(Path(tmp) / "pairs.jsonl")
        result = SIDES[side](Path(tmp), data)
    result["threads"] = torch.get_num_threads()
    out.write_text(json.dumps(result), encoding="utf-8")


def _run_child(side: str) -> dict[str, Any]:
    result = run_child("bench.reward_model", side, THREADS)
    result["sps"] = TIMED * BATCH / (result["end"] - result["start"])
    return result


def main() -> None:
    runs: dict[str, list[dict[str, Any]]] = {"ours": [], "plain": []}
    for _ in range(ROUNDS):  # alternate, so that a slow spell of a shared machine hits both
        for side in runs:
            runs[side].append(_run_child(side))
    best = {side: max(r, key=lambda x: x["sps"]) for side, r in runs.items()}
    print(f"{MODEL}, {N_PAIRS} synthetic BT pairs, {BATCH} pairs/step, {WARMUP} warm-up + "
          f"{TIMED} timed steps, lr {LEARNING_RATE:g}, max_length {MAX_LENGTH}, {THREADS} "
          f"thread(s); best of {ROUNDS} runs each")
    print(f"{'':24} {'samples/s':>10} {'s/step':>8} {'wall s':>8}  all runs (samples/s)")
    names = {"ours": "ours (reward_model)", "plain": "plain trl.RewardTrainer"}
    for side, r in best.items():
        every = ", ".join(f"{x['sps']:.1f}" for x in runs[side])
        print(f"{names[side]:24} {r['sps']:10.1f} {BATCH / r['sps']:8.3f} {r['wall']:8.1f}  "
              f"{every}")
        if r["threads"] != THREADS:
            print(f"warning: {side} ran with {r['threads']} torch threads, not {THREADS}")
    precision = {side: "bf16 autocast" if r.get("bf16") else "float32" for side, r in best.items()}
    print(f"precision (TRL's default on CPU unless set): ours {precision['ours']}, "
          f"plain {precision['plain']}")
    ratio = best["ours"]["sps"] / best["plain"]["sps"]
    print(f"ours / plain training throughput: {ratio:.2f}x (goal >= 0.95)")
    print("wall s: ours = run_recipe (validation, data, model, trainer, train, save); plain = "
          "data + model + trainer + train + save; imports before that excluded")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        _child(sys.argv[2], Path(sys.argv[3]))
    else:
        main()
