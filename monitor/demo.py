"""``hallmon demo``: a simulated hall and port on loopback, the whole chain running,
and a scripted fault scenario narrated in the terminal. Needs only the package and a
``redis-server`` binary."""
from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import textwrap

from simulators.core import CoreSystem
from simulators.redisproc import RedisServer, free_port


def demo_config(redis_url: str, listen: str, core_url: str, tcp_port: int) -> str:
    return textwrap.dedent(f"""\
        # written by hallmon demo: a simulated hall and port, all on loopback
        service: {{listen: "{listen}", redis_url: "{redis_url}", timezone: Asia/Shanghai}}
        plan: default
        organisation:
          name: 演示海关 (demo)
          units:
            - id: demo-hall-unit
              name: 演示隶属海关
              sites:
                - id: demo-hall
                  name: 演示通关大厅
                  uplinks: [demo-hall-uplink]
                  targets:
                    - {{name: demo-hall-uplink, kind: net.tcp, address: "127.0.0.1:{tcp_port}", interval: 1s, timeout: 1s}}
                    - {{name: demo-h2000, kind: system.http, url: "{core_url}", interval: 1s, timeout: 1s, slow_after: 500ms}}
            - id: demo-port-unit
              name: 演示口岸海关
              sites:
                - id: demo-port
                  name: 演示口岸查验现场
                  targets:
                    - {{name: demo-port-gateway, kind: net.tcp, address: "127.0.0.1:{tcp_port}", interval: 1s, timeout: 1s}}
        """)


def say(text: str) -> None:
    print(f"\n\033[1m[demo] {text}\033[0m", flush=True)


async def scenario(core: CoreSystem, base: str, duration: float | None) -> None:
    import aiohttp

    async def show_targets(session: aiohttp.ClientSession) -> None:
        async with session.get(f"{base}/api/v1/targets") as resp:
            for t in (await resp.json())["targets"]:
                r = t["last_reading"] or {}
                active = [f for f, s in t["faults"].items() if s["active"]]
                print(f"    {t['site']:<12} {t['name']:<20} ok={r.get('ok')} faults={active or '-'}")

    async with aiohttp.ClientSession() as session:
        say(f"hallmon is serving {base}/metrics and {base}/api/v1/targets")
        await asyncio.sleep(2.5)
        await show_targets(session)
        say("scenario: the core business system (H2000) at the hall starts answering 503")
        core.mode = "error"
        await asyncio.sleep(2.5)
        await show_targets(session)
        say("scenario: H2000 recovers")
        core.mode = "ok"
        await asyncio.sleep(2.5)
        await show_targets(session)
        if duration is None:
            say("scenario done; still serving. Ctrl-C to stop.")
            await asyncio.Event().wait()
        await asyncio.sleep(max(0.0, duration - 7.5))


async def run_demo(duration: float | None) -> None:
    from .cli import serve

    with RedisServer(appendonly=False) as redis:
        core = await CoreSystem().start()
        listener = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
        tcp_port = listener.sockets[0].getsockname()[1]
        listen = os.environ.get("HALLMON_DEMO_LISTEN", f"127.0.0.1:{free_port()}")
        with tempfile.TemporaryDirectory(prefix="hallmon-demo-") as tmp:
            path = os.path.join(tmp, "demo.yml")
            with open(path, "w", encoding="utf-8") as f:
                f.write(demo_config(redis.url, listen, core.url, tcp_port))
            started: asyncio.Future[str] = asyncio.get_running_loop().create_future()
            server = asyncio.create_task(serve(path, "0/1", ready=started.set_result))
            try:
                base = await started
                await scenario(core, base, duration)
            finally:
                server.cancel()
                await asyncio.gather(server, return_exceptions=True)
                listener.close()
                await core.stop()


def cmd_demo(args: argparse.Namespace) -> int:
    try:
        asyncio.run(run_demo(args.duration))
    except KeyboardInterrupt:
        pass
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="a simulated hall and port with a scripted fault scenario")
    p.add_argument("--duration", type=float, default=None,
                   help="stop after this many seconds (default: keep serving)")
    p.set_defaults(func=cmd_demo)
