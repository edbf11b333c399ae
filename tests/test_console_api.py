"""The console's server side against a live `hallmon run`: the event stream (filtered by
units, surviving a Redis restart), personal tokens as the recorded actor, the assets all
served locally, and the one fault-name catalogue."""
from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import time
from datetime import datetime, timezone

import aiohttp

from monitor.console.catalogue import STRINGS, catalogue
from monitor.core.faultnames import FAULTS, fault_name
from monitor.durable.events import Headline
from monitor.paging.messages import render
from simulators.redisproc import RedisServer, free_port
from tests.conftest import HALLMON, ROOT, write_config
from tests.robots import Robots

TOKENS = {"T_CHIEF": "chief-secret-0001", "T_AGENCY": "agency-secret-0001"}
BODY = """\
api:
  tokens:
    - {name: chief, secret_env: T_CHIEF, scopes: [alerts:write, incidents:read, incidents:write], person: duty-a}
    - {name: agency, secret_env: T_AGENCY, scopes: [incidents:read, incidents:write], units: [port]}
organisation:
  name: 测试海关
  units:
    - {id: hall, name: 测试一关, sites: [{id: hall-1, name: 测试通关大厅}]}
    - {id: port, name: 测试口岸海关, sites: [{id: port-1, name: 测试口岸查验现场}]}
    - {id: other, name: 测试其他单位, sites: [{id: other-1, name: 测试其他现场}]}
paging:
  people:
    - {id: duty-a, name: 测试值班长甲, channels: [hook]}
  channels:
    - {id: hook, type: webhook, url: "http://127.0.0.1:9/unused"}
"""


def auth(name: str) -> dict:
    return {"Authorization": f"Bearer {TOKENS[name]}"}


async def post_alert(s: aiohttp.ClientSession, base: str, site: str, system: str) -> str:
    alert = {"labels": {"alertname": "T", "fault": "system.down", "site": site, "system": system},
             "startsAt": datetime.now(timezone.utc).isoformat()}
    async with s.post(f"{base}/api/v1/alerts", json=[alert], headers=auth("T_CHIEF")) as r:
        assert r.status == 200, await r.text()
        return (await r.json())["incidents"][0]


async def read_events(resp: aiohttp.ClientResponse, until, timeout: float = 5.0) -> list[tuple[str, dict]]:
    """Parse server-sent events until ``until(events)`` holds."""
    events: list[tuple[str, dict]] = []
    buf = b""
    async with asyncio.timeout(timeout):
        while not until(events):
            buf += await resp.content.readany()
            while b"\n\n" in buf:
                block, buf = buf.split(b"\n\n", 1)
                kind = data = None
                for line in block.decode().splitlines():
                    if line.startswith("event: "):
                        kind = line[7:]
                    elif line.startswith("data: "):
                        data = json.loads(line[6:])
                if kind:
                    events.append((kind, data))
    return events


def ids(events, kind="incident_opened") -> set[str]:
    return {d["incident"]["id"] for k, d in events if k == kind}


async def test_event_stream_is_filtered_by_the_tokens_units(tmp_path, redis_url, service):
    svc = service(write_config(tmp_path / "h.yml", BODY, redis_url), env=TOKENS)
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{svc.base}/api/v1/events") as r:
            assert r.status == 401 and r.content_type == "application/json"
        chief = await s.get(f"{svc.base}/api/v1/events", headers=auth("T_CHIEF"))
        agency = await s.get(f"{svc.base}/api/v1/events", headers=auth("T_AGENCY"))
        assert chief.content_type == "text/event-stream"
        for stream in (chief, agency):
            assert (await read_events(stream, lambda ev: ev))[0][0] == "ready"
        hall_id = await post_alert(s, svc.base, "hall-1", "a")
        port_id = await post_alert(s, svc.base, "port-1", "b")
        seen = await read_events(chief, lambda ev: {hall_id, port_id} <= ids(ev))
        assert ids(seen) == {hall_id, port_id}
        theirs = await read_events(agency, lambda ev: port_id in ids(ev))
        # a change to the hall incident after the port one: the agency stream must not carry it
        async with s.post(f"{svc.base}/api/v1/incidents/{hall_id}/ack", json={"by": "x"}, headers=auth("T_CHIEF")) as r:
            assert r.status == 200
        async with s.post(f"{svc.base}/api/v1/incidents/{port_id}/ack", json={"by": "x"}, headers=auth("T_CHIEF")) as r:
            assert r.status == 200
        theirs += await read_events(agency, lambda ev: port_id in ids(ev, "incident_changed"))
        assert all(d["incident"]["units"] == ["port"] for k, d in theirs if "incident" in (d or {}))
        assert hall_id not in ids(theirs) | ids(theirs, "incident_changed")
        changed = await read_events(chief, lambda ev: hall_id in ids(ev, "incident_changed"))
        assert [d["incident"]["status"] for k, d in changed if d["incident"]["id"] == hall_id] == ["acknowledged"]
        chief.close()
        agency.close()


