"""Background loops cannot die silently (DESIGN.md habit 11): a crash is logged, counted
in hallmon_task_restarts_total{task} and the loop starts again; a service started
before its Redis pages once Redis is there."""
import asyncio
from datetime import datetime, timezone

import pytest
from prometheus_client import CollectorRegistry, Counter

from monitor.core.alert import Alert
from monitor.core.supervise import stop, supervise
from monitor.service import keys
from simulators.redisproc import RedisServer, free_port
from tests.pagingkit import paging_yaml
from tests.robots import Robots
from tests.routerkit import TOKENS, alert, auth, make_app


@pytest.fixture(autouse=True)
def env(monkeypatch):
    for k, v in TOKENS.items():
        monkeypatch.setenv(k, v)


async def wait_for(pred, timeout=10.0):
    for _ in range(int(timeout / 0.05)):
        if await pred():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


async def test_supervise_restarts_a_crashing_loop_with_backoff_and_counts_it():
    restarts = Counter("t_task_restarts", "", ["task"], registry=CollectorRegistry())
    runs, slept = [], []

    async def loop():
        runs.append(1)
        if len(runs) <= 3:
            raise RuntimeError("boom")
        await asyncio.Event().wait()  # the fourth run stays up

    async def fake_sleep(delay):
        slept.append(delay)

    task = asyncio.create_task(supervise("t", loop, restarts, sleep=fake_sleep))
    for _ in range(100):
        await asyncio.sleep(0)
    assert len(runs) == 4 and slept == [0.1, 0.2, 0.4]
    assert restarts.labels("t")._value.get() == 3
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def restarts(app, task):
    return app[keys.REGISTRY].get_sample_value("hallmon_task_restarts_total", {"task": task}) or 0


async def test_the_probe_to_router_consumer_survives_an_alert_it_cannot_store(aiohttp_client, tmp_path, redis_url):
    """Regression (0.5): the consumer died on the first unexpected exception, and no
    probe fault ever opened an incident again."""
    client = await aiohttp_client(make_app(tmp_path, redis_url))
    app = client.server.app
    now = datetime.now(timezone.utc)
    labels = {"alertname": "HallmonFault", "fault": "system.down", "site": "u1a", "unit": "u1", "system": "core"}
    # a device answered a string with a lone surrogate: it cannot be encoded for Redis
    app[keys.ALERTS].put_nowait(Alert(labels={**labels, "target": "bad"}, starts_at=now,
                                      annotations={"summary": "\ud800"}))

    async def restarted():
        return restarts(app, "router_consumer") >= 1
    await wait_for(restarted)
    app[keys.ALERTS].put_nowait(Alert(labels={**labels, "target": "good"}, starts_at=now))

    async def opened():
        resp = await client.get("/api/v1/incidents", headers=auth())
        return len((await resp.json())["incidents"]) == 1
    await wait_for(opened)


async def test_a_service_started_before_redis_pages_once_redis_is_up(aiohttp_client, tmp_path):
    """Regression (0.5): the pager died for good when Redis was not up at start."""
    robots = await Robots().start()
    port = free_port()
    app = make_app(tmp_path, f"redis://127.0.0.1:{port}/0", extra=paging_yaml(robots.base, wait="30s"))
    client = await aiohttp_client(app)
    server = None
    try:
        async def pager_restarted():
            return restarts(app, "pager_events") >= 1
        await wait_for(pager_restarted)  # Redis is not there: the pager's loop fails and is restarted
        server = RedisServer(port=port).start()

        async def accepted():
            resp = await client.post("/api/v1/alerts", headers=auth(),
                                     json=[alert("pos.link_down", "u2a", "u2", starts=datetime.now(timezone.utc))])
            return resp.status == 200
        await wait_for(accepted)

        async def paged():
            return len(robots.received["webhook"]) >= 1
        await wait_for(paged, timeout=15)
        assert robots.received["webhook"][0]["kind"] == "page"
    finally:
        await robots.stop()
        if server is not None:
            server.stop()


async def test_stop_ends_a_loop_that_drops_a_cancellation():
    """Python 3.11's asyncio.wait_for (inside redis-py) can drop a cancellation; a
    shutdown that cancelled once waited for such a loop for ever."""
    rounds = 0

    async def stubborn() -> None:
        nonlocal rounds
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                rounds += 1
                if rounds == 1:
                    continue  # dropped, as wait_for does when its call completed meanwhile
                raise

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    await asyncio.wait_for(stop([task], every=0.05), timeout=5)
    assert task.cancelled() and rounds == 2
