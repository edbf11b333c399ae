"""Paging end to end inside one service: incident → pages at local robot servers, ack
links bound to the paged person, signed robots, fallback, digests, exactly-once across
replicas, maintenance, batches. (The escalation machine on an injected clock:
test_escalation; delivery under faults: test_delivery.)"""
import asyncio
from datetime import datetime, timezone

import pytest
import redis
import redis.asyncio as aioredis
from pydantic import ValidationError

from monitor.config.paging import PagingConfig
from monitor.core.clock import ManualClock
from tests.pagingkit import START, Harness, config, incident, paging_yaml
from tests.robots import Robots
from tests.routerkit import TOKENS, alert, auth, make_app

SECRETS = {"HALLMON_T_DING_TOKEN": "ding-token", "HALLMON_T_DING_SECRET": "SEC-dingtalk-test",
           "HALLMON_T_WECOM": "wecom-key", "HALLMON_T_FEISHU": "feishu-secret", "HALLMON_T_HOOK": "hook-secret"}


@pytest.fixture(autouse=True)
def env(monkeypatch):
    for k, v in {**TOKENS, **SECRETS}.items():
        monkeypatch.setenv(k, v)


@pytest.fixture
async def robots():
    r = await Robots(webhook_secret="hook-secret").start()
    yield r
    await r.stop()


def hook(robots, **kw):
    return paging_yaml(robots.base, **kw).replace(
        'url: "%s/page", retries: 1' % robots.base, 'url: "%s/page", secret_env: HALLMON_T_HOOK, retries: 1' % robots.base)


async def wait_for(pred, timeout=5.0):
    for _ in range(int(timeout / 0.05)):
        if pred():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


async def open_incident(client, fault="pos.link_down", site="u2a", unit="u2"):
    resp = await client.post("/api/v1/alerts", json=[alert(fault, site, unit, starts=datetime.now(timezone.utc))],
                             headers=auth())
    assert resp.status == 200
    return (await resp.json())["incidents"][0]


async def test_an_ack_link_acknowledges_as_the_paged_person_once_and_stops_escalation(
        aiohttp_client, tmp_path, redis_url, robots):
    client = await aiohttp_client(make_app(tmp_path, redis_url, extra=hook(robots, wait="1s")))
    inc_id = await open_incident(client)
    await wait_for(lambda: robots.received["webhook"])
    page = robots.received["webhook"][0]
    chief = page["recipient"]
    path = "/" + page["ack_url"].split("127.0.0.1", 1)[1].split("/", 1)[1]
    assert f"p={chief['id']}&" in path
    forged = path.replace(f"p={chief['id']}", "p=lead-a")  # someone else's name on the same link
    assert (await client.post(forged)).status == 403
    resp = await client.post(path, json={"by": "somebody else"})
    assert resp.status == 200
    acked = (await resp.json())["acknowledged"]
    assert acked["by"] == chief["name"] and acked["via"] == f"link:{chief['id']}"  # recorded as the paged person's
    again = await client.post(path)
    assert again.status == 403 and "used" in (await again.json())["detail"]  # single use
    await asyncio.sleep(1.5)
    assert len(robots.received["webhook"]) == 1  # the second step never fired
    resp = await client.post(f"/api/v1/incidents/{inc_id}/resolve", json={"by": "测试值班长甲", "result": "银联线路恢复"},
                             headers=auth())
    assert resp.status == 200
    await wait_for(lambda: len(robots.received["webhook"]) == 2)
    resolved = robots.received["webhook"][1]
    assert resolved["kind"] == "resolved" and "银联线路恢复" in resolved["text"] and resolved["ack_url"] == ""


