"""Two hallmon replicas on one Redis, each receiving the same alerts at the same moment
(two Alertmanagers, one per replica): still one incident per fault, each alert counted
once, one ``opened`` event."""
import asyncio
from datetime import datetime, timedelta, timezone

import pytest
import redis

from tests.routerkit import TOKENS, alert, auth, make_app


@pytest.fixture(autouse=True)
def tokens(monkeypatch):
    for k, v in TOKENS.items():
        monkeypatch.setenv(k, v)


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
