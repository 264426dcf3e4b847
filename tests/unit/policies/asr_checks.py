"""Checks shared by the ASR adapter tests (``asr_whisper``, ``asr_audio_llm``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from rlhf.policies import build_policy


def reloaded_scores_the_same(policy: Any, rollout: Any, out: Path, opts: Any,
                             files: set[str]) -> Any:
    """Save ``policy`` to ``out``, check ``files`` are there, rebuild the adapter from the
    directory and check it scores ``rollout`` like the sampling policy; returns the copy."""
    policy.save(out)
    assert files <= {p.name for p in out.iterdir()}
    again = build_policy(str(out), opts.policy, need_reference=False)
    assert torch.equal(again.allowed, policy.allowed)
    torch.testing.assert_close(again.log_probs(rollout, grad=False), rollout.old_logp,
                               atol=1e-5, rtol=0)
    return again


def lora_starts_at_its_reference_and_saves_merged(spec: str, opts: Any, rollout: Any,
                                                  out: Path) -> None:
    """A LoRA policy (``opts`` with ``lora``) scores ``rollout`` like the plain start model,
    its reference is the base with the adapters disabled, and it saves merged weights."""
    from safetensors.torch import load_file

    torch.manual_seed(0)
    pol = build_policy(spec, opts.policy, need_reference=True)
    assert pol.reference_model is None  # the reference is the base with adapters disabled
    torch.testing.assert_close(pol.log_probs(rollout, grad=False), rollout.old_logp,
                               atol=1e-5, rtol=0)
    torch.testing.assert_close(pol.log_probs(rollout, reference=True), rollout.old_logp,
                               atol=1e-5, rtol=0)
    pol.save(out)
    weights = load_file(str(out / "model.safetensors"))
    assert not any("lora_" in k for k in weights)


def placement_moves_model_and_reference(spec: str, opts: Any, rollout: Any) -> None:
    """``to(device)`` (the engine's placement hook) moves the trainable model and the frozen
    reference (to ``meta`` here: the CI machines have no GPU); on the CPU a CPU rollout scores
    as sampled."""
    from rlhf.engine.device import place

    torch.manual_seed(0)
    pol = build_policy(spec, opts.policy, need_reference=True)
    assert place(pol, None, "cpu").type == "cpu" and pol.device.type == "cpu"
    assert pol.to("cpu") is pol
    logp = pol.log_probs(rollout.to("cpu"), grad=False)
    assert logp.device.type == "cpu"
    torch.testing.assert_close(logp, rollout.old_logp, atol=1e-5, rtol=0)
    pol.to("meta")  # a device without data: every parameter must follow
    assert pol.device.type == "meta"
    assert all(p.device.type == "meta" for p in pol.model.parameters())
    assert all(p.device.type == "meta" for p in pol.reference_model.parameters())


def run_asr_wer_drop(recipe: Any, run_dir: Path) -> tuple[Any, float, float]:
    """Run an ASR learning recipe (warm start ``sft``, RL ``rl``, ``asr_eval`` stage ``eval``)
    on one torch thread; check the warm start left room for RL and ``eval/wer_drop``; return
    ``(outcome, held-out WER after sft, after rl)``."""
    import time

    from rlhf.recipe.runner import run_recipe

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model: one thread is fastest, and the same floats anywhere
    started = time.perf_counter()
    try:
        outcome = run_recipe(recipe, run_dir=run_dir)
    finally:
        torch.set_num_threads(threads)
    seconds = time.perf_counter() - started
    m = outcome.results["eval"].metrics
    sft, rl = m["eval/sft/wer"], m["eval/rl/wer"]
    print(f"\nheld-out WER: sft {sft:.3f} -> rl {rl:.3f} (CER {m['eval/sft/cer']:.3f} -> "
          f"{m['eval/rl/cer']:.3f}), {seconds:.0f}s")
    assert 0.3 <= sft <= 0.95  # the warm start transcribes, imperfectly: room for RL
    assert m["eval/wer_drop"] == sft - rl
    return outcome, sft, rl
