"""POST /api/v1/alerts/zabbix with the body hallmon's media type sends (deploy/zabbix/):
mapping, recovery, acknowledgement, re-sends, unmapped events, bad input. The same
flow against a real Zabbix server is tests/test_zabbix_real.py."""
from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import redis
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.core.errors import ConfigError, Invalid
from monitor.sources.zabbix import parse_event
from tests.routerkit import auth, config_file, make_app

pytestmark = pytest.mark.usefixtures("tokens")
ROOT = Path(__file__).resolve().parent.parent
PLANS = sorted(p.stem for p in (ROOT / "monitor/plans/builtin").glob("*.yml"))

MAPPING = """\
sources:
  zabbix:
    rules:
      - {match: {host_group: "Halls/Futian"}, set: {site: u1a}}
      - {match: {host_group: "Ports/"}, set: {site: u2a}}
      - {match: {tag: component, value: ups}, set: {fault: power.on_battery, system: power}}
      - {match: {tag: component, value: pos}, set: {fault: pos.link_down}}
    severity: {disaster: system.down, high: system.down, average: system.slow}
"""


def event(kind: str = "problem", eid: str = "4711", groups=("Halls/Futian",), tags=(("component", "ups"),),
          severity: int = 5, at: datetime | None = None, **extra) -> dict:
    body = {"version": "1", "instance": "zabbix-test", "kind": kind,
            "event": {"id": eid, "name": "UPS on battery", "severity": severity,
                      "time": (at or datetime.now(timezone.utc) - timedelta(seconds=30)).isoformat(),
                      "tags": [{"tag": t, "value": v} for t, v in tags]},
            "host": {"name": "ups-test-1", "groups": list(groups)}, "trigger": {"id": "23001"}}
    if kind == "recovery":
        body["recovery"] = {"id": str(int(eid) + 1), "time": datetime.now(timezone.utc).isoformat()}
    if kind == "update":
        body["update"] = {"user": "测试值班员甲 (duty-a)", "action": "acknowledged, commented", "message": "已到现场",
                          "acknowledged": True, "time": datetime.now(timezone.utc).isoformat()}
    body.update(extra)
    return body


async def post(client, body, token="HALLMON_T_ADMIN"):
    return await client.post("/api/v1/alerts/zabbix", json=body, headers=auth(token))


async def incidents(client, n: int = 1) -> list[dict]:
    for _ in range(200):
        docs = (await (await client.get("/api/v1/incidents", headers=auth())).json())["incidents"]
        if len(docs) >= n:
            return docs
        await asyncio.sleep(0.02)
    raise AssertionError(f"expected {n} incidents, got {docs}")


async def show(client, incident_id: str) -> dict:
    return await (await client.get(f"/api/v1/incidents/{incident_id}", headers=auth())).json()


async def until(client, incident_id: str, check) -> dict:
    for _ in range(200):
        doc = await show(client, incident_id)
        if check(doc):
            return doc
        await asyncio.sleep(0.02)
    raise AssertionError(json.dumps(doc, ensure_ascii=False)[:2000])


def stored_keys(redis_url: str) -> tuple[list[str], int]:
    """What a request could have stored: remembered Zabbix events, incidents, intake entries."""
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        keys = sorted(k for k in r.keys("hallmon:*") if k.startswith(("hallmon:zabbix", "hallmon:incident")))
        return keys, r.xlen("hallmon:intake")
    finally:
        r.close()


@pytest.mark.parametrize("plan", PLANS)
async def test_a_problem_opens_an_incident_at_its_mapped_site_and_its_recovery_ends_the_alert(
        aiohttp_client, tmp_path, redis_url, plan):
    client = await aiohttp_client(make_app(tmp_path, redis_url, plan=plan, extra=MAPPING))
    resp = await post(client, event())
    assert resp.status == 202, await resp.text()
    answer = await resp.json()
    assert answer["labels"]["site"] == "u1a" and answer["labels"]["unit"] == "u1"
    assert answer["labels"]["fault"] == "power.on_battery" and answer["labels"]["zabbix_event"] == "zabbix-test:4711"
    [doc] = await incidents(client)
    assert doc["category"] == "power" and doc["sites"] == ["u1a"] and doc["units"] == ["u1"]
    assert not doc["unmapped"]
    assert (await post(client, event("recovery"))).status == 202
    done = await until(client, doc["id"], lambda d: d["alerts"][0]["status"] == "resolved")
    assert done["recovered"] and len(done["alerts"]) == 1


async def test_severity_gives_the_fault_where_no_tag_or_rule_does_and_host_group_prefixes_match(
        aiohttp_client, tmp_path, redis_url):
    client = await aiohttp_client(make_app(tmp_path, redis_url, extra=MAPPING))
    answer = await (await post(client, event(groups=["Ports/Huanggang/Lane 3"], tags=(), severity=4))).json()
    assert answer["labels"]["fault"] == "system.down" and answer["labels"]["site"] == "u2a"
    [doc] = await incidents(client)
    assert doc["category"] == "core_system" and doc["sites"] == ["u2a"]


