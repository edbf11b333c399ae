"""The escalation machine on a real Redis and a local webhook, on an injected clock: waits,
acknowledgements, upgrades, redelivered events, exactly-once marks, a reload while an
incident is in flight, and the paging state's one JSON round trip."""
import asyncio
import json

import pytest
from aiohttp import web

from monitor.durable.events import Headline
from monitor.paging.state import PagingState, freeze
from tests.pagingkit import Harness, config, incident, on_duty, paging_yaml
from tests.robots import Robots
from tests.routerkit import TOKENS


@pytest.fixture(autouse=True)
def env(monkeypatch):
    for k, v in TOKENS.items():
        monkeypatch.setenv(k, v)


@pytest.fixture
async def robots():
    r = await Robots().start()
    yield r
    await r.stop()


async def settle(h: Harness, seconds: float = 0.3) -> None:
    """Let whatever would happen happen (real time: Redis round trips)."""
    await asyncio.sleep(seconds)


async def test_without_an_ack_the_policy_walks_on_after_its_wait(redis_url, robots):
    async with Harness(redis_url, config(redis_url, paging_yaml(robots.base, wait="5m"))) as h:
        inc = incident()
        await h.publish("opened", inc)
        await h.until(lambda: len(robots.received["webhook"]) == 1)
        first = robots.received["webhook"][0]
        chief, leader = on_duty(h.clock.now())
        assert first["kind"] == "page" and first["step"] == 0 and first["recipient"]["id"] == chief
        assert first["incident"]["id"] == inc["id"] and first["incident"]["level"] == 2
        assert "自带单" in first["text"]  # the POS runbook line
        assert f"/api/v1/incidents/{inc['id']}/ack?p={chief}&exp=" in first["ack_url"]
        await h.clock.advance(299)
        await settle(h)
        assert len(robots.received["webhook"]) == 1  # 5 minutes are not over
        await h.until(lambda: len(robots.received["webhook"]) == 2, advance=1)
        second = robots.received["webhook"][1]
        assert second["step"] == 2 and second["recipient"]["id"] == leader
        await h.clock.advance(3600)
        await settle(h)
        assert len(robots.received["webhook"]) == 2  # one page per person per step


async def test_an_ack_stops_escalation_and_a_resolution_tells_those_paged(redis_url, robots):
    async with Harness(redis_url, config(redis_url, paging_yaml(robots.base, wait="5m"))) as h:
        inc = incident()
        await h.publish("opened", inc)
        await h.until(lambda: len(robots.received["webhook"]) == 1)
        await h.publish("acknowledged", {**inc, "status": "acknowledged"}, actor="测试值班长乙")
        await settle(h)
        await h.clock.advance(600)
        await settle(h)
        assert len(robots.received["webhook"]) == 1  # the leader's step never came
        await h.publish("resolved", {**inc, "status": "resolved"}, actor="测试值班长乙",
                        detail={"result": "银联线路恢复"})
        await h.until(lambda: len(robots.received["webhook"]) == 2)
        resolved = robots.received["webhook"][1]
        assert resolved["kind"] == "resolved" and "银联线路恢复" in resolved["text"]
        assert resolved["recipient"]["id"] == robots.received["webhook"][0]["recipient"]["id"]


