"""Data parallelism for the RL engine and the runner: process group, collectives, per-rank RNG.

One process per rank, started by ``rlhf run`` (see :mod:`rlhf.launch`) or by any launcher that
sets ``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT``. Every helper here is the
identity (or does nothing) in a single process, so single-process code paths stay unchanged.

How the engine shares one step among ``W`` ranks, each holding a full replica of the policy:

- every rank draws the same global prompt batch from the seeded sampler and keeps its contiguous
  share of whole groups (``prompts_per_step / W`` prompts), so a group never spans ranks and
  generation, rewards and group advantages stay local;
- minibatch and micro-batch sizes are global (in completions): a rank works on ``1 / W`` of each;
- loss normalisers (masked tokens for ``token_mean``, valid sequences for the sequence
  aggregations) are summed over ranks; each rank weights its micro-batch losses by their share of
  that *global* normaliser and the gradients are then summed over ranks (:func:`sum_gradients`),
  so the update equals the single-process update on the global minibatch;
- metrics are reduced across ranks (:func:`reduce_metrics`) before rank 0 logs them.

Small values and objects go through gloo: the default group on a CPU-only machine, and a second
gloo group beside NCCL when CUDA is present. Gradients and parameters of a policy placed on a GPU
(``device: cuda``) are reduced with NCCL on the device.
"""

from __future__ import annotations

import json
import math
import os
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

TIMEOUT = timedelta(hours=6)
"""How long a collective waits for the other ranks. Long on purpose: while rank 0 alone runs a
stage that is not data-parallel (data generation, evaluation), the others wait at a barrier."""

SUM_KEYS = ("train/unscored", "train/ds_groups_kept")
"""Metrics that are counts: summed over ranks (as are ``reward_errors/*``); others averaged."""

_cpu_group: Any = None
_settings: Any = None


# -- the process group ---------------------------------------------------------------------------
def launched() -> bool:
    """True inside a multi-process job (the launcher set ``WORLD_SIZE`` > 1)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init() -> bool:
    """Join the process group once (gloo on CPU, NCCL with CUDA); return whether one exists.

    A no-op outside a launched job or when a group exists already (e.g. made by accelerate)."""
    if dist.is_available() and dist.is_initialized():
        return True
    if not launched():
        return False
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("nccl", timeout=TIMEOUT)
    else:
        dist.init_process_group("gloo", timeout=TIMEOUT)
    return True


def shutdown() -> None:
    """Leave the process group (end of a worker)."""
    global _cpu_group
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
    _cpu_group = None


def _active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    return dist.get_world_size() if _active() else 1


def rank() -> int:
    return dist.get_rank() if _active() else 0


def is_main() -> bool:
    """Rank 0 (or a single process): the one that logs, prints and writes shared files."""
    return rank() == 0


def _group() -> Any:
    """The gloo group for CPU tensors (``None`` = the default group, when it is gloo)."""
    global _cpu_group
    if dist.get_backend() == "gloo":
        return None
    if _cpu_group is None:  # first collective: every rank reaches it in the same order
        _cpu_group = dist.new_group(backend="gloo", timeout=TIMEOUT)
    return _cpu_group


def barrier() -> None:
    """Wait until every rank gets here (no rank reads a stage output before it exists)."""
    if _active():
        dist.barrier(group=_group())


# -- settings of the run (set by the runner, read by the stages) ----------------------------------
def configure(settings: Any) -> None:
    """Remember the recipe's ``distributed:`` block for the stages of the current run."""
    global _settings
    _settings = settings


def settings() -> Any:
    """The ``distributed:`` block of the running recipe, or ``None`` outside a run."""
    return _settings


# -- collectives on small values ------------------------------------------------------------------
def sum_values(*values: float) -> list[float]:
    """Each value summed over ranks (float64)."""
    if not _active():
        return [float(v) for v in values]
    t = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(t, group=_group())
    return t.tolist()


def max_int(value: int) -> int:
    if not _active():
        return int(value)
    t = torch.tensor([int(value)], dtype=torch.int64)
    dist.all_reduce(t, op=dist.ReduceOp.MAX, group=_group())
    return int(t.item())


def all_true(flag: bool) -> bool:
    """True when ``flag`` holds on every rank."""
    if not _active():
        return bool(flag)
    t = torch.tensor([1 if flag else 0], dtype=torch.int64)
    dist.all_reduce(t, op=dist.ReduceOp.MIN, group=_group())
    return bool(t.item())


def any_true(flag: bool) -> bool:
    """True when ``flag`` holds on at least one rank."""
    return not all_true(not flag)


