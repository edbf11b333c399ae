"""Chaos (issue 12), against real ``hallmon run`` processes and the test redis-server:

* a SIGKILL loop under a stream of webhook alerts: every alert answered 2xx is in an
  incident once the last process has reclaimed what the killed ones left;
* two replicas racing on the same new groups: one incident per group, never a 5xx;
* redis-server paused (SIGSTOP) for seconds under an alert stream, then resumed: only
  202 or 503 JSON, every 202 alert in the incident (requests wait out the pause);
* every Redis connection cut (RST) by a small proxy between steps, repeatedly, under an
  alert stream: the same promise;
* SMTP down, then up on the same port, under a channel without fallback: each page once.

Redis stopped or not yet started, and a saturated pool, are in ``test_api_faults``;
a receiver answering 500 then healthy, hanging then answering (others unaffected, its
pages once each) and a retried timeout, in ``test_delivery``; SIGKILL between send and
mark, in ``test_paging_kill``; SMTP answering 451 or down with a fallback, in
``test_channels``.
The short form runs with the suite; ``make chaos`` (HALLMON_CHAOS=long) runs the long
one. Each test prints its figures (``pytest -s``)."""
from __future__ import annotations

import asyncio
import email
import json
import os
import signal
import time
from datetime import datetime, timezone

import aiohttp
import pytest
import redis
from aiosmtpd.controller import Controller

from simulators.redisproc import RedisServer, free_port
from tests.pagingkit import Harness, config, incident
from tests.routerkit import TOKENS, auth, org_config

pytestmark = pytest.mark.chaos
LONG = os.environ.get("HALLMON_CHAOS") == "long"


def webhook(alerts: list[dict]) -> dict:
    return {"version": "4", "status": "firing", "receiver": "hallmon", "alerts": alerts}


def fault(target: str, system: str = "core", fault_: str = "system.down") -> dict:
    return {"labels": {"alertname": "HallmonFault", "fault": fault_, "site": "u1a", "unit": "u1", "system": system,
                       "target": target}, "startsAt": datetime.now(timezone.utc).isoformat(), "status": "firing"}


def stored_targets(r: redis.Redis) -> set[str]:
    out = set()
    for inc_id in r.zrange("hallmon:incidents", 0, -1):
        for raw in r.hvals(f"hallmon:incident:{inc_id}:alerts"):
            out.add(json.loads(raw)["labels"]["target"])
    return out


async def test_sigkill_loop_under_an_alert_stream_loses_no_acknowledged_alert(tmp_path, redis_url, service):
    kills = 12 if LONG else 3
    config = tmp_path / "hall.yml"
    config.write_text(org_config(redis_url), encoding="utf-8")
    svc = await asyncio.to_thread(service, config, env=TOKENS)
    base = svc.base
    acked: set[str] = set()
    refused = 0
    sent = 0
    stop = asyncio.Event()

    async def stream(session: aiohttp.ClientSession, lane: int) -> None:
        nonlocal refused, sent
        k = 0
        while not stop.is_set():
            batch = [fault(f"l{lane}-{k}-{j}") for j in range(20)]
            k += 1
            sent += len(batch)
            try:
                async with session.post(f"{base}/api/v1/alerts/alertmanager", json=webhook(batch),
                                        headers=auth()) as resp:
                    await resp.read()
                    if resp.status == 202:
                        acked.update(a["labels"]["target"] for a in batch)
                    else:
                        refused += len(batch)
            except (aiohttp.ClientError, asyncio.TimeoutError):
                refused += len(batch)  # the process was killed under it: the sender retries
                await asyncio.sleep(0.05)

    t0 = time.monotonic()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        lanes = [asyncio.create_task(stream(session, lane)) for lane in range(4)]
        for _ in range(kills):
            await asyncio.sleep(0.7)
            os.kill(svc.proc.pid, signal.SIGKILL)
            await asyncio.to_thread(svc.proc.wait)
            svc = await asyncio.to_thread(service, config, env=TOKENS)
        await asyncio.sleep(0.7)
        stop.set()
        await asyncio.gather(*lanes)
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    t1 = time.monotonic()
    while time.monotonic() - t1 < 60 and (r.xlen("hallmon:intake") or not acked <= stored_targets(r)):
        await asyncio.sleep(0.2)  # the last process reclaims what the killed ones read (after 5 s idle)
    drained = time.monotonic() - t1
    stored = stored_targets(r)
    incidents = r.zcard("hallmon:incidents")
    print(f"\nSIGKILL loop: {kills} kills in {time.monotonic() - t0:.1f} s; {sent} alerts sent, {len(acked)} "
          f"acknowledged (202), {refused} refused while down; {len(acked & stored)} of the acknowledged stored, "
          f"{len(stored)} stored in all, {incidents} incident(s); drained {drained:.1f} s after the last kill")
    assert acked and acked <= stored, f"{len(acked - stored)} acknowledged alerts lost"
    assert incidents == 1  # one outage, one incident, whatever the kills
    assert r.xlen("hallmon:intake") == 0


