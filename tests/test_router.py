"""The router against a real redis-server: ingest, dedup, levels by scope, clocks,
people's actions, auth, bad bodies, report drafts, the timeline's hash chain."""
import asyncio
import json
from datetime import datetime, timedelta, timezone

import pytest
import redis.asyncio as aioredis

from monitor.durable.events import EventConsumer
from monitor.plans.model import builtin_ids
from tests.routerkit import alert, auth, make_app

pytestmark = pytest.mark.usefixtures("tokens")  # the config's token secrets (tests.routerkit.TOKENS)


@pytest.fixture
async def client(aiohttp_client, tmp_path, redis_url):
    return await aiohttp_client(make_app(tmp_path, redis_url))


async def post_alerts(client, alerts, env="HALLMON_T_ADMIN"):
    resp = await client.post("/api/v1/alerts", json=alerts, headers=auth(env))
    return resp.status, await resp.json()


async def incident(client, incident_id):
    resp = await client.get(f"/api/v1/incidents/{incident_id}", headers=auth())
    assert resp.status == 200
    return await resp.json()


@pytest.mark.parametrize("alerts, level, rule", [
    ([("u1a", "u1")], 3, "local"),
    ([("u1a", "u1"), ("u1b", "u1")], 2, "scope-whole-unit"),
    ([("u2a", "u2"), ("u3a", "u3")], 2, "scope-whole-unit"),  # one-site units are whole units
    ([("u1a", "u1"), ("u3a", "u3")], 2, "scope-whole-unit"),
    ([("u1a", "u1"), ("u3a", "u3"), ("u4a", "u4")], 1, "scope-most-units"),  # 3 of 5: more than half
    ([("hqa", "hq")], 1, "scope-head-office"),
])
async def test_shenzhen_scope_levels_at_the_boundaries(client, alerts, level, rule):
    status, body = await post_alerts(client, [alert("system.down", s, u) for s, u in alerts])
    assert status == 200, body
    [inc_id] = body["incidents"]
    inc = await incident(client, inc_id)
    assert (inc["level"], inc["decision"]["rule"]) == (level, rule)
    assert inc["decision"]["source"] == "Shenzhen 2.2"
    assert inc["decision"]["facts"]["units_total"] == 5
    assert inc["category"] == "core_system" and inc["plan"] == "shenzhen-customs"


async def test_two_units_without_whole_unit_is_level_2_by_several_units(aiohttp_client, tmp_path, redis_url):
    # one site of a two-site unit, plus one site of another two-site unit: no unit is whole
    app = make_app(tmp_path, redis_url, units_edit=lambda text: text.replace(
        "sites: [{id: u3a, name: 测试三关大厅}]",
        "sites: [{id: u3a, name: 测试三关大厅}, {id: u3b, name: 测试三关乙厅}]"))
    client = await aiohttp_client(app)
    status, body = await post_alerts(client, [alert("system.down", "u1a", "u1"), alert("system.down", "u3a", "u3")])
    inc = await incident(client, body["incidents"][0])
    assert (inc["level"], inc["decision"]["rule"]) == (2, "scope-several-units")
    assert inc["decision"]["facts"]["units_whole"] == []


async def test_open_incident_has_detection_time_clocks_and_events(client, redis_url):
    first = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(minutes=3)
    status, body = await post_alerts(client, [alert("system.down", "u1a", "u1", starts=first + timedelta(minutes=1)),
                                              alert("system.down", "u1b", "u1", starts=first, target="h2")])
    inc = await incident(client, body["incidents"][0])
    assert datetime.fromisoformat(inc["detected_at"]) == first  # earliest startsAt, not when we heard
    clocks = {c["id"]: c for c in inc["clocks"]}
    assert set(clocks) == {"phone-report", "written-report"}  # level 2: no level-1 or level-3 clocks
    assert datetime.fromisoformat(clocks["phone-report"]["due_at"]) == first + timedelta(minutes=15)
    assert datetime.fromisoformat(clocks["written-report"]["due_at"]) == first + timedelta(hours=1)
    assert clocks["phone-report"]["status"] == "pending"
    assert clocks["phone-report"]["source"] == "Shenzhen 4.3.3"
    assert clocks["phone-report"]["audience"]["to"] == ["单位领导", "应急办公室"]
    r = aioredis.from_url(redis_url)
    consumer = EventConsumer(r, "test", "t")
    await consumer.ensure_group()
    events = await consumer.read(block_ms=100)
    assert [e.kind for _, e in events] == ["opened"]
    assert events[0][1].id == inc["id"] and events[0][1].incident.level == 2
    await r.aclose()


