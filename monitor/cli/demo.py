"""``hallmon demo``: a simulated hall and port on loopback, the whole chain running,
and a scripted fault scenario narrated in the terminal: what failed, which level and
why, which clocks started and when they are due, who was paged. Then it keeps serving
``/metrics`` and the API so a person can look. Needs only the package and a
``redis-server`` binary."""
from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import socket
import sys
import tempfile
import textwrap
from datetime import datetime, timedelta, timezone

import aiohttp
from aiohttp import web

from monitor.core.logs import configure_file
from monitor.service.serve import serve
from simulators.acquirer import Acquirer
from simulators.core import CoreSystem
from simulators.nutserver import NutServer
from simulators.queue import QueueSystem
from simulators.redisproc import RedisServer, free_port


def demo_config(redis_url: str, listen: str, hall_url: str, port_url: str, tcp_port: int, pager_url: str,
                nut: str, queue_url: str, acquirer: str) -> str:
    idle_units = "\n".join(f"    - {{id: demo-unit-{i}, name: 演示隶属海关{i}, sites: [{{id: demo-site-{i}, name: 演示现场{i}}}]}}"
                           for i in (3, 4))
    # a tax hall whose unit follows the Guizhou plan (levels by time span, too)
    idle_units += ("\n    - {id: demo-unit-5, name: 演示税务分局, plan: guizhou-tax, sites: [{id: demo-site-5, name: 演示办税服务厅}, "
                   "{id: demo-site-6, name: 演示第二办税服务厅}]}")  # one hall of two: not the whole unit
    return textwrap.dedent(f"""\
        # written by hallmon demo: a simulated hall and port, all on loopback; people are fictitious
        service: {{listen: "{listen}", redis_url: "{redis_url}", timezone: Asia/Shanghai}}
        plan: shenzhen-customs
        api:
          link_secret_env: HALLMON_DEMO_LINK_SECRET
          tokens:
            - {{name: demo, secret_env: HALLMON_DEMO_TOKEN, scopes: [alerts:write, incidents:read, incidents:write], person: duty-a}}
        organisation:
          name: 演示海关 (demo)
          units:
            - id: demo-hall-unit
              name: 演示一关
              sites:
                - id: demo-hall
                  name: 演示通关大厅
                  uplinks: [demo-hall-uplink]
                  targets:
                    - {{name: demo-hall-uplink, kind: net.tcp, address: "127.0.0.1:{tcp_port}", interval: 1s, timeout: 1s}}
                    - {{name: demo-hall-h2000, kind: system.http, url: "{hall_url}", interval: 1s, timeout: 1s}}
                    - {{name: demo-hall-ups, kind: ups.nut, address: "{nut}", ups: hall-ups, interval: 1s, timeout: 1s}}
                    - {{name: demo-hall-queue, kind: queue.http, url: "{queue_url}", interval: 1s, timeout: 1s}}
                  hours: {{open: "00:00", close: "23:59", working_days: false}}  # the demo hall never closes
                - {{id: demo-hall-annex, name: 演示一关业务二科}}
            - id: demo-port-unit
              name: 演示口岸海关
              sites:
                - id: demo-port
                  name: 演示口岸查验现场
                  targets:
                    - {{name: demo-port-h2000, kind: system.http, url: "{port_url}", interval: 1s, timeout: 1s}}
                    - {{name: demo-port-pos, kind: pos.iso8583, address: "{acquirer}", interval: 1s, timeout: 1s}}
                - {{id: demo-port-annex, name: 演示口岸业务科}}
        """).rstrip() + "\n" + idle_units + "\n" + textwrap.dedent(f"""\
        paging:
          people:
            - {{id: duty-a, name: 演示值班长甲, channels: [pager]}}
            - {{id: duty-b, name: 演示值班长乙, channels: [pager]}}
            - {{id: lead-a, name: 演示值班领导甲, channels: [pager]}}
          channels:
            - {{id: pager, type: webhook, url: "{pager_url}"}}
          rosters:
            - id: hall-duty
              layers:
                - {{id: duty_chief, members: [duty-a, duty-b], rotation: {{every: 1d, handoff: "08:30", start: 2026-11-02}}}}
                - {{id: duty_leader, members: [lead-a], rotation: {{every: 7d, handoff: "08:30", start: 2026-11-02}}}}
          policies:
            - id: default
              steps:
                - {{notify: {{roster: hall-duty, layer: duty_chief}}}}
                - {{wait: 8s}}
                - {{notify: {{roster: hall-duty, layer: duty_leader}}}}
        """)


