"""dashboards/: the committed JSON is what dashboards/build.py builds, every panel is
complete (zh title, English description, unit, unit/site variables), and every panel's
query parses and returns data from a real Prometheus scraping a real ``hallmon run``
that watches the simulated hall and port."""
from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import trustme
import yaml

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "dashboards" / "build.py"
JSON_DIR = ROOT / "dashboards" / "json"


def dashboards() -> list[dict]:
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(JSON_DIR.glob("*.json"))]


def panel_queries() -> list[tuple[str, str, str]]:
    """(dashboard, panel, expr) with template variables as the "All" choice puts them."""
    out = []
    for d in dashboards():
        for p in d["panels"]:
            for t in p["targets"]:
                out.append((d["title"], p["title"], t["expr"].replace("$unit", ".*").replace("$site", ".*")))
    return out


def test_committed_dashboards_are_what_build_py_builds():
    out = subprocess.run([sys.executable, str(BUILD), "--check"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_build_check_notices_a_hand_edit(tmp_path):
    assert subprocess.run([sys.executable, str(BUILD), "--dir", str(tmp_path)]).returncode == 0
    path = tmp_path / "hallmon-power.json"
    path.write_text(path.read_text(encoding="utf-8").replace('"percentunit"', '"percent"'), encoding="utf-8")
    out = subprocess.run([sys.executable, str(BUILD), "--dir", str(tmp_path), "--check"],
                         capture_output=True, text=True)
    assert out.returncode == 1 and "hallmon-power.json" in out.stderr


def test_every_panel_is_complete():
    titles = {d["title"] for d in dashboards()}
    assert len(titles) == 6
    for d in dashboards():
        names = [v["name"] for v in d["templating"]["list"]]
        assert {"datasource", "unit", "site"} <= set(names), d["title"]
        for p in d["panels"]:
            where = f"{d['title']} / {p['title']}"
            assert re.search(r"[\u4e00-\u9fff]", p["title"]), f"{where}: title in Chinese"
            assert p["description"] and p["description"].isascii(), f"{where}: description in English"
            assert p["fieldConfig"]["defaults"]["unit"], f"{where}: no unit"
            assert p["datasource"]["uid"] == "${datasource}"
            for t in p["targets"]:
                device = re.search(r"hallmon_(ups|queue|pos|probe|fault|tcp|http|tls|net|dns)_", t["expr"])
                if device and "by (level)" not in t["expr"]:
                    assert '$unit' in t["expr"] and '$site' in t["expr"], f"{where}: not filtered by unit/site"


def test_sites_link_to_their_incidents():
    overview = next(d for d in dashboards() if d["uid"] == "hallmon-overview")
    site_panel = next(p for p in overview["panels"] if p["title"] == "各现场状态")
    urls = [link["url"] for link in site_panel["fieldConfig"]["defaults"]["links"]]
    assert urls == ["${hallmon_url}/console/#/?site=${__field.labels.site}"]


def test_open_incidents_link_to_their_console_page():
    overview = next(d for d in dashboards() if d["uid"] == "hallmon-overview")
    links = [link["url"] for p in overview["panels"] for link in p["fieldConfig"]["defaults"].get("links", [])]
    assert "${hallmon_url}/console/#/incident/${__field.labels.incident}" in links
    assert not any("/api/v1/" in url for url in links)  # a browser has no token for the API
    # every open incident is listed, not only those with a report pending (the clock table)
    listed = next(p for p in overview["panels"] if p["title"] == "未关闭的事件")
    assert "hallmon_incident_open_since_timestamp_seconds" in listed["targets"][0]["expr"]
    assert [link["url"] for link in listed["fieldConfig"]["defaults"]["links"]] == [
        "${hallmon_url}/console/#/incident/${__field.labels.incident}"]


def test_thresholds_where_they_mean_something():
    power = next(d for d in dashboards() if d["uid"] == "hallmon-power")
    runtime = next(p for p in power["panels"] if p["title"] == "剩余续航时间")
    steps = runtime["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert [s["value"] for s in steps] == [None, 600, 1800] and steps[0]["color"] == "red"
    assert runtime["fieldConfig"]["defaults"]["unit"] == "s"


def test_provisioning_points_at_the_folder_compose_mounts():
    prov = yaml.safe_load((ROOT / "dashboards" / "provisioning" / "dashboards" / "hallmon.yml").read_text())
    compose = yaml.safe_load((ROOT / "deploy" / "docker-compose.yml").read_text())
    mounts = dict(v.split(":")[:2] for v in compose["services"]["grafana"]["volumes"])
    assert mounts["../dashboards/json"] == prov["providers"][0]["options"]["path"]
    ds = yaml.safe_load((ROOT / "dashboards" / "provisioning" / "datasources" / "prometheus.yml").read_text())
    assert ds["datasources"][0]["uid"] == "prometheus" and ds["datasources"][0]["url"] == "http://prometheus:9090"


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("prometheus") is None, reason="prometheus not installed")
async def test_every_panel_query_returns_data_from_a_real_prometheus(tmp_path, redis_url):
    from tests.promkit import Hall
    from tests.test_probe_net import DnsServer, tls_server

    queries = panel_queries()
    # the port also has an ICMP-checked gateway, a DNS server and an https system
    dns_transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
        lambda: DnsServer({"hall-h2000.example.invalid.": ["192.0.2.8"]}), local_addr=("127.0.0.1", 0))
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    tls_runner, tls_url = await tls_server(ca, datetime.now(timezone.utc) + timedelta(days=90))
    extra = ('{name: demo-port-gateway, kind: net.icmp, address: 127.0.0.1, interval: 1s, timeout: 1s, '
             'spacing: 10ms}',
             f'{{name: demo-port-dns, kind: net.dns, address: "127.0.0.1:{dns_transport.get_extra_info("sockname")[1]}", '
             'query: hall-h2000.example.invalid, interval: 1s, timeout: 1s}',
             f'{{name: demo-port-portal, kind: system.http, url: "{tls_url}", ca_file: "{tmp_path / "ca.pem"}", '
             'interval: 1s, timeout: 1s}')
    try:
        await panels_have_data(queries, Hall(redis_url, tmp_path, extra))
    finally:
        dns_transport.close()
        await tls_runner.cleanup()


async def panels_have_data(queries: list[tuple[str, str, str]], watched) -> None:
    from tests.promkit import PrometheusServer

    async with watched as hall:
        # mains lost: on battery, an incident with pending report clocks, a page; the queue moves
        hall.devices.nut.set("hall-ups", ups_status="OB DISCHRG", battery_charge="64", battery_runtime="1100",
                             input_voltage="0")
        hall.devices.queue.arrive(5)
        prom = await asyncio.to_thread(PrometheusServer, [hall.address])
        try:
            deadline = time.monotonic() + 25
            while True:
                failed: list[tuple[str, str, str]] = []
                for key in queries:
                    answer = await asyncio.to_thread(prom.query, key[2])
                    if answer["status"] != "success":
                        pytest.fail(f"{key[0]} / {key[1]}: Prometheus rejects {key[2]!r}: {answer.get('error')}")
                    if not answer["data"]["result"]:
                        failed.append(key)
                if not failed or time.monotonic() > deadline:
                    break
                hall.devices.queue.arrive(1)
                await asyncio.sleep(1)
        finally:
            await asyncio.to_thread(prom.stop)
    assert not failed, "panels whose query returns no series:\n" + "\n".join(
        f"  {d} / {p}: {e}" for (d, p, e) in failed)
