"""Device placement of RL stages: rollouts stay on the CPU, the policy goes where ``device`` says."""

import pytest
import torch

from rlhf.engine.device import place, resolve
from rlhf.errors import UserError
from rlhf.policies.text import TextPolicy
from tests.unit.engine.test_engine_update import make_batch, options


def test_rollout_to_moves_tensors_and_shares_lists():
    opts = options()
    policy = TextPolicy("tiny:lm", opts.policy, need_reference=False)
    batch = make_batch(policy, opts)
    moved = batch.rollout.to("cpu")
    assert moved is not batch.rollout
    assert moved.completions is batch.rollout.completions
    assert torch.equal(moved.completion_ids, batch.rollout.completion_ids)
    assert all(t.device.type == "cpu" for t in (moved.prompt_ids, moved.old_logp))
    again = batch.to("cpu")
    assert torch.equal(again.advantages, batch.advantages)


def test_cpu_setting_keeps_everything_on_the_cpu_and_logp_matches():
    opts = options(kl_coef=0.1)
    policy = TextPolicy("tiny:lm", opts.policy, need_reference=True)
    assert place(policy, None, "cpu") == torch.device("cpu")
    batch = make_batch(policy, opts)
    logp = policy.log_probs(batch.rollout, grad=False)
    ref = policy.log_probs(batch.rollout, reference=True)
    # the sampling log-probs are recomputed exactly (the ratio is 1 at the first update)
    torch.testing.assert_close(logp, batch.rollout.old_logp, rtol=0, atol=1e-5)
    torch.testing.assert_close(ref, logp, rtol=0, atol=1e-5)  # reference = start policy
    assert policy.entropy(batch.rollout).device.type == "cpu"


def test_auto_and_cuda_follow_what_the_machine_has():
    if torch.cuda.is_available():
        assert resolve("auto").type == "cuda"
        assert resolve("cuda").type == "cuda"
    else:
        assert resolve("auto") == torch.device("cpu")
        with pytest.raises(UserError, match="CUDA is not available"):
            resolve("cuda")
    assert resolve("cpu") == torch.device("cpu")


def test_adapter_without_to_trains_on_the_cpu_under_auto():
    class NoPlacement:
        model = torch.nn.Linear(2, 2)

    assert place(NoPlacement(), None, "auto").type == "cpu"
    assert place(NoPlacement(), None, "cpu").type == "cpu"
