"""Hand-computed tests for rlhf.engine.advantages (GAE, group advantages, RLOO)."""

from __future__ import annotations

import math

import pytest
import torch

from rlhf.engine.advantages import gae, group_advantages, rloo_advantages

# --------------------------------------------------------------------------------------------
# GAE
# --------------------------------------------------------------------------------------------

# r = [0, 0, 1], V = [0.5, 0.6, 0.7], gamma = 0.9, lam = 0.8 (gamma * lam = 0.72):
#   t=2: delta = 1 + 0.9*0 - 0.7 = 0.3           A = 0.3
#   t=1: delta = 0 + 0.9*0.7 - 0.6 = 0.03        A = 0.03 + 0.72*0.3   = 0.246
#   t=0: delta = 0 + 0.9*0.6 - 0.5 = 0.04        A = 0.04 + 0.72*0.246 = 0.21712
#   returns = A + V = [0.71712, 0.846, 1.0]
R = [0.0, 0.0, 1.0]
V = [0.5, 0.6, 0.7]
A_HAND = [0.21712, 0.246, 0.3]
RET_HAND = [0.71712, 0.846, 1.0]


def _t(x, dtype=torch.float64):
    return torch.tensor(x, dtype=dtype)


def test_gae_hand_example():
    adv, ret = gae(_t([R]), _t([V]), _t([[1.0, 1.0, 1.0]]), gamma=0.9, lam=0.8)
    torch.testing.assert_close(adv, _t([A_HAND]))
    torch.testing.assert_close(ret, _t([RET_HAND]))


def test_gae_left_and_right_padding_match_unpadded_row():
    nan = float("nan")  # garbage at padded positions must be ignored
    rewards = _t([[nan, nan] + R, R + [5.0, nan], [9.0] + R + [7.0]])
    values = _t([[3.0, nan] + V, V + [nan, 4.0], [2.0] + V + [8.0]])
    mask = _t([[0, 0, 1, 1, 1], [1, 1, 1, 0, 0], [0, 1, 1, 1, 0]])
    adv, ret = gae(rewards, values, mask, gamma=0.9, lam=0.8)
    torch.testing.assert_close(adv[0, 2:], _t(A_HAND))
    torch.testing.assert_close(adv[1, :3], _t(A_HAND))
    torch.testing.assert_close(adv[2, 1:4], _t(A_HAND))
    torch.testing.assert_close(ret[0, 2:], _t(RET_HAND))
    torch.testing.assert_close(ret[1, :3], _t(RET_HAND))
    torch.testing.assert_close(ret[2, 1:4], _t(RET_HAND))
    zero = mask == 0
    assert torch.all(adv[zero] == 0) and torch.all(ret[zero] == 0)


def test_gae_non_contiguous_mask_skips_holes():
    # a hole at t=1: V_{t+1} for t=0 is the value at the next valid position (t=2)
    adv, _ = gae(_t([[0.0, 99.0, 1.0]]), _t([[0.5, 99.0, 0.7]]), _t([[1, 0, 1]]), 0.9, 0.8)
    # t=2: A = 0.3; t=0: delta = 0.9*0.7 - 0.5 = 0.13, A = 0.13 + 0.72*0.3 = 0.346
    torch.testing.assert_close(adv, _t([[0.346, 0.0, 0.3]]))


def test_gae_lambda_one_gamma_one_gives_reward_to_go():
    rewards = _t([[1.0, -2.0, 0.5, 3.0]])
    values = _t([[0.3, 0.1, -0.4, 2.0]])
    adv, ret = gae(rewards, values, torch.ones(1, 4, dtype=torch.float64), gamma=1.0, lam=1.0)
    torch.testing.assert_close(ret, _t([[2.5, 1.5, 3.5, 3.0]]))
    torch.testing.assert_close(adv, ret - values)


def test_gae_lambda_zero_gives_one_step_td():
    rewards = _t([[1.0, -2.0, 0.5]])
    values = _t([[0.3, 0.1, -0.4]])
    adv, _ = gae(rewards, values, torch.ones(1, 3, dtype=torch.float64), gamma=0.9, lam=0.0)
    # delta_t = r_t + 0.9 V_{t+1} - V_t, V_3 = 0
    expected = [1.0 + 0.9 * 0.1 - 0.3, -2.0 + 0.9 * -0.4 - 0.1, 0.5 - -0.4]
    torch.testing.assert_close(adv, _t([expected]))


def test_gae_carries_no_gradient_and_checks_inputs():
    values = torch.tensor([V], requires_grad=True)
    adv, ret = gae(torch.tensor([R]), values, torch.ones(1, 3), 0.9, 0.8)
    assert not adv.requires_grad and not ret.requires_grad
    with pytest.raises(ValueError, match="gamma"):
        gae(torch.tensor([R]), values, torch.ones(1, 3), 1.5, 0.8)
    with pytest.raises(ValueError, match="shape"):
        gae(torch.tensor([R]), values, torch.ones(1, 4), 0.9, 0.8)