def gather(obj: Any) -> list[Any]:
    """``obj`` of every rank, in rank order (picklable objects)."""
    if not _active():
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj, group=_group())
    return out


def broadcast(obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank."""
    if not _active():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0, group=_group())
    return box[0]


# -- tensors -------------------------------------------------------------------------------------
def _tensor_group(t: torch.Tensor) -> Any:
    """The group for a collective on ``t``: NCCL's default group for CUDA tensors when the
    default backend is NCCL, the gloo group otherwise."""
    return None if t.is_cuda and dist.get_backend() == "nccl" else _group()


def _all_reduce(t: torch.Tensor, **kwargs: Any) -> torch.Tensor:
    """All-reduce ``t`` in place where its device allows, else through a CPU copy."""
    group = _tensor_group(t)
    if t.is_cuda and group is not None:  # gloo without CUDA support: go through the host
        host = t.cpu()
        dist.all_reduce(host, group=group, **kwargs)
        t.copy_(host)
    else:
        dist.all_reduce(t, group=group, **kwargs)
    return t


def broadcast_module(module: torch.nn.Module | None) -> None:
    """Copy rank 0's parameters and buffers to every rank (identical replicas at the start)."""
    if module is None or not _active():
        return
    with torch.no_grad():
        for tensor in module.state_dict(keep_vars=True).values():
            group = _tensor_group(tensor.data)
            if tensor.data.is_cuda and group is not None:
                host = tensor.data.cpu()
                dist.broadcast(host, src=0, group=group)
                tensor.data.copy_(host)
            else:
                dist.broadcast(tensor.data, src=0, group=group)


def sum_gradients(params: list[torch.nn.Parameter]) -> None:
    """Sum every parameter's gradient over ranks, in place (one flat all-reduce).

    A parameter that no rank gave a gradient keeps ``grad = None`` (as in a single process, so
    the optimiser skips it); one that some rank did not reach counts as zero there."""
    if not _active() or not params:
        return
    have = torch.tensor([p.grad is not None for p in params], dtype=torch.float32)
    flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1)
                      .to(torch.float32) for p in params])
    dist.all_reduce(have, group=_group())
    _all_reduce(flat)
    offset = 0
    for p, had in zip(params, have.tolist(), strict=True):
        n = p.numel()
        p.grad = flat[offset:offset + n].view_as(p).to(p.dtype) if had else None
        offset += n


def masked_whiten(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """:func:`rlhf.engine.losses.masked_whiten` over the masked entries of *all* ranks.

    ``(x - mean) / sqrt(var + 1e-8)`` with the global mean and biased variance; 0 where masked.
    """
    from rlhf.engine.losses import WHITEN_EPS

    m = mask.to(x.dtype)
    x = torch.where(m != 0, x, torch.zeros_like(x))
    total, count = sum_values(float((x * m).sum()), float(m.sum()))
    mean = total / count if count else 0.0
    (sq,) = sum_values(float((((x - mean) ** 2) * m).sum()))
    var = sq / count if count else 0.0
    out = (x - mean) * (1.0 / math.sqrt(var + WHITEN_EPS))
    return torch.where(mask != 0, out, torch.zeros_like(out))


# -- metrics -------------------------------------------------------------------------------------
def reduce_metrics(metrics: dict[str, float]) -> dict[str, float]:
    """One dict for all ranks: counts (:data:`SUM_KEYS`, ``reward_errors/*``) summed, everything
    else averaged over the ranks that report it (NaN ignored unless every rank has NaN)."""
    if not _active():
        return metrics
    parts = gather(metrics)
    out: dict[str, float] = {}
    for key in dict.fromkeys(k for part in parts for k in part):
        values = [float(p[key]) for p in parts if key in p]
        if key in SUM_KEYS or key.startswith("reward_errors/"):
            out[key] = sum(values)
            continue
        finite = [v for v in values if not math.isnan(v)]
        out[key] = sum(finite) / len(finite) if finite else math.nan
    return out


# -- per-rank random state -----------------------------------------------------------------------
def rng_state() -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """This rank's RNG state as (tensors, string metadata) for a safetensors file."""
    from rlhf.engine.checkpoint import _rng_state

    tensors = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        tensors["cuda"] = torch.cuda.get_rng_state()
    return tensors, {"rng": json.dumps(_rng_state())}


def set_rng_state(tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    from rlhf.engine.checkpoint import _set_rng_state

    torch.set_rng_state(tensors["torch"])
    if "cuda" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(tensors["cuda"])
    if "rng" in metadata:
        _set_rng_state(json.loads(metadata["rng"]))