async def test_signed_robots_and_fallback_when_a_robot_refuses(aiohttp_client, tmp_path, redis_url, robots):
    channels = (
        f'            - {{id: lead-dingtalk, type: dingtalk, url: "{robots.base}/robot/send", '
        f'token_env: HALLMON_T_DING_TOKEN, secret_env: HALLMON_T_DING_SECRET, retries: 0, fallback: lead-wecom}}\n'
        f'            - {{id: lead-wecom, type: wecom, url: "{robots.base}/cgi-bin/webhook/send", key_env: HALLMON_T_WECOM}}\n'
        f'            - {{id: lead-feishu, type: feishu, url: "{robots.base}/open-apis/bot/v2/hook/feishu-hook", '
        f'secret_env: HALLMON_T_FEISHU}}\n')
    policies = """\
            - id: robots
              steps:
                - {notify: {channel: lead-dingtalk}}
                - {notify: {channel: lead-feishu}}
"""
    extra = hook(robots, extra_channels=channels, policies=policies)
    client = await aiohttp_client(make_app(tmp_path, redis_url, extra=extra))
    await open_incident(client)
    await wait_for(lambda: robots.received["dingtalk"] and robots.received["feishu"])
    ding = robots.received["dingtalk"][0]["markdown"]
    assert "POS" in ding["title"] and "测试二关口岸" in ding["text"]
    assert robots.received["feishu"][0]["msg_type"] == "text"
    assert robots.rejected == []
    # the robot answers 200 with an error code: a failure, and the fallback channel takes it
    robots.errcode["dingtalk"] = 310000
    await open_incident(client, fault="queue.down", site="u3a", unit="u3")
    await wait_for(lambda: robots.received["wecom"])
    assert len(robots.received["dingtalk"]) == 1 and "排队叫号" in robots.received["wecom"][0]["markdown"]["content"]
    text = (await (await client.get("/metrics")).text())
    assert 'hallmon_pages_sent_total{channel="lead-dingtalk",outcome="failed"} 1.0' in text
    assert 'hallmon_pages_sent_total{channel="lead-wecom",outcome="sent"} 1.0' in text


async def test_retries_on_5xx_then_succeeds(aiohttp_client, tmp_path, redis_url, robots):
    robots.fail["webhook"] = 1  # one 500, then fine
    client = await aiohttp_client(make_app(tmp_path, redis_url, extra=hook(robots, wait="30s")))
    await open_incident(client)
    await wait_for(lambda: robots.received["webhook"])
    assert len(robots.received["webhook"]) == 1


DING = """\
paging:
  channels:
    - {id: lead-dingtalk, type: dingtalk, url: "%s/robot/send", token_env: HALLMON_T_DING_TOKEN,
       secret_env: HALLMON_T_DING_SECRET, rate_limit: {messages: 20, per: 2s}}
  policies:
    - id: robot
      steps:
        - {notify: {channel: lead-dingtalk}}
"""
THIRTY = [f"INC-TEST-{i:04d}" for i in range(30)]


def each_once(messages: list[dict]) -> bool:
    """Every one of the thirty incidents in exactly one message (its page or the digest)."""
    texts = [m["markdown"]["text"] for m in messages]
    return all(sum(inc in text for text in texts) == 1 for inc in THIRTY)


async def test_rate_limit_turns_thirty_pages_into_twenty_and_a_digest(robots, redis_url):
    async with Harness(redis_url, config(redis_url, DING % robots.base)) as h:
        for inc in THIRTY:
            await h.publish("opened", incident(inc, level=3))
        await h.until(lambda: h.metric("hallmon_pages_sent_total", channel="lead-dingtalk", outcome="digested") == 10)
        await asyncio.sleep(0.2)
        assert len(robots.received["dingtalk"]) == 20  # the limit holds while the clock stands
        await h.until(lambda: len(robots.received["dingtalk"]) == 21, advance=0.5)
    digest = robots.received["dingtalk"][20]["markdown"]
    assert "10" in digest["title"] and digest["text"].count("\n- ") == 10
    assert each_once(robots.received["dingtalk"])  # nothing dropped, nothing twice
    assert robots.rejected == []


async def test_two_replicas_send_each_page_once(aiohttp_client, tmp_path, redis_url, robots):
    a = await aiohttp_client(make_app(tmp_path, redis_url, extra=hook(robots, wait="1s")))
    (tmp_path / "b").mkdir()
    await aiohttp_client(make_app(tmp_path / "b", redis_url, extra=hook(robots, wait="1s")))
    await open_incident(a)
    await wait_for(lambda: len(robots.received["webhook"]) >= 2, timeout=5)
    await asyncio.sleep(1.0)
    steps = [(p["step"], p["recipient"]["id"]) for p in robots.received["webhook"]]
    assert len(steps) == 2 and len(set(steps)) == 2


async def test_maintenance_incidents_are_recorded_not_paged(aiohttp_client, tmp_path, redis_url, robots):
    app = make_app(tmp_path, redis_url, extra=hook(robots, wait="1s"), units_edit=lambda text: text.replace(
        "sites: [{id: u4a, name: 测试四关大厅}]",
        'sites: [{id: u4a, name: 测试四关大厅, maintenance: [{from: "2026-01-01T00:00:00+08:00", '
        'to: "2036-01-01T00:00:00+08:00", reason: 计划停电}]}]'))
    client = await aiohttp_client(app)
    inc_id = await open_incident(client, fault="power.on_battery", site="u4a", unit="u4")
    await asyncio.sleep(1.8)
    assert robots.received["webhook"] == []
    inc = await (await client.get(f"/api/v1/incidents/{inc_id}", headers=auth())).json()
    assert inc["maintenance"] is True