async def test_event_stream_says_resync_after_redis_comes_back_and_goes_on(tmp_path, service):
    port = free_port()
    redis = RedisServer(appendonly=False, port=port).start()
    try:
        svc = service(write_config(tmp_path / "h.yml", BODY, redis.url), env=TOKENS)
        async with aiohttp.ClientSession() as s:
            stream = await s.get(f"{svc.base}/api/v1/events", headers=auth("T_CHIEF"))
            await read_events(stream, lambda ev: ev)
            redis.stop()
            await asyncio.sleep(1.0)
            redis = RedisServer(appendonly=False, port=port).start()
            await read_events(stream, lambda ev: any(k == "resync" for k, _ in ev), timeout=15)
            for _ in range(20):  # the API's first requests after a Redis restart may fail (its own tests cover that)
                try:
                    new_id = await post_alert(s, svc.base, "hall-1", "after-restart")
                    break
                except AssertionError:
                    await asyncio.sleep(0.2)
            await read_events(stream, lambda ev: new_id in ids(ev))
            stream.close()
        restarts = [e for e in svc.events() if e.get("task") == "console_events"]
        assert len(restarts) <= 2, restarts  # logged as a transition, not once per retry
    finally:
        redis.stop()


async def test_a_personal_token_records_its_person_as_the_actor(tmp_path, redis_url, service):
    svc = service(write_config(tmp_path / "h.yml", BODY, redis_url), env=TOKENS)
    async with aiohttp.ClientSession() as s:
        incident = await post_alert(s, svc.base, "hall-1", "a")
        async with s.post(f"{svc.base}/api/v1/incidents/{incident}/ack", json={"by": "冒名者"},
                          headers=auth("T_CHIEF")) as r:
            assert r.status == 200 and (await r.json())["acknowledged"]["by"] == "测试值班长甲"
        async with s.post(f"{svc.base}/api/v1/incidents/{incident}/resolve", json={"result": "好了"},
                          headers=auth("T_CHIEF")) as r:  # no "by" needed: the token says who
            assert r.status == 200 and (await r.json())["resolved"]["by"] == "测试值班长甲"
        async with s.get(f"{svc.base}/api/v1/incidents/{incident}", headers=auth("T_CHIEF")) as r:
            actors = [e["actor"] for e in (await r.json())["timeline"] if e["action"] in ("acknowledged", "resolved")]
        assert actors == ["测试值班长甲", "测试值班长甲"]
        async with s.get(f"{svc.base}/api/v1/whoami", headers=auth("T_AGENCY")) as r:
            me = await r.json()
        assert me["name"] == "agency" and me["person"] is None and me["units"] == ["port"]
        assert [u["id"] for u in me["organisation"]["units"]] == ["port"]


def test_a_token_person_must_be_one_of_paging_people(tmp_path):
    cfg = write_config(tmp_path / "h.yml", BODY.replace("person: duty-a", "person: duty-z"))
    res = subprocess.run([*HALLMON, "check-config", str(cfg)], capture_output=True, text=True, cwd=ROOT,
                         env={**os.environ, **TOKENS})
    assert res.returncode == 1
    assert re.search(r"h\.yml:\d+: api\.tokens\[0\]\.person: no person 'duty-z' in paging\.people", res.stderr)


async def test_console_is_served_by_hallmon_with_every_asset_local(tmp_path, redis_url, service):
    svc = service(write_config(tmp_path / "h.yml", BODY, redis_url), env=TOKENS)
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{svc.base}/", allow_redirects=False) as r:
            assert r.status == 302 and r.headers["Location"] == "/console/"
        async with s.get(f"{svc.base}/console/") as r:
            html = await r.text()
            assert r.status == 200 and "default-src 'self'" in r.headers["Content-Security-Policy"]
        assets = re.findall(r'(?:src|href)="([^"#]+)"', html)
        assert assets and all(a.startswith("/console/") for a in assets), assets
        for path in assets:
            async with s.get(svc.base + path) as r:
                text = await r.text()
                assert r.status == 200
                assert not re.search(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text), path  # nothing from elsewhere
        async with s.get(f"{svc.base}/console/static/..%2Fcatalogue.py") as r:
            assert r.status == 404
        async with s.get(f"{svc.base}/console/catalogue.json") as r:
            cat = await r.json()
    assert cat["zh"]["fault.system.down"] == "核心业务系统无法访问"
    assert cat["en"]["fault.power.on_battery"] == "Mains power lost, UPS on battery"


