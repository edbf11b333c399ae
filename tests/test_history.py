"""History that does not grow (issue 17, item 5), against a real redis-server: the
secondary indexes stay right through every path that changes an incident, in every
built-in plan; searches through them equal a full scan of a seeded random history (the
API's pages, a unit-limited token, the month's summary); a 0.6-shaped history (each
document with its own frozen plan, no indexes) is compacted and indexed by
``migrate_history`` to the same answers, idempotently, also after a SIGKILL midway and
with two replicas at once; nothing per resolved incident stays in the process."""
from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import redis.asyncio as aioredis

from monitor.config.model import load_config
from monitor.console.routes import OpenCache
from monitor.core.alert import Alert
from monitor.incidents import indexes, monthly
from monitor.incidents.history import MARK, migrate_history
from monitor.incidents.packing import inflate
from monitor.incidents.records import Incident
from monitor.incidents.store import P, decode, plan_key
from monitor.plans.model import builtin_ids
from tests.routerkit import FakeTime, auth, make_app, org_config, replica

pytestmark = pytest.mark.usefixtures("tokens")
ROOT = Path(__file__).resolve().parent.parent
SITES = [("u1a", "u1"), ("u1b", "u1"), ("u2a", "u2"), ("u3a", "u3"), ("u4a", "u4"), ("hqa", "hq")]
FAULTS = [("system.down", "core"), ("power.on_battery", "power"), ("pos.link_down", "payment"),
          ("queue.down", "queue"), ("network.down", "network")]


def with_uplink(text: str, redis_url: str) -> str:
    """u1a gets an uplink target (never probed in these tests: no checker runs)."""
    port = redis_url.rsplit(":", 1)[1].split("/")[0]
    return text.replace("{id: u1a, name: 测试一关甲厅}",
                        "{id: u1a, name: 测试一关甲厅, uplinks: [u1a-router], targets: [{name: u1a-router, "
                        f"kind: net.tcp, address: '127.0.0.1:{port}', system: network, interval: 1h}}]}}")


def make_replica(tmp_path: Path, redis_url: str, plan: str = "shenzhen-customs", start: datetime | None = None):
    path = tmp_path / f"{plan}.yml"
    path.write_text(with_uplink(org_config(redis_url, plan), redis_url), encoding="utf-8")
    cfg = load_config(path)
    return replica(cfg, redis_url, FakeTime(start))


def fault(name: str, site: str, unit: str, at: datetime, system: str | None = None, target: str | None = None,
          ends: datetime | None = None) -> Alert:
    system = system or dict(FAULTS)[name]
    return Alert(labels={"alertname": "HallmonFault", "fault": name, "site": site, "unit": unit, "system": system,
                         "target": target or f"{site}-{system}"},
                 starts_at=at, annotations={"summary": f"{site} {name}"}, ends_at=ends, source="api")


async def everything(r: aioredis.Redis) -> list[Incident]:
    """Every stored incident, by a full walk of the keys (not through any index)."""
    keys = sorted(k for k in await r.keys(f"{P}incident:*") if k.count(":") == 2)
    return [inc for inc in await decode(r, await r.mget(keys)) if inc is not None] if keys else []


async def assert_indexes_true(r: aioredis.Redis) -> list[Incident]:
    """Each index holds exactly the incidents that belong to it, scored by detection."""
    docs = await everything(r)
    want: dict[str, dict[str, float]] = {}
    for inc in docs:
        for key in indexes.keys_of(inc) | {indexes.ALL}:
            want.setdefault(key, {})[inc.id] = inc.detected_at.timestamp()
    have = {}
    for key in [indexes.ALL, *await r.keys(f"{indexes.IDX}*")]:
        members = dict(await r.zrange(key, 0, -1, withscores=True))
        if members:
            have[key] = members
    assert not [k for k in have if ":tmp:" in k]  # a search leaves no scratch key behind
    assert have == want
    return docs


