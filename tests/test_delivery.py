"""Delivery under receiver faults, against local receivers and a real Redis: an outage
loses no page, an acknowledgement ends the retries, a hung receiver delays only its own
channel, and a retried timeout reaches the receiver with one idempotency key."""
import asyncio
import time

import pytest
import structlog
from aiohttp import web

from monitor.core.clock import SYSTEM
from tests.pagingkit import Harness, config, incident
from tests.routerkit import TOKENS


@pytest.fixture(autouse=True)
def env(monkeypatch):
    for k, v in TOKENS.items():
        monkeypatch.setenv(k, v)


class Receiver:
    """A webhook receiver whose answer the test decides (``answer(request_number)``)."""

    def __init__(self, answer):
        self.answer = answer
        self.requests: list[tuple[float, str, dict]] = []  # (monotonic time, Idempotency-Key, body)
        self.pages: list[dict] = []  # taken (one per key)
        self.taken: set[str] = set()

    async def start(self) -> "Receiver":
        async def page(request: web.Request) -> web.Response:
            body = await request.json()
            key = request.headers.get("Idempotency-Key", "")
            self.requests.append((time.monotonic(), key, body))
            status = await self.answer(len(self.requests))
            if status == 200 and key not in self.taken:  # a receiver that drops copies by key
                self.taken.add(key)
                self.pages.append(body)
            return web.json_response({"ok": status == 200}, status=status)
        app = web.Application()
        app.router.add_post("/page", page)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self.runner.addresses[0][1]}/page"
        return self

    async def stop(self) -> None:
        await self.runner.cleanup()


def paging(*channels: str, policies: str = "") -> str:
    """People paged on ``ops``; each channel given as its YAML flow mapping."""
    policies = policies or """\
    - id: default
      steps:
        - {notify: {person: duty-a}}
"""
    return ("paging:\n  people:\n    - {id: duty-a, name: 测试值班长甲, channels: [ops]}\n  channels:\n"
            + "".join(f"    - {c}\n" for c in channels) + "  policies:\n" + policies)


async def test_a_60_second_receiver_outage_loses_no_page(redis_url):
    """Regression (0.5): a channel without a fallback marked the page failed and never
    sent it again when the receiver came back (3 pages lost in a 60 s outage)."""
    h: Harness | None = None
    t0: list[float] = []

    async def answer(n: int) -> int:  # 500 for the first 60 s of clock time, then fine
        return 500 if h.clock.time() - t0[0] < 60 else 200

    rx = await Receiver(answer).start()
    try:
        cfg = config(redis_url, paging(f'{{id: ops, type: webhook, url: "{rx.url}", backoff: 1s, max_backoff: 8s}}'))
        with structlog.testing.capture_logs() as logs:
            async with Harness(redis_url, cfg) as h:
                t0.append(h.clock.time())
                for i in range(3):
                    await h.publish("opened", incident(f"INC-20261125-000{i + 1}"))
                await h.until(lambda: len(rx.pages) == 3, timeout=10, advance=0.5)
                assert h.clock.time() - t0[0] >= 60
                assert sorted(p["incident"]["id"] for p in rx.pages) == [f"INC-20261125-000{i}" for i in (1, 2, 3)]
                retries = h.metric("hallmon_page_retries_total", channel="ops")
                assert 3 * 5 <= retries == len(rx.requests) - 3  # backoff 1, 2, 4, 8, 8 … s: counted
                assert h.metric("hallmon_channel_failing", channel="ops") == 0
                assert h.metric("hallmon_pages_sent_total", channel="ops", outcome="failed") == 0
                assert await h.pager.outbox.pending() == 0
                await h.clock.advance(600)
                await asyncio.sleep(0.2)
                assert len(rx.pages) == 3 and len({k for _, k, _ in rx.requests}) == 3  # each once
                print(f"chaos/receiver 500 for 60 s: pages expected 3, received {len(rx.pages)}, "
                      f"attempts {len(rx.requests)}, retries counted {retries:.0f}, "
                      f"last page {h.clock.time() - t0[0] - 600:.1f} s (clock) after the outage began")
    finally:
        await rx.stop()
    events = [e["event"] for e in logs]
    assert events.count("channel_failing") == 1 and events.count("channel_recovered") == 1  # transitions, once


