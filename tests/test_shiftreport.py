"""The shift hand-off report: from a running service (API and CLI), and sent to the
outgoing and incoming duty chiefs at hand-off, once each."""
import asyncio
import json
import os
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

import pytest
import redis.asyncio as aioredis

from monitor.core.clock import SYSTEM
from monitor.paging.handoff import Handoffs, build
from monitor.paging.outbox import Marks, Outbox
from monitor.paging.rosters import Rosters
from monitor.service import keys
from tests.conftest import ROOT
from tests.pagingkit import START, Harness, config, paging_yaml
from tests.robots import Robots
from tests.routerkit import TOKENS, alert, auth, make_app


@pytest.fixture(autouse=True)
def env(monkeypatch):
    for k, v in TOKENS.items():
        monkeypatch.setenv(k, v)


async def test_shift_report_lists_devices_the_shifts_incidents_and_what_is_inherited(aiohttp_client, tmp_path,
                                                                                      redis_url):
    robots = await Robots().start()
    try:
        app = make_app(tmp_path, redis_url, extra=paging_yaml(robots.base, wait="1h"))
        client = await aiohttp_client(app)
        resp = await client.post("/api/v1/alerts", json=[alert("pos.link_down", "u2a", "u2")], headers=auth())
        inc_id = (await resp.json())["incidents"][0]
        await client.post(f"/api/v1/incidents/{inc_id}/ack", json={"by": "测试值班长甲"}, headers=auth())
        report = await (await client.get("/api/v1/shift-report?roster=hall-duty", headers=auth())).json()
        assert report["incoming"]["id"] in ("duty-a", "duty-b") and report["outgoing"]["id"] != report["incoming"]["id"]
        assert [i["id"] for i in report["during"]] == [inc_id] and report["during"][0]["acknowledged"]["by"] == "测试值班长甲"
        assert [i["id"] for i in report["inherit"]] == [inc_id]
        assert {c["clock"] for c in report["clocks_due"]} == {"phone-report", "written-report"}
        text = await (await client.get("/api/v1/shift-report?roster=hall-duty&format=text", headers=auth())).text()
        assert text.startswith("交接班报告 — hall-duty") and "移交下一班" in text and inc_id in text
        assert f"{inc_id} 二级 POS 支付 u2a 已确认 确认 测试值班长甲" in text  # what a duty chief reads, in Chinese
        assert "待报" in text and "未到期" in text and "T" not in text.split("班次：")[1].split("\n")[0]
        en = await (await client.get("/api/v1/shift-report?format=text&lang=en", headers=auth())).text()
        assert "The next shift inherits" in en and f"{inc_id} L2 POS payment u2a acknowledged" in en
        assert (await client.get("/api/v1/shift-report?roster=nope", headers=auth())).status == 400
        # at the hand-off both chiefs get it, once, however often it is triggered
        rt = app[keys.RUNTIME]
        r = aioredis.from_url(redis_url, decode_responses=True)
        handoffs = Handoffs(r, lambda: rt.config, lambda: Rosters(rt.config.paging), Outbox(r, SYSTEM, 30.0),
                            Marks(r, SYSTEM, 30.0), SYSTEM)
        handoff = datetime.fromisoformat(report["shift_end"])
        assert await handoffs.send("hall-duty", handoff, report) == 2
        assert await handoffs.send("hall-duty", handoff, report) == 0  # queued already
        for _ in range(100):  # the service's pager sends what was queued
            if len([p for p in robots.received["webhook"] if p["kind"] == "shift"]) == 2:
                break
            await asyncio.sleep(0.05)
        assert await handoffs.send("hall-duty", handoff, report) == 0  # sent already
        await r.aclose()
        shift = [p for p in robots.received["webhook"] if p["kind"] == "shift"]
        assert {p["recipient"]["id"] for p in shift} == {report["outgoing"]["id"], report["incoming"]["id"]}
        assert "设备状态" in shift[0]["text"]
    finally:
        await robots.stop()