@pytest.mark.parametrize("plan", builtin_ids())
async def test_indexes_follow_every_path_that_changes_an_incident(tmp_path, redis_url, plan):
    rep = make_replica(tmp_path, redis_url, plan)
    r, router, t = rep.client, rep.router, rep.time
    try:
        t0 = t.now() - timedelta(minutes=5)
        [a] = await router.ingest([fault("system.down", "u3a", "u3", t0)])  # open
        await assert_indexes_true(r)
        [b] = await router.ingest([fault("system.down", "u4a", "u4", t0, target="u4a-core")])  # merge: a site more
        assert b == a
        merged = await router.store.require(a)
        assert set(merged.sites) == {"u3a", "u4a"}
        assert await r.zscore(f"{indexes.IDX}site:u4a", a) is not None
        await assert_indexes_true(r)
        await router.ack(a, "测试值班长甲")  # status open → acknowledged
        assert await r.zscore(f"{indexes.IDX}status:open", a) is None
        await assert_indexes_true(r)
        before = (await router.store.require(a)).level
        chosen = 1 if before != 1 else 2
        await router.set_level(a, chosen, "测试值班长甲", "测试原因")  # level change (and reopen if upgraded)
        assert (await router.store.require(a)).level == chosen
        assert await r.zscore(f"{indexes.IDX}level:{before}", a) is None
        await assert_indexes_true(r)
        # fold: a device fault of u1a, then u1a's uplink fault a moment later
        [dev] = await router.ingest([fault("queue.down", "u1a", "u1", t0, target="u1a-queue")])
        [up] = await router.ingest([fault("network.down", "u1a", "u1", t0 + timedelta(seconds=5),
                                          target="u1a-router")])
        folded = await router.store.require(dev)
        assert up != dev and folded.status == "resolved" and folded.folded_into == up
        await assert_indexes_true(r)
        await router.resolve(a, "测试值班长甲", "已处置")  # resolve
        await assert_indexes_true(r)
        owed = next((c for c in (await router.store.require(a)).clocks if c.owed), None)
        if owed is not None:  # a report filed after resolution changes the document again
            await router.file_report(a, owed.id, "测试值班长甲", None, "补报")
            await assert_indexes_true(r)
        t.advance(hours=30)
        assert await rep.fire_due() >= 0  # clocks falling due (overdue, regrade) write too
        drill = await router.open_manual("fire", "u2a", "测试值班长甲", "消防演练", (), drill=True)
        docs = await assert_indexes_true(r)
        assert drill.drill and await r.zscore(f"{indexes.IDX}drill", drill.id) is not None
        assert {d.status for d in docs} >= {"resolved", "open"}
    finally:
        await rep.close()


async def random_history(tmp_path: Path, redis_url: str, seed: int, n: int = 80) -> None:
    """``n`` incidents over four months, each acknowledged, re-levelled or resolved at
    random (a seeded generator: the same history every run)."""
    rng = random.Random(seed)
    rep = make_replica(tmp_path, redis_url, start=datetime(2026, 8, 1, tzinfo=timezone.utc))
    try:
        for i in range(n):
            rep.time.advance(hours=rng.uniform(1, 36))
            site, unit = rng.choice(SITES)
            name, system = rng.choice(FAULTS)
            at = rep.time.now() - timedelta(minutes=1)
            alerts = [fault(name, site, unit, at, system=f"{system}-{i}")]
            if rng.random() < 0.2:  # a second site in the same outage
                other, other_unit = rng.choice(SITES)
                alerts.append(fault(name, other, other_unit, at, system=f"{system}-{i}", target=f"{other}-x"))
            [inc_id] = await rep.router.ingest(alerts)
            roll = rng.random()
            if roll < 0.15:
                await rep.router.set_level(inc_id, rng.choice([1, 2, 3]), "测试值班长乙", "测试调整")
            if roll < 0.35:
                await rep.router.ack(inc_id, "测试值班长甲")
            if roll > 0.3:
                rep.time.advance(minutes=rng.uniform(5, 120))
                await rep.router.resolve(inc_id, "测试值班长甲", "已恢复")
            if rng.random() < 0.05:
                await rep.router.open_manual("fire", site, "测试值班长甲", "演练", (), drill=True)
        # the history is past: its clocks must not fire under the live app the test then
        # starts (they would change documents while the test compares them)
        await rep.client.delete(*await rep.client.keys("hallmon:clocktimers*"))
    finally:
        await rep.close()


