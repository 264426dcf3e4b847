"""Hand-computed tests for rlhf.engine.losses (policy loss, KL penalties, value loss, helpers)."""

from __future__ import annotations

import math

import pytest
import torch

from rlhf.engine.losses import kl_penalty, masked_mean, masked_whiten, policy_loss, value_loss

F64 = torch.float64
EPS_LOW, EPS_HIGH = 0.2, 0.28  # DAPO clip-higher: ratio clipped to [0.8, 1.28]

# Two sequences of three tokens. Row 0 has A = +1, row 1 has A = -2; row 1's last token is padding.
RATIOS = [[1.5, 1.1, 0.5], [0.5, 1.0, 1.5]]
MASK = [[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]]
ADV = [1.0, -2.0]
# per-token loss = -min(r A, clip(r, 0.8, 1.28) A):
#   row 0 (A=+1): r=1.5 -> -min(1.5, 1.28) = -1.28 (clipped high, no gradient)
#                 r=1.1 -> -1.1;  r=0.5 -> -min(0.5, 0.8) = -0.5 (unclipped)
#   row 1 (A=-2): r=0.5 -> -min(-1.0, -1.6) = 1.6 (clipped low, no gradient)
#                 r=1.0 -> 2.0;   r=1.5 -> padding
LOSS_ROWS = [[-1.28, -1.1, -0.5], [1.6, 2.0]]
TOKEN_MEAN = (-1.28 - 1.1 - 0.5 + 1.6 + 2.0) / 5  # 0.72 / 5 = 0.144
SEQ_MEAN = ((-1.28 - 1.1 - 0.5) / 3 + (1.6 + 2.0) / 2) / 2  # (-0.96 + 1.8) / 2 = 0.42
SUM_NORM_4 = ((-1.28 - 1.1 - 0.5) / 4 + (1.6 + 2.0) / 4) / 2  # (-0.72 + 0.9) / 2 = 0.09
# k3 of KL(old || new) per masked token, (r - 1) - ln r:
#   1.5: 0.5 - 0.4054651 = 0.0945349;  1.1: 0.1 - 0.0953102 = 0.0046898
#   0.5: -0.5 + 0.6931472 = 0.1931472 (twice);  1.0: 0
APPROX_KL = (0.0945349 + 0.0046898 + 0.1931472 + 0.1931472 + 0.0) / 5  # 0.0971038


def _inputs(advantages=None, mask=None):
    old = torch.tensor([[-1.0, -2.0, -0.5], [-0.7, -1.2, -3.0]], dtype=F64)
    logp = (old + torch.log(torch.tensor(RATIOS, dtype=F64))).requires_grad_(True)
    adv = torch.tensor(ADV if advantages is None else advantages, dtype=F64)
    return logp, old, adv, torch.tensor(MASK if mask is None else mask, dtype=F64)


@pytest.mark.parametrize(
    ("agg", "max_len", "expected"),
    [
        ("token_mean", None, TOKEN_MEAN),
        ("seq_mean_token_mean", None, SEQ_MEAN),
        ("seq_mean_token_sum_norm", 4, SUM_NORM_4),
    ],
)
def test_policy_loss_aggregations_hand_numbers(agg, max_len, expected):
    logp, old, adv, mask = _inputs()
    loss, stats = policy_loss(logp, old, adv, mask, EPS_LOW, EPS_HIGH, agg=agg, max_len=max_len)
    assert loss.item() == pytest.approx(expected, abs=1e-9)
    assert [TOKEN_MEAN, SEQ_MEAN, SUM_NORM_4] == pytest.approx([0.144, 0.42, 0.09])
    assert stats["clip_frac_low"] == pytest.approx(1 / 5)
    assert stats["clip_frac_high"] == pytest.approx(1 / 5)
    assert stats["approx_kl"] == pytest.approx(APPROX_KL, abs=1e-7)
    assert stats["ratio_mean"] == pytest.approx(4.6 / 5)
    assert stats["ratio_max"] == pytest.approx(1.5)  # the padded 1.5 of row 1 does not count
    assert all(isinstance(v, float) for v in stats.values())


def test_policy_loss_clipped_tokens_get_zero_gradient():
    logp, old, adv, mask = _inputs()
    loss, _ = policy_loss(logp, old, adv, mask, EPS_LOW, EPS_HIGH, agg="token_mean")
    loss.backward()
    # d loss_t / d logp_t = -A r for unclipped tokens, 0 for clipped ones and padding; / 5 tokens
    expected = torch.tensor([[0.0, -1.1 / 5, -0.5 / 5], [0.0, 2.0 * 1.0 / 5, 0.0]], dtype=F64)
    torch.testing.assert_close(logp.grad, expected)
    assert logp.grad[0, 0] == 0 and logp.grad[1, 0] == 0