async def test_duplicates_from_two_alertmanager_replicas_make_one_incident(client):
    webhook = {"version": "4", "status": "firing", "receiver": "hallmon", "groupLabels": {},
               "alerts": [dict(alert("pos.link_down", "u2a", "u2"), status="firing")]}
    for _ in range(2):  # two replicas, same group: stored (202), Alertmanager reads no more
        resp = await client.post("/api/v1/alerts/alertmanager", json=webhook, headers=auth())
        assert resp.status == 202 and await resp.json() == {"accepted": 1}
    status, body = await post_alerts(client, webhook["alerts"])  # and the probe's fast path
    ids = set(body["incidents"])
    ids |= set(body["incidents"])
    assert len(ids) == 1
    inc = await incident(client, ids.pop())
    assert len(inc["alerts"]) == 1 and inc["alerts_firing"] == 1
    assert [e["action"] for e in inc["timeline"]] == ["opened"]  # duplicates record nothing


async def test_new_sites_widen_scope_and_upgrade_with_clocks_from_the_upgrade(client):
    t0 = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(minutes=30)
    _, body = await post_alerts(client, [alert("network.down", "u1a", "u1", starts=t0)])
    inc_id = body["incidents"][0]
    inc = await incident(client, inc_id)
    assert inc["level"] == 3 and [c["id"] for c in inc["clocks"]] == ["monthly-summary"]
    resp = await client.post(f"/api/v1/incidents/{inc_id}/reports/monthly-summary", json={"by": "测试值班长甲"},
                             headers=auth())
    assert resp.status == 200
    before = datetime.now(timezone.utc).replace(microsecond=0)
    _, body = await post_alerts(client, [alert("network.down", "u1b", "u1")])
    assert body["incidents"] == [inc_id]  # joined, not a new incident
    inc = await incident(client, inc_id)
    clocks = {c["id"]: c for c in inc["clocks"]}
    assert inc["level"] == 2 and inc["sites"] == ["u1a", "u1b"]
    assert clocks["monthly-summary"]["status"] == "met"  # met stays met
    due = datetime.fromisoformat(clocks["phone-report"]["due_at"])
    assert before + timedelta(minutes=15) - timedelta(seconds=2) <= due <= datetime.now(timezone.utc) + timedelta(minutes=15)
    assert clocks["phone-report"]["anchor"] == "upgraded"
    # the router never lowers: the second site recovering keeps level 2
    _, body = await post_alerts(client, [alert("network.down", "u1b", "u1", ends=datetime.now(timezone.utc))])
    assert (await incident(client, inc_id))["level"] == 2


async def test_resolved_alerts_mark_recovered_but_a_person_resolves(client):
    _, body = await post_alerts(client, [alert("queue.down", "u3a", "u3")])
    inc_id = body["incidents"][0]
    _, body = await post_alerts(client, [alert("queue.down", "u3a", "u3", ends=datetime.now(timezone.utc))])
    inc = await incident(client, inc_id)
    assert inc["recovered"] is True and inc["status"] == "open"


async def test_unmapped_alert_still_opens_an_incident(client):
    status, body = await post_alerts(client, [{"labels": {"alertname": "Weird", "fault": "coffee.empty",
                                                          "site": "nowhere"}}])
    assert status == 200
    inc = await incident(client, body["incidents"][0])
    assert inc["category"] == "other" and inc["unmapped"] is True and inc["level"] == 3


async def test_faults_caused_by_the_uplink_fold_into_the_uplink_incident(client):
    _, body = await post_alerts(client, [alert("network.down", "u1a", "u1", target="uplink")])
    uplink_inc = body["incidents"][0]
    caused = [alert(f, "u1a", "u1", target=t, cause="network.down")
              for f, t in (("system.down", "h2000"), ("pos.link_down", "pos1"), ("queue.down", "q1"))]
    _, body = await post_alerts(client, caused)
    assert body["incidents"] == [uplink_inc]
    inc = await incident(client, uplink_inc)
    assert len(inc["alerts"]) == 4 and inc["faults"] == ["network.down", "pos.link_down", "queue.down", "system.down"]


