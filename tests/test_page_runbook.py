"""The "what to do" line of a page comes from the incident's frozen plan, carried in its
events (issue 22, item 3), never from a plan looked up by id when the page is written: a
plan file's own runbook reaches the page (a lookup by its id finds nothing), and an edit
of the file after the incident opened does not change that incident's pages. Run with
each built-in plan as the file's base, through the router's own events."""
from __future__ import annotations

from datetime import timedelta

import pytest
import yaml

from monitor.core.alert import Alert
from monitor.durable.events import IncidentEvent
from monitor.paging.messages import render
from monitor.plans.model import builtin_ids, load_plan
from tests.routerkit import FakeTime, config_file, replica

pytestmark = pytest.mark.usefixtures("tokens")


def plan_file(path, base: str, zh: str, en: str) -> str:
    data = load_plan(base).model_dump(mode="json", by_alias=True)
    data["id"] = "local-test-plan"
    for cat in data["categories"]:
        if cat["id"] == "power":
            cat["runbook"] = {"zh": zh, "en": en}
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return str(path)


async def events_of(client, incident_id: str) -> list[IncidentEvent]:
    return [e for e in (IncidentEvent.from_fields(f) for _, f in await client.xrange("hallmon:events"))
            if e.id == incident_id]


@pytest.mark.parametrize("base", builtin_ids())
async def test_a_page_says_what_the_incidents_own_plan_says_to_do(tmp_path, redis_url, base):
    path = tmp_path / "local-plan.yml"
    cfg = config_file(tmp_path, redis_url, plan_file(path, base, "测试要点甲：切换备用电源", "Test step A: switch to the spare"))
    rep = replica(cfg, redis_url, FakeTime())
    try:
        t0 = rep.time.now() - timedelta(minutes=1)
        [inc_id] = await rep.router.ingest([Alert(labels={"alertname": "HallmonFault", "fault": "power.on_battery",
                                                          "site": "u1a", "unit": "u1", "system": "ups-1",
                                                          "target": "u1a-ups"}, starts_at=t0, source="api")])
        plan_file(path, base, "测试要点乙：已修改", "Test step B: edited")  # the file edited after the opening
        await rep.router.ack(inc_id, "测试值班员甲", "console")
        opened, acked = await events_of(rep.client, inc_id)
        for event in (opened, acked):
            assert event.incident.plan == "local-test-plan"
            zh = render("page", "zh", event.incident).text
            en = render("page", "en", event.incident).text
            assert "测试要点甲：切换备用电源" in zh and "Test step A: switch to the spare" in en, (zh, en)
            assert "已修改" not in zh and "edited" not in en
    finally:
        await rep.close()