def test_policy_loss_per_token_advantages_equal_broadcast():
    logp_a, old, adv, mask = _inputs()
    logp_b = logp_a.detach().clone().requires_grad_(True)
    per_token = adv.unsqueeze(-1).expand(2, 3).clone()
    for agg in ("token_mean", "seq_mean_token_mean", "seq_mean_token_sum_norm"):
        la, sa = policy_loss(logp_a, old, adv, mask, 0.2, 0.28, agg=agg, max_len=3)
        lb, sb = policy_loss(logp_b, old, per_token, mask, 0.2, 0.28, agg=agg, max_len=3)
        torch.testing.assert_close(la, lb)
        assert sa == sb
        la.backward()
        lb.backward()
    torch.testing.assert_close(logp_a.grad, logp_b.grad)


def test_policy_loss_per_token_advantages_values():
    logp, old, _, mask = _inputs()
    adv = torch.tensor([[1.0, 0.0, -1.0], [0.0, 3.0, 0.0]], dtype=F64)
    loss, stats = policy_loss(logp, old, adv, mask, EPS_LOW, EPS_HIGH)
    # row 0: -1.28, 0, -min(-0.5, -0.8) = 0.8 (clipped low); row 1: 0, -3.0
    assert loss.item() == pytest.approx((-1.28 + 0.8 - 3.0) / 5)
    assert stats["clip_frac_low"] == pytest.approx(1 / 5)
    assert stats["clip_frac_high"] == pytest.approx(1 / 5)


def test_policy_loss_seq_mean_excludes_empty_rows_and_padding_nan_is_ignored():
    logp, old, adv, _ = _inputs()
    with torch.no_grad():
        logp[1, 2] = float("nan")
    mask = torch.tensor([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]], dtype=F64)
    loss, _ = policy_loss(logp, old, adv, mask, EPS_LOW, EPS_HIGH, agg="seq_mean_token_mean")
    assert loss.item() == pytest.approx((-1.28 - 1.1 - 0.5) / 3)  # row 1 left out, not a 0
    loss.backward()
    assert torch.isfinite(logp.grad).all()
    loss, _ = policy_loss(logp, old, adv, mask, EPS_LOW, EPS_HIGH, "seq_mean_token_sum_norm", 3)
    assert loss.item() == pytest.approx((-1.28 - 1.1 - 0.5) / 3 / 2)  # row 1 counts as 0


def test_policy_loss_zero_mask():
    logp, old, adv, _ = _inputs()
    for agg in ("token_mean", "seq_mean_token_mean", "seq_mean_token_sum_norm"):
        loss, stats = policy_loss(logp, old, adv, torch.zeros(2, 3), 0.2, 0.28, agg, max_len=3)
        assert loss.item() == 0.0 and loss.requires_grad
        assert stats == dict.fromkeys(
            ["clip_frac_low", "clip_frac_high", "approx_kl", "ratio_mean", "ratio_max"], 0.0
        )
        loss.backward()
    assert torch.equal(logp.grad, torch.zeros(2, 3, dtype=F64))


def test_policy_loss_argument_errors():
    logp, old, adv, mask = _inputs()
    with pytest.raises(ValueError, match="max_len"):
        policy_loss(logp, old, adv, mask, 0.2, 0.28, agg="seq_mean_token_sum_norm")
    with pytest.raises(ValueError, match="unknown agg"):
        policy_loss(logp, old, adv, mask, 0.2, 0.28, agg="mean")
    with pytest.raises(ValueError, match="advantages"):
        policy_loss(logp, old, torch.zeros(3), mask, 0.2, 0.28)


def test_policy_loss_equals_plain_pg_inside_trust_region():
    # ratio 1 everywhere: the loss is -mean(A) and its gradient is -A / n
    logp = torch.zeros(2, 2, requires_grad=True)
    adv = torch.tensor([[1.0, 2.0], [3.0, -4.0]])
    loss, stats = policy_loss(logp, torch.zeros(2, 2), adv, torch.ones(2, 2), 0.2, 0.2)
    assert loss.item() == pytest.approx(-0.5)
    loss.backward()
    torch.testing.assert_close(logp.grad, -adv / 4)
    assert stats["approx_kl"] == 0.0 and stats["ratio_mean"] == 1.0


# --------------------------------------------------------------------------------------------
# KL penalty
# --------------------------------------------------------------------------------------------


def test_kl_penalty_hand_numbers():
    logp = torch.tensor([-1.0, -2.0, -0.5], dtype=F64)
    ref = torch.tensor([-1.5, -1.0, -0.5], dtype=F64)
    # logp - ref = [0.5, -1.0, 0.0]
    t = lambda *xs: torch.tensor(xs, dtype=F64)  # noqa: E731
    torch.testing.assert_close(kl_penalty(logp, ref, "k1"), t(0.5, -1.0, 0.0))
    torch.testing.assert_close(kl_penalty(logp, ref, "k2"), t(0.125, 0.5, 0.0))
    # k3 = exp(d) - d - 1 with d = ref - logp = [-0.5, 1.0, 0.0]:
    #   e^-0.5 + 0.5 - 1 = 0.6065307 - 0.5 = 0.1065307;  e - 1 - 1 = 0.7182818;  0
    k3 = kl_penalty(logp, ref, "k3")
    torch.testing.assert_close(k3, t(0.1065307, 0.7182818, 0.0), atol=1e-7, rtol=0)
    assert kl_penalty(logp.reshape(1, 3), ref.reshape(1, 3), "k3").shape == (1, 3)