DEFAULT_LISTEN = "127.0.0.1:9108"  # the contract's default


def say(text: str) -> None:
    bold, plain = ("\033[1m", "\033[0m") if sys.stdout.isatty() else ("", "")
    print(f"\n{bold}[demo] {text}{plain}", flush=True)


def listen_address() -> str:
    """127.0.0.1:9108 unless it is taken (then a free port, and the demo says so), or
    $HALLMON_DEMO_LISTEN."""
    if os.environ.get("HALLMON_DEMO_LISTEN"):
        return os.environ["HALLMON_DEMO_LISTEN"]
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", 9108))
            return DEFAULT_LISTEN
        except OSError:
            pass
    listen = f"127.0.0.1:{free_port()}"
    print(f"hallmon demo: {DEFAULT_LISTEN} is taken; serving on {listen} instead", flush=True)
    return listen


class PageInbox:
    """The duty officers' phones: a local webhook receiver that prints every page."""

    def __init__(self) -> None:
        self.pages: list[dict] = []
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/page", self.receive)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self.runner.addresses[0][1]}/page"

    async def receive(self, request: web.Request) -> web.Response:
        page = await request.json()
        self.pages.append(page)
        who = page["recipient"]["name"] if page.get("recipient") else "-"
        print(f"    📟 page to {who} (step {page['step'] + 1}, {page['kind']}): {page['title']}", flush=True)
        return web.json_response({"ok": True})

    async def stop(self) -> None:
        if self.runner:
            await self.runner.cleanup()


async def scenario(base: str, token: str, hall: CoreSystem, port: CoreSystem, inbox: PageInbox,
                   duration: float | None, devices: "Devices") -> None:
    headers = {"Authorization": f"Bearer {token}"}

    async with aiohttp.ClientSession(headers=headers) as s:
        async def incidents() -> list[dict]:
            async with s.get(f"{base}/api/v1/incidents") as r:
                return (await r.json())["incidents"]

        async def wait_incident(pred, timeout: float = 10.0) -> dict | None:
            for _ in range(int(timeout * 10)):
                for inc in await incidents():
                    if pred(inc):
                        return inc
                await asyncio.sleep(0.1)
            return None

        def show(inc: dict) -> None:
            d = inc["decision"]
            f = d.get("facts", {})
            print(f"    incident {inc['id']}: level {inc['level']} ({inc['level_name']}), {inc['category']}/{inc['system']}, "
                  f"sites {inc['sites']}")
            print(f"    why: rule {d['rule']} [{d['source']}] — {f.get('units_affected')}/{f.get('units_total')} units "
                  f"({f.get('units_share', 0):.0%}), whole units {f.get('units_whole')}")
            for c in inc["clocks"]:
                print(f"    clock {c['id']:<16} {c['title']:<22} due {c['due_at']}  [{c['source']}]  ({c['status']})")

        say(f"hallmon serves {base}/metrics and {base}/api/v1/targets; plan: shenzhen-customs; 5 units")
        await asyncio.sleep(2.5)
        say("mains lost at the clearance hall: the UPS takes over on battery")
        devices.nut.set("hall-ups", ups_status="OB DISCHRG", battery_charge="64", battery_runtime="1100",
                        input_voltage="0")
        inc = await wait_incident(lambda i: i["category"] == "power")
        if inc:
            show(inc)
        say("the battery runs low")
        devices.nut.set("hall-ups", ups_status="OB LB DISCHRG", battery_charge="12", battery_runtime="180")
        inc = await wait_incident(lambda i: "power.low_battery" in i.get("faults", []))
        if inc:
            print(f"    incident {inc['id']} now has faults {inc['faults']} (one incident, not two)")
        say("the POS link to the bank at the port is refused: the acquirer answers DE 39 = 91")
        devices.acquirer.mode = "decline"
        inc = await wait_incident(lambda i: i["category"] == "pos")
        if inc:
            show(inc)
        say("the hall's queue congests: 100 people waiting")
        devices.queue.arrive(97)
        inc = await wait_incident(lambda i: i["category"] == "congestion")
        if inc:
            show(inc)
        devices.nut.set("hall-ups", ups_status="OL CHRG", battery_charge="15", battery_runtime="300",
                        input_voltage="229")
        devices.acquirer.mode = "ok"
        devices.queue.waiting = 4
        say("fault 1: the H2000 core system at the clearance hall answers HTTP 503")
        hall.mode = "error"
        inc = await wait_incident(lambda i: i["category"] == "core_system")
        if inc:
            show(inc)
        await asyncio.sleep(1.5)
        say("fault 2: the core system at the port inspection site fails too: a second unit is hit")
        port.mode = "error"
        inc = await wait_incident(lambda i: i["category"] == "core_system" and i["level"] <= 2)
        if inc:
            show(inc)
            say("the duty chief acknowledges with the signed link in the page (no token needed)")
            link = next((p["ack_url"] for p in inbox.pages if p.get("ack_url")), None)
            if link:
                async with aiohttp.ClientSession() as anon, anon.post(link, json={"by": "演示值班长甲"}) as r:
                    print(f"    ack: HTTP {r.status}, status {(await r.json()).get('status')}")
        await asyncio.sleep(1.0)
        say("both systems recover; the incident shows recovered until a person resolves it")
        hall.mode = port.mode = "ok"
        inc = await wait_incident(lambda i: i["category"] == "core_system" and i.get("recovered"))
        if inc:
            async with s.post(f"{base}/api/v1/incidents/{inc['id']}/reports/phone-report",
                              json={"by": "演示值班长甲", "note": "已电话报告单位领导和应急办公室"}) as r:
                print(f"    phone report filed: HTTP {r.status}")
            async with s.post(f"{base}/api/v1/incidents/{inc['id']}/resolve",
                              json={"by": "演示值班长甲", "result": "H2000 恢复，业务正常"}) as r:
                done = await r.json()
            print("    resolved; clocks now: " + ", ".join(f"{c['id']}={c['status']}" for c in done["clocks"]))
            say("the phone report draft (Shenzhen 4.3.2, six elements), pre-filled:")
            async with s.get(f"{base}/api/v1/incidents/{inc['id']}/report?kind=phone") as r:
                print(textwrap.indent(await r.text(), "    "))
        await plans_in_time(s, base, inbox, wait_incident, show)
        if duration is None:
            say(f"scenario done; still serving {base}/console/ — Ctrl-C stops everything.")
            print(f"    console: {base}/console/#token={token}", flush=True)
            await asyncio.Event().wait()
        else:
            await asyncio.sleep(max(0.0, duration - 20))