async def test_an_acknowledgement_ends_the_retries_of_its_pages(redis_url):
    async def answer(n: int) -> int:
        return 503

    rx = await Receiver(answer).start()
    try:
        cfg = config(redis_url, paging(f'{{id: ops, type: webhook, url: "{rx.url}", backoff: 1s}}'))
        async with Harness(redis_url, cfg) as h:
            inc = incident()
            await h.publish("opened", inc)
            await h.until(lambda: len(rx.requests) >= 3, advance=0.5)
            await h.publish("acknowledged", {**inc, "status": "acknowledged"}, actor="测试值班长甲")
            await h.until(lambda: h.metric("hallmon_pages_sent_total", channel="ops", outcome="cancelled") == 1,
                          advance=0.5)
            tried = len(rx.requests)
            await h.clock.advance(3600)
            await asyncio.sleep(0.3)
            assert len(rx.requests) == tried and rx.pages == []
            assert await h.pager.outbox.pending() == 0
            [key] = await h.client.keys("hallmon:paging:sent:*")
            assert await h.client.get(key) == "cancelled:acknowledged"
    finally:
        await rx.stop()


async def test_a_hung_receiver_delays_only_its_own_channel(redis_url):
    """Regression (0.5): one hung receiver held up every page; another incident's page
    arrived 54.9 s late. When it answers again, its held pages arrive once each."""
    release = asyncio.Event()

    async def hang(n: int) -> int:
        await release.wait()
        return 200

    async def fine(n: int) -> int:
        return 200

    hung, healthy = await Receiver(hang).start(), await Receiver(fine).start()
    policies = """\
    - id: pos
      match: {categories: [pos]}
      steps:
        - {notify: {channel: hung}}
    - id: other
      steps:
        - {notify: {channel: ops}}
"""
    cfg = config(redis_url, paging(f'{{id: hung, type: webhook, url: "{hung.url}", timeout: 20s}}',
                                   f'{{id: ops, type: webhook, url: "{healthy.url}"}}', policies=policies))
    try:
        async with Harness(redis_url, cfg, clock=SYSTEM) as h:
            for i in range(3):  # three pages on the hung channel, on the wire or queued behind it
                await h.publish("opened", incident(f"INC-20261125-010{i}"))
            await h.until(lambda: hung.requests)
            t0 = time.monotonic()
            await h.publish("opened", incident("INC-20261125-0200", category="queue", faults=("queue.down",)))
            await h.until(lambda: healthy.pages, timeout=5)
            late = healthy.requests[0][0] - t0
            assert late < 1.0, late
            # the receiver recovers: the held pages arrive, once each
            release.set()
            await h.until(lambda: len(hung.pages) == 3, timeout=10)
            await asyncio.sleep(0.3)
            ids = sorted(p["incident"]["id"] for p in hung.pages)
            assert ids == [f"INC-20261125-010{i}" for i in range(3)]
            assert len(hung.requests) == 3 and len(healthy.requests) == 1  # no copies on either
            print(f"chaos/receiver hangs: 3 pages held on the hung channel; the healthy channel's page arrived "
                  f"{late * 1000:.0f} ms after its event (0.5: 54.9 s); once released, the hung channel's pages "
                  f"arrived {len(hung.pages)} of 3 in {len(hung.requests)} requests")
    finally:
        release.set()
        await hung.stop()
        await healthy.stop()


async def test_a_retried_timeout_reaches_the_receiver_with_one_idempotency_key(redis_url):
    async def slow_twice(n: int) -> int:  # the first two attempts answer after the channel's timeout
        if n <= 2:
            await asyncio.sleep(1.0)
        return 200

    rx = await Receiver(slow_twice).start()
    try:
        cfg = config(redis_url, paging(f'{{id: ops, type: webhook, url: "{rx.url}", timeout: 300ms, backoff: 50ms}}'))
        async with Harness(redis_url, cfg, clock=SYSTEM) as h:
            await h.publish("opened", incident())
            await h.until(lambda: len(rx.requests) == 3, timeout=8)
            await asyncio.sleep(1.2)  # the slow ones answer meanwhile
            assert len({key for _, key, _ in rx.requests}) == 1 and rx.requests[0][1]  # one key, three attempts
            assert len(rx.pages) == 1  # the receiver took the message once
            assert h.metric("hallmon_page_retries_total", channel="ops") == 2
    finally:
        await rx.stop()