# --------------------------------------------------------------------------------------------
# group advantages
# --------------------------------------------------------------------------------------------

REWARDS = [1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0]
# group 1: mean 0.5, unbiased std = sqrt(4 * 0.25 / 3) = sqrt(1/3) = 0.5773503
# group 2: mean 1, std 0 -> A = 0
# batch:  mean 0.75, unbiased var = (6 * 0.0625 + 2 * 0.5625) / 7 = 1.5 / 7, std = 0.4629100
STD_G1 = math.sqrt(1 / 3)
STD_BATCH = math.sqrt(1.5 / 7)


def test_group_scale_hand_numbers():
    adv = group_advantages(_t(REWARDS), 4, scale="group", eps=1e-4)
    a = 0.5 / (STD_G1 + 1e-4)  # 0.5 / 0.5774503 = 0.8658756
    torch.testing.assert_close(adv, _t([a, -a, -a, a, 0, 0, 0, 0]))
    assert abs(a - 0.8658756) < 1e-6


def test_batch_scale_hand_numbers():
    adv = group_advantages(_t(REWARDS), 4, scale="batch", eps=1e-4)
    a = 0.5 / (STD_BATCH + 1e-4)  # 0.5 / 0.4630100 = 1.0798902
    torch.testing.assert_close(adv, _t([a, -a, -a, a, 0, 0, 0, 0]))
    assert abs(a - 1.0798902) < 1e-6


def test_no_scale_hand_numbers_and_no_eps():
    adv = group_advantages(_t(REWARDS), 4, scale="none", eps=123.0)
    torch.testing.assert_close(adv, _t([0.5, -0.5, -0.5, 0.5, 0, 0, 0, 0]))


def test_std_is_unbiased_like_torch_std():
    g = torch.tensor([0.2, 0.9, 0.4, 0.7, 3.0, -1.0], dtype=torch.float64)
    adv = group_advantages(g, 3, scale="group", eps=0.0)
    for k in range(2):
        grp = g[3 * k : 3 * k + 3]
        expected = (grp - grp.mean()) / torch.std(grp)  # torch default: unbiased
        torch.testing.assert_close(adv[3 * k : 3 * k + 3], expected)
    biased = (g[:3] - g[:3].mean()) / g[:3].std(correction=0)
    assert not torch.allclose(adv[:3], biased)


def test_group_of_size_one_is_zero():
    for scale in ("group", "batch", "none"):
        adv = group_advantages(_t([0.3, 1.0, -2.0]), 1, scale=scale)
        assert torch.equal(adv, torch.zeros(3, dtype=torch.float64)), scale
    assert torch.equal(group_advantages(_t([0.7]), 1, scale="batch"), _t([0.0]))


def test_integer_rewards_become_float():
    adv = group_advantages(torch.tensor([1, 0]), 2, scale="none")
    assert adv.dtype == torch.float32
    torch.testing.assert_close(adv, torch.tensor([0.5, -0.5]))


def test_indivisible_n_and_bad_scale_raise():
    with pytest.raises(ValueError, match="not divisible by 4"):
        group_advantages(torch.zeros(7), 4)
    with pytest.raises(ValueError, match="unknown scale"):
        group_advantages(torch.zeros(8), 4, scale="std")
    with pytest.raises(ValueError, match="1-D"):
        group_advantages(torch.zeros(2, 4), 4)


# --------------------------------------------------------------------------------------------
# RLOO
# --------------------------------------------------------------------------------------------


def test_rloo_hand_example():
    # group [1, 0, 0, 1]: A_0 = 1 - (0 + 0 + 1)/3 = 2/3, A_1 = 0 - (1 + 0 + 1)/3 = -2/3
    # group [3, 1, 2, 6]: A_0 = 3 - 9/3 = 0, A_1 = 1 - 11/3 = -8/3, A_2 = 2 - 10/3 = -4/3,
    #                     A_3 = 6 - 6/3 = 4
    adv = rloo_advantages(_t([1, 0, 0, 1, 3, 1, 2, 6]), 4)
    expected = [2 / 3, -2 / 3, -2 / 3, 2 / 3, 0.0, -8 / 3, -4 / 3, 4.0]
    torch.testing.assert_close(adv, _t(expected))


def test_rloo_equals_scaled_mean_baseline_and_checks_group_size():
    g = torch.tensor([0.2, 0.9, 0.4, 0.7, 3.0, -1.0], dtype=torch.float64)
    centred = group_advantages(g, 3, scale="none")
    torch.testing.assert_close(rloo_advantages(g, 3), centred * 3 / 2)
    with pytest.raises(ValueError, match=">= 2"):
        rloo_advantages(g, 1)
    with pytest.raises(ValueError, match="divisible"):
        rloo_advantages(g, 4)