async def test_pages_to_one_person_within_the_batch_window_go_as_one_message(
        aiohttp_client, tmp_path, redis_url, robots):
    channels = (f'            - {{id: chief-dingtalk, type: dingtalk, url: "{robots.base}/robot/send", '
                f'token_env: HALLMON_T_DING_TOKEN, secret_env: HALLMON_T_DING_SECRET}}\n')
    extra = hook(robots, wait="30s", extra_channels=channels).replace(
        "paging:\n", "paging:\n  batch_window: 1s\n")
    for who in ("测试值班长甲", "测试值班长乙"):
        extra = extra.replace(f"name: {who}, channels: [ops-webhook]", f"name: {who}, channels: [chief-dingtalk]")
    client = await aiohttp_client(make_app(tmp_path, redis_url, extra=extra))
    now = datetime.now(timezone.utc)
    resp = await client.post("/api/v1/alerts", headers=auth(), json=[
        alert("pos.link_down", "u2a", "u2", starts=now), alert("queue.down", "u3a", "u3", starts=now),
        alert("power.on_battery", "u4a", "u4", starts=now)])
    incidents = (await resp.json())["incidents"]
    assert len(incidents) == 3
    await wait_for(lambda: len(robots.received["dingtalk"]) >= 2, timeout=5)
    await asyncio.sleep(1.5)
    first, second = robots.received["dingtalk"]  # three pages for the duty chief, two messages
    assert "汇总" not in first["markdown"]["title"]
    assert second["markdown"]["title"] == "【汇总】2 条告警通知"
    assert sum(inc in first["markdown"]["text"] + second["markdown"]["text"] for inc in incidents) == 3
    assert robots.rejected == []
    text = await (await client.get("/metrics")).text()
    assert 'hallmon_pages_sent_total{channel="chief-dingtalk",outcome="batched"} 2.0' in text
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    marks = [r.get(k) for k in r.keys("hallmon:paging:sent:*")]
    r.close()
    assert len(marks) == 3 and all(m.startswith("sent") for m in marks)  # each page marked once sent


def test_batch_window_is_bounded():
    with pytest.raises(ValidationError):
        PagingConfig.model_validate({"batch_window": "1m"})


async def test_webhook_pages_within_the_batch_window_go_as_one_digest(aiohttp_client, tmp_path, redis_url, robots):
    extra = hook(robots, wait="1h").replace("\n  policies:", "\n  batch_window: 1s\n  policies:")
    client = await aiohttp_client(make_app(tmp_path, redis_url, extra=extra))
    await open_incident(client, "pos.link_down", "u2a", "u2")
    await open_incident(client, "queue.down", "u3a", "u3")
    await open_incident(client, "power.on_battery", "u4a", "u4")
    await wait_for(lambda: len(robots.received["webhook"]) >= 2, timeout=4)
    await asyncio.sleep(1.2)
    first, batched = robots.received["webhook"]
    assert first["kind"] == "page" and "POS" in first["title"]  # the first page is not held back
    assert batched["kind"] == "digest" and "2" in batched["title"]
    for word in ("排队叫号", "供电"):
        assert word in batched["text"]


async def test_two_replicas_share_a_robots_rate_limit_and_a_held_digest_survives_a_restart(robots, redis_url):
    cfg, clock = config(redis_url, DING % robots.base), ManualClock(START)
    async with Harness(redis_url, cfg, clock, consumer="a") as a, Harness(redis_url, cfg, clock, consumer="b") as b:
        for inc in THIRTY:
            await a.publish("opened", incident(inc, level=3))

        def digested() -> float:
            return sum(h.metric("hallmon_pages_sent_total", channel="lead-dingtalk", outcome="digested") for h in (a, b))
        await a.until(lambda: digested() == 10)  # one limit for both
        assert len(robots.received["dingtalk"]) == 20
    # both replicas stopped before the digest's turn came
    r = aioredis.from_url(redis_url, decode_responses=True)
    assert await r.llen("hallmon:paging:held:lead-dingtalk") == 10
    async with Harness(redis_url, cfg, clock, consumer="c") as c:  # a restarted replica
        await c.until(lambda: len(robots.received["dingtalk"]) == 21, advance=0.5)
        await asyncio.sleep(0.3)
    assert len(robots.received["dingtalk"]) == 21
    digest = robots.received["dingtalk"][20]["markdown"]
    assert "10" in digest["title"] and digest["text"].count("\n- ") == 10
    assert each_once(robots.received["dingtalk"])  # nothing dropped, nothing twice
    assert await r.llen("hallmon:paging:held:lead-dingtalk") == 0
    assert robots.rejected == []
    await r.aclose()
