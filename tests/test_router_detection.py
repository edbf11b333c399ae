"""``detected_at`` is the earliest ``startsAt`` among an incident's alerts, even when the
earlier alert arrives later (a Prometheus rule that saw the fault before the probe's
hysteresis did); clocks anchored at detection move with it, unless already filed."""
from datetime import datetime, timedelta, timezone

import pytest

from tests.routerkit import alert, auth, make_app

pytestmark = pytest.mark.usefixtures("tokens")  # the config's token secrets (tests.routerkit.TOKENS)


async def test_an_earlier_alert_moves_detection_and_its_clocks(aiohttp_client, tmp_path, redis_url):
    client = await aiohttp_client(make_app(tmp_path, redis_url, plan="hohhot-customs"))
    now = datetime.now(timezone.utc).replace(microsecond=0)
    first = alert("system.down", "u3a", "u3", starts=now - timedelta(minutes=1))
    resp = await client.post("/api/v1/alerts", json=[first], headers=auth())
    [inc_id] = (await resp.json())["incidents"]
    doc = await (await client.get(f"/api/v1/incidents/{inc_id}", headers=auth())).json()
    [clock] = [c for c in doc["clocks"] if c["anchor"] == "detected"]
    due_before = datetime.fromisoformat(clock["due_at"])
    earlier = dict(alert("system.down", "u3a", "u3", starts=now - timedelta(minutes=4)))
    earlier["labels"] = {**earlier["labels"], "alertname": "CoreSystemDown", "job": "blackbox"}
    await client.post("/api/v1/alerts", json=[earlier], headers=auth())
    doc = await (await client.get(f"/api/v1/incidents/{inc_id}", headers=auth())).json()
    assert datetime.fromisoformat(doc["detected_at"]) == now - timedelta(minutes=4)
    clock = next(c for c in doc["clocks"] if c["id"] == clock["id"])
    assert datetime.fromisoformat(clock["due_at"]) == due_before - timedelta(minutes=3)