@pytest.mark.parametrize("payload, detail", [
    (b"{not json", "not valid JSON"),
    (b'{"labels": {}}', "expected a JSON list"),
    (b'[{"annotations": {}}]', "[0].labels"),
    (b'[{"labels": {"a": 1}}]', "[0].labels.a: expected a string"),
    (b'[{"labels": {"a": "b"}, "startsAt": "yesterday"}]', "[0].startsAt"),
    (b'[{"labels": {"a": "b"}}, 5]', "[1]: expected an object"),
])
async def test_bad_bodies_get_400_and_store_nothing(client, redis_url, payload, detail):
    resp = await client.post("/api/v1/alerts", data=payload, headers={**auth(), "Content-Type": "application/json"})
    assert resp.status == 400
    body = await resp.json()
    assert body["error"] == "bad_request" and detail in body["detail"]
    r = aioredis.from_url(redis_url)
    # (the drill duties' consumer group, their since-marks and the history's form are
    # written at start, not by the request)
    assert [k for k in await r.keys("hallmon:*") if b"seq" not in k
            and not k.startswith((b"hallmon:events", b"hallmon:drills:", b"hallmon:intake",
                                  b"hallmon:history:"))] == []
    assert await r.xlen("hallmon:intake") == 0  # (its consumer group is made at start)
    await r.aclose()


async def test_bad_webhook_version_and_oversized_body(client, redis_url):
    resp = await client.post("/api/v1/alerts/alertmanager", json={"version": "3", "alerts": []}, headers=auth())
    assert resp.status == 400 and "version" in (await resp.json())["detail"]
    huge = b"[" + b",".join(b'{"labels": {"a": "%d"}}' % i for i in range(600_000)) + b"]"
    resp = await client.post("/api/v1/alerts", data=huge, headers={**auth(), "Content-Type": "application/json"})
    assert resp.status == 400 and "larger than the limit" in (await resp.json())["detail"]
    r = aioredis.from_url(redis_url)
    assert await r.keys("hallmon:incident*") == []
    await r.aclose()


async def test_tokens_scopes_and_unit_limits(client):
    assert (await client.post("/api/v1/alerts", json=[])).status == 401
    resp = await client.post("/api/v1/alerts", json=[], headers={"Authorization": "Bearer nope"})
    assert resp.status == 401
    resp = await client.post("/api/v1/alerts", json=[], headers=auth("HALLMON_T_READ"))
    assert resp.status == 403
    # the port agency's token may post for its own unit only
    status, _ = await post_alerts(client, [alert("pos.link_down", "u1a", "u1")], env="HALLMON_T_PORT")
    assert status == 403
    _, own = await post_alerts(client, [alert("pos.link_down", "u2a", "u2")], env="HALLMON_T_PORT")
    _, other = await post_alerts(client, [alert("queue.down", "u1a", "u1")])
    resp = await client.get("/api/v1/incidents", headers=auth("HALLMON_T_PORT"))
    assert [i["id"] for i in (await resp.json())["incidents"]] == own["incidents"]
    resp = await client.get(f"/api/v1/incidents/{other['incidents'][0]}", headers=auth("HALLMON_T_PORT"))
    assert resp.status == 403
    resp = await client.post(f"/api/v1/incidents/{other['incidents'][0]}/ack", json={"by": "x"},
                             headers=auth("HALLMON_T_PORT"))
    assert resp.status == 403
    for path in ("/metrics", "/healthz", "/readyz"):
        assert (await client.get(path)).status == 200


async def test_ack_by_token_and_by_signed_link(client):
    from monitor.service import keys

    _, body = await post_alerts(client, [alert("power.on_battery", "u3a", "u3")])
    inc_id = body["incidents"][0]
    signer = client.server.app[keys.ACK_SIGNER]
    url = signer.url("", inc_id, "duty-a")
    path, query = url.split("?")
    forged = query[:-1] + ("0" if query[-1] != "0" else "1")
    assert (await client.post(f"{path}?{forged}")).status == 403
    other = signer.url("", "INC-19990101-0001", "duty-a").split("?")[1]
    assert (await client.post(f"{path}?{other}")).status == 403  # a link for another incident
    resp = await client.post(f"{path}?{query}", json={"by": "测试值班长甲"})
    assert resp.status == 200
    inc = await incident(client, inc_id)
    assert inc["status"] == "acknowledged" and inc["acknowledged"]["via"] == "link:duty-a"
    assert inc["acknowledged"]["by"] == "duty-a"  # the person the link was sent to, not what the body says


