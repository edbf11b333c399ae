"""``core.outage.Outage``: a peer's outage said once when it starts (error, the error's
URL password redacted) and once when it ends (info, how long it lasted); nothing for
the failures and successes in between."""
from __future__ import annotations

from structlog.testing import capture_logs

from monitor.core.outage import Outage


def test_an_outage_is_logged_once_each_way_redacted():
    t = [100.0]
    outage = Outage("timers_redis", monotonic=lambda: t[0], key="hallmon:clocktimers")
    with capture_logs() as logs:
        assert outage.ok() is False  # healthy: nothing to say
        assert outage.failing(ConnectionError("redis://:s3cret@127.0.0.1:1/0 refused")) is True
        for _ in range(5):
            assert outage.failing("again") is False
        assert outage.down
        t[0] += 12.34
        assert outage.ok() is True
        assert outage.ok() is False
        assert outage.failing("once more") is True
    assert [(e["event"], e["log_level"]) for e in logs] == [
        ("timers_redis_failing", "error"), ("timers_redis_recovered", "info"), ("timers_redis_failing", "error")]
    assert "s3cret" not in logs[0]["error"] and "redis://:***@127.0.0.1:1/0" in logs[0]["error"]
    assert logs[0]["key"] == logs[1]["key"] == "hallmon:clocktimers"
    assert logs[1]["lasted_seconds"] == 12.3
