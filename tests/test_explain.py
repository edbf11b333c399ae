"""``hallmon plan explain`` calls the router's own pure functions (one grouping, one
uplink folding, one calendar): for the same alerts and config it shows the incidents a
live router opens, with the same levels, decisions and clocks."""
import asyncio
import json
import os
import subprocess
import sys
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from monitor.core.workdays import WorkCalendar
from tests.conftest import ROOT
from tests.routerkit import TOKENS, alert, auth, make_app

TZ = ZoneInfo("Asia/Shanghai")
# u1a reaches the world through its uplink target (system "wan"); `for: 1h` keeps the
# in-process scheduler's own probe of it from raising a fault during the test
UPLINK = ('        - {id: u1a, name: 测试一关甲厅, uplinks: [uplink], targets: [{name: uplink, '
          'kind: net.tcp, address: "127.0.0.1:9", system: wan, for: 1h}]}\n')


pytestmark = pytest.mark.usefixtures("tokens")  # the config's token secrets (tests.routerkit.TOKENS)


def with_uplink(text: str) -> str:
    assert "        - {id: u1a, name: 测试一关甲厅}\n" in text
    return text.replace("        - {id: u1a, name: 测试一关甲厅}\n", UPLINK)


async def explain(tmp_path, alerts: list[dict], *args: str) -> list[dict]:
    """The command in its own process (off the event loop the in-process app runs on)."""
    path = tmp_path / "alerts.json"
    path.write_text(json.dumps(alerts), encoding="utf-8")
    cmd = [sys.executable, "-m", "monitor.cli", "plan", "explain", "-c", str(tmp_path / "hall.yml"),
           "--alerts", str(path), "--json", *args]
    res = await asyncio.to_thread(subprocess.run, cmd, capture_output=True, text=True, cwd=ROOT,
                                  env={**os.environ, **TOKENS}, timeout=60)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def comparable(inc: dict) -> dict:
    facts = {k: v for k, v in inc["decision"]["facts"].items() if k != "lasting_seconds"}
    return {"category": inc["category"], "system": inc["system"], "sites": inc["sites"], "units": inc["units"],
            "faults": inc["faults"], "level": inc["level"], "rule": inc["decision"]["rule"], "facts": facts,
            "detected_at": datetime.fromisoformat(inc["detected_at"]),
            "clocks": {c["id"]: (datetime.fromisoformat(c["due_at"]), c["status"], c["estimated"])
                       for c in inc["clocks"]}}


async def live(client, alerts: list[dict]) -> list[dict]:
    resp = await client.post("/api/v1/alerts", json=alerts, headers=auth())
    assert resp.status == 200, await resp.text()
    out = []
    for inc_id in (await resp.json())["incidents"]:
        out.append(await (await client.get(f"/api/v1/incidents/{inc_id}", headers=auth())).json())
    return out


async def test_explain_folds_a_sites_faults_under_its_uplink_as_the_router_does(aiohttp_client, tmp_path, redis_url):
    client = await aiohttp_client(make_app(tmp_path, redis_url, units_edit=with_uplink))
    t0 = datetime.now(TZ).replace(microsecond=0) - timedelta(minutes=5)
    alerts = [alert("network.down", "u1a", "u1", starts=t0, target="uplink", system="wan")]
    alerts += [alert(f, "u1a", "u1", starts=t0 + timedelta(seconds=20), target=t, cause="network.down")
               for f, t in (("system.down", "h2000"), ("pos.link_down", "pos1"), ("queue.down", "q1"))]
    alerts += [alert("system.down", "u3a", "u3", starts=t0), alert("system.down", "hqa", "hq", starts=t0)]
    routed = sorted(map(comparable, await live(client, alerts)), key=lambda i: i["category"])
    explained = sorted(map(comparable, await explain(tmp_path, alerts)), key=lambda i: i["category"])
    assert explained == routed
    uplink = next(i for i in explained if i["category"] == "network")
    assert uplink["system"] == "wan" and uplink["faults"] == ["network.down", "pos.link_down", "queue.down",
                                                              "system.down"]
    assert [(i["category"], i["level"]) for i in explained] == [("core_system", 1), ("network", 3)]


async def test_explain_counts_the_configs_holidays_as_the_router_does(aiohttp_client, tmp_path, redis_url):
    now = datetime.now(TZ).replace(microsecond=0)
    day = now.date() + timedelta(days=1)
    while not WorkCalendar().is_workday(day)[0]:
        day += timedelta(days=1)
    client = await aiohttp_client(make_app(tmp_path, redis_url, plan="xiamen-tax",
                                           extra=f"calendar:\n  holidays: [{day}]\n"))
    alerts = [alert("pos.link_down", "u2a", "u2", starts=now - timedelta(hours=2))]
    [opened] = await live(client, alerts)
    resolved = now - timedelta(minutes=30)
    resp = await client.post(f"/api/v1/incidents/{opened['id']}/resolve",
                             json={"by": "测试值班长甲", "result": "已恢复", "at": resolved.isoformat()}, headers=auth())
    routed = comparable(await resp.json())
    [explained] = await explain(tmp_path, alerts, "--resolved-at", resolved.isoformat())
    assert comparable(explained)["clocks"] == routed["clocks"]
    written = routed["clocks"]["result-written"][0]
    assert written == WorkCalendar(holidays=frozenset({day})).add_working_days(resolved, 2)[0]
    assert written > WorkCalendar().add_working_days(resolved, 2)[0]  # the holiday moved it
