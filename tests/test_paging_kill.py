"""Exactly once across a SIGKILL: ``hallmon run`` as a real process is killed while its
page is on the wire (after the send, before the mark); the restarted service takes the
unacknowledged event over, resends what is unmarked, once, and nothing else."""
import asyncio
import os
import signal
from datetime import datetime, timezone

import aiohttp
import redis
from aiohttp import web

from tests.pagingkit import paging_yaml
from tests.routerkit import TOKENS, alert, auth, org_config


async def test_sigkill_between_send_and_mark_resends_once(tmp_path, redis_url, service):
    pages: list[dict] = []
    victim: dict = {}

    async def page(request: web.Request) -> web.Response:
        pages.append(await request.json())
        if "proc" in victim:  # the first page: kill the sender before it can mark it sent
            proc = victim.pop("proc")
            os.kill(proc.pid, signal.SIGKILL)
            await asyncio.get_running_loop().run_in_executor(None, proc.wait)
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/page", page)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    extra = paging_yaml(base, wait="30s").replace("paging:\n", "paging:\n  resend_after: 2s\n")
    config = tmp_path / "hall.yml"
    config.write_text(org_config(redis_url, extra=extra))
    try:
        first = await asyncio.to_thread(service, config, env=TOKENS)
        victim["proc"] = first.proc
        async with aiohttp.ClientSession() as session:
            async with session.post(f"{first.base}/api/v1/alerts", headers=auth(), json=[
                    alert("pos.link_down", "u2a", "u2", starts=datetime.now(timezone.utc))]) as resp:
                assert resp.status == 200
                inc_id = (await resp.json())["incidents"][0]
        for _ in range(100):
            if first.proc.poll() is not None:
                break
            await asyncio.sleep(0.05)
        assert first.proc.returncode == -signal.SIGKILL and len(pages) == 1
        r = redis.Redis.from_url(redis_url, decode_responses=True)
        [key] = r.keys("hallmon:paging:sent:*")
        assert r.get(key).startswith("sending:")  # sent, never marked
        await asyncio.to_thread(service, config, env=TOKENS)
        for _ in range(200):
            if len(pages) >= 2:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(3.0)  # a second resend, or an early leader page, would show here
        assert [(p["incident"]["id"], p["step"], p["recipient"]["id"]) for p in pages] == \
            [(inc_id, 0, pages[0]["recipient"]["id"])] * 2
        assert r.get(key).startswith("sent:")
        assert r.xpending("hallmon:events", "paging")["pending"] == 0  # the event is acknowledged now
        r.close()
    finally:
        await runner.cleanup()