def matches(inc: Incident, q: dict) -> bool:
    return (("status" not in q or inc.status == q["status"]) and ("level" not in q or inc.level == int(q["level"]))
            and ("site" not in q or q["site"] in inc.sites) and ("unit" not in q or q["unit"] in inc.units)
            and ("category" not in q or inc.category == q["category"])
            and ("since" not in q or inc.detected_at >= datetime.fromisoformat(q["since"])))


def queries(rng: random.Random, docs: list[Incident], n: int = 40) -> list[dict]:
    cats = sorted({d.category for d in docs})
    out = [{"status": "resolved", "site": "u1a"}, {}, {"status": "open"}]
    while len(out) < n:
        q: dict = {}
        if rng.random() < 0.6:
            q["status"] = rng.choice(["open", "acknowledged", "resolved"])
        if rng.random() < 0.4:
            q["level"] = str(rng.choice([1, 2, 3]))
        if rng.random() < 0.5:
            q["site"] = rng.choice(SITES)[0]
        if rng.random() < 0.3:
            q["unit"] = rng.choice(SITES)[1]
        if rng.random() < 0.3:
            q["category"] = rng.choice(cats)
        if rng.random() < 0.3:
            q["since"] = rng.choice(docs).detected_at.isoformat()
        out.append(q)
    return out


async def walk(client, q: dict, env: str = "HALLMON_T_ADMIN", limit: int = 7) -> list[str]:
    """Every incident the API lists for ``q``, page by page (``next_offset``)."""
    got, offset = [], 0
    while offset is not None:
        resp = await client.get("/api/v1/incidents", params={**q, "limit": limit, "offset": offset},
                                headers=auth(env))
        assert resp.status == 200, await resp.text()
        body = await resp.json()
        got += [d["id"] for d in body["incidents"]]
        offset = body["next_offset"]
    return got


def newest_first(docs: list[Incident]) -> list[str]:
    return [d.id for d in sorted(docs, key=lambda d: (d.detected_at, d.id), reverse=True)]


async def answers(client, docs: list[Incident], seed: int) -> dict[str, list[str]]:
    """The API's answer to each seeded query, checked against the full scan on the way."""
    out = {}
    for q in queries(random.Random(seed), docs):
        got = await walk(client, q)
        want = [d.id for d in docs if matches(d, q)]
        assert sorted(got) == sorted(want), q
        # newest first; incidents detected in the same second may come in either order
        by_id = {d.id: d for d in docs}
        assert [by_id[i].detected_at for i in got] == sorted((by_id[i].detected_at for i in got), reverse=True), q
        out[json.dumps(q, sort_keys=True)] = got
    return out


async def month_lists(r: aioredis.Redis, docs: list[Incident]) -> dict[str, list[str]]:
    from monitor.incidents.store import IncidentStore

    store = IncidentStore(r, None)  # type: ignore[arg-type]  # reads only
    tz = ZoneInfo("Asia/Shanghai")
    out = {}
    for month in ("2026-08", "2026-09", "2026-10", "2026-11"):
        start, end = monthly.bounds(month, tz)
        got = [i.id for i in await monthly.of_month(store, start, end)]
        want = [d.id for d in sorted(docs, key=lambda d: (d.detected_at, d.id))
                if start <= d.detected_at < end and (d.level == 3 or d.drill)]
        assert got == want, month
        out[month] = got
    return out