async def plans_in_time(s: aiohttp.ClientSession, base: str, inbox: PageInbox, wait_incident, show) -> None:
    """A level that comes true with time (Guizhou part 3) and a maintenance window that
    ends with the fault still on (Putian art. 3)."""
    now = datetime.now(timezone.utc)
    say("the tax hall (Guizhou plan): its collection system has been down 1 h 59 m 54 s when hallmon hears of it")
    labels = {"alertname": "TaxCoreDown", "fault": "system.down", "site": "demo-site-5", "unit": "demo-unit-5",
              "system": "tax-core", "target": "demo-tax-core"}
    async with s.post(f"{base}/api/v1/alerts", json=[{"labels": labels, "startsAt": (
            now - timedelta(hours=2) + timedelta(seconds=6)).isoformat()}]):
        pass
    inc = await wait_incident(lambda i: "demo-site-5" in i["sites"])
    if inc:
        print(f"    incident {inc['id']}: level {inc['level']} ({inc['level_name']}); at {inc['regrade_at']} it will "
              f"have lasted 2 h")
    say("2 h pass: the time-span rule raises it by itself (a durable timer, no new alert needed)")
    inc = await wait_incident(lambda i: "demo-site-5" in i["sites"] and i["level"] == 2, timeout=20)
    if inc:
        show(inc)
    say("a power cut at 演示现场4 announced for the next 6 s (POST /api/v1/maintenance)")
    window = {"sites": ["demo-site-4"], "from": (now - timedelta(minutes=5)).isoformat(),
              "to": (datetime.now(timezone.utc) + timedelta(seconds=6)).isoformat(), "reason": "计划停电",
              "by": "演示值班长甲"}
    async with s.post(f"{base}/api/v1/maintenance", json=window) as r:
        print(f"    window {(await r.json()).get('id')}: HTTP {r.status}")
    labels = {"alertname": "MainsLost", "fault": "power.on_battery", "site": "demo-site-4", "unit": "demo-unit-4",
              "system": "demo-site-4-ups", "target": "demo-site-4-ups"}  # its own UPS: an incident of its own
    async with s.post(f"{base}/api/v1/alerts", json=[{"labels": labels, "startsAt": datetime.now(timezone.utc)
                                                       .isoformat()}]):
        pass
    inc = await wait_incident(lambda i: "demo-site-4" in i["sites"])
    if inc:
        print(f"    incident {inc['id']}: recorded, maintenance={inc['maintenance']}, pages held until {inc['held_until']}")
        say("the window ends with the fault still on: paging resumes")
        for _ in range(200):
            if any(p["incident"]["id"] == inc["id"] for p in inbox.pages):
                break
            await asyncio.sleep(0.1)