def test_one_catalogue_names_every_fault_and_string_in_both_languages():
    contract = ["power.on_battery", "power.low_battery", "power.ups_fault", "power.ups_unreachable", "queue.down",
                "queue.stalled", "queue.congested", "pos.link_down", "pos.slow", "system.down", "system.slow",
                "system.cert_expiring", "network.down", "network.loss", "network.latency", "network.dns"]
    for fault in contract:
        zh, en = FAULTS[fault]
        assert re.search(r"[\u4e00-\u9fff]", zh) and not re.search(r"[\u4e00-\u9fff]", en), fault
    assert fault_name("power.on_battery") == "市电中断，UPS 电池供电 (power.on_battery)"
    assert fault_name("system.down", "en", code=False) == "Core business system unreachable"
    assert fault_name("manual.fire") == "火灾 (manual.fire)"
    assert fault_name("vendor.weird") == "vendor.weird"
    for key, (zh, en) in STRINGS.items():
        assert zh and en and set(re.findall(r"\{(\w+)\}", zh)) == set(re.findall(r"\{(\w+)\}", en)), key
    assert set(catalogue()["zh"]) == set(catalogue()["en"])


def test_pages_name_faults_from_the_same_catalogue_in_both_languages():
    inc = {"id": "INC-1", "level": 2, "level_name": "二级", "category": "power", "faults": ["power.on_battery"],
           "sites": ["s1"], "detected_at": "2026-12-01T02:00:00+00:00", "clocks": [], "plan": "default"}
    zh = render("page", "zh", Headline.of(inc), site_names={"s1": "测试通关大厅"})
    en = render("page", "en", Headline.of(inc), site_names={"s1": "测试通关大厅"})
    assert "故障：市电中断，UPS 电池供电 (power.on_battery)" in zh.text
    assert "Fault: Mains power lost, UPS on battery (power.on_battery)" in en.text


def test_console_javascript_uses_only_catalogue_keys_that_exist():
    js = (ROOT / "monitor/console/static/app.js").read_text()
    used = set(re.findall(r"\bt\('([a-z][\w.]*[a-z])'", js))
    keys = set(catalogue()["zh"])
    assert used and used <= keys, sorted(used - keys)
    assert not re.search(r"[\u4e00-\u9fff]", js.split("// ── start")[0].replace("无法连接 hallmon 服务", "")), \
        "no Chinese text in the page's code: every string comes from the catalogue"



async def test_event_stream_tells_each_page_sent_to_the_units_it_concerns(tmp_path, redis_url, service):
    robots = await Robots().start()
    try:
        body = BODY.replace('url: "http://127.0.0.1:9/unused"', f'url: "{robots.base}/page"') + """\
  rosters:
    - id: hall-duty
      layers:
        - {id: duty_chief, members: [duty-a], rotation: {every: 1d, handoff: "08:30", start: 2026-11-02}}
  policies:
    - id: default
      steps:
        - {notify: {roster: hall-duty, layer: duty_chief}}
"""
        svc = service(write_config(tmp_path / "h.yml", body, redis_url), env=TOKENS)
        async with aiohttp.ClientSession() as s:
            chief = await s.get(f"{svc.base}/api/v1/events", headers=auth("T_CHIEF"))
            agency = await s.get(f"{svc.base}/api/v1/events", headers=auth("T_AGENCY"))
            for stream in (chief, agency):
                await read_events(stream, lambda ev: ev)
            hall_id = await post_alert(s, svc.base, "hall-1", "paged")
            pages = await read_events(chief, lambda ev: any(k == "page_sent" for k, _ in ev))
            [page] = [d for k, d in pages if k == "page_sent"]
            assert page["incident"] == hall_id and page["person_name"] == "测试值班长甲" and page["units"] == ["hall"]
            assert page["outcome"] != "failed" and robots.received["webhook"]
            port_id = await post_alert(s, svc.base, "port-1", "paged-port")
            theirs = await read_events(agency, lambda ev: any(k == "page_sent" for k, _ in ev))
            assert [d["incident"] for k, d in theirs if k == "page_sent"] == [port_id]  # not the hall's page
            chief.close()
            agency.close()
    finally:
        await robots.stop()