async def test_direct_tags_win_over_rules(aiohttp_client, tmp_path, redis_url):
    client = await aiohttp_client(make_app(tmp_path, redis_url, extra=MAPPING))
    tags = (("component", "ups"), ("hallmon.site", "u3a"), ("hallmon.fault", "power.low_battery"))
    answer = await (await post(client, event(tags=tags))).json()
    assert answer["labels"]["site"] == "u3a" and answer["labels"]["unit"] == "u3"
    assert answer["labels"]["fault"] == "power.low_battery"


@pytest.mark.parametrize("plan", PLANS)
async def test_an_unmapped_event_is_never_dropped_it_opens_an_other_incident_flagged(
        aiohttp_client, tmp_path, redis_url, plan):
    client = await aiohttp_client(make_app(tmp_path, redis_url, plan=plan, extra=MAPPING))
    resp = await post(client, event(groups=["Somewhere else"], tags=(("scope", "capacity"),), severity=1))
    assert resp.status == 202
    assert (await resp.json())["labels"]["fault"] == "zabbix.unmapped"
    [doc] = await incidents(client)
    assert doc["category"] == "other" and doc["unmapped"] is True


async def test_a_zabbix_acknowledgement_is_recorded_on_the_incident_and_acknowledges_it(
        aiohttp_client, tmp_path, redis_url):
    client = await aiohttp_client(make_app(tmp_path, redis_url, extra=MAPPING))
    await post(client, event())
    [doc] = await incidents(client)
    update = event("update")
    resp = await post(client, update)
    assert resp.status == 200
    assert await resp.json() == {"recorded": True, "incident": doc["id"], "status": "acknowledged"}
    after = await show(client, doc["id"])
    assert after["status"] == "acknowledged" and after["acknowledged"]["by"] == "测试值班员甲 (duty-a) (Zabbix)"
    [entry] = [e for e in after["timeline"] if e["action"] == "acknowledged"]
    assert entry["detail"]["via"] == "zabbix" and entry["detail"]["message"] == "已到现场"
    # Zabbix re-sends the same update (a restart with the alert queued): recorded once
    again = await (await post(client, update)).json()
    assert again["recorded"] is False and again["reason"] == "already recorded"
    assert len((await show(client, doc["id"]))["timeline"]) == len(after["timeline"])


async def test_a_comment_without_acknowledging_is_recorded_and_leaves_the_status(
        aiohttp_client, tmp_path, redis_url):
    client = await aiohttp_client(make_app(tmp_path, redis_url, extra=MAPPING))
    await post(client, event())
    [doc] = await incidents(client)
    body = event("update")
    body["update"].update(action="commented", acknowledged=False, message="UPS 厂家已联系")
    assert (await (await post(client, body)).json())["status"] == "open"
    [entry] = [e for e in (await show(client, doc["id"]))["timeline"] if e["action"] == "external_update"]
    assert entry["detail"] == {"source": "zabbix", "zabbix_event": "zabbix-test:4711", "action": "commented",
                               "message": "UPS 厂家已联系"}


async def test_an_update_for_an_event_hallmon_holds_no_incident_for_is_answered_not_recorded(
        aiohttp_client, tmp_path, redis_url):
    client = await aiohttp_client(make_app(tmp_path, redis_url, extra=MAPPING))
    resp = await post(client, event("update", eid="999"))
    assert resp.status == 200 and (await resp.json())["recorded"] is False
    assert (await (await client.get("/api/v1/incidents", headers=auth())).json())["incidents"] == []


async def test_resends_after_a_zabbix_restart_change_nothing(aiohttp_client, tmp_path, redis_url):
    client = await aiohttp_client(make_app(tmp_path, redis_url, extra=MAPPING))
    for _ in range(3):
        assert (await post(client, event())).status == 202
    [doc] = await incidents(client)
    await asyncio.sleep(0.2)  # give the intake time to place the re-sends (they must join, not open)
    docs = (await (await client.get("/api/v1/incidents", headers=auth())).json())["incidents"]
    assert len(docs) == 1
    shown = await show(client, doc["id"])
    assert len(shown["alerts"]) == 1
    for _ in range(2):
        assert (await post(client, event("recovery"))).status == 202
    assert (await until(client, doc["id"], lambda d: d["recovered"]))["alerts"][0]["status"] == "resolved"


async def test_a_reload_that_changes_the_mapping_cannot_orphan_a_problem(aiohttp_client, tmp_path, redis_url):
    """The problem's labels are remembered: its recovery (mapped to another site by the new
    mapping) still ends the alert it opened."""
    app = make_app(tmp_path, redis_url, extra=MAPPING)
    client = await aiohttp_client(app)
    await post(client, event())
    [doc] = await incidents(client)
    from monitor.config.model import load_config
    from monitor.service import keys

    path = tmp_path / "hall.yml"
    path.write_text(path.read_text().replace("set: {site: u1a}", "set: {site: u3a}"))
    app[keys.RUNTIME].config = load_config(path)
    answer = await (await post(client, event("recovery"))).json()
    assert answer["labels"]["site"] == "u1a"
    assert (await until(client, doc["id"], lambda d: d["recovered"]))["sites"] == ["u1a"]


