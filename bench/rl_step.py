"""Throughput of one GRPO step: our engine vs ``trl.GRPOTrainer``, plus DAPO's sampling cost.

Both sides train the offline ``tiny:lm`` preset on the same 64 synthetic-task prompts, with the
same batch (8 prompts x group 8 = 64 completions per optimiser step, the whole batch in one
forward/backward), 16 new tokens at temperature 1.0, learning rate 1e-5 (constant), one pass per
batch, no KL term and no reference model, ``torch.set_num_threads(2)``. Each side runs in its own
child process, one after the other, so that its peak RSS (``ru_maxrss``, KiB on Linux) is its own;
the two sides alternate for ``ROUNDS`` rounds and each side's fastest run is reported.

Prints completions per second of each (``S`` timed steps after ``W`` warm-up steps), the ratio
ours / TRL (goal >= 1), the peak RSS of each child in MiB, and the mean
``train/ds_generated_per_kept`` of the ``dapo`` preset over a few steps on the same task
(prompts generated per prompt kept by dynamic sampling; 1.0 means no group was dropped).

Run: ``python -m bench rl_step``, ``python -m bench.rl_step`` or ``python bench/rl_step.py``;
``--profile`` prints a cProfile summary of our ``train_step`` instead.
"""

from __future__ import annotations

import json
import math
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.child import run_child  # noqa: E402

MODEL = "tiny:lm"
PROMPTS_PER_STEP = 8
GROUP = 8
COMPLETIONS = PROMPTS_PER_STEP * GROUP
MAX_NEW_TOKENS = 16
TEMPERATURE = 1.0
LEARNING_RATE = 1e-5
WARMUP, TIMED = 3, 40
DAPO_STEPS = 10
DAPO_LEARNING_RATE = 2e-3  # the dapo_tiny recipe's step size
ROUNDS = 2
"""Each side runs this many times, alternating (ours, TRL, ours, TRL); the fastest run counts."""
THREADS = 2
SEED = 0
TEMPLATES = ("Tell me about the {t}.", "Say something about the {t}.", "Describe the {t}.",
             "Write a line on the {t}.", "What is the {t} like?", "Talk about the {t}.",
             "Give me a sentence on the {t}.", "How do you feel about the {t}?")


def prompts() -> list[str]:
    """64 prompts: 8 templates x the synthetic task's 8 topics."""
    from rewards.synthetic import TOPICS

    return [tpl.format(t=topic) for tpl in TEMPLATES for topic in TOPICS]


def _setup_child() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from rlhf.quiet import quiet_libraries

    quiet_libraries()
    import torch

    torch.set_num_threads(THREADS)


