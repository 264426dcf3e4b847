"""Engine update: gradient accumulation is exact; LoRA reference = base with adapters off."""

import copy

import pytest
import torch

from rlhf.algorithms.grpo import GRPOOptions
from rlhf.engine.collect import collect
from rlhf.engine.update import Batch, update
from rlhf.policies.text import TextPolicy, TextPolicyOptions

PROMPTS = [{"prompt": f"Tell me about the {t}."} for t in ("sea", "town", "food", "music")]


def options(**kw):
    base = dict(policy={"model": "tiny:lm", "sampling": {"max_new_tokens": 6}},
                data={"train": "unused.jsonl"}, rewards=[{"name": "synthetic.sentiment"}],
                prompts_per_step=4, group_size=4, learning_rate=1e-2)
    base.update(kw)
    return GRPOOptions(**base)


def make_batch(policy, opts):
    from rewards.compose import CompositeReward
    from rlhf.engine.advantages import group_advantages

    torch.manual_seed(0)
    rows = iter(PROMPTS * 10)
    c = collect(lambda n: [next(rows) for _ in range(n)], policy,
                CompositeReward(opts.rewards), opts.prompts_per_step, opts.group_size,
                False, 1)
    # spread rewards so every group has signal regardless of what the random policy wrote
    rewards = c.rewards + torch.arange(len(c.rewards)) * 0.01
    adv = group_advantages(rewards, opts.group_size)
    return Batch(c.rollout, adv, c.rollout.completion_mask.clone())


@pytest.mark.parametrize("agg", ["token_mean", "seq_mean_token_mean", "seq_mean_token_sum_norm"])
def test_gradient_accumulation_equals_one_big_batch(agg):
    opts_big = options(loss_agg=agg)
    opts_acc = options(loss_agg=agg, micro_batch_size=4)
    policy = TextPolicy("tiny:lm", opts_big.policy, need_reference=False)
    batch = make_batch(policy, opts_big)
    results = []
    for opts in (opts_big, opts_acc):
        p = copy.deepcopy(policy)
        optimiser = torch.optim.SGD(p.model.parameters(), lr=0.5)
        update(p, batch, opts, optimiser, None, torch.Generator().manual_seed(0), 0.0)
        results.append({k: v.detach().clone() for k, v in p.model.state_dict().items()})
    changed = False
    for key in results[0]:
        torch.testing.assert_close(results[0][key], results[1][key], rtol=0, atol=1e-6)
        changed |= not torch.equal(results[0][key], policy.model.state_dict()[key])
    assert changed  # the update did move the weights


def test_minibatches_take_several_optimiser_steps():
    opts = options(minibatch_size=8, epochs=2)
    policy = TextPolicy("tiny:lm", opts.policy, need_reference=False)
    batch = make_batch(policy, opts)
    optimiser = torch.optim.SGD(policy.model.parameters(), lr=0.1)
    calls = []
    original = optimiser.step
    optimiser.step = lambda *a, **k: (calls.append(1), original(*a, **k))[1]
    update(policy, batch, opts, optimiser, None, torch.Generator().manual_seed(0), 0.0)
    assert len(calls) == 4  # 16 completions / 8 per minibatch × 2 epochs


def test_lora_reference_is_the_base_model():
    opts = options(policy={"model": "tiny:lm", "lora": {"r": 4},
                           "sampling": {"max_new_tokens": 6}})
    policy = TextPolicy("tiny:lm", opts.policy, need_reference=True)
    assert policy.reference_model is None  # no copy: adapters are switched off instead
    batch = make_batch(policy, opts)
    base = TextPolicy("tiny:lm", options().policy, need_reference=False)
    expected = base.log_probs(batch.rollout, grad=False)
    torch.testing.assert_close(policy.log_probs(batch.rollout, reference=True), expected)
    optimiser = torch.optim.SGD([p for p in policy.model.parameters() if p.requires_grad], lr=1.0)
    update(policy, batch, opts, optimiser, None, torch.Generator().manual_seed(0), 0.0)
    torch.testing.assert_close(policy.log_probs(batch.rollout, reference=True), expected)
    assert not torch.allclose(policy.log_probs(batch.rollout, grad=False), expected)


def test_old_logp_matches_a_fresh_forward():
    opts = options()
    policy = TextPolicy("tiny:lm", opts.policy, need_reference=False)
    batch = make_batch(policy, opts)
    torch.testing.assert_close(policy.log_probs(batch.rollout, grad=False),
                               batch.rollout.old_logp, rtol=0, atol=1e-5)
    mask = batch.rollout.completion_mask
    assert ((batch.rollout.old_logp != 0) <= (mask > 0)).all()


@pytest.mark.parametrize("refill", ["full", "missing"])
def test_dynamic_sampling_refill_draws_what_the_batch_lacks(refill):
    """``missing`` generates only the shortfall after round 1; ``full`` a whole batch each round.
    Either way the batch holds only groups with reward spread, at most ``prompts_per_step``."""
    from rewards.compose import CompositeReward
    from rlhf.engine.dynamic_sampling import keep_mask

    opts = options(policy={"model": "tiny:lm", "sampling": {"max_new_tokens": 1}},
                   prompts_per_step=6, group_size=3)
    policy = TextPolicy("tiny:lm", opts.policy, need_reference=False)
    torch.manual_seed(3)
    draws: list[int] = []
    rows = iter(PROMPTS * 100)

    def next_rows(n):
        draws.append(n)
        return [next(rows) for _ in range(n)]

    c = collect(next_rows, policy, CompositeReward(opts.rewards), 6, 3, True, 6, bool, refill)
    kept = int(c.stats["ds_groups_kept"])
    assert len(draws) >= 2  # single-token completions: some groups are all-equal
    assert len(c.rollout) == 3 * kept and 0 < kept <= 6
    assert bool(keep_mask(c.rewards, 3).all())
    if refill == "full":
        assert draws == [6] * len(draws)
        assert c.stats["ds_generated_per_kept"] == pytest.approx(6 * len(draws) / kept)
    else:
        # each later draw is the shortfall left by the rounds before it: it never grows
        assert draws[0] == 6 and draws == sorted(draws, reverse=True) and min(draws) < 6
        assert sum(draws) == pytest.approx(c.stats["ds_generated_per_kept"] * kept)
