"""kill -9 in the middle of an RL stage, then ``rlhf run --resume``: the run continues from its
last checkpoint and ends with exactly the weights of an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import torch
from safetensors.torch import load_file

RECIPE = """\
name: rl_resume
seed: 5
tracking: {enabled: false}
stages:
  - name: rl
    kind: grpo
    policy: {model: tiny:lm, sampling: {max_new_tokens: 6}}
    data: {train: prompts.jsonl}
    rewards: [{name: synthetic.sentiment}]
    steps: 12
    prompts_per_step: 2
    group_size: 4
    learning_rate: 0.01
    save_every: 3
    log_completions_every: 0
"""


def rlhf(*args, cwd):
    exe = Path(sys.executable).parent / "rlhf"
    return subprocess.Popen([str(exe), *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def test_kill_9_then_resume_equals_uninterrupted(tmp_path):
    (tmp_path / "r.yaml").write_text(textwrap.dedent(RECIPE))
    (tmp_path / "prompts.jsonl").write_text(
        "".join(f'{{"prompt": "Tell me about the {t}."}}\n' for t in ("sea", "town", "food")))
    full = rlhf("run", "r.yaml", "--run-dir", "full", cwd=tmp_path)
    assert full.wait(timeout=600) == 0, full.stdout.read()

    victim = rlhf("run", "r.yaml", "--run-dir", "killed", cwd=tmp_path)
    ckpts = tmp_path / "killed" / "rl" / "checkpoints"
    deadline = time.monotonic() + 300
    while not list(ckpts.glob("checkpoint-*")) and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    assert not (tmp_path / "killed" / "rl" / "model").exists()  # it really died mid-stage

    resumed = rlhf("run", "--resume", "killed", cwd=tmp_path)
    out = resumed.communicate(timeout=600)[0]
    assert resumed.returncode == 0, out
    assert "from checkpoint-" in out
    a = load_file(str(tmp_path / "full" / "rl" / "model" / "model.safetensors"))
    b = load_file(str(tmp_path / "killed" / "rl" / "model" / "model.safetensors"))
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=0, atol=1e-6)