def _rss_mib() -> float:
    """Current resident set size (MiB), from /proc (0.0 where unavailable)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _peak_rss_mib() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 if sys.platform != "darwin" else peak / 2**20


# -- our engine ----------------------------------------------------------------------------------
def _engine(tmp: Path, kind: str, steps: int) -> Any:
    """An :class:`Engine` on the benchmark task (``kind``: ``grpo`` or ``dapo`` defaults)."""
    from rlhf.algorithms.dapo import DAPOOptions
    from rlhf.algorithms.grpo import GRPOOptions
    from rlhf.engine.loop import Engine
    from rlhf.stages.base import StageContext
    from rlhf.tracking.tracker import RecipeTracker

    data = tmp / "prompts.jsonl"
    data.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in prompts()), encoding="utf-8")
    options = GRPOOptions if kind == "grpo" else DAPOOptions
    opts = options(
        policy={"model": MODEL, "sampling": {"max_new_tokens": MAX_NEW_TOKENS,
                                             "temperature": TEMPERATURE}},
        data={"train": str(data)}, rewards=[{"name": "synthetic.sentiment"}], steps=steps,
        prompts_per_step=PROMPTS_PER_STEP, group_size=GROUP, kl_coef=0.0,
        learning_rate=LEARNING_RATE if kind == "grpo" else DAPO_LEARNING_RATE,
        log_completions_every=0, save_every=10_000)
    tracker = RecipeTracker(uri=None, experiment="bench", run_name="rl_step", enabled=False)
    tracker.start()
    ctx = StageContext(name="rl", kind=kind, run_dir=tmp, stage_dir=tmp / "rl", seed=SEED,
                       tracker=tracker.stage("rl", kind))
    ctx.stage_dir.mkdir(parents=True, exist_ok=True)
    return Engine(ctx, opts)


def _step(engine: Any) -> dict[str, float]:
    engine.step += 1
    return engine.train_step()


def run_ours(tmp: Path) -> dict[str, Any]:
    import torch

    engine = _engine(tmp, "grpo", WARMUP + TIMED)
    setup_rss = _rss_mib()
    for _ in range(WARMUP):
        _step(engine)
    split = {"generate_s": 0.0, "update_s": 0.0}
    start = time.perf_counter()
    for _ in range(TIMED):
        metrics = _step(engine)
        for key in split:
            split[key] += metrics[f"time/{key}"]
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "setup_rss_mib": setup_rss, "threads": torch.get_num_threads(),
            **split}


def run_dapo(tmp: Path) -> dict[str, Any]:
    engine = _engine(tmp, "dapo", DAPO_STEPS)
    steps = [_step(engine) for _ in range(DAPO_STEPS)]
    ratios = [m["train/ds_generated_per_kept"] for m in steps]
    finite = [r for r in ratios if math.isfinite(r)]
    return {"generated_per_kept": sum(finite) / len(finite) if finite else math.inf,
            "steps_nothing_kept": len(ratios) - len(finite), "per_step": ratios,
            "rounds": [int(m["train/ds_rounds"]) for m in steps],
            "reward_first": steps[0]["train/reward_mean"],
            "reward_last": steps[-1]["train/reward_mean"]}


# -- TRL -----------------------------------------------------------------------------------------
_SENTIMENT: Any = None


def sentiment(prompts: list[Any], completions: list[Any], **columns: Any) -> list[float | None]:
    """The synthetic task's ground truth as a plain function (TRL needs a ``__name__``)."""
    global _SENTIMENT
    if _SENTIMENT is None:
        from rewards.synthetic import SentimentReward

        _SENTIMENT = SentimentReward()
    return _SENTIMENT(prompts, completions, **columns)


def _trl_config(tmp: Path) -> Any:
    from trl import GRPOConfig

    return GRPOConfig(
        output_dir=str(tmp / "trl"), seed=SEED, max_steps=WARMUP + TIMED,
        per_device_train_batch_size=COMPLETIONS, gradient_accumulation_steps=1,
        steps_per_generation=1,  # generation_batch_size = 64 completions = one optimiser step
        num_generations=GROUP, max_completion_length=MAX_NEW_TOKENS, temperature=TEMPERATURE,
        top_p=1.0, top_k=0, beta=0.0, num_iterations=1, epsilon=0.2, loss_type="grpo",
        scale_rewards="group", learning_rate=LEARNING_RATE, lr_scheduler_type="constant",
        warmup_steps=0, weight_decay=0.0, max_grad_norm=1.0, optim="adamw_torch",
        use_cpu=True, bf16=False, fp16=False, use_vllm=False, report_to="none",
        logging_strategy="no", save_strategy="no", disable_tqdm=True, log_completions=False,
        dataloader_num_workers=0)


def run_trl(tmp: Path) -> dict[str, Any]:
    import dataclasses

    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from rlhf.models import preset_path

    path = preset_path(MODEL)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype="float32")
    marks: dict[str, float] = {}

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001, ANN201
            if state.global_step == WARMUP:
                marks["start"] = time.perf_counter()
            if state.global_step == WARMUP + TIMED:
                marks["end"] = time.perf_counter()
                marks["threads"] = torch.get_num_threads()

    trainer = GRPOTrainer(model=model, reward_funcs=[sentiment], args=_trl_config(tmp),
                          train_dataset=Dataset.from_dict({"prompt": prompts()}),
                          processing_class=tokenizer, callbacks=[Clock()])
    setup_rss = _rss_mib()
    trainer.train()
    default_loss = next(f.default for f in dataclasses.fields(GRPOConfig) if f.name == "loss_type")
    return {"seconds": marks["end"] - marks["start"], "setup_rss_mib": setup_rss,
            "default_loss_type": default_loss, "threads": marks["threads"]}


# -- profile -------------------------------------------------------------------------------------
def profile_ours(tmp: Path, top: int = 30) -> None:
    import cProfile
    import pstats

    engine = _engine(tmp, "grpo", WARMUP + TIMED)
    for _ in range(WARMUP):
        _step(engine)
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(TIMED):
        _step(engine)
    profiler.disable()
    stats = pstats.Stats(profiler).strip_dirs().sort_stats("cumulative")
    stats.print_stats(top)