async def test_manual_level_and_resolve_rules(client):
    _, body = await post_alerts(client, [alert("system.down", "u4a", "u4")])
    inc_id = body["incidents"][0]
    resp = await client.post(f"/api/v1/incidents/{inc_id}/level", json={"level": 1, "by": "测试值班领导甲",
                                                                         "reason": "全关业务受影响"}, headers=auth())
    inc = await resp.json()
    assert inc["level"] == 1 and inc["decision"]["rule"] == "manual" and inc["decision"]["by"] == "测试值班领导甲"
    assert {"report-to-gacc", "team-in-place"} <= {c["id"] for c in inc["clocks"]}
    for bad in ({"level": 4, "by": "a", "reason": "b"}, {"level": 1, "by": "a"}, {"level": "1", "by": "a", "reason": "r"}):
        assert (await client.post(f"/api/v1/incidents/{inc_id}/level", json=bad, headers=auth())).status == 400
    future = (datetime.now(timezone.utc) + timedelta(hours=1)).isoformat()
    resp = await client.post(f"/api/v1/incidents/{inc_id}/resolve", json={"by": "a", "result": "ok", "at": future},
                             headers=auth())
    assert resp.status == 400 and "future" in (await resp.json())["detail"]
    past = (datetime.now(timezone.utc) - timedelta(days=1)).isoformat()
    resp = await client.post(f"/api/v1/incidents/{inc_id}/resolve", json={"by": "a", "result": "ok", "at": past},
                             headers=auth())
    assert resp.status == 400 and "before" in (await resp.json())["detail"]
    resp = await client.post(f"/api/v1/incidents/{inc_id}/resolve", json={"by": "测试值班长甲", "result": "系统恢复"},
                             headers=auth())
    inc = await resp.json()
    assert inc["status"] == "resolved" and "investigation-report" in {c["id"] for c in inc["clocks"]}
    resp = await client.post(f"/api/v1/incidents/{inc_id}/ack", json={"by": "a"}, headers=auth())
    assert resp.status == 409
    # a new fault of the same kind after resolution opens a new incident
    _, body = await post_alerts(client, [alert("system.down", "u4a", "u4", target="again")])
    assert body["incidents"] != [inc_id]


async def test_report_drafts_in_both_languages_from_one_template(client):
    _, body = await post_alerts(client, [alert("pos.link_down", "u2a", "u2")])
    inc_id = body["incidents"][0]
    zh = await (await client.get(f"/api/v1/incidents/{inc_id}/report?kind=phone", headers=auth())).text()
    en = await (await client.get(f"/api/v1/incidents/{inc_id}/report?kind=phone&lang=en", headers=auth())).text()
    for label in ("时间：", "地点：", "原因：", "现状：", "影响：", "结果："):
        assert label in zh
    for label in ("Time: ", "Place: ", "Cause: ", "Current state: ", "Impact: ", "Result: "):
        assert label in en
    assert "测试二关 测试二关口岸" in zh and "POS 机无法扣款（银行链路中断） (pos.link_down)" in zh
    resp = await client.get(f"/api/v1/incidents/{inc_id}/report?kind=written", headers={**auth(), "Accept": "application/json"})
    draft = await resp.json()
    assert [f["key"] for f in draft["fields"]][:3] == ["time", "place", "cause"]
    assert "自带单" in next(f["value"] for f in draft["fields"] if f["key"] == "measures")  # POS runbook
    assert (await client.get(f"/api/v1/incidents/{inc_id}/report?kind=poem", headers=auth())).status == 400


async def test_timeline_is_hash_chained_and_tampering_shows(client, redis_url):
    _, body = await post_alerts(client, [alert("queue.stalled", "u3a", "u3")])
    inc_id = body["incidents"][0]
    await client.post(f"/api/v1/incidents/{inc_id}/ack", json={"by": "测试值班长甲"}, headers=auth())
    inc = await incident(client, inc_id)
    assert [e["action"] for e in inc["timeline"]] == ["opened", "acknowledged"] and inc["timeline_intact"]
    r = aioredis.from_url(redis_url)
    entry = json.loads(await r.lindex(f"hallmon:timeline:{inc_id}", 1))
    entry["actor"] = "someone else"
    await r.lset(f"hallmon:timeline:{inc_id}", 1, json.dumps(entry))
    await r.aclose()
    assert (await incident(client, inc_id))["timeline_intact"] is False


async def test_cutting_off_the_end_of_the_timeline_shows(client, redis_url):
    _, body = await post_alerts(client, [alert("queue.stalled", "u3a", "u3")])
    inc_id = body["incidents"][0]
    await client.post(f"/api/v1/incidents/{inc_id}/level", json={"level": 1, "by": "测试值班领导甲", "reason": "r"},
                      headers=auth())
    assert (await incident(client, inc_id))["timeline_intact"]
    r = aioredis.from_url(redis_url)
    await r.rpop(f"hallmon:timeline:{inc_id}")  # drop the override from the record
    await r.aclose()
    assert (await incident(client, inc_id))["timeline_intact"] is False


