"""`hallmon run` against Redis stopped, not yet started and saturated: the API answers
503 JSON with Retry-After, one log line per failed request, never a 500; the service
starts without Redis, says so once, /readyz says why, and it recovers by itself. Each
test prints its figures."""
from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime, timedelta, timezone

import aiohttp
import pytest

from simulators.redisproc import RedisServer, free_port
from tests.routerkit import TOKENS

AUTH = {"Authorization": f"Bearer {TOKENS['HALLMON_T_ADMIN']}"}


def config(tmp_path, redis_url: str, service: str = "", targets: str = "", name: str = "h.yml"):
    path = tmp_path / name
    path.write_text(f"""\
service: {{listen: "127.0.0.1:{free_port()}", redis_url: "{redis_url}", timezone: Asia/Shanghai{service}}}
plan: shenzhen-customs
api:
  link_secret_env: HALLMON_T_LINK
  tokens:
    - {{name: ops, secret_env: HALLMON_T_ADMIN, scopes: [alerts:write, incidents:read, incidents:write]}}
organisation:
  name: 测试海关
  units:
    - id: u1
      name: 测试一关
      sites:
        - id: u1a
          name: 测试一关甲厅
          targets:
{targets or "            []"}
""", encoding="utf-8")
    return path


def alert(i: int, system: str | None = None) -> dict:
    return {"labels": {"alertname": "Custom", "fault": "custom.fault", "site": "u1a", "unit": "u1",
                       "system": system or f"sys-{i}", "target": f"dev-{i}"},
            "annotations": {"summary": f"测试告警 {i}"},
            "startsAt": (datetime.now(timezone.utc) - timedelta(seconds=30)).isoformat()}


def events(svc, name: str) -> list[dict]:
    return [e for e in svc.events() if e.get("event") == name]


