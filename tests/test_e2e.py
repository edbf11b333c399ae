"""The whole chain with the shipped configs: simulated UPS → hallmon probes → Prometheus
scrapes hallmon and evaluates alertrules/ → Alertmanager (deploy/alertmanager.yml, with
its bearer token file) → hallmon's webhook → the incident at the plan's level with its
clocks → a page at a local webhook receiver; and the same fault through hallmon's own
fast path, folded into the same incident."""
from __future__ import annotations

import asyncio
import shutil
import time

import aiohttp
import pytest

from tests.promkit import AlertmanagerServer, Hall, PrometheusServer

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("prometheus") is None or shutil.which("prometheus-alertmanager") is None,
                       reason="prometheus / prometheus-alertmanager not installed"),
]


async def get_incident(hall: Hall, incident_id: str) -> dict:
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {hall.token}"}) as s, \
            s.get(f"{hall.base}/api/v1/incidents/{incident_id}") as r:
        assert r.status == 200
        return await r.json()


async def test_ups_battery_running_out_reaches_one_incident_by_both_paths_and_pages(tmp_path, redis_url):
    async with Hall(redis_url, tmp_path) as hall:
        am = await asyncio.to_thread(AlertmanagerServer, hall.base, hall.token, group_wait="0s",
                                     group_interval="1s")
        prom = await asyncio.to_thread(PrometheusServer, [hall.address], "1s", am.address, "0s")
        try:
            # mains lost and the battery low: the probe sees OB LB (fast path: power.on_battery,
            # power.low_battery); the rule sees runtime < 10 min on battery (power.low_battery)
            hall.devices.nut.set("hall-ups", ups_status="OB LB DISCHRG", battery_charge="12",
                                 battery_runtime="180", input_voltage="0")
            deadline = time.monotonic() + 25
            doc: dict = {}
            while time.monotonic() < deadline:
                power = [i for i in await hall.incidents() if i["category"] == "power"]
                if power:
                    doc = await get_incident(hall, power[0]["id"])
                    if {a["source"] for a in doc["alerts"]} >= {"probe", "alertmanager"}:
                        break
                await asyncio.sleep(0.25)
            sources = sorted({a["source"] for a in doc.get("alerts", [])})
            assert sources == ["alertmanager", "probe"], f"alerts reached the incident from {sources}; " \
                f"Prometheus alerts: {await asyncio.to_thread(prom.query, 'ALERTS')}"
            incidents = [i for i in await hall.incidents() if i["category"] == "power"]
            assert len(incidents) == 1, "both paths must fold into one incident"

            from_am = [a for a in doc["alerts"] if a["source"] == "alertmanager"]
            assert {a["labels"]["alertname"] for a in from_am} == {"HallmonUpsBatteryRunningOut"}
            labels = from_am[0]["labels"]
            assert (labels["fault"], labels["site"], labels["unit"], labels["system"]) == \
                ("power.low_battery", "demo-hall", "demo-hall-unit", "power")
            assert "电池即将耗尽" in from_am[0]["annotations"]["summary"]
            assert "power.low_battery" in doc["faults"] and "power.on_battery" in doc["faults"]
            assert doc["sites"] == ["demo-hall"] and doc["status"] == "open"
            # one site of one unit out of five: the lowest level, with the plan's clocks running
            assert doc["level"] == 3 and doc["decision"]["rule"]
            assert doc["clocks"] and all(c["status"] == "pending" and c["due_at"] for c in doc["clocks"])

            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not any(
                    p["incident"]["id"] == doc["id"] for p in hall.inbox.pages):
                await asyncio.sleep(0.1)
            pages = [p for p in hall.inbox.pages if p["incident"]["id"] == doc["id"]]
            # step 1 of the policy: the duty chief of the day (the roster rotates daily)
            assert pages and pages[0]["kind"] == "page" and pages[0]["recipient"]["id"] in ("duty-a", "duty-b")
            assert len({p["incident"]["id"] for p in hall.inbox.pages if p["kind"] == "page"}) == 1
        finally:
            await asyncio.to_thread(prom.stop)
            await asyncio.to_thread(am.stop)
