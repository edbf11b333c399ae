"""Fault tracker: hysteresis, startsAt = first failing reading, transitions logged once."""
from structlog.testing import capture_logs

from monitor.checks.faults import FaultTracker
from monitor.core.reading import Reading
from monitor.core.target import Target
from probes.tcp import TcpSpec


def target(**extra) -> Target:
    spec = TcpSpec.model_validate({"name": "gw", "kind": "net.tcp", "address": "127.0.0.1:1", **extra})
    return Target(spec=spec, site="hall", unit="u1", system="network")


def bad(at: float) -> Reading:
    return Reading.failure("gw", at, 0.01, "network.down", "connect refused")


def good(at: float) -> Reading:
    return Reading(target="gw", at=at, ok=True, duration=0.01)


def test_default_first_failing_reading_fires_and_first_good_reading_clears():
    tr, t = FaultTracker(), target()
    [alert] = tr.observe(t, bad(1000.0))
    assert alert.labels["fault"] == "network.down"
    assert {k: alert.labels[k] for k in ("site", "unit", "system", "target")} == \
        {"site": "hall", "unit": "u1", "system": "network", "target": "gw"}
    assert alert.ends_at is None and alert.starts_at.timestamp() == 1000.0
    assert tr.observe(t, bad(1010.0)) == []  # still failing: nothing new
    [resolved] = tr.observe(t, good(1020.0))
    assert resolved.ends_at.timestamp() == 1020.0 and resolved.fingerprint == alert.fingerprint


def test_for_delays_firing_but_starts_at_is_the_first_failing_reading():
    tr, t = FaultTracker(), target(**{"for": "30s"})
    assert tr.observe(t, bad(1000.0)) == []
    assert tr.observe(t, bad(1020.0)) == []
    assert not tr.is_active("gw", "network.down")
    [alert] = tr.observe(t, bad(1030.0))
    assert alert.starts_at.timestamp() == 1000.0
    assert tr.is_active("gw", "network.down")


def test_a_blip_shorter_than_for_never_fires():
    tr, t = FaultTracker(), target(**{"for": "30s"})
    assert tr.observe(t, bad(1000.0)) == []
    assert tr.observe(t, good(1010.0)) == []
    assert tr.observe(t, bad(1020.0)) == []  # a new episode starts here
    [alert] = tr.observe(t, bad(1050.0))
    assert alert.starts_at.timestamp() == 1020.0


def test_clear_for_holds_the_fault_until_good_long_enough():
    tr, t = FaultTracker(), target(clear_for="20s")
    tr.observe(t, bad(1000.0))
    assert tr.observe(t, good(1010.0)) == []
    assert tr.observe(t, bad(1015.0)) == []  # relapse resets the good streak
    assert tr.observe(t, good(1020.0)) == []
    assert tr.observe(t, good(1030.0)) == []
    [resolved] = tr.observe(t, good(1040.0))
    assert resolved.ends_at.timestamp() == 1040.0 and resolved.starts_at.timestamp() == 1000.0


def test_transitions_are_logged_once_not_every_failing_check():
    tr, t = FaultTracker(), target()
    with capture_logs() as logs:
        for i in range(50):
            tr.observe(t, bad(1000.0 + i))
        tr.observe(t, good(2000.0))
        for i in range(50):
            tr.observe(t, good(2001.0 + i))
    events = [e["event"] for e in logs]
    assert events == ["fault_active", "fault_cleared"]


def test_faults_at_a_site_whose_uplink_is_down_carry_the_cause():
    from probes.http import HttpSpec

    tr = FaultTracker(uplinks={"hall": {"gw"}})
    uplink = target()
    h2000 = Target(spec=HttpSpec.model_validate({"name": "h2000", "kind": "system.http", "url": "http://127.0.0.1:1/"}),
                   site="hall", unit="u1", system="core")
    [up_alert] = tr.observe(uplink, bad(1000.0))
    assert "cause" not in up_alert.labels
    [caused] = tr.observe(h2000, Reading.failure("h2000", 1001.0, 0.1, "system.down", "timeout"))
    assert caused.labels["cause"] == "network.down"
    tr.observe(uplink, good(1002.0))  # the uplink recovers first
    [resolved] = tr.observe(h2000, Reading(target="h2000", at=1003.0, ok=True, duration=0.1))
    assert resolved.fingerprint == caused.fingerprint  # the resolution matches what fired
    [later] = tr.observe(h2000, Reading.failure("h2000", 1004.0, 0.1, "system.down", "timeout"))
    assert "cause" not in later.labels  # uplink fine now: a fault of its own