async def wait_until(pred, timeout: float = 15.0, step: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = await pred()
        if value:
            return value
        await asyncio.sleep(step)
    raise AssertionError("condition not met in time")


async def ready(session, base: str) -> bool:
    async with session.get(f"{base}/readyz") as r:
        return r.status == 200


@pytest.fixture
def env():
    return dict(TOKENS)


async def test_redis_stopped_mid_run_is_503_json_and_one_log_line_per_request(tmp_path, service, env):
    redis = RedisServer().start()
    try:
        svc = service(config(tmp_path, redis.url), env=env)
        async with aiohttp.ClientSession(headers=AUTH) as s:
            async with s.post(f"{svc.base}/api/v1/alerts", json=[alert(0)]) as r:
                assert r.status == 200
            redis.stop()
            lines_before = len(svc.log_path.read_text().splitlines())
            n = 40
            for i in range(1, n + 1):
                async with s.post(f"{svc.base}/api/v1/alerts", json=[alert(i)]) as r:
                    assert r.status == 503, await r.text()
                    assert r.content_type == "application/json" and r.headers["Retry-After"]
                    assert (await r.json())["error"] == "store_unavailable"
            async with s.get(f"{svc.base}/readyz") as r:
                assert r.status == 503 and "unreachable" in (await r.json())["checks"]["redis"]
            await asyncio.sleep(0.5)
            log = svc.log_path.read_text().splitlines()[lines_before:]
            failed = [json.loads(line) for line in log if '"request_failed"' in line]
            assert len(failed) == n
            assert {f["error_class"] for f in failed} == {"StoreError"}
            assert all(f["route"] == "/api/v1/alerts" and f["request_id"] for f in failed)
            assert not any("Traceback" in line for line in log)
            print(f"\nredis down: {n} requests -> {n} x 503, {len(log)} log lines in all "
                  f"({len(log) - n} of them background transitions)")
            # Redis back on the same port: the service recovers by itself
            redis = RedisServer(port=redis.port).start()
            await wait_until(lambda: ready(s, svc.base))
            async with s.post(f"{svc.base}/api/v1/alerts", json=[alert(99)]) as r:
                assert r.status == 200
    finally:
        redis.stop()


async def test_starts_without_redis_says_so_once_and_recovers(tmp_path, service, env):
    """Redis is not up when hallmon starts: it listens anyway, /readyz says why, the log
    says so once; a probe's fault seen meanwhile opens its incident once Redis is up."""
    port = free_port()
    closed = free_port()
    targets = (f'            - {{name: core-gw, kind: net.tcp, address: "127.0.0.1:{closed}", '
               f'interval: 200ms, timeout: 200ms, for: 0s}}')
    svc = service(config(tmp_path, f"redis://127.0.0.1:{port}/0", targets=targets), env=env)
    async with aiohttp.ClientSession(headers=AUTH) as s:
        async with s.get(f"{svc.base}/readyz") as r:
            body = await r.json()
            assert r.status == 503 and body["checks"]["redis"].startswith("unreachable")
        await asyncio.sleep(3)  # ~3 pings and ~15 probe faults while Redis is away
        assert len(events(svc, "redis_unreachable")) == 1
        assert not events(svc, "task_crashed")
        redis = RedisServer(port=port).start()
        try:
            t0 = time.monotonic()
            await wait_until(lambda: ready(s, svc.base))
            became_ready = time.monotonic() - t0
            assert len(events(svc, "redis_reachable")) == 1

            async def opened():
                async with s.get(f"{svc.base}/api/v1/incidents") as r:
                    return [i for i in (await r.json())["incidents"] if i["category"] == "network"]
            [incident] = await wait_until(opened)
            print(f"\nready {became_ready:.2f}s after Redis started; the fault held in memory opened "
                  f"{incident['id']}")
        finally:
            redis.stop()


async def test_saturated_redis_pool_is_503_never_500(tmp_path, service, env, redis_url):
    """150 concurrent requests, each opening its own incident, through a pool of 4
    connections that waits 50 ms: every answer is 200, 503 JSON with Retry-After, or 202
    (stored, not placed within ``api.alert_wait``)."""
    svc = service(config(tmp_path, redis_url, service=", redis_pool: {size: 4, wait: 50ms}"), env=env)
    n = 150
    async with aiohttp.ClientSession(headers=AUTH, connector=aiohttp.TCPConnector(limit=0)) as s:
        async def post(i: int) -> tuple[int, dict]:
            async with s.post(f"{svc.base}/api/v1/alerts", json=[alert(i)]) as r:
                assert r.content_type == "application/json"
                if r.status == 503:
                    assert r.headers["Retry-After"]
                return r.status, await r.json()
        t0 = time.monotonic()
        answers = await asyncio.gather(*(post(i) for i in range(n)))
        elapsed = time.monotonic() - t0
    statuses = [a[0] for a in answers]
    assert set(statuses) <= {200, 202, 503}, statuses
    assert all(a[1]["pending"] is True for a in answers if a[0] == 202)
    busy = [a[1] for a in answers if a[0] == 503]
    assert {b["error"] for b in busy} <= {"saturated"}
    assert not events(svc, "task_crashed")
    print(f"\n{n} concurrent new groups, pool 4 / wait 50ms: {statuses.count(200)} x 200, "
          f"{statuses.count(202)} x 202 pending, "
          f"{len(busy)} x 503 saturated, 0 x 500, {elapsed:.2f}s")


async def test_default_pool_takes_a_burst_of_150_new_groups(tmp_path, service, env, redis_url):
    """The 0.5 failure: more than 100 concurrent requests for distinct groups were 500
    (redis-py's pool of 100 did not wait). The default pool waits: all are 200 or 503."""
    svc = service(config(tmp_path, redis_url), env=env)
    n = 150
    async with aiohttp.ClientSession(headers=AUTH, connector=aiohttp.TCPConnector(limit=0)) as s:
        async def post(i: int) -> int:
            async with s.post(f"{svc.base}/api/v1/alerts", json=[alert(i)]) as r:
                await r.read()
                return r.status
        t0 = time.monotonic()
        statuses = await asyncio.gather(*(post(i) for i in range(n)))
        elapsed = time.monotonic() - t0
        async with s.get(f"{svc.base}/api/v1/incidents?limit=1000") as r:
            opened = len((await r.json())["incidents"])
    assert 500 not in statuses and set(statuses) <= {200, 503}
    assert opened == statuses.count(200)
    print(f"\n{n} concurrent new groups, default pool: {statuses.count(200)} x 200, {statuses.count(503)} x 503, "
          f"{opened} incidents, {elapsed:.2f}s")