async def test_a_unit_limited_token_cannot_post_another_units_event_and_nothing_is_stored(
        aiohttp_client, tmp_path, redis_url):
    client = await aiohttp_client(make_app(tmp_path, redis_url, extra=MAPPING))
    before = stored_keys(redis_url)
    resp = await post(client, event(), token="HALLMON_T_PORT")  # u1a is not the port agency's (u2)
    assert resp.status == 403 and (await resp.json())["error"] == "forbidden"
    assert stored_keys(redis_url) == before
    ok = await post(client, event(groups=["Ports/Lane 1"]), token="HALLMON_T_PORT")
    assert ok.status == 202


@pytest.mark.parametrize("mutate, where", [
    (lambda b: b.update(version="2"), "version"),
    (lambda b: b.update(kind="resolved"), "kind"),
    (lambda b: b["event"].update(severity="5"), "event.severity"),
    (lambda b: b["event"].update(severity=6), "event.severity"),
    (lambda b: b["event"].update(id="12a"), "event.id"),
    (lambda b: b["event"].update(time="yesterday"), "event.time"),
    (lambda b: b["event"].update(time="2020-01-01T00:00:00Z"), "startsAt"),
    (lambda b: b["event"].update(tags=[{"tag": 1}]), "event.tags[0].tag"),
    (lambda b: b["host"].update(groups="Halls"), "host.groups"),
    (lambda b: b.update(kind="update"), "update"),
    (lambda b: b.update(instance="a b"), "instance"),
])
async def test_a_malformed_body_is_a_400_naming_the_field_and_stores_nothing(
        aiohttp_client, tmp_path, redis_url, mutate, where):
    client = await aiohttp_client(make_app(tmp_path, redis_url, extra=MAPPING))
    before = stored_keys(redis_url)
    body = event()
    mutate(body)
    resp = await post(client, body)
    assert resp.status == 400, await resp.text()
    answer = await resp.json()
    assert answer["error"] == "bad_request" and where in answer["detail"]
    assert stored_keys(redis_url) == before


async def test_without_a_token_nothing_is_accepted(aiohttp_client, tmp_path, redis_url):
    client = await aiohttp_client(make_app(tmp_path, redis_url, extra=MAPPING))
    before = stored_keys(redis_url)
    resp = await client.post("/api/v1/alerts/zabbix", json=event())
    assert resp.status == 401
    assert stored_keys(redis_url) == before == ([], 0)


@pytest.mark.parametrize("snippet, where, message", [
    ("      - {match: {host_group: X}, set: {site: nowhere}}\n", "sources.zabbix.rules[0].set.site", "no site 'nowhere'"),
    ("      - {match: {host_group: X}, set: {unit: nobody}}\n", "sources.zabbix.rules[0].set.unit", "no unit 'nobody'"),
    ("      - {match: {host_group: X}, set: {fault: Power}}\n", "sources.zabbix.rules[0].set.fault", "fault name"),
    ("      - {match: {value: x}, set: {site: u1a}}\n", "sources.zabbix.rules[0].match", "host_group, tag or both"),
])
def test_a_bad_mapping_is_a_config_error_naming_file_line_and_key(tmp_path, redis_url, snippet, where, message):
    with pytest.raises(ConfigError) as err:
        config_file(tmp_path, redis_url, extra="sources:\n  zabbix:\n    rules:\n" + snippet)
    [issue] = err.value.issues
    assert issue.path == where and message in issue.message
    text = (tmp_path / "hall.yml").read_text().splitlines()
    assert issue.file.endswith("hall.yml") and text[issue.line - 1] == snippet.rstrip("\n")


def test_the_media_type_embeds_the_shipped_javascript_and_names_every_parameter_it_reads():
    doc = yaml.safe_load((ROOT / "deploy/zabbix/hallmon_mediatype.yaml").read_text())
    [mt] = doc["zabbix_export"]["media_types"]
    js = (ROOT / "deploy/zabbix/hallmon.js").read_text()
    assert doc["zabbix_export"]["version"] == "6.0" and mt["type"] == "WEBHOOK"
    assert mt["script"] == js
    import re

    read = set(re.findall(r"\bp\.([a-z_]+)", js))
    assert read == {p["name"] for p in mt["parameters"]}


@settings(max_examples=300, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
                        st.sampled_from(["version", "kind", "event", "id", "severity", "tags", "host", "groups",
                                         "update", "recovery", "time", "name", "tag", "value", "instance"]),
                        inner, max_size=6), max_leaves=30))
def test_the_parser_answers_any_json_with_an_event_or_invalid(body):
    try:
        parse_event(body)
    except Invalid:
        pass


def test_the_documented_mapping_validates(tmp_path, redis_url):
    import re

    doc = (ROOT / "docs/estate.md").read_text()
    block = re.search(r"```yaml\n(sources:.*?)```", doc, re.S).group(1)
    block = block.replace("futian-hall", "u1a").replace("huanggang-port", "u2a")
    cfg = config_file(tmp_path, redis_url, extra=block)
    assert cfg.sources.zabbix.keep_events == 90 * 86400 and len(cfg.sources.zabbix.rules) == 4