def test_kl_penalty_k3_non_negative_and_errors():
    g = torch.Generator().manual_seed(0)
    logp, ref = torch.randn(1000, generator=g) * 3, torch.randn(1000, generator=g) * 3
    assert (kl_penalty(logp, ref, "k3") >= 0).all()
    with pytest.raises(ValueError, match="unknown kind"):
        kl_penalty(logp, ref, "k4")


def test_kl_estimators_monte_carlo_match_true_kl():
    p = torch.tensor([0.5, 0.3, 0.2], dtype=F64)  # policy
    q = torch.tensor([0.2, 0.5, 0.3], dtype=F64)  # reference
    # KL(p || q) = 0.5 ln 2.5 + 0.3 ln 0.6 + 0.2 ln(2/3)
    #            = 0.4581454 - 0.1532477 - 0.0810930 = 0.2238047
    true_kl = float((p * (p / q).log()).sum())
    assert true_kl == pytest.approx(0.2238047, abs=1e-6)
    g = torch.Generator().manual_seed(1234)
    x = torch.multinomial(p, 200_000, replacement=True, generator=g)
    logp, ref = p.log()[x], q.log()[x]
    assert float(kl_penalty(logp, ref, "k3").mean()) == pytest.approx(true_kl, abs=0.01)
    assert float(kl_penalty(logp, ref, "k1").mean()) == pytest.approx(true_kl, abs=0.01)


# --------------------------------------------------------------------------------------------
# value loss
# --------------------------------------------------------------------------------------------


def _value_inputs():
    values = torch.tensor([[1.0, 2.0, 3.0, float("nan")]], dtype=F64, requires_grad=True)
    old = torch.tensor([[1.5, 1.5, 1.5, 9.0]], dtype=F64)
    returns = torch.tensor([[2.0, 2.0, 2.0, 9.0]], dtype=F64)
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0]], dtype=F64)
    return values, old, returns, mask


def test_value_loss_clipped_hand_numbers():
    values, old, returns, mask = _value_inputs()
    # v_clip = 1.5 + clamp([-0.5, 0.5, 1.5], -0.2, 0.2) = [1.3, 1.7, 1.7]
    # (v - R)^2 = [1, 0, 1]; (v_clip - R)^2 = [0.49, 0.09, 0.09]; max = [1, 0.09, 1]
    # loss = 0.5 * 2.09 / 3 = 0.3483333; clipped term wins only on token 1 -> 1/3
    loss, stats = value_loss(values, old, returns, mask, clip=0.2)
    assert loss.item() == pytest.approx(0.5 * 2.09 / 3)
    assert stats["value_clip_frac"] == pytest.approx(1 / 3)
    loss.backward()
    # gradient only through the unclipped terms that won: d/dv 0.5 (v - R)^2 / 3 = (v - R) / 3
    torch.testing.assert_close(values.grad, torch.tensor([[-1 / 3, 0.0, 1 / 3, 0.0]], dtype=F64))


def test_value_loss_unclipped_hand_numbers():
    values, old, returns, mask = _value_inputs()
    loss, stats = value_loss(values, old, returns, mask, clip=None)
    assert loss.item() == pytest.approx(0.5 * (1 + 0 + 1) / 3)
    assert stats == {"value_clip_frac": 0.0}


def test_value_loss_zero_mask():
    values, old, returns, _ = _value_inputs()
    loss, stats = value_loss(values, old, returns, torch.zeros(1, 4, dtype=F64), clip=0.2)
    assert loss.item() == 0.0 and loss.requires_grad and stats == {"value_clip_frac": 0.0}


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def test_masked_mean():
    x = torch.tensor([[1.0, 2.0, 100.0], [4.0, float("nan"), 6.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    assert masked_mean(x, mask).item() == pytest.approx(7 / 3)
    torch.testing.assert_close(masked_mean(x, mask, dim=1), torch.tensor([1.5, 4.0]))
    torch.testing.assert_close(masked_mean(x, mask, dim=0), torch.tensor([2.5, 2.0, 0.0]))
    assert masked_mean(x, torch.zeros(2, 3)).item() == 0.0


def test_masked_whiten_uses_biased_variance():
    x = torch.tensor([[1.0, 2.0, 3.0, 50.0]], dtype=F64)
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0]], dtype=F64)
    # mean 2, biased var = (1 + 0 + 1) / 3 = 2/3 -> (x - 2) / sqrt(2/3 + 1e-8)
    s = math.sqrt(2 / 3 + 1e-8)
    expected = torch.tensor([[-1 / s, 0, 1 / s, 0]], dtype=F64)
    torch.testing.assert_close(masked_whiten(x, mask), expected)
    kept = masked_whiten(x, mask, shift_mean=False)
    torch.testing.assert_close(kept, torch.tensor([[2 - 1 / s, 2, 2 + 1 / s, 0]], dtype=F64))
