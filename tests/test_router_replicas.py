"""Two hallmon replicas on one Redis, each receiving the same alerts at the same moment
(two Alertmanagers, one per replica): still one incident per fault, each alert counted
once, one ``opened`` event."""
import asyncio
from datetime import datetime, timedelta, timezone

import pytest
import redis

from monitor.incidents.store import IncidentStore
from tests.routerkit import alert, auth, make_app

pytestmark = pytest.mark.usefixtures("tokens")  # the config's token secrets (tests.routerkit.TOKENS)


async def test_concurrent_replicas_open_one_incident_per_group(aiohttp_client, tmp_path, redis_url):
    a = await aiohttp_client(make_app(tmp_path, redis_url))
    (tmp_path / "b").mkdir()
    b = await aiohttp_client(make_app(tmp_path / "b", redis_url))
    start = datetime.now(timezone.utc) - timedelta(minutes=1)
    faults = ["system.down", "pos.link_down", "queue.down", "power.on_battery", "network.down"]
    posts = []
    for fault in faults:
        body = [alert(fault, site, unit, starts=start) for site, unit in (("u3a", "u3"), ("hqa", "hq"))]
        for replica in (a, b, a, b):
            posts.append(replica.post("/api/v1/alerts", json=body, headers=auth()))
    answers = await asyncio.gather(*posts)
    assert all(r.status == 200 for r in answers), [await r.text() for r in answers if r.status != 200]
    listed = (await (await a.get("/api/v1/incidents", headers=auth())).json())["incidents"]
    assert len(listed) == len(faults)
    assert all(i["alerts_total"] == 2 and i["alerts_firing"] == 2 for i in listed)
    r = redis.Redis.from_url(redis_url)
    kinds = [f[b"kind"] for _, f in r.xrange("hallmon:events")]
    r.close()
    assert kinds.count(b"opened") == len(faults)


async def test_an_opening_does_not_retry_for_another_groups_opening(aiohttp_client, tmp_path, redis_url, monkeypatch):
    """Opening an incident watches its own group's claim only: while one opening is in
    its transaction, another group opening (on another replica) does not make it start
    over. (Watching the whole claims hash did: 150 new groups at once took 13 s.)"""
    a = await aiohttp_client(make_app(tmp_path, redis_url))
    (tmp_path / "b").mkdir()
    b = await aiohttp_client(make_app(tmp_path / "b", redis_url))
    writes: list[str] = []
    held, release = asyncio.Event(), asyncio.Event()
    real_write = IncidentStore._write

    async def write(self, pipe, inc, change, before=None):
        if before is None:  # an opening
            writes.append(inc.group)
            if inc.group.startswith("core_system") and not held.is_set():
                held.set()  # inside the opening's transaction, after its WATCH
                await release.wait()
        return await real_write(self, pipe, inc, change, before)

    monkeypatch.setattr(IncidentStore, "_write", write)
    first = asyncio.ensure_future(a.post("/api/v1/alerts", json=[alert("system.down", "u3a", "u3")], headers=auth()))
    await asyncio.wait_for(held.wait(), 10)
    other = await b.post("/api/v1/alerts", json=[alert("pos.link_down", "hqa", "hq")], headers=auth())
    assert other.status == 200
    release.set()
    assert (await first).status == 200
    assert sorted(g.split("|")[0] for g in writes) == ["core_system", "pos"], writes  # one attempt each
