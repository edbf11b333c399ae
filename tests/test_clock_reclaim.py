"""A clock timer whose lease ran out while its first handler was still committing is
claimed and handled again (by another replica, or after a stall). The second run must
find the work done and tell paging nothing: one reminder, one overdue."""
import json
from datetime import datetime, timezone

import pytest
import redis

from monitor.service import keys
from tests.routerkit import alert, auth, clock_plan, make_app

PLAN = clock_plan("reclaim-test", due="2h", reminder_before="1h", clock="slow-report")


pytestmark = pytest.mark.usefixtures("tokens")  # the config's token secrets (tests.routerkit.TOKENS)


def kinds(redis_url: str, inc_id: str) -> list[str]:
    r = redis.Redis.from_url(redis_url)
    out = [f[b"kind"].decode() for _, f in r.xrange("hallmon:events") if f[b"incident"].decode() == inc_id]
    r.close()
    return out


async def test_a_reclaimed_timer_fires_nothing_twice(aiohttp_client, tmp_path, redis_url):
    plan = tmp_path / "reclaim.yml"
    plan.write_text(PLAN)
    client = await aiohttp_client(make_app(tmp_path, redis_url, plan=str(plan)))
    resp = await client.post("/api/v1/alerts", json=[alert("power.on_battery", "u3a", "u3",
                                                           starts=datetime.now(timezone.utc))], headers=auth())
    [inc_id] = (await resp.json())["incidents"]
    router = client.app[keys.ROUTER]
    timers = router.store.timers
    data = {k: json.loads(v) for k, v in (await timers.client.hgetall(timers.data_key)).items()}
    data = {(k.decode() if isinstance(k, bytes) else k): v for k, v in data.items()}
    remind = next(k for k, v in data.items() if v["incident"] == inc_id and v["what"] == "remind")
    due = next(k for k, v in data.items() if v["incident"] == inc_id and v["what"] == "due")
    for tid in (remind, remind, due, due):  # each handled twice, as after a lease expiry
        await router.clock_timer(tid, data[tid], timers)
    assert kinds(redis_url, inc_id).count("reminder") == 1
    assert kinds(redis_url, inc_id).count("overdue") == 1
    assert await timers.pending() == 0