@pytest.mark.parametrize("seed", [1, 2])
async def test_searches_equal_a_full_scan_of_a_random_history(aiohttp_client, tmp_path, redis_url, seed):
    await random_history(tmp_path, redis_url, seed)
    client = await aiohttp_client(make_app(tmp_path, redis_url))
    r = aioredis.from_url(redis_url, decode_responses=True)
    try:
        docs = await assert_indexes_true(r)
        assert len(docs) >= 80 and {d.status for d in docs} == {"open", "acknowledged", "resolved"}
        await answers(client, docs, seed)
        # a unit-limited token (units: [u2]) lists only what touches u2, through the indexes
        for q in ({}, {"status": "resolved"}, {"site": "u1a"}):
            got = await walk(client, q, env="HALLMON_T_PORT")
            assert sorted(got) == sorted(d.id for d in docs if matches(d, q) and "u2" in d.units), q
        await month_lists(r, docs)
        # the console's open list: the unresolved ones, and nothing of the history
        resp = await client.get("/api/v1/incidents-open", headers=auth())
        listed = [d["id"] for d in (await resp.json())["incidents"]]
        assert sorted(listed) == sorted(d.id for d in docs if d.status != "resolved")
    finally:
        await r.aclose()


@pytest.mark.parametrize("q, detail", [({"site": ""}, "site"), ({"category": "x" * 101}, "category"),
                                       ({"level": "4"}, "level"), ({"status": "closed"}, "status")])
async def test_bad_search_filters_are_400(aiohttp_client, tmp_path, redis_url, q, detail):
    client = await aiohttp_client(make_app(tmp_path, redis_url))
    resp = await client.get("/api/v1/incidents", params=q, headers=auth())
    assert resp.status == 400
    body = await resp.json()
    assert body["error"] == "bad_request" and detail in body["detail"]


async def to_06_shape(r: aioredis.Redis) -> int:
    """Rewrite the history as 0.6 stored it: each document with its own frozen plan, no
    secondary indexes, no plan keys, no form mark."""
    n = 0
    for key in await r.keys(f"{P}incident:*"):
        if key.count(":") != 2:
            continue
        doc = inflate(json.loads(await r.get(key)))
        doc["frozen_plan"] = json.loads(await r.get(plan_key(doc["frozen_plan_digest"])))["plan"]
        await r.set(key, json.dumps(doc, ensure_ascii=False), keepttl=True)
        n += 1
    await r.delete(*await r.keys(f"{indexes.IDX}*"), *await r.keys(f"{P}plan:*"), MARK)
    return n


async def test_a_06_history_is_backfilled_to_the_same_answers(aiohttp_client, tmp_path, redis_url):
    await random_history(tmp_path, redis_url, seed=3, n=60)
    r = aioredis.from_url(redis_url, decode_responses=True)
    client = await aiohttp_client(make_app(tmp_path, redis_url))
    try:
        docs = await assert_indexes_true(r)
        before_api, before_months = await answers(client, docs, 3), await month_lists(r, docs)
        size = sum([await r.memory_usage(k) for k in await r.keys(f"{P}incident:*") if k.count(":") == 2])
        docs = await everything(r)  # as the app (its drill duties) left them
        n = await to_06_shape(r)
        old_size = sum([await r.memory_usage(k) for k in await r.keys(f"{P}incident:*") if k.count(":") == 2])
        assert old_size > 4 * size  # what compaction is for: the plan copy per incident
        assert [d.to_json() for d in await everything(r)] == [d.to_json() for d in docs]  # read as it is
        assert await migrate_history(r) == n
        assert await assert_indexes_true(r) and await r.get(MARK) == "1"
        assert not [k for k in await r.keys(f"{P}incident:*") if k.count(":") == 2
                    and "frozen_plan" in json.loads(await r.get(k))]
        assert len(await r.keys(f"{P}plan:*")) == 1  # one plan version, kept once
        assert await answers(client, docs, 3) == before_api and await month_lists(r, docs) == before_months
        assert await migrate_history(r) == 0  # marked: a restart reads one key
        assert await migrate_history(r, force=True) == 0  # and walking again changes nothing
    finally:
        await r.aclose()


MIGRATE = """
import asyncio, sys
import redis.asyncio as aioredis
from monitor.incidents.history import migrate_history
async def main():
    r = aioredis.from_url(sys.argv[1], decode_responses=True)
    print("changed", await migrate_history(r, batch=int(sys.argv[2])), flush=True)
asyncio.run(main())
"""


