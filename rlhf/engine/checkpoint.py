"""Save and restore the complete state of an RL stage, so that a killed run continues exactly.

A checkpoint directory ``checkpoints/checkpoint-<step>/`` holds:

- ``policy.safetensors`` (and ``critic.safetensors``): module weights, safetensors only;
- ``optimizer.pt``: optimiser and scheduler state dicts (tensors and numbers only; loaded with
  ``torch.load(weights_only=True)``, which never unpickles arbitrary objects);
- ``rng.safetensors``: the torch CPU generator state;
- ``trainer_state.json``: step, prompt-sampler position, KL controller, Python/NumPy RNG states;
- ``rng-rank<r>.safetensors`` (multi-process runs only): rank ``r``'s own generator states (torch,
  CUDA, the update shuffler; Python/NumPy states in the file's metadata), since each rank samples
  its own completions. Rank 0 writes the whole checkpoint, with the states gathered from all ranks.

It is written to a temporary directory and renamed, so a crash never leaves half a checkpoint.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file, load_model, save_file, save_model

RankState = tuple[dict[str, torch.Tensor], dict[str, str]]
"""One rank's RNG state: (tensors, string metadata) of its ``rng-rank<r>.safetensors``."""


@dataclass
class Stateful:
    """The parts of a running stage that a checkpoint covers."""

    policy: torch.nn.Module
    optimizers: dict[str, torch.optim.Optimizer]
    schedulers: dict[str, Any]
    critic: torch.nn.Module | None = None


def _rng_state() -> dict[str, Any]:
    version, internal, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {"python": [version, list(internal), gauss],
            "numpy": [name, keys.tolist(), int(pos), int(has_gauss), float(cached)]}


def _set_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))


def save_checkpoint(root: Path, step: int, parts: Stateful, extra: dict[str, Any],
                    keep: int = 2, rank_states: list[RankState] | None = None) -> Path:
    """Write ``root/checkpoint-<step>`` atomically; keep the newest ``keep`` checkpoints.

    ``rank_states`` (multi-process runs): every rank's RNG state, written to
    ``rng-rank<r>.safetensors``."""
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"checkpoint-{step}"
    tmp = root / f".tmp-checkpoint-{step}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_model(parts.policy, str(tmp / "policy.safetensors"))
    if parts.critic is not None:
        save_model(parts.critic, str(tmp / "critic.safetensors"))
    torch.save({"optimizers": {k: o.state_dict() for k, o in parts.optimizers.items()},
                "schedulers": {k: s.state_dict() for k, s in parts.schedulers.items()}},
               tmp / "optimizer.pt")
    save_file({"torch": torch.get_rng_state()}, str(tmp / "rng.safetensors"))
    for r, (tensors, metadata) in enumerate(rank_states or []):
        save_file(tensors, str(tmp / f"rng-rank{r}.safetensors"), metadata=metadata)
    (tmp / "trainer_state.json").write_text(json.dumps(
        {"step": step, "rng": _rng_state(), **extra}), encoding="utf-8")
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    steps = sorted(int(p.name.split("-")[1]) for p in root.glob("checkpoint-*"))
    for old in steps[:-keep]:
        shutil.rmtree(root / f"checkpoint-{old}", ignore_errors=True)
    return final


def load_checkpoint(path: Path, parts: Stateful) -> dict[str, Any]:
    """Restore weights, optimisers, schedulers and RNG states; return ``trainer_state.json``."""
    load_model(parts.policy, str(path / "policy.safetensors"))
    if parts.critic is not None:
        load_model(parts.critic, str(path / "critic.safetensors"))
    saved = torch.load(path / "optimizer.pt", weights_only=True)
    for key, opt in parts.optimizers.items():
        opt.load_state_dict(saved["optimizers"][key])
    for key, sched in parts.schedulers.items():
        sched.load_state_dict(saved["schedulers"][key])
    state = json.loads((path / "trainer_state.json").read_text(encoding="utf-8"))
    torch.set_rng_state(load_file(str(path / "rng.safetensors"))["torch"])
    _set_rng_state(state["rng"])
    return state


def load_rank_state(path: Path, rank: int) -> RankState | None:
    """Rank ``rank``'s RNG state from a checkpoint, or ``None`` if the file is missing."""
    file = path / f"rng-rank{rank}.safetensors"
    if not file.is_file():
        return None
    with safe_open(str(file), framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata() or {})
