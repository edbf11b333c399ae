"""A paging section for the router test organisation: fictitious people, local robots."""
from __future__ import annotations

import asyncio
import textwrap
import time
from datetime import datetime, timezone

import aiohttp
import redis.asyncio as aioredis
import yaml
from prometheus_client import CollectorRegistry, Counter

from monitor.config.model import validate_config
from monitor.core.clock import ManualClock
from monitor.core.supervise import stop
from monitor.durable.events import IncidentEvent, publish
from monitor.paging.acklink import AckSigner
from monitor.paging.pager import Pager
from tests.routerkit import org_config


def paging_yaml(robots_base: str, wait: str = "1s", extra_channels: str = "", leader_channels: str = "[ops-webhook]",
                policies: str | None = None) -> str:
    policies = policies or f"""\
            - id: default
              steps:
                - {{notify: {{roster: hall-duty, layer: duty_chief}}}}
                - {{wait: {wait}}}
                - {{notify: {{roster: hall-duty, layer: duty_leader}}}}
"""
    return textwrap.dedent(f"""\
        paging:
          people:
            - {{id: duty-a, name: 测试值班长甲, channels: [ops-webhook]}}
            - {{id: duty-b, name: 测试值班长乙, channels: [ops-webhook]}}
            - {{id: lead-a, name: 测试值班领导甲, channels: {leader_channels}, phone: "138-0000-0001"}}
            - {{id: lead-b, name: 测试值班领导乙, channels: [ops-webhook], lang: en}}
          channels:
            - {{id: ops-webhook, type: webhook, url: "{robots_base}/page", retries: 1, backoff: 100ms}}
{extra_channels}          rosters:
            - id: hall-duty
              timezone: Asia/Shanghai
              layers:
                - {{id: duty_chief, members: [duty-a, duty-b], rotation: {{every: 1d, handoff: "08:30", start: 2026-11-02}}}}
                - {{id: duty_leader, members: [lead-a, lead-b], rotation: {{every: 7d, handoff: "08:30", start: 2026-11-02}}}}
          policies:
{policies}""")


def incident(inc_id: str = "INC-20261125-0001", level: int = 2, category: str = "pos", sites=("u2a",),
             units=("u2",), faults=("pos.link_down",), **extra) -> dict:
    """An incident's JSON (DESIGN.md) as an event would be built from it."""
    return {"id": inc_id, "status": "open", "level": level, "level_name": ("一级", "二级", "三级")[level - 1],
            "plan": "shenzhen-customs", "category": category, "system": "payment", "sites": list(sites),
            "units": list(units), "faults": list(faults), "detected_at": "2026-11-25T09:00:00+08:00",
            "clocks": [{"id": "phone-report", "title": "电话报告（六要素）", "title_en": "Phone report (six elements)",
                        "due_at": "2026-11-25T09:15:00+08:00", "status": "pending", "seq": 1,
                        "audience": {"to": ["单位领导"]}}], **extra}


def config(redis_url: str, paging: str, plan: str = "shenzhen-customs"):
    """The router test organisation with this ``paging:`` section, validated."""
    return validate_config(yaml.safe_load(org_config(redis_url, plan, paging)), "<test>")


class Harness:
    """A Pager on the test session's redis-server, its loops running, on an injected
    clock (``ManualClock`` unless given): ``publish`` events, ``until`` something holds."""

    def __init__(self, redis_url: str, cfg, clock=None, report_for=None, consumer: str = "test"):
        self.redis_url, self.config, self.report_for, self.consumer = redis_url, cfg, report_for, consumer
        self.clock = clock if clock is not None else ManualClock(START)

    async def __aenter__(self) -> "Harness":
        self.client = aioredis.from_url(self.redis_url, decode_responses=True)
        self.session = aiohttp.ClientSession()
        self.registry = CollectorRegistry()
        self.signer = AckSigner(b"test-link-secret-0123456789")
        self.pager = Pager(self.client, lambda: self.config, self.session, self.registry, self.signer,
                           clock=self.clock, consumer=self.consumer)
        restarts = Counter("hallmon_task_restarts_total", "", ["task"], registry=self.registry)
        self.task = asyncio.create_task(self.pager.run_forever(restarts, self.report_for))
        return self

    async def __aexit__(self, *exc) -> None:
        await stop([self.task])
        await self.pager.close()
        await self.session.close()
        await self.client.aclose()

    async def publish(self, kind: str, inc: dict, at: str = "2026-11-25T09:00:01+08:00", **kw) -> None:
        async with self.client.pipeline(transaction=True) as pipe:
            publish(pipe, IncidentEvent.of(kind, inc, at, **kw))
            await pipe.execute()

    async def until(self, pred, timeout: float = 5.0, advance: float = 0.0) -> None:
        """Wait (real time) until ``pred()``; with ``advance``, move the clock on that much
        at every turn (retries, backoffs and waits are clock time)."""
        deadline = time.monotonic() + timeout
        while not pred():
            if time.monotonic() > deadline:
                raise AssertionError("condition not met in time")
            if advance:
                await self.clock.advance(advance)
            await asyncio.sleep(0.01)

    def metric(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0


START = datetime(2026, 11, 25, 2, 0, tzinfo=timezone.utc)  # 10:00 in Shanghai, far from the 08:30 hand-off


def on_duty(at: datetime) -> tuple[str, str]:
    """Who the fictitious roster of ``paging_yaml`` puts on duty at ``at`` (duty chief, duty leader)."""
    days = int((at - datetime(2026, 11, 2, 0, 30, tzinfo=timezone.utc)).total_seconds() // 86400)
    return ("duty-a", "duty-b")[days % 2], ("lead-a", "lead-b")[(days // 7) % 2]