async def test_two_replicas_racing_on_new_groups_open_one_incident_each(tmp_path, redis_url, service):
    rounds, groups = (10, 40) if LONG else (3, 20)
    replicas = []
    for name in ("a", "b"):
        config = tmp_path / f"hall-{name}.yml"
        config.write_text(org_config(redis_url), encoding="utf-8")
        replicas.append(await asyncio.to_thread(service, config, env=TOKENS))
    statuses: list[int] = []
    t0 = time.monotonic()
    async with aiohttp.ClientSession() as session:
        async def post(base: str, body: list[dict]) -> None:
            async with session.post(f"{base}/api/v1/alerts", json=body, headers=auth()) as resp:
                await resp.read()
                statuses.append(resp.status)
        for k in range(rounds):
            # the same new groups (distinct systems of an unmapped fault) to both at once,
            # each in several requests so that openings interleave
            body = [{**fault(f"r{k}-{g}", system=f"sys-{k}-{g}", fault_="custom.fault")} for g in range(groups)]
            for a in body:
                a.pop("status")
            chunks = [body[i:i + 5] for i in range(0, groups, 5)]
            await asyncio.gather(*(post(svc.base, c) for svc in replicas for c in chunks))
    elapsed = time.monotonic() - t0
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    for _ in range(200):
        if not r.xlen("hallmon:intake"):
            break
        await asyncio.sleep(0.05)
    docs = [json.loads(r.get(f"hallmon:incident:{i}")) for i in r.zrange("hallmon:incidents", 0, -1)]
    by_group: dict[str, int] = {}
    for d in docs:
        by_group[d["group"]] = by_group.get(d["group"], 0) + 1
    print(f"\ntwo replicas, {rounds} rounds of {groups} new groups posted to both at once: {len(statuses)} requests "
          f"({statuses.count(200)} x 200, {statuses.count(202)} x 202, {statuses.count(503)} x 503), "
          f"{len(docs)} incidents for {rounds * groups} groups in {elapsed:.1f} s")
    assert not [s for s in statuses if s >= 500 and s != 503]
    assert set(statuses) <= {200, 202, 503}
    assert len(by_group) == rounds * groups and set(by_group.values()) == {1}
    alerts = sum(d["alerts_total"] for d in docs)
    assert alerts == rounds * groups  # each alert once, though both replicas placed it


