"""Data-parallel update: 2 CPU processes (gloo), each on half of a fixed global batch, end with the
same weights and report the same loss as one process on the whole batch."""

from __future__ import annotations

import copy
import json
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file, load_model, save_file, save_model

from rlhf.engine.update import Batch, update
from rlhf.policies.base import Rollout
from rlhf.policies.text import TextPolicy
from tests.unit.engine.test_engine_update import PROMPTS, options

WORLD = 2
TENSORS = ("prompt_ids", "prompt_mask", "completion_ids", "completion_mask", "old_logp")
CASES = {
    "token_mean": dict(loss_agg="token_mean"),
    "seq_mean_token_mean": dict(loss_agg="seq_mean_token_mean"),
    "seq_mean_token_sum_norm": dict(loss_agg="seq_mean_token_sum_norm"),
    "token_mean_micro": dict(loss_agg="token_mean", micro_batch_size=4),
    "seq_mean_token_mean_micro": dict(loss_agg="seq_mean_token_mean", micro_batch_size=2),
    "kl_two_epochs_no_clip": dict(loss_agg="seq_mean_token_mean", micro_batch_size=4, epochs=2,
                                  kl_coef=0.1, max_grad_norm=None),
    # rank 1 has no rows at all (dynamic sampling can leave a rank empty): still one step
    "all_rows_on_rank_0": dict(loss_agg="seq_mean_token_mean", micro_batch_size=4),
}


def make_batch(policy: TextPolicy) -> Batch:
    """16 completions (4 prompts × 4), spread advantages, one row masked out, a reference."""
    from rlhf.engine.advantages import group_advantages

    torch.manual_seed(0)
    rollout = policy.generate([r["prompt"] for r in PROMPTS], 4)
    rewards = torch.arange(len(rollout), dtype=torch.float32) * 0.37 % 1.0
    mask = rollout.completion_mask.clone()
    mask[5] = 0  # an unscored row: it counts in no normaliser
    ref = rollout.old_logp + 0.05 * torch.randn_like(rollout.old_logp) * rollout.completion_mask
    return Batch(rollout, group_advantages(rewards, 4), mask, ref)


def save_batch(batch: Batch, path) -> None:
    r = batch.rollout
    save_file({**{k: getattr(r, k) for k in TENSORS}, "truncated": r.truncated,
               "advantages": batch.advantages, "loss_mask": batch.loss_mask,
               "ref_logp": batch.ref_logp}, str(path / "batch.safetensors"))
    (path / "batch.json").write_text(json.dumps({"prompts": r.prompts,
                                                 "completions": r.completions}))


def load_batch(path) -> Batch:
    t = load_file(str(path / "batch.safetensors"))
    text = json.loads((path / "batch.json").read_text())
    rollout = Rollout(text["prompts"], *(t[k] for k in TENSORS[:4]), t["old_logp"],
                      text["completions"], t["truncated"])
    return Batch(rollout, t["advantages"], t["loss_mask"], t["ref_logp"])


def run_update(policy: TextPolicy, batch: Batch, case: str) -> dict[str, float]:
    opts = options(**CASES[case])
    optimiser = torch.optim.SGD(policy.model.parameters(), lr=0.5)
    return update(policy, batch, opts, optimiser, None, torch.Generator().manual_seed(0),
                  opts.kl_coef)


def _worker(rank: int, tmp: str, port: int) -> None:
    from pathlib import Path

    from rlhf.engine import distributed as dist

    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      LOCAL_RANK=str(rank), WORLD_SIZE=str(WORLD))
    assert dist.init() and dist.world_size() == WORLD and dist.rank() == rank
    tmp_path = Path(tmp)
    batch = load_batch(tmp_path)
    n = len(batch.rollout)
    base = TextPolicy("tiny:lm", options().policy, need_reference=False)
    load_model(base.model, str(tmp_path / "start.safetensors"))
    stats = {}
    for case in CASES:
        index = torch.arange(rank * n // WORLD, (rank + 1) * n // WORLD)
        if case == "all_rows_on_rank_0":
            index = torch.arange(n if rank == 0 else 0)
        share = Batch(batch.rollout.select(index), batch.advantages[index],
                      batch.loss_mask[index], batch.ref_logp[index])
        policy = copy.deepcopy(base)
        stats[case] = run_update(policy, share, case)
        if rank == 0:
            save_model(policy.model, str(tmp_path / f"dp-{case}.safetensors"))
    if rank == 0:
        (tmp_path / "dp-stats.json").write_text(json.dumps(stats))
    dist.shutdown()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def two_process_run(tmp_path_factory):
    """The fixed global batch, the single-process results and the 2-process results."""
    tmp = tmp_path_factory.mktemp("dp")
    base = TextPolicy("tiny:lm", options().policy, need_reference=False)
    batch = make_batch(base)
    save_batch(batch, tmp)
    save_model(base.model, str(tmp / "start.safetensors"))
    single = {}
    for case in CASES:
        policy = copy.deepcopy(base)
        stats = run_update(policy, load_batch(tmp), case)
        single[case] = (stats, {k: v.detach().clone() for k, v in
                                policy.model.state_dict().items()})
    # fork: the workers inherit the imported libraries (a spawn re-imports transformers: ~15 s)
    mp.start_processes(_worker, args=(str(tmp), _free_port()), nprocs=WORLD, join=True,
                       start_method="fork")
    parallel = json.loads((tmp / "dp-stats.json").read_text())
    return base, single, parallel, tmp


@pytest.mark.parametrize("case", sorted(CASES))
def test_two_processes_equal_one_process_on_the_global_batch(two_process_run, case):
    base, single, parallel, tmp = two_process_run
    stats, weights = single[case]
    dp = load_file(str(tmp / f"dp-{case}.safetensors"))
    moved = False
    for key, value in weights.items():
        if key in dp:  # tied weights are saved once
            torch.testing.assert_close(dp[key], value, rtol=0, atol=1e-6)
            moved |= not torch.equal(value, base.model.state_dict()[key])
    assert moved  # the update did change the weights
    assert abs(parallel[case]["policy_loss"] - stats["policy_loss"]) < 1e-6
    assert abs(parallel[case]["grad_norm"] - stats["grad_norm"]) < 1e-5
    if "kl" in case:
        assert abs(parallel[case]["kl_loss"] - stats["kl_loss"]) < 1e-6