class Devices:
    """The simulated devices of the demo hall and port."""

    def __init__(self) -> None:
        self.nut = NutServer({"hall-ups": {"ups.status": "OL", "battery.charge": "100", "battery.runtime": "2400",
                                           "ups.load": "31", "input.voltage": "229", "device.model": "演示 UPS 10kVA"}})
        self.queue = QueueSystem()
        self.acquirer = Acquirer()

    async def start(self) -> None:
        await self.nut.start()
        await self.queue.start()
        await self.acquirer.start()

    async def stop(self) -> None:
        for device in (self.nut, self.queue, self.acquirer):
            await device.stop()


async def run_demo(duration: float | None) -> None:
    token = secrets.token_hex(16)
    os.environ["HALLMON_DEMO_TOKEN"] = token
    os.environ["HALLMON_DEMO_LINK_SECRET"] = secrets.token_hex(32)
    with RedisServer(appendonly=False, die_with_parent=True) as redis:
        hall, port, inbox, devices = CoreSystem("H2000"), CoreSystem("H2000-port"), PageInbox(), Devices()
        await devices.start()
        await hall.start()
        await port.start()
        await inbox.start()
        listener = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
        tcp_port = listener.sockets[0].getsockname()[1]
        listen = listen_address()
        with tempfile.TemporaryDirectory(prefix="hallmon-demo-") as tmp:
            path = os.path.join(tmp, "demo.yml")
            server: asyncio.Task[None] | None = None
            try:
                for _attempt in range(2):
                    with open(path, "w", encoding="utf-8") as f:
                        f.write(demo_config(redis.url, listen, hall.url, port.url, tcp_port, inbox.url,
                                            devices.nut.address, devices.queue.url, devices.acquirer.address))
                    started: asyncio.Future[str] = asyncio.get_running_loop().create_future()
                    server = asyncio.create_task(serve(path, "0/1", ready=started.set_result))
                    waiting: list[asyncio.Future] = [started, server]
                    await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                    if started.done():
                        break
                    if listen == DEFAULT_LISTEN and isinstance(server.exception(), OSError):
                        listen = f"127.0.0.1:{free_port()}"  # taken between the look and the bind
                        print(f"hallmon demo: {DEFAULT_LISTEN} is taken; serving on {listen} instead", flush=True)
                        continue
                    await server  # it ended before listening: raise its error
                base = started.result()
                assert server is not None
                print(f"hallmon demo: console {base}/console/#token={token}\n"
                      "  (a sign-in link: the token is in the #fragment, which the browser never sends)\n"
                      f"  export HALLMON_URL={base} HALLMON_TOKEN={token}", flush=True)
                # SIGINT/SIGTERM stop the embedded server (it handles them); the demo ends with it
                play = asyncio.create_task(scenario(base, token, hall, port, inbox, duration, devices))
                await asyncio.wait([play, server], return_when=asyncio.FIRST_COMPLETED)
                if play.done():
                    play.result()
                else:
                    play.cancel()
                    await asyncio.gather(play, return_exceptions=True)
            finally:
                if server is not None:
                    server.cancel()
                    await asyncio.gather(server, return_exceptions=True)
                listener.close()
                for sim in (hall, port):
                    await sim.stop()
                await inbox.stop()
                await devices.stop()


def cmd_demo(args: argparse.Namespace) -> int:
    fd, log_path = tempfile.mkstemp(prefix="hallmon-demo-", suffix=".log")
    os.close(fd)
    print(f"hallmon demo: logs (JSON lines) in {log_path}; only warnings show here", flush=True)
    configure_file(log_path)
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