async def test_redis_paused_under_an_alert_stream_answers_503_and_loses_nothing(tmp_path, service):
    """redis-server SIGSTOPped for a few seconds (a hung host, a long fork) under a stream
    of webhook alerts, then resumed: every answer is 202 or 503 JSON (never another 5xx),
    and every alert answered 202 is in the incident once Redis is back."""
    paused_for = 6.0 if LONG else 2.5
    with RedisServer(appendonly=True) as srv:
        config = tmp_path / "hall.yml"
        config.write_text(org_config(srv.url), encoding="utf-8")
        svc = await asyncio.to_thread(service, config, env=TOKENS)
        acked: set[str] = set()
        statuses: dict[int, int] = {}
        slowest = 0.0
        stop = asyncio.Event()

        async def stream(session: aiohttp.ClientSession, lane: int) -> None:
            nonlocal slowest
            k = 0
            while not stop.is_set():
                batch = [fault(f"p{lane}-{k}-{j}") for j in range(20)]
                k += 1
                t = time.monotonic()
                async with session.post(f"{svc.base}/api/v1/alerts/alertmanager", json=webhook(batch),
                                        headers=auth()) as resp:
                    await resp.read()
                    slowest = max(slowest, time.monotonic() - t)
                    statuses[resp.status] = statuses.get(resp.status, 0) + 1
                    if resp.status == 202:
                        acked.update(a["labels"]["target"] for a in batch)
                    else:
                        assert resp.status == 503 and resp.content_type == "application/json", resp.status
                        assert resp.headers["Retry-After"]
                        await asyncio.sleep(0.05)

        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            lanes = [asyncio.create_task(stream(session, lane)) for lane in range(4)]
            await asyncio.sleep(0.5)
            before = len(acked)
            assert srv.proc is not None
            os.kill(srv.proc.pid, signal.SIGSTOP)
            t_stop = time.monotonic()
            try:
                await asyncio.sleep(paused_for)
            finally:
                os.kill(srv.proc.pid, signal.SIGCONT)
            during = len(acked) - before
            await asyncio.sleep(1.0)
            stop.set()
            await asyncio.gather(*lanes)
        r = redis.Redis.from_url(srv.url, decode_responses=True)
        t1 = time.monotonic()
        while time.monotonic() - t1 < 60 and (r.xlen("hallmon:intake") or not acked <= stored_targets(r)):
            await asyncio.sleep(0.2)
        stored = stored_targets(r)
        print(f"\nRedis paused {paused_for:g} s under 4 lanes of 20 alerts: answers {dict(sorted(statuses.items()))}; "
              f"slowest answer {slowest:.2f} s; {len(acked)} acknowledged ({during} while paused), {len(acked & stored)} of them stored; "
              f"all placed {time.monotonic() - t1:.1f} s after the stream stopped "
              f"({time.monotonic() - t_stop:.1f} s after the pause began)")
        r.close()
        assert set(statuses) <= {202, 503} and statuses.get(202)
        assert acked <= stored, f"{len(acked - stored)} acknowledged alerts lost"


class Inbox:
    def __init__(self) -> None:
        self.messages: list[str] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: ANN001 - aiosmtpd's handler hook
        msg = email.message_from_bytes(envelope.content)  # the text is base64 (Chinese): decoded here
        self.messages.append("".join(part.get_payload(decode=True).decode() for part in msg.walk()
                                     if not part.is_multipart()))
        return "250 OK"


async def test_smtp_down_then_up_delivers_each_page_once(redis_url, monkeypatch):
    """An e-mail channel without a fallback whose SMTP server is down (nothing listens on
    its port), then started on that port: the pages wait, are retried with backoff, and
    arrive once each when it is up; nothing is counted failed. (Refused with 451, and
    down with a fallback: ``test_channels``.)"""
    for k, v in TOKENS.items():
        monkeypatch.setenv(k, v)
    port = free_port()
    paging = f"""\
paging:
  people:
    - {{id: duty-a, name: 测试值班长甲, channels: [mail]}}
  channels:
    - {{id: mail, type: email, to: duty-a@example.invalid, smtp: "127.0.0.1:{port}", starttls: false,
       timeout: 2s, backoff: 1s, max_backoff: 8s}}
  policies:
    - id: default
      steps:
        - {{notify: {{person: duty-a}}}}
"""
    incidents = [f"INC-20261125-030{i}" for i in range(3)]
    inbox = Inbox()
    controller = None
    async with Harness(redis_url, config(redis_url, paging)) as h:
        try:
            t0 = h.clock.time()
            for inc_id in incidents:
                await h.publish("opened", incident(inc_id))
            await h.until(lambda: h.metric("hallmon_page_retries_total", channel="mail") >= 3 * 4, timeout=20,
                          advance=0.5)
            down_for = h.clock.time() - t0
            assert inbox.messages == []
            controller = Controller(inbox, hostname="127.0.0.1", port=port)
            controller.start()
            await h.until(lambda: len(inbox.messages) >= 3, timeout=20, advance=0.5)
            await h.clock.advance(600)
            await asyncio.sleep(0.3)
            retries = h.metric("hallmon_page_retries_total", channel="mail")
            print(f"\nSMTP down {down_for:.0f} s (clock) then up: pages expected 3, received {len(inbox.messages)}, "
                  f"retries counted {retries:.0f}, "
                  f"sent {h.metric('hallmon_pages_sent_total', channel='mail', outcome='sent'):.0f}, "
                  f"failed {h.metric('hallmon_pages_sent_total', channel='mail', outcome='failed'):.0f}")
            assert len(inbox.messages) == 3
            assert all(sum(inc_id in m for m in inbox.messages) == 1 for inc_id in incidents)  # each once
            assert h.metric("hallmon_pages_sent_total", channel="mail", outcome="sent") == 3
            assert h.metric("hallmon_pages_sent_total", channel="mail", outcome="failed") == 0
            assert await h.pager.outbox.pending() == 0
        finally:
            if controller is not None:
                controller.stop()