async def test_an_ack_while_a_step_is_on_the_wire_still_stops_the_next_step(redis_url):
    """The duty leader's page is slow to answer; the ack lands meanwhile. The step in
    flight must not write its stale view back over the ack, or the third step fires."""
    pages: list[dict] = []

    async def page(request: web.Request) -> web.Response:
        body = await request.json()
        pages.append(body)
        if body["step"] == 2:
            await asyncio.sleep(1.0)
        return web.json_response({"ok": True})

    rx = web.Application()
    rx.router.add_post("/page", page)
    runner = web.AppRunner(rx, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    policies = """\
            - id: three-steps
              steps:
                - {notify: {roster: hall-duty, layer: duty_chief}}
                - {wait: 5m}
                - {notify: {roster: hall-duty, layer: duty_leader}}
                - {wait: 5m}
                - {notify: {person: duty-a}}
"""
    cfg = config(redis_url, paging_yaml(f"http://127.0.0.1:{runner.addresses[0][1]}", policies=policies))
    try:
        async with Harness(redis_url, cfg) as h:
            inc = incident()
            await h.publish("opened", inc)
            await h.until(lambda: len(pages) == 1)
            await h.until(lambda: len(pages) == 2, advance=10)  # the leader's page is on the wire now
            await h.publish("acknowledged", {**inc, "status": "acknowledged"}, actor="测试值班领导乙")
            await settle(h, 1.2)  # the leader's page answers
            await h.clock.advance(600)  # the third step would be due
            await settle(h)
            assert [p["step"] for p in pages] == [0, 2]
    finally:
        await runner.cleanup()


async def test_redelivered_events_neither_skip_a_wait_nor_page_twice(redis_url, robots):
    """A consumer killed before acknowledging its event gets the event again (another
    replica takes it): an escalation already waiting must not jump past its wait, and a
    redelivered upgrade must not restart the policy a second time."""
    async with Harness(redis_url, config(redis_url, paging_yaml(robots.base, wait="5m"))) as h:
        inc = incident()
        await h.publish("opened", inc)
        await h.until(lambda: len(robots.received["webhook"]) == 1)
        await h.publish("opened", inc)  # the same event again
        await settle(h)
        assert [p["step"] for p in robots.received["webhook"]] == [0]  # the leader waits 5 minutes still
        for _ in range(2):
            await h.publish("upgraded", {**inc, "level": 1, "level_name": "一级"}, at="2026-11-25T09:05:00+08:00")
        await h.until(lambda: len(robots.received["webhook"]) == 2)
        await settle(h)
        assert [p["step"] for p in robots.received["webhook"]] == [0, 0]  # the new level's policy, once
        assert robots.received["webhook"][1]["incident"]["level"] == 1


async def test_a_mark_left_sending_by_a_killed_process_is_resent_and_a_final_one_is_not(redis_url, robots):
    async with Harness(redis_url, config(redis_url, paging_yaml(robots.base, wait="5m"))) as h:
        inc = incident()
        await h.publish("opened", inc)
        await h.until(lambda: len(robots.received["webhook"]) == 1)
        [key] = await h.client.keys("hallmon:paging:sent:*")
        assert (await h.client.get(key)).startswith("sent")

        async def replay(mark: str | None) -> None:
            if mark:
                await h.client.set(key, mark)
            await h.client.delete(f"hallmon:paging:{inc['id']}")  # as if the walk was never recorded
            await h.publish("opened", inc)
            await settle(h)
        await replay(None)
        assert len(robots.idempotency_keys) == 1  # marked sent: nothing goes out again
        await replay("sending:1000.0")  # a process killed between send and mark, long ago
        assert len(robots.idempotency_keys) == 2  # sent again, once ...
        assert len(set(robots.idempotency_keys)) == 1 and len(robots.received["webhook"]) == 1  # ... as a copy
        assert (await h.client.get(key)).startswith("sent")
        await replay("failed:final")  # failed for good is final too
        assert len(robots.idempotency_keys) == 2
        assert await h.pager.outbox.pending() == 0  # nothing left behind in the outbox


async def test_a_reload_applies_to_pages_not_yet_sent_and_the_incident_keeps_its_policy(redis_url, robots):
    before = paging_yaml(robots.base, wait="5m")
    async with Harness(redis_url, config(redis_url, before)) as h:
        chief, leader = on_duty(h.clock.now())
        stand_in = "lead-a" if leader == "lead-b" else "lead-b"
        a = incident("INC-20261125-0001")
        await h.publish("opened", a)
        await h.until(lambda: len(robots.received["webhook"]) == 1)
        # the reload: the leader is on leave (an override), and the policy no longer escalates
        after = before.replace("  policies:\n", f"""\
      overrides:
        - {{layer: duty_leader, person: {stand_in}, from: "2026-11-01T00:00:00+08:00", to: "2026-12-31T00:00:00+08:00"}}
  policies:
""").split("        - {wait: 5m}")[0]
        h.config = config(redis_url, after)
        await h.until(lambda: len(robots.received["webhook"]) == 2, advance=10)
        late = robots.received["webhook"][1]
        assert late["incident"]["id"] == a["id"] and late["step"] == 2  # the frozen policy still escalates
        assert late["recipient"]["id"] == stand_in  # to whoever the roster names now
        b = incident("INC-20261125-0002", category="queue", faults=("queue.down",))
        await h.publish("opened", b)
        await h.until(lambda: len(robots.received["webhook"]) == 3)
        await h.clock.advance(3600)
        await settle(h)
        assert [(p["incident"]["id"], p["step"]) for p in robots.received["webhook"][2:]] == [(b["id"], 0)]


def test_the_paging_state_survives_its_json_round_trip_and_0_5_states_load(redis_url):
    cfg = config(redis_url, paging_yaml("http://127.0.0.1:9", wait="90s"))
    state = freeze(cfg.paging, Headline.of(incident())).model_copy(update={"paged": ("duty-a",), "step": 2})
    assert PagingState.from_json(state.to_json()) == state
    assert state.policy is not None and state.policy.steps[1].wait == 90.0
    legacy = {"incident": incident(decision={"rule": "r"}), "gen": 1, "step": 2, "acked": False, "resolved": False,
              "paged": ["duty-a"], "last_notify": 0,
              "policy": {"id": "default", "match": {"levels": [1, 2, 3], "categories": []},
                         "steps": [{"notify": {"roster": "hall-duty", "layer": "duty_chief", "person": None,
                                               "channel": None}, "wait": None},
                                   {"notify": None, "wait": 90.0},
                                   {"notify": {"roster": "hall-duty", "layer": "duty_leader"}, "wait": None}]}}
    old = PagingState.from_json(json.dumps(legacy))
    assert old.policy == state.policy and old.incident.id == incident()["id"] and old.paged == ("duty-a",)
