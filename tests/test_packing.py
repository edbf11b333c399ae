"""Resolved documents deflated against a preset dictionary (``incidents.packing``): on
every built-in plan a resolved incident stored by the router packs to well under half
of what deflate alone gives, and reads back the same from each stored form: the
dictionary form, 0.7's first form (deflate alone) and plain JSON. The dictionary's
bytes are pinned: documents packed with it are read with exactly them forever."""
from __future__ import annotations

import base64
import hashlib
import json
import zlib
from datetime import timedelta

import pytest

from monitor.incidents import packing
from monitor.incidents.store import P, decode
from monitor.plans.model import builtin_ids
from tests.test_history import fault, make_replica

pytestmark = pytest.mark.usefixtures("tokens")

PINNED = {1: "1bb5b907f1050e982f1d7305b34b0b0489b548d39901569fbb7675c4bef30a06"}


def test_each_released_dictionary_keeps_its_bytes():
    for n, digest in PINNED.items():
        assert hashlib.sha256(packing.dictionary(n)).hexdigest() == digest, f"zdict-{n}.txt changed: add a new one"
    assert packing.DICTIONARY in PINNED


@pytest.mark.parametrize("plan", builtin_ids())
async def test_a_resolved_document_packs_small_and_reads_back_from_every_form(tmp_path, redis_url, plan):
    rep = make_replica(tmp_path, redis_url, plan)
    try:
        t0 = rep.time.now() - timedelta(minutes=5)
        [inc_id] = await rep.router.ingest([fault("power.on_battery", "u1a", "u1", t0, system="ups-1")])
        await rep.router.resolve(inc_id, "测试值班长甲", "已恢复")
        key = f"{P}incident:{inc_id}"
        raw = await rep.client.get(key)
        stored = json.loads(raw)
        doc = packing.inflate(stored)
        assert stored["d"] == packing.DICTIONARY and stored["v"] == doc["v"]  # read without inflating
        plain = json.dumps(doc, ensure_ascii=False)
        deflated = json.dumps({"v": doc["v"], "z": base64.b64encode(zlib.compress(plain.encode(), 9)).decode()})
        print(f"{plan}: {len(plain)} B of JSON, deflated {len(deflated)} B, with the dictionary {len(raw)} B")
        assert len(raw) < 0.6 * len(deflated), (len(raw), len(deflated))
        [now] = await decode(rep.client, [raw])
        assert now is not None and now.status == "resolved" and now.id == inc_id
        for form in (deflated, plain):
            await rep.client.set(key, form, keepttl=True)
            [read] = await decode(rep.client, [await rep.client.get(key)])
            assert read is not None and read.to_json() == now.to_json()
        # a late report on a document read from the older form is written back in today's
        owed = [c for c in now.clocks if c.owed]
        if owed:
            await rep.router.file_report(inc_id, owed[0].id, "测试值班长甲", None, "已报送")
            assert json.loads(await rep.client.get(key))["d"] == packing.DICTIONARY
    finally:
        await rep.close()


async def test_hallmon_migrate_repacks_what_a_start_leaves_as_it_is(tmp_path, redis_url):
    """A document 0.7 first deflated without the dictionary: a start's history migration
    reads it as it is; the forced one (``hallmon migrate``) repacks it, once."""
    from monitor.incidents.history import migrate_history

    rep = make_replica(tmp_path, redis_url)
    try:
        t0 = rep.time.now() - timedelta(minutes=5)
        [inc_id] = await rep.router.ingest([fault("queue.down", "u1a", "u1", t0, system="queue-1")])
        await rep.router.resolve(inc_id, "测试值班长甲", "已恢复")
        key = f"{P}incident:{inc_id}"
        [before] = await decode(rep.client, [await rep.client.get(key)])
        doc = packing.inflate(json.loads(await rep.client.get(key)))
        text = json.dumps(doc, ensure_ascii=False).encode()
        older = json.dumps({"v": doc["v"], "z": base64.b64encode(zlib.compress(text, 9)).decode()})
        await rep.client.set(key, older, keepttl=True)
        assert await migrate_history(rep.client) == 0 and await rep.client.get(key) == older  # a start leaves it
        assert await migrate_history(rep.client, force=True) == 1
        repacked = json.loads(await rep.client.get(key))
        assert repacked["d"] == packing.DICTIONARY and len(json.dumps(repacked)) < len(older)
        assert await rep.client.ttl(key) > 0  # its retention kept
        [after] = await decode(rep.client, [await rep.client.get(key)])
        assert after is not None and before is not None and after.to_json() == before.to_json()
        assert await migrate_history(rep.client, force=True) == 0  # idempotent
    finally:
        await rep.close()
