"""A request cap (issue 12): one request with 3,000 distinct ``system`` labels opens at
most ``api.max_new_incidents_per_request`` incidents; one incident of category
``storm`` holds the rest, lists their alerts and says so on its timeline. Under every
built-in plan. A bad cap is a config error naming file and line."""
from __future__ import annotations

from pathlib import Path

import pytest

from monitor.config.model import load_config
from monitor.core.errors import ConfigError
from tests.routerkit import alert, auth, make_app

PLANS = sorted(p.stem for p in (Path(__file__).parent.parent / "monitor/plans/builtin").glob("*.yml"))


pytestmark = pytest.mark.usefixtures("tokens")  # the config's token secrets (tests.routerkit.TOKENS)


def with_cap(cap: int | None):
    """The cap given (or the default), and a wait for placing long enough for a slow machine."""
    line = f"  max_new_incidents_per_request: {cap}\n" if cap is not None else ""
    return lambda text: text.replace("  link_secret_env: HALLMON_T_LINK\n",
                                     f"  link_secret_env: HALLMON_T_LINK\n{line}  alert_wait: 60s\n")


def many_systems(n: int, site: str = "u1a", unit: str = "u1") -> list[dict]:
    return [alert("custom.fault", site, unit, target=f"dev-{i}", system=f"sys-{i:04d}") for i in range(n)]


@pytest.mark.parametrize("plan", PLANS)
async def test_3000_systems_in_one_request_open_the_cap_and_one_storm_incident(aiohttp_client, tmp_path, redis_url,
                                                                                 plan):
    client = await aiohttp_client(make_app(tmp_path, redis_url, plan=plan, units_edit=with_cap(None)))
    resp = await client.post("/api/v1/alerts", json=many_systems(3000), headers=auth())
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["accepted"] == 3000 and len(body["incidents"]) == 51  # the default cap, and the storm
    listed = (await (await client.get("/api/v1/incidents?limit=1000", headers=auth())).json())["incidents"]
    assert len(listed) == 51
    [storm] = [i for i in listed if i["category"] == "storm"]
    assert storm["plan"] == plan and storm["alerts_total"] == 2950
    doc = await (await client.get(f"/api/v1/incidents/{storm['id']}", headers=auth())).json()
    assert len(doc["alerts"]) == 2950
    assert {a["labels"]["system"] for a in doc["alerts"]} == {f"sys-{i:04d}" for i in range(50, 3000)}
    [held] = [e for e in doc["timeline"] if e["action"] == "storm_held"]
    assert held["detail"]["cap"] == 50 and held["detail"]["groups"] == 2950
    assert held["detail"]["held"][0] == "other|sys-0050"
    # a later request for a held system that has no incident of its own yet opens one: the cap is per request
    resp = await client.post("/api/v1/alerts", json=[alert("custom.fault", "u1a", "u1", target="late",
                                                           system="sys-2999")], headers=auth())
    assert len((await resp.json())["incidents"]) == 1


async def test_groups_already_open_do_not_count_against_the_cap(aiohttp_client, tmp_path, redis_url):
    client = await aiohttp_client(make_app(tmp_path, redis_url, units_edit=with_cap(3)))
    first = await (await client.post("/api/v1/alerts", json=many_systems(3), headers=auth())).json()
    assert len(first["incidents"]) == 3
    again = many_systems(3) + [alert("custom.fault", "u1a", "u1", target="x", system="new-1")]
    second = await (await client.post("/api/v1/alerts", json=again, headers=auth())).json()
    assert sorted(second["incidents"])[:3] == sorted(first["incidents"]) and len(second["incidents"]) == 4
    listed = (await (await client.get("/api/v1/incidents", headers=auth())).json())["incidents"]
    assert "storm" not in {i["category"] for i in listed}
    # sys-0000..0002 are open (groups are category and system), 7 new: 3 open, 4 go to the storm
    many = await (await client.post("/api/v1/alerts", json=many_systems(10, "u2a", "u2"), headers=auth())).json()
    assert len(many["incidents"]) == 3 + 3 + 1
    listed = (await (await client.get("/api/v1/incidents", headers=auth())).json())["incidents"]
    [storm] = [i for i in listed if i["category"] == "storm"]
    assert storm["alerts_total"] == 4 and len(listed) == 3 + 1 + 3 + 1


@pytest.mark.parametrize("value", ["0", "-1", "lots"])
def test_a_bad_cap_is_a_config_error_naming_file_and_line(tmp_path, redis_url, value):
    path = tmp_path / "hall.yml"
    make_app(tmp_path, redis_url)  # writes hall.yml
    path.write_text(with_cap(0)(path.read_text()).replace("max_new_incidents_per_request: 0",
                                                          f"max_new_incidents_per_request: {value}"))
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    assert f"{path}:5: api.max_new_incidents_per_request" in str(exc.value)
