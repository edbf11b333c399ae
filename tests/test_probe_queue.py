"""queue.http against the queue-system simulator; opening hours with China's calendar."""
from __future__ import annotations

import time
from datetime import date, datetime
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from pydantic import ValidationError

from monitor.errors import ProbeConnectError, ProtocolError
from monitor.target import Target
from probes.base import ProbeContext
from probes.hours import OpeningHours
from probes.queue import QueueProbe, QueueSpec
from simulators.queue import QueueSystem

ALWAYS = {"hours": ["00:00-24:00"], "workdays_only": False}
SH = ZoneInfo("Asia/Shanghai")


def target(url: str, **kw) -> Target:
    kw.setdefault("opening", ALWAYS)
    return Target(spec=QueueSpec(name="q-1", kind="queue.http", url=url, **kw), site="hall", unit="u",
                  system="queue")


@pytest.fixture
async def sim():
    q = await QueueSystem().start()
    yield q
    await q.stop()


@pytest.fixture
async def probe():
    async with aiohttp.ClientSession() as session:
        yield QueueProbe(ProbeContext(session))


async def test_normal_stalled_congested(sim, probe):
    r = await probe.check(target(sim.url))
    assert r.ok and r.faults == frozenset()
    assert r.values == {"hallmon_queue_waiting": 3.0, "hallmon_queue_longest_wait_seconds": 120.0,
                        "hallmon_queue_tickets_issued_total": 40.0, "hallmon_queue_windows_open": 4.0}
    sim.stall(900)
    assert (await probe.check(target(sim.url))).faults == {"queue.stalled"}
    assert (await probe.check(target(sim.url, stall_after="20m"))).faults == frozenset()
    sim.call()
    sim.congest(100, 600)
    assert (await probe.check(target(sim.url))).faults == {"queue.congested"}
    sim.congest(5, 3600)  # few people, but one waited an hour
    assert (await probe.check(target(sim.url))).faults == {"queue.congested"}


async def test_faults_only_inside_opening_hours(sim, probe):
    sim.stall(900)
    sim.congest()
    today = datetime.now(SH).date()
    closed = {"hours": ["00:00-24:00"], "workdays_only": False, "closures": [today.isoformat()]}
    r = await probe.check(target(sim.url, opening=closed))
    assert r.ok and r.faults == frozenset() and r.detail["open"] is False
    assert r.values["hallmon_queue_waiting"] == 100.0


def test_chinese_working_day_calendar():
    hours = OpeningHours()
    at = lambda y, m, d, hh, mm: datetime(y, m, d, hh, mm, tzinfo=SH).timestamp()  # noqa: E731
    assert hours.is_open(at(2025, 9, 30, 10, 0))  # a Tuesday
    assert not hours.is_open(at(2025, 10, 1, 10, 0))  # National Day
    assert hours.is_open(at(2025, 9, 28, 10, 0))  # a Sunday that is a make-up working day
    assert not hours.is_open(at(2025, 9, 27, 10, 0))  # an ordinary Saturday
    assert not hours.is_open(at(2025, 9, 30, 12, 30))  # lunch break
    assert not OpeningHours(closures=(date(2025, 9, 30),)).is_open(at(2025, 9, 30, 10, 0))


@pytest.mark.parametrize("mode,error", [("error", ProtocolError), ("garbage", ProtocolError)])
async def test_down_modes(sim, probe, mode, error):
    sim.mode = mode
    with pytest.raises(error):
        await probe.check(target(sim.url))


async def test_unreachable(probe):
    from simulators.redisproc import free_port
    with pytest.raises(ProbeConnectError):
        await probe.check(target(f"http://127.0.0.1:{free_port()}/"))


async def test_vendor_json_paths(probe):
    from aiohttp import web

    async def vendor(request):
        return web.json_response({"code": 0, "data": {"queue": [{"cnt": 42}], "maxWait": 61,
                                                      "lastCall": "2020-01-01T08:00:00+08:00"}})

    app = web.Application()
    app.router.add_get("/", vendor)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/"
    paths = {"waiting": "$.data.queue[0].cnt", "longest_wait_seconds": "$.data.maxWait",
             "last_called_at": "$.data.lastCall"}
    r = await probe.check(target(url, paths=paths))
    assert r.values["hallmon_queue_waiting"] == 42.0
    assert r.values["hallmon_queue_longest_wait_seconds"] == 61.0
    assert r.faults == {"queue.stalled", "queue.congested"}
    with pytest.raises(ProtocolError, match="no 'waiting'"):
        await probe.check(target(url))  # the generic preset does not fit this vendor
    await runner.cleanup()


def test_bad_config():
    with pytest.raises(ValidationError):
        QueueSpec(name="q", kind="queue.http", url="http://x/", paths={"waiting": "data.n"})
    with pytest.raises(ValidationError):
        QueueSpec(name="q", kind="queue.http", url="http://x/", opening={"hours": ["17:00-08:00"]})
