"""A token limited to units (the port agency's: unit u2) can neither write nor read
another unit's sites: its alerts for them are refused whole (403, nothing stored) even
when the alert's own `unit` label lies, it cannot open incidents there, and every read
(incidents, one incident, its report draft, the shift report, the targets) is
filtered. `units: []` is a config error: only a token without `units` sees every unit."""
from __future__ import annotations

import pytest

from monitor.config.model import load_config
from monitor.core.errors import ConfigError
from tests.pagingkit import paging_yaml
from tests.routerkit import alert, auth, make_app, org_config

PORT = "HALLMON_T_PORT"


pytestmark = pytest.mark.usefixtures("tokens")  # the config's token secrets (tests.routerkit.TOKENS)


def with_targets(text: str) -> str:
    """A device at u1a and one at u2a (checked hourly: only their presence matters)."""
    for site in ("u1a", "u2a"):
        text = text.replace(f"{{id: {site}, name:", f"{{id: {site}, targets: [{{name: {site}-gw, kind: net.tcp, "
                                                   f"address: \"127.0.0.1:9\", interval: 1h}}], name:")
    return text


@pytest.fixture
async def client(aiohttp_client, tmp_path, redis_url):
    return await aiohttp_client(make_app(tmp_path, redis_url, extra=paging_yaml("http://127.0.0.1:9"),
                                         units_edit=with_targets))


async def incident_ids(client, env: str = "HALLMON_T_ADMIN") -> list[str]:
    resp = await client.get("/api/v1/incidents", headers=auth(env))
    return sorted(i["id"] for i in (await resp.json())["incidents"])


@pytest.mark.parametrize("route", ["/api/v1/alerts", "/api/v1/alerts/alertmanager"])
@pytest.mark.parametrize("labels", [
    {"site": "u1a", "unit": "u1"},  # another unit's site
    {"site": "u1a", "unit": "u2"},  # another unit's site, the label lying about its unit
    {"site": "nowhere", "unit": "u1"},  # an unknown site of another unit
    {"site": None, "unit": None},  # no site, no unit: cannot be placed in the token's units
])
async def test_alerts_for_other_units_are_refused_whole(client, route, labels):
    foreign = alert("system.down", "u1a", "u1")
    for k, v in labels.items():
        if v is None:
            del foreign["labels"][k]
        else:
            foreign["labels"][k] = v
    own = alert("pos.link_down", "u2a", "u2")
    body = [own, foreign] if route == "/api/v1/alerts" else {
        "version": "4", "status": "firing", "alerts": [{**own, "status": "firing"}, {**foreign, "status": "firing"}]}
    resp = await client.post(route, json=body, headers=auth(PORT))
    assert resp.status == 403 and (await resp.json())["error"] == "forbidden"
    assert await incident_ids(client) == []  # not even its own alert of that request was stored
    resp = await client.post(route, json=[own] if route == "/api/v1/alerts" else {**body, "alerts": [body["alerts"][0]]},
                             headers=auth(PORT))
    assert resp.status == (200 if route == "/api/v1/alerts" else 202)  # the webhook: stored, placed soon after


async def test_cannot_open_an_incident_at_another_units_site(client):
    manual = {"category": "fire", "by": "测试值班长乙", "summary": "测试火情"}
    resp = await client.post("/api/v1/incidents", json={**manual, "site": "u1a"}, headers=auth(PORT))
    assert resp.status == 403
    assert await incident_ids(client) == []
    resp = await client.post("/api/v1/incidents", json={**manual, "site": "u2a"}, headers=auth(PORT))
    assert resp.status == 201


async def test_every_read_is_filtered_to_the_tokens_units(client):
    own = (await (await client.post("/api/v1/alerts", json=[alert("pos.link_down", "u2a", "u2")],
                                    headers=auth(PORT))).json())["incidents"]
    other = (await (await client.post("/api/v1/alerts", json=[alert("queue.down", "u1a", "u1")],
                                      headers=auth())).json())["incidents"]
    assert await incident_ids(client, PORT) == own
    assert sorted(await incident_ids(client)) == sorted(own + other)
    for path in (f"/api/v1/incidents/{other[0]}", f"/api/v1/incidents/{other[0]}/report?kind=phone",
                 f"/api/v1/incidents/{other[0]}/report?kind=written&lang=en"):
        resp = await client.get(path, headers=auth(PORT))
        assert resp.status == 403, path
    assert (await client.get(f"/api/v1/incidents/{own[0]}/report", headers=auth(PORT))).status == 200
    # the shift report: its units' devices and incidents only
    report = await (await client.get("/api/v1/shift-report", headers=auth(PORT))).json()
    text = str(report)
    assert "u2a-gw" in text and "u1a-gw" not in text
    assert own[0] in text and other[0] not in text
    everything = str(await (await client.get("/api/v1/shift-report", headers=auth())).json())
    assert "u1a-gw" in everything and other[0] in everything
    # the targets
    targets = (await (await client.get("/api/v1/targets", headers=auth(PORT))).json())["targets"]
    assert [t["name"] for t in targets] == ["u2a-gw"]
    assert (await client.get("/api/v1/targets?target=u1a-gw", headers=auth(PORT))).status == 404
    assert len((await (await client.get("/api/v1/targets", headers=auth())).json())["targets"]) == 2
    # with tokens configured, the targets need one
    assert (await client.get("/api/v1/targets")).status == 401


def test_a_token_with_an_empty_unit_list_is_a_config_error(tmp_path, redis_url):
    path = tmp_path / "h.yml"
    path.write_text(org_config(redis_url).replace("units: [u2]", "units: []"), encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    [issue] = err.value.issues
    assert issue.path == "api.tokens[1].units" and "leave units out" in issue.message and issue.line
    path.write_text(org_config(redis_url).replace(", units: [u2]", ""), encoding="utf-8")
    assert all(t.units is None for t in load_config(path).api.tokens)  # no units: every unit


def test_unknown_units_on_a_token_are_named(tmp_path, redis_url):
    path = tmp_path / "h.yml"
    path.write_text(org_config(redis_url).replace("units: [u2]", "units: [u2, u9]"), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"api.tokens\[1\].units\[1\]: no unit 'u9'"):
        load_config(path)