# -- parent --------------------------------------------------------------------------------------
SIDES = {"ours": run_ours, "trl": run_trl, "dapo": run_dapo}


def _child(side: str, out: Path) -> None:
    _setup_child()
    with tempfile.TemporaryDirectory(prefix=f"bench-rl-{side}-") as tmp:
        result = SIDES[side](Path(tmp))
    result["peak_rss_mib"] = _peak_rss_mib()
    out.write_text(json.dumps(result), encoding="utf-8")


def _run_child(side: str) -> dict[str, Any]:
    return run_child("bench.rl_step", side, THREADS)


def _best(runs: list[dict[str, Any]]) -> dict[str, Any]:
    best = dict(min(runs, key=lambda r: r["seconds"]))
    best["peak_rss_mib"] = max(r["peak_rss_mib"] for r in runs)
    best["all_cps"] = [TIMED * COMPLETIONS / r["seconds"] for r in runs]
    return best


def main() -> None:
    runs: dict[str, list[dict[str, Any]]] = {"ours": [], "trl": []}
    loads = [os.getloadavg()[0]]
    for _ in range(ROUNDS):  # alternate, so that a slow spell of a shared machine hits both
        for side in runs:
            runs[side].append(_run_child(side))
            loads.append(os.getloadavg()[0])
    ours, trl = _best(runs["ours"]), _best(runs["trl"])
    dapo = _run_child("dapo")
    ours_cps = TIMED * COMPLETIONS / ours["seconds"]
    trl_cps = TIMED * COMPLETIONS / trl["seconds"]
    print(f"tiny:lm, {PROMPTS_PER_STEP} prompts x {GROUP} = {COMPLETIONS} completions/step, "
          f"{MAX_NEW_TOKENS} new tokens, {WARMUP} warm-up + {TIMED} timed steps, "
          f"{THREADS} threads, lr {LEARNING_RATE:g}, beta 0; best of {ROUNDS} runs each")
    print(f"{'':6} {'completions/s':>14} {'s/step':>8} {'peak RSS MiB':>13} {'setup RSS MiB':>14}"
          f"  all runs (completions/s)")
    for name, r, cps in (("ours", ours, ours_cps), ("TRL", trl, trl_cps)):
        every = ", ".join(f"{c:.1f}" for c in r["all_cps"])
        print(f"{name:6} {cps:14.1f} {r['seconds'] / TIMED:8.3f} {r['peak_rss_mib']:13.0f} "
              f"{r['setup_rss_mib']:14.0f}  {every}")
    for name, r in (("ours", ours), ("TRL", trl)):
        if r["threads"] != THREADS:
            print(f"warning: {name} ran with {r['threads']} torch threads, not {THREADS}")
    if max(loads) > (os.cpu_count() or 1) + 1:  # this benchmark itself accounts for ~2
        print(f"warning: 1-min load average reached {max(loads):.1f} on {os.cpu_count()} CPUs "
              f"(other processes): timings are unreliable")
    print(f"ours / TRL throughput: {ours_cps / trl_cps:.2f}x (goal >= 1)")
    gen, upd = ours["generate_s"] / TIMED, ours["update_s"] / TIMED
    print(f"ours per step: generate+old log-probs+score {gen:.3f} s, update {upd:.3f} s, "
          f"metrics (entropy pass) {ours['seconds'] / TIMED - gen - upd:.3f} s")
    print(f"TRL loss_type used: grpo (TRL 1.16 default: {trl['default_loss_type']})")
    nothing = f", {dapo['steps_nothing_kept']} steps kept nothing" \
        if dapo["steps_nothing_kept"] else ""
    print(f"DAPO generated/kept prompts over {DAPO_STEPS} steps (lr {DAPO_LEARNING_RATE:g}): "
          f"{dapo['generated_per_kept']:.2f}{nothing}; rounds per step {dapo['rounds']}; "
          f"reward {dapo['reward_first']:+.3f} -> {dapo['reward_last']:+.3f}")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        _child(sys.argv[2], Path(sys.argv[3]))
    elif sys.argv[1:] == ["--profile"]:
        _setup_child()
        with tempfile.TemporaryDirectory(prefix="bench-rl-profile-") as _tmp:
            profile_ours(Path(_tmp))
    else:
        main()
