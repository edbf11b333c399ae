"""A reload (SIGHUP) of a real ``hallmon run`` applies ``paging:`` to the pages not yet
sent: a channel added and a roster override added, the next page uses both (0.5
captured channels and rosters at start: a new channel raised KeyError in the pager, a
new override still paged the old person)."""
import asyncio
import signal
import time
from datetime import datetime, timedelta, timezone

import aiohttp
from aiohttp import web

from tests.pagingkit import paging_yaml
from tests.routerkit import TOKENS, alert, auth, org_config


async def receiver() -> tuple[web.AppRunner, str, list[dict]]:
    pages: list[dict] = []

    async def page(request: web.Request) -> web.Response:
        pages.append(await request.json())
        return web.json_response({"ok": True})
    app = web.Application()
    app.router.add_post("/page", page)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}", pages


async def until(pred, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def test_sighup_adds_a_channel_and_a_roster_override_and_the_next_page_uses_both(tmp_path, redis_url, service):
    ops_runner, ops_base, ops_pages = await receiver()
    night_runner, night_base, night_pages = await receiver()
    config = tmp_path / "hall.yml"
    before = org_config(redis_url, extra=paging_yaml(ops_base, wait="1h"))
    config.write_text(before, encoding="utf-8")
    try:
        svc = await asyncio.to_thread(service, config, env=TOKENS)
        async with aiohttp.ClientSession() as session:
            async def open_incident(fault: str, site: str, unit: str) -> str:
                async with session.post(f"{svc.base}/api/v1/alerts", headers=auth(), json=[
                        alert(fault, site, unit, starts=datetime.now(timezone.utc))]) as resp:
                    assert resp.status == 200, await resp.text()
                    return (await resp.json())["incidents"][0]
            first = await open_incident("pos.link_down", "u2a", "u2")
            await until(lambda: ops_pages)
            assert ops_pages[0]["incident"]["id"] == first and ops_pages[0]["recipient"]["id"] in ("duty-a", "duty-b")
            now = datetime.now(timezone.utc)
            after = before.replace(
                "  channels:\n", "    - {id: duty-c, name: 测试值班长丙, channels: [night-hook]}\n  channels:\n"
                f'    - {{id: night-hook, type: webhook, url: "{night_base}/page"}}\n'
            ).replace(
                "  policies:\n", f'      overrides:\n        - {{layer: duty_chief, person: duty-c, '
                f'from: "{(now - timedelta(hours=1)).isoformat()}", to: "{(now + timedelta(hours=1)).isoformat()}"}}\n'
                "  policies:\n")
            assert after.count("duty-c") == 2 and "night-hook" in after
            config.write_text(after, encoding="utf-8")
            svc.signal(signal.SIGHUP)
            await until(lambda: any(e.get("event") == "reload_applied" for e in svc.events()))
            second = await open_incident("queue.down", "u3a", "u3")
            await until(lambda: night_pages)
            page = night_pages[0]
            assert page["incident"]["id"] == second and page["recipient"] == {"id": "duty-c", "name": "测试值班长丙"}
            await asyncio.sleep(0.5)
            assert len(ops_pages) == 1  # the new incident's page went to the stand-in only
        errors = [e for e in svc.events() if e.get("level") == "error"]
        assert errors == []
    finally:
        await ops_runner.cleanup()
        await night_runner.cleanup()
