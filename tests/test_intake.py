"""The intake stream: an alert request is stored in one XADD before its 2xx, placed by
a batch consumer of a group, reclaimed from a consumer that died before acknowledging,
answered across replicas; a body that breaks the consumer goes to the dead letters
without holding up the rest."""
from __future__ import annotations

import asyncio
import json
import time

import pytest
import redis.asyncio as aioredis

from monitor.incidents.intake import DEAD, GROUP, STREAM, Intake
from monitor.service.ingest import parse_stored
from tests.routerkit import FakeTime, alert, auth, config_file, make_app, replica

pytestmark = pytest.mark.usefixtures("tokens")  # the config's token secrets (tests.routerkit.TOKENS)


@pytest.fixture
async def client(aiohttp_client, tmp_path, redis_url):
    return await aiohttp_client(make_app(tmp_path, redis_url))


async def incidents(client) -> list[dict]:
    return (await (await client.get("/api/v1/incidents", headers=auth())).json())["incidents"]


async def until(pred, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := await pred():
            return value
        await asyncio.sleep(0.02)
    raise AssertionError("not reached in time")


def webhook(alerts: list[dict]) -> dict:
    return {"version": "4", "status": "firing", "receiver": "hallmon",
            "alerts": [dict(a, status="firing") for a in alerts]}


async def test_webhook_answers_202_once_stored_and_a_storm_makes_one_incident(client, redis_url):
    batches = [[alert("system.down", "u1a", "u1", target=f"counter-{i}-{j}") for j in range(50)] for i in range(20)]
    answers = await asyncio.gather(*(client.post("/api/v1/alerts/alertmanager", json=webhook(b), headers=auth())
                                     for b in batches))
    assert [a.status for a in answers] == [202] * 20
    assert [await a.json() for a in answers] == [{"accepted": 50}] * 20

    async def all_placed():
        found = await incidents(client)
        return found if found and found[0]["alerts_total"] == 1000 else None
    [inc] = await all_placed() or await until(all_placed)
    assert inc["category"] == "core_system"
    r = aioredis.from_url(redis_url)
    assert await r.xlen(STREAM) == 0  # placed entries are acknowledged and deleted
    assert await r.keys("hallmon:intake:done:*") == []  # no one waits on a webhook's answer
    await r.aclose()


async def test_alert_list_answers_its_incidents_or_202_pending_when_the_wait_runs_out(client, aiohttp_client,
                                                                                      tmp_path, redis_url):
    resp = await client.post("/api/v1/alerts", json=[alert("pos.link_down", "u2a", "u2")], headers=auth())
    assert resp.status == 200 and len((await resp.json())["incidents"]) == 1
    # api.alert_wait 0 s: stored, not yet placed
    await client.close()
    client = await aiohttp_client(make_app(tmp_path, redis_url, units_edit=lambda text: text.replace(
        "  link_secret_env: HALLMON_T_LINK\n", "  link_secret_env: HALLMON_T_LINK\n  alert_wait: 0s\n")))
    resp = await client.post("/api/v1/alerts", json=[alert("queue.down", "u3a", "u3")], headers=auth())
    assert resp.status == 202 and await resp.json() == {"accepted": 1, "pending": True}
    found = await until(lambda: _with_category(client, "queue"))
    assert found["alerts_total"] == 1


async def _with_category(client, category: str):
    return next((i for i in await incidents(client) if i["category"] == category), None)


async def test_an_entry_a_dead_consumer_took_is_reclaimed_and_placed(tmp_path, redis_url):
    """SIGKILL between the read and the acknowledgement: the entry stays pending under the
    dead consumer; a live one claims it once idle and places it."""
    cfg = config_file(tmp_path, redis_url)
    a = replica(cfg, redis_url, FakeTime())
    dead = Intake(a.client, a.router, parse_stored, consumer="killed")
    await dead.ensure_group()
    body = json.dumps([alert("power.on_battery", "u4a", "u4")]).encode()
    entry = await dead.submit(body, "list", "ops", time.time())
    taken = await a.client.xreadgroup(GROUP, "killed", {STREAM: ">"}, count=10)  # read, then "killed"
    assert [e for _, items in taken for e, _ in items] == [entry]
    live = Intake(a.client, a.router, parse_stored, consumer="live", claim_idle=0.05, block_ms=10)
    await asyncio.sleep(0.1)
    assert await live.step() == 1
    [inc_id] = await a.router.store.open_ids()
    assert (await a.router.store.require(inc_id)).category == "power"
    assert await a.client.xpending(STREAM, GROUP) == {"pending": 0, "min": None, "max": None, "consumers": []}
    await a.close()


async def test_a_request_on_one_replica_hears_the_incidents_another_replica_placed(tmp_path, redis_url):
    cfg = config_file(tmp_path, redis_url)
    a, b = replica(cfg, redis_url, FakeTime()), replica(cfg, redis_url, FakeTime())
    ia = Intake(a.client, a.router, parse_stored, consumer="a")
    ib = Intake(b.client, b.router, parse_stored, consumer="b", block_ms=10)
    await ia.ensure_group()
    entry = await ia.submit(json.dumps([alert("network.down", "u1b", "u1")]).encode(), "list", "ops", time.time())
    waiting = asyncio.create_task(ia.wait(entry, 5.0))
    assert await ib.step() == 1  # replica b placed it
    [inc_id] = await b.router.store.open_ids()
    assert await waiting == [inc_id]
    await a.close()
    await b.close()


async def test_a_body_that_breaks_the_consumer_goes_to_the_dead_letters_and_the_rest_is_placed(tmp_path, redis_url):
    cfg = config_file(tmp_path, redis_url)
    a = replica(cfg, redis_url, FakeTime())
    intake = Intake(a.client, a.router, parse_stored, consumer="c", block_ms=10)
    await intake.ensure_group()
    await a.client.xadd(STREAM, {"body": "[{\"labels\": 5}]", "kind": "list", "actor": "ops", "at": repr(time.time())})
    good = await intake.submit(json.dumps([alert("pos.link_down", "u2a", "u2")]).encode(), "list", "ops", time.time())
    assert await intake.step() == 2
    assert len(await a.router.store.open_ids()) == 1
    [(_, fields)] = await a.client.xrange(DEAD)
    assert fields["error"].startswith("Invalid") and fields["kind"] == "list"
    assert await intake.wait(good, 1.0) == await a.router.store.open_ids()
    assert await a.client.xlen(STREAM) == 0
    await a.close()


async def test_consumers_of_dead_processes_are_forgotten_once_idle_and_empty(tmp_path, redis_url):
    cfg = config_file(tmp_path, redis_url)
    a = replica(cfg, redis_url, FakeTime())
    live = Intake(a.client, a.router, parse_stored, consumer="live", block_ms=10)
    await live.ensure_group()
    for name in ("dead-1", "dead-2", "holding"):
        await a.client.xgroup_createconsumer(STREAM, GROUP, name)
    await live.submit(json.dumps([alert("pos.link_down", "u2a", "u2")]).encode(), "list", "ops", time.time())
    await a.client.xreadgroup(GROUP, "holding", {STREAM: ">"}, count=1)  # took an entry, never acknowledged it
    await asyncio.sleep(0.05)
    assert sorted(await live.prune(idle=0.01)) == ["dead-1", "dead-2"]
    names = {c["name"] for c in await a.client.xinfo_consumers(STREAM, GROUP)}
    assert names == {"holding"}  # kept: its entry is reclaimed first, then it is forgotten
    await a.close()


async def test_the_same_resolution_twice_in_one_batch_counts_once(tmp_path, redis_url):
    """Two Alertmanager replicas send the same resolution; placed in one batch, the
    incident's firing count drops by one, not two, and the incident recovers."""
    from datetime import datetime, timedelta, timezone

    cfg = config_file(tmp_path, redis_url)
    a = replica(cfg, redis_url, FakeTime())
    intake = Intake(a.client, a.router, parse_stored, consumer="c", block_ms=10)
    await intake.ensure_group()
    fired = alert("power.on_battery", "u3a", "u3")
    await intake.submit(json.dumps([fired]).encode(), "list", "ops", time.time())
    assert await intake.step() == 1
    ended = {**fired, "status": "resolved", "endsAt": (datetime.now(timezone.utc) - timedelta(seconds=1)).isoformat()}
    for _ in range(2):  # both replicas' webhooks, stored before the consumer reads either
        await intake.submit(json.dumps({"version": "4", "status": "resolved", "alerts": [ended]}).encode(), "webhook", "am", time.time(),
                            wait=False)
    assert await intake.step() == 2
    [inc_id] = await a.router.store.open_ids()
    inc = await a.router.store.require(inc_id)
    assert inc.alerts_firing == 0 and inc.recovered and inc.alerts_total == 1
    await a.close()


async def test_a_lone_request_after_quiet_is_placed_at_once_and_requests_that_keep_coming_are_lingered_on(
        tmp_path, redis_url):
    """The linger gathers a burst: a lone request after a quiet spell gives no sign of
    one and is placed at once (no second read); one right after another (within the
    linger) or two read together make the consumer look for more before placing."""
    cfg = config_file(tmp_path, redis_url)
    a = replica(cfg, redis_url, FakeTime())
    reads: list[int] = []

    def counting(intake: Intake) -> Intake:
        read = intake._read

        async def counted(block):
            got = await read(block)
            reads.append(len(got))
            return got
        intake._read = counted  # type: ignore[method-assign]
        return intake

    def body(fault: str, site: str, unit: str) -> bytes:
        return json.dumps([alert(fault, site, unit)]).encode()
    intake = counting(Intake(a.client, a.router, parse_stored, consumer="c", block_ms=10, linger=60.0))
    await intake.ensure_group()
    lone = await intake.submit(body("power.on_battery", "u4a", "u4"), "list", "ops", time.time())
    assert await intake.step() == 1
    assert reads == [1]  # read once: not lingered on
    assert await intake.wait(lone, 1.0) == await a.router.store.open_ids()
    reads.clear()
    await intake.submit(body("pos.link_down", "u2a", "u2"), "list", "ops", time.time())
    assert await intake.step() == 1
    assert reads == [1, 0]  # within the linger of the last: requests keep coming, looked for more
    reads.clear()
    fresh = counting(Intake(a.client, a.router, parse_stored, consumer="d", block_ms=10, linger=60.0))
    for site, unit in (("u1a", "u1"), ("u3a", "u3")):
        await a.client.xadd(STREAM, {"body": body("network.down", site, unit), "kind": "list", "actor": "ops",
                                     "at": repr(time.time())})
    assert await fresh.step() == 2
    assert reads == [2, 0]  # two together: looked for more before placing
    assert await a.client.xlen(STREAM) == 0 and await a.client.xlen(DEAD) == 0  # and placed them
    await a.close()
