"""Hand-computed tests for rlhf.engine.kl_control (Ziegler et al. 2019 controllers)."""

from __future__ import annotations

import pytest

from rlhf.engine.kl_control import AdaptiveKLController, FixedKLController


def test_fixed_controller_never_moves_and_round_trips():
    ctl = FixedKLController(0.05)
    ctl.update(current_kl=100.0, n_steps=1000)
    assert ctl.value == 0.05
    state = ctl.state_dict()
    assert state == {"kind": "fixed", "value": 0.05}
    other = FixedKLController(1.0)
    other.load_state_dict(state)
    assert other.value == 0.05


def test_adaptive_controller_sequence_by_hand():
    ctl = AdaptiveKLController(init_coef=0.1, target=6.0, horizon=10_000)
    # kl 9: error = clip(9/6 - 1 = 0.5) = 0.2; beta = 0.1 * (1 + 0.2 * 256/10000) = 0.1 * 1.00512
    ctl.update(current_kl=9.0, n_steps=256)
    assert ctl.value == pytest.approx(0.100512, rel=1e-12)
    # kl 3: error = clip(-0.5) = -0.2; factor = 1 - 0.2 * 512/10000 = 0.98976
    #       beta = 0.100512 * 0.98976 = 0.100512 - 0.100512 * 0.01024 = 0.09948276
    ctl.update(current_kl=3.0, n_steps=512)
    assert ctl.value == pytest.approx(0.0994827571, rel=1e-9)
    # kl 6.6: error = 0.1 (inside the clip); factor = 1 + 0.1 * 1000/10000 = 1.01
    ctl.update(current_kl=6.6, n_steps=1000)
    assert ctl.value == pytest.approx(0.0994827571 * 1.01, rel=1e-9)  # 0.1004775847
    # kl equal to the target: no change; n_steps 0: no change
    before = ctl.value
    ctl.update(current_kl=6.0, n_steps=5000)
    ctl.update(current_kl=60.0, n_steps=0)
    assert ctl.value == pytest.approx(before, rel=1e-12)


def test_adaptive_state_dict_round_trip_continues_identically():
    a = AdaptiveKLController(0.2, target=1.0, horizon=100)
    a.update(1.1, 10)
    b = AdaptiveKLController(5.0, target=3.0, horizon=7)
    b.load_state_dict(a.state_dict())
    assert b.state_dict() == a.state_dict()
    assert b.state_dict() == {"kind": "adaptive", "value": a.value, "target": 1.0, "horizon": 100}
    a.update(0.5, 20)
    b.update(0.5, 20)
    assert a.value == b.value


def test_load_state_dict_of_the_other_kind_fails():
    with pytest.raises(ValueError, match="'fixed' controller"):
        AdaptiveKLController(0.1, 6.0, 10_000).load_state_dict(FixedKLController(0.1).state_dict())


def test_adaptive_argument_checks():
    with pytest.raises(ValueError, match="target"):
        AdaptiveKLController(0.1, target=0.0, horizon=10)
    with pytest.raises(ValueError, match="horizon"):
        AdaptiveKLController(0.1, target=1.0, horizon=0)
    with pytest.raises(ValueError, match="n_steps"):
        AdaptiveKLController(0.1, target=1.0, horizon=10).update(1.0, -1)
    with pytest.raises(ValueError, match="non-positive"):
        AdaptiveKLController(0.1, target=1.0, horizon=10).update(0.0, 50)