def test_shift_report_command(tmp_path, redis_url, service):
    from tests.routerkit import org_config

    cfg = tmp_path / "hall.yml"
    cfg.write_text(org_config(redis_url, extra=paging_yaml("http://127.0.0.1:9", wait="1h")), encoding="utf-8")
    svc = service(cfg, env=TOKENS)
    env = {"HALLMON_URL": svc.base, "HALLMON_TOKEN": TOKENS["HALLMON_T_READ"]}
    res = subprocess.run([sys.executable, "-m", "monitor.cli", "shift-report", "--roster", "hall-duty"],
                         capture_output=True, text=True, cwd=ROOT, env={**os.environ, **env})
    assert res.returncode == 0, res.stderr
    assert "交接班报告" in res.stdout and "接班值班长" in res.stdout
    res = subprocess.run([sys.executable, "-m", "monitor.cli", "shift-report", "--json", "--at",
                          (datetime.now(timezone.utc) + timedelta(days=1)).isoformat()],
                         capture_output=True, text=True, cwd=ROOT, env={**os.environ, **env})
    assert json.loads(res.stdout)["roster"] == "hall-duty"



async def test_a_hand_off_missed_while_every_replica_was_down_is_sent_on_start_once(aiohttp_client, tmp_path, redis_url):
    robots = await Robots().start()
    try:
        hourly = paging_yaml(robots.base, wait="1h").replace(
            'rotation: {every: 1d, handoff: "08:30"', 'rotation: {every: 1h, handoff: "08:30"')
        r = aioredis.from_url(redis_url)
        await r.set("hallmon:paging:handoffs-alive", time.time() - 7200)  # the last replica died 2 h ago
        await r.aclose()
        await aiohttp_client(make_app(tmp_path, redis_url, extra=hourly))  # the last hand-off was < 1 h ago
        for _ in range(100):
            if len(robots.received["webhook"]) >= 2:
                break
            await asyncio.sleep(0.05)
        shift = [p for p in robots.received["webhook"] if p["kind"] == "shift"]
        assert sorted(p["recipient"]["id"] for p in shift) == ["duty-a", "duty-b"]  # outgoing and incoming
        (tmp_path / "again").mkdir()
        await aiohttp_client(make_app(tmp_path / "again", redis_url, extra=hourly))  # a restart, or a replica
        await asyncio.sleep(1.0)
        assert len(robots.received["webhook"]) == 2
    finally:
        await robots.stop()


async def test_no_catch_up_when_a_replica_was_watching_or_on_first_start(aiohttp_client, tmp_path, redis_url):
    robots = await Robots().start()
    try:
        hourly = paging_yaml(robots.base, wait="1h").replace(
            'rotation: {every: 1d, handoff: "08:30"', 'rotation: {every: 1h, handoff: "08:30"')
        await aiohttp_client(make_app(tmp_path, redis_url, extra=hourly))  # nothing known: a first start
        await asyncio.sleep(0.5)
        r = aioredis.from_url(redis_url)
        assert float(await r.get("hallmon:paging:handoffs-alive")) > time.time() - 5  # watching now
        await r.aclose()
        (tmp_path / "again").mkdir()
        await aiohttp_client(make_app(tmp_path / "again", redis_url, extra=hourly))
        await asyncio.sleep(0.5)
        assert robots.received["webhook"] == []
    finally:
        await robots.stop()


async def test_the_report_goes_out_at_the_hand_off_on_an_injected_clock(redis_url):
    robots = await Robots().start()
    hourly = paging_yaml(robots.base, wait="1h").replace(
        'rotation: {every: 1d, handoff: "08:30"', 'rotation: {every: 1h, handoff: "08:30"')
    asked: list[datetime] = []

    async def report_for(roster_id: str, at: datetime) -> dict:
        asked.append(at)
        return build(h.pager.rosters(), roster_id, at, [], [])
    try:
        async with Harness(redis_url, config(redis_url, hourly), report_for=report_for) as h:
            # START is 10:00 in Shanghai: the next hand-off is at 10:30
            for _ in range(29):
                await h.clock.advance(60)
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.2)
            assert asked == [] and robots.received["webhook"] == []
            await h.until(lambda: len(robots.received["webhook"]) == 2, advance=30)
            assert [a.astimezone(timezone.utc) for a in asked] == [START + timedelta(minutes=30, seconds=1)]
            shift = robots.received["webhook"]
            assert {p["kind"] for p in shift} == {"shift"}
            assert sorted(p["recipient"]["id"] for p in shift) == ["duty-a", "duty-b"]  # outgoing and incoming
            assert "交接班报告" in shift[0]["text"] or "Shift hand-off" in shift[0]["text"]
    finally:
        await robots.stop()