async def test_open_event_streams_do_not_hold_up_a_sigterm(tmp_path, redis_url, service):
    svc = service(write_config(tmp_path / "h.yml", BODY, redis_url), env=TOKENS)
    async with aiohttp.ClientSession() as s:
        streams = [await s.get(f"{svc.base}/api/v1/events", headers=auth("T_CHIEF")) for _ in range(5)]
        for stream in streams:
            await read_events(stream, lambda ev: ev)
        t0 = time.monotonic()
        svc.signal(signal.SIGTERM)
        await asyncio.get_running_loop().run_in_executor(None, svc.proc.wait, 10)
        assert time.monotonic() - t0 < 3.0
        for stream in streams:
            assert await stream.content.read() == b""  # each stream ended cleanly


async def test_open_incidents_read_lists_the_live_ones_the_token_sees(tmp_path, redis_url, service):
    svc = service(write_config(tmp_path / "h.yml", BODY, redis_url), env=TOKENS)
    async with aiohttp.ClientSession() as s:
        hall_id = await post_alert(s, svc.base, "hall-1", "a")
        port_id = await post_alert(s, svc.base, "port-1", "b")
        gone_id = await post_alert(s, svc.base, "port-1", "c")
        async with s.post(f"{svc.base}/api/v1/incidents/{gone_id}/resolve", json={"result": "好了"},
                          headers=auth("T_CHIEF")) as r:
            assert r.status == 200
        for level in (1, 3):  # raised and lowered again by a person: the level-1 clocks withdrawn
            async with s.post(f"{svc.base}/api/v1/incidents/{hall_id}/level",
                              json={"level": level, "reason": "测试定级"}, headers=auth("T_CHIEF")) as r:
                assert r.status == 200, await r.text()
        async with s.get(f"{svc.base}/api/v1/incidents-open", headers=auth("T_CHIEF")) as r:
            rows = (await r.json())["incidents"]
            assert {d["id"] for d in rows} == {hall_id, port_id}
        # each a lean row (what the list shows), the detail view keeps the whole document
        async with s.get(f"{svc.base}/api/v1/incidents/{hall_id}", headers=auth("T_CHIEF")) as r:
            full = await r.json()
        row = next(d for d in rows if d["id"] == hall_id)
        assert set(row) == {"id", "status", "level", "level_name", "category", "faults", "sites", "detected_at",
                            "updated_at", "drill", "maintenance", "recovered", "clocks"}
        assert {k: full[k] for k in row if k != "clocks"} == {k: v for k, v in row.items() if k != "clocks"}
        assert "withdrawn" in {c["status"] for c in full["clocks"]}
        for inc_id in (hall_id, port_id):  # only the clocks still owed (the list shows no other)
            async with s.get(f"{svc.base}/api/v1/incidents/{inc_id}", headers=auth("T_CHIEF")) as r:
                doc = await r.json()
            assert next(d for d in rows if d["id"] == inc_id)["clocks"] == [
                {k: c[k] for k in ("id", "title", "title_en", "due_at", "status")}
                for c in doc["clocks"] if c["status"] in ("pending", "overdue")]
        assert any(d["clocks"] for d in rows)
        assert "decision" in full and "timeline" in full and len(json.dumps(row)) * 3 < len(json.dumps(full))
        async with s.get(f"{svc.base}/api/v1/incidents-open", headers=auth("T_AGENCY")) as r:
            assert [d["id"] for d in (await r.json())["incidents"]] == [port_id]
        async with s.get(f"{svc.base}/api/v1/incidents-open") as r:
            assert r.status == 401 and (await r.json())["error"] == "unauthorized"


def test_every_timeline_action_the_incidents_write_has_words_in_both_languages():
    """The timeline shows an action by its catalogue words; one missing shows its code
    (clock_held, regraded, folded… were missing)."""
    written = set()
    for path in (ROOT / "monitor/incidents").glob("*.py"):
        written |= set(re.findall(r'\bChange\("([a-z_]+)"', path.read_text(encoding="utf-8")))
    assert {"opened", "overdue", "clock_held", "regraded", "folded"} <= written
    for lang in ("zh", "en"):
        missing = sorted(a for a in written if f"action.{a}" not in catalogue()[lang])
        assert not missing, (lang, missing)
