from rlhf.monitors import MonitorThresholds, Monitors


def test_monitors_warn_once_and_flag_every_step():
    m = Monitors(MonitorThresholds(kl_max=1.0, entropy_floor=0.5, length_drift=0.5,
                                   zero_std_max=0.8))
    flags, warnings = m.check({"train/entropy": 2.0, "train/completion_length": 10.0,
                               "train/kl_ref": 0.1, "train/zero_std_groups": 0.0})
    assert warnings == [] and set(flags.values()) == {0.0}
    flags, warnings = m.check({"train/entropy": 0.9, "train/completion_length": 16.0,
                               "train/kl_ref": 2.0, "train/zero_std_groups": 0.9})
    assert flags == {"monitor/kl_growth": 1.0, "monitor/entropy_collapse": 1.0,
                     "monitor/length_drift": 1.0, "monitor/zero_std_groups": 1.0}
    assert len(warnings) == 4 and any("entropy fell to 0.900 from 2.000" in w for w in warnings)
    flags, warnings = m.check({"train/entropy": 0.8, "train/completion_length": 16.0,
                               "train/kl_ref": 3.0, "train/zero_std_groups": 1.0})
    assert warnings == [] and flags["monitor/kl_growth"] == 1.0  # flagged, not re-warned
    restored = Monitors()
    restored.load_state_dict(m.state_dict())
    assert restored.first == {"train/entropy": 2.0, "train/completion_length": 10.0}
    assert restored.warned == m.warned


def test_order_copying_monitor():
    m = Monitors()
    flags, warnings = m.check({"train/order_copy_rate": 0.7})
    assert flags == {"monitor/order_copying": 1.0} and "70% of outputs copy" in warnings[0]