async def test_the_backfill_killed_midway_and_run_again_gives_the_same_answers(aiohttp_client, tmp_path, redis_url):
    await random_history(tmp_path, redis_url, seed=4, n=60)
    r = aioredis.from_url(redis_url, decode_responses=True)
    client = await aiohttp_client(make_app(tmp_path, redis_url))
    try:
        docs = await assert_indexes_true(r)
        before = await answers(client, docs, 4)
        docs = await everything(r)  # as the app (its drill duties) left them
        n = await to_06_shape(r)
        # one document per transaction; once the first has committed, Redis holds every
        # write (CLIENT PAUSE WRITE: the migration's next EXEC waits) and the process is
        # SIGKILLed there, between two of its transactions
        proc = subprocess.Popen([sys.executable, "-c", MIGRATE, redis_url, "1"], cwd=ROOT,
                                stdout=subprocess.PIPE, text=True, env={**os.environ})
        while not await r.exists(*[plan_key(d.frozen_plan.digest) for d in docs]):  # the first batch committed
            assert proc.poll() is None, "the migration finished before it could be killed"
            await asyncio.sleep(0.001)
        await r.execute_command("CLIENT", "PAUSE", "10000", "WRITE")
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        await r.execute_command("CLIENT", "UNPAUSE")
        compacted = [k for k in await r.keys(f"{P}incident:*") if k.count(":") == 2
                     and "frozen_plan" not in json.loads(await r.get(k))]
        assert 0 < len(compacted) < n
        # midway, every document still reads as it was (compacted or not)
        assert [d.to_json() for d in await everything(r)] == [d.to_json() for d in docs]
        assert await r.get(MARK) is None
        assert 0 < await migrate_history(r, batch=7) <= n  # the rest (and the ones already done are left)
        await assert_indexes_true(r)
        assert await answers(client, docs, 4) == before
    finally:
        await r.aclose()


async def test_two_replicas_backfilling_at_once_agree(tmp_path, redis_url):
    await random_history(tmp_path, redis_url, seed=5, n=40)
    a = aioredis.from_url(redis_url, decode_responses=True)
    b = aioredis.from_url(redis_url, decode_responses=True)
    try:
        docs = await assert_indexes_true(a)
        n = await to_06_shape(a)
        one, two = await asyncio.gather(migrate_history(a, batch=3), migrate_history(b, batch=5))
        assert n <= one + two <= 2 * n  # each document changed by one of them, at most counted by both
        assert [d.to_json() for d in await assert_indexes_true(a)] == [d.to_json() for d in docs]
    finally:
        await a.aclose()
        await b.aclose()


async def test_nothing_per_resolved_incident_stays_in_the_process(tmp_path, redis_url):
    """The frozen plan is parsed once per digest and shared; the console's open list
    keeps only what is open; a resolved incident with a report owed (still watched for
    the metrics) is not in it."""
    rep = make_replica(tmp_path, redis_url)
    try:
        t0 = rep.time.now() - timedelta(minutes=1)
        ids = [(await rep.router.ingest([fault("system.down", s, u, t0, system=f"core-{s}")]))[0] for s, u in SITES[:4]]
        for inc_id in ids[:3]:
            await rep.router.resolve(inc_id, "测试值班长甲", "已恢复")
        watched = await rep.router.store.watched()
        assert {i.id for i in watched} >= set(ids[:3])  # reports still owed after resolution
        assert len({id(i.frozen_plan.data) for i in watched}) == 1  # one parsed plan for them all
        cache = OpenCache()
        rows = await cache.read(rep.router.store)
        assert [inc.id for inc, _ in rows] == [ids[3]] and list(cache.parsed) == [ids[3]]
        raw = await rep.client.get(f"{P}incident:{ids[0]}")
        assert "frozen_plan" not in json.loads(raw) and len(raw) < 4096
    finally:
        await rep.close()