class CuttingProxy:
    """A TCP proxy to Redis (asyncio, port 0) that can cut every connection through it
    at once, as a NAT timeout or a failover does between two commands of a step."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.writers: set[asyncio.StreamWriter] = set()
        self.connections = 0
        self.cuts = 0

    async def start(self) -> "CuttingProxy":
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            writer.close()
            return
        pair = {writer, up_writer}
        self.writers |= pair

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                for w in pair:
                    w.close()
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self.writers -= pair

    def cut(self) -> None:
        self.cuts += 1
        for w in list(self.writers):
            w.transport.abort()  # RST, not a polite FIN: the peer's next read fails
        self.writers.clear()

    async def stop(self) -> None:
        self.cut()
        self.server.close()
        await self.server.wait_closed()


async def test_redis_connections_cut_under_an_alert_stream_lose_nothing(tmp_path, redis_url, service):
    """Every Redis connection of a ``hallmon run`` is cut (RST, by a proxy in between)
    every 0.3 s under a stream of webhook alerts: only 202 or 503 JSON, every alert
    answered 202 in the one incident, nothing left in the intake stream."""
    cuts = 20 if LONG else 6
    proxy = await CuttingProxy(int(redis_url.rsplit(":", 1)[1].split("/")[0])).start()
    db = redis_url.rsplit("/", 1)[1]
    config = tmp_path / "hall.yml"
    config.write_text(org_config(f"redis://127.0.0.1:{proxy.port}/{db}"), encoding="utf-8")
    try:
        svc = await asyncio.to_thread(service, config, env=TOKENS)
        acked: set[str] = set()
        statuses: dict[int, int] = {}
        stop = asyncio.Event()

        async def stream(session: aiohttp.ClientSession, lane: int) -> None:
            k = 0
            while not stop.is_set():
                batch = [fault(f"c{lane}-{k}-{j}") for j in range(20)]
                k += 1
                async with session.post(f"{svc.base}/api/v1/alerts/alertmanager", json=webhook(batch),
                                        headers=auth()) as resp:
                    await resp.read()
                    statuses[resp.status] = statuses.get(resp.status, 0) + 1
                    if resp.status == 202:
                        acked.update(a["labels"]["target"] for a in batch)
                    else:
                        assert resp.status == 503 and resp.content_type == "application/json", resp.status
                        await asyncio.sleep(0.05)

        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            lanes = [asyncio.create_task(stream(session, lane)) for lane in range(4)]
            for _ in range(cuts):
                await asyncio.sleep(0.3)
                proxy.cut()
            await asyncio.sleep(0.5)
            stop.set()
            await asyncio.gather(*lanes)
        r = redis.Redis.from_url(redis_url, decode_responses=True)
        t1 = time.monotonic()
        while time.monotonic() - t1 < 60 and (r.xlen("hallmon:intake") or not acked <= stored_targets(r)):
            await asyncio.sleep(0.2)  # an entry read on a cut connection is reclaimed after 5 s idle
        stored = stored_targets(r)
        incidents = r.zcard("hallmon:incidents")
        print(f"\nRedis connections cut {proxy.cuts} times (every 0.3 s; {proxy.connections} connections made): "
              f"answers {dict(sorted(statuses.items()))}; {len(acked)} acknowledged, {len(acked & stored)} of them "
              f"stored, {incidents} incident(s); drained {time.monotonic() - t1:.1f} s after the stream stopped")
        assert set(statuses) <= {202, 503} and statuses.get(202)
        assert acked <= stored, f"{len(acked - stored)} acknowledged alerts lost"
        assert incidents == 1
        assert r.xlen("hallmon:intake") == 0
        r.close()
    finally:
        await proxy.stop()