async def test_incident_metrics(client):
    _, body = await post_alerts(client, [alert("system.down", "hqa", "hq")])
    await asyncio.sleep(2.5)
    text = await (await client.get("/metrics")).text()
    assert 'hallmon_incidents_open{level="1"} 1.0' in text
    assert f'hallmon_clock_due_timestamp_seconds{{clock="phone-report",incident="{body["incidents"][0]}",level="1"}}' in text
    assert 'hallmon_clocks_overdue{level="1"} 0.0' in text


async def test_maintenance_window_marks_the_incident(aiohttp_client, tmp_path, redis_url):
    app = make_app(tmp_path, redis_url, units_edit=lambda text: text.replace(
        "sites: [{id: u4a, name: 测试四关大厅}]",
        'sites: [{id: u4a, name: 测试四关大厅, maintenance: [{from: "2026-01-01T00:00:00+08:00", '
        'to: "2036-01-01T00:00:00+08:00", reason: 计划停电}]}]'))
    client = await aiohttp_client(app)
    _, body = await post_alerts(client, [alert("power.on_battery", "u4a", "u4")])
    assert (await incident(client, body["incidents"][0]))["maintenance"] is True
    _, body = await post_alerts(client, [alert("queue.down", "u3a", "u3")])  # a site without a window
    assert (await incident(client, body["incidents"][0]))["maintenance"] is False


async def test_a_person_sets_harm_flags_and_xiamen_grades_by_them(aiohttp_client, tmp_path, redis_url):
    client = await aiohttp_client(make_app(tmp_path, redis_url, plan="xiamen-tax"))
    _, body = await post_alerts(client, [alert("queue.down", "u3a", "u3"), alert("queue.down", "hqa", "hq")])
    inc_id = body["incidents"][0]
    assert (await incident(client, inc_id))["level"] == 3  # wide scope, but Xiamen grades by harm
    url = f"/api/v1/incidents/{inc_id}/flags"
    for bad in ({"flags": ["bored"], "by": "x", "reason": "r"}, {"flags": [], "by": "x", "reason": "r"},
                {"flags": ["injuries"], "reason": "r"}):
        assert (await client.post(url, json=bad, headers=auth())).status == 400
    resp = await client.post(url, json={"flags": ["injuries"], "by": "测试值班长甲", "reason": "两人在拥挤中受伤"},
                             headers=auth())
    doc = await resp.json()
    assert resp.status == 200 and doc["level"] == 2 and doc["flags"] == ["injuries"]
    assert doc["decision"]["rule"] == "harm-injuries-or-loss" and doc["decision"]["source"] == "Xiamen 3(3)2"
    resp = await client.post(url, json={"flags": ["casualties"], "by": "测试值班长甲", "reason": "r"}, headers=auth())
    assert (await resp.json())["level"] == 1
    inc = await incident(client, inc_id)
    assert [e["action"] for e in inc["timeline"]].count("flags_set") == 2 and inc["timeline_intact"]
    assert inc["level_history"][-1]["by"] == "测试值班长甲"


@pytest.mark.parametrize("plan", builtin_ids())
async def test_every_builtin_plan_opens_joins_and_reads_back_an_incident(aiohttp_client, tmp_path, redis_url, plan):
    """Regression (0.5): the guizhou-tax plan stored `lasting_at_least` as 7200.0, which its
    own validator refused when read back, so every alert after the first answered 500."""
    client = await aiohttp_client(make_app(tmp_path, redis_url, plan=plan))
    status, body = await post_alerts(client, [alert("system.down", "u1a", "u1")])
    assert status == 200
    inc_id = body["incidents"][0]
    status, body = await post_alerts(client, [alert("system.down", "u1b", "u1")])
    assert status == 200 and body["incidents"] == [inc_id]
    doc = await incident(client, inc_id)
    assert doc["sites"] == ["u1a", "u1b"] and doc["plan"] == plan
    for kind in ("phone", "written", "final"):
        resp = await client.get(f"/api/v1/incidents/{inc_id}/report?kind={kind}&lang=en", headers=auth())
        assert resp.status == 200


async def test_a_claim_left_without_its_incident_is_repaired_on_the_next_alert(client, redis_url):
    """A group pointing at an incident that was never written (0.5's split claim and
    write) must not answer 404 for that fault group for ever."""
    r = aioredis.from_url(redis_url, decode_responses=True)
    await r.hset("hallmon:open", "core_system|core", "INC-20260101-0001")
    status, body = await post_alerts(client, [alert("system.down", "u1a", "u1")])
    assert status == 200 and body["incidents"][0] != "INC-20260101-0001"
    assert await r.hget("hallmon:open", "core_system|core") == body["incidents"][0]
    await r.aclose()
