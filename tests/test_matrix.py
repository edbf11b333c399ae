"""Every built-in plan × every category of it, through a live ``hallmon run`` and a real
Redis: open, upgrade (more sites), harm flags, report filed, resolve. No 5xx anywhere,
every clock has a due time with its offset, and every report draft (phone, written,
final) renders in zh and en at every step. One process per plan, its categories run
concurrently."""
import asyncio
from datetime import datetime, timedelta, timezone

import aiohttp
import pytest

from monitor.plans.clocks import applies
from monitor.plans.model import Category, Plan, builtin_ids, load_plan
from tests.routerkit import TOKENS, auth, org_config

STEPS = ("open", "upgrade", "flags", "report", "resolve", "report after resolve")
DRAFTED = ("open", "flags", "report after resolve")  # the drafts render at these steps
SPREAD = [("u1b", "u1"), ("u3a", "u3"), ("u4a", "u4")]  # with u1a: a whole unit, then 3 of 5 units


def fault_for(plan: Plan, cat: Category) -> str:
    """A fault the plan files under ``cat`` (first match wins, so try each pattern)."""
    for pattern in cat.faults:
        for fill in ("x", "down", "fault"):
            fault = pattern.replace("*", fill)
            found = plan.category_for(fault)
            if found is not None and found.id == cat.id:
                return fault
    raise AssertionError(f"{plan.id}: no fault reaches category {cat.id}")


class Walk:
    def __init__(self, session: aiohttp.ClientSession, base: str, plan: Plan, cat: Category):
        self.s, self.base, self.plan, self.cat = session, base, plan, cat
        self.fault = fault_for(plan, cat)
        self.manual = self.fault.startswith("manual.")
        self.system = "manual" if self.manual else f"sys-{cat.id}"
        self.levels: list[int] = []
        self.checked = 0
        self.filed = 0
        self.clocks: set[str] = set()

    async def call(self, method: str, path: str, **kw) -> tuple[int, dict | str]:
        async with self.s.request(method, self.base + path, headers=auth(), **kw) as resp:
            body = await resp.json() if resp.content_type == "application/json" else await resp.text()
            assert resp.status < 500, (self.plan.id, self.cat.id, method, path, resp.status, body)
            assert resp.status == 200 or (resp.status == 201 and method == "POST"), (path, resp.status, body)
            return resp.status, body

    def alert(self, site: str, unit: str) -> dict:
        return {"labels": {"alertname": "MatrixFault", "fault": self.fault, "site": site, "unit": unit,
                           "system": self.system, "target": f"{site}-{self.cat.id}"},
                "annotations": {"summary": f"{site} {self.fault}"},
                "startsAt": (datetime.now(timezone.utc) - timedelta(minutes=2)).isoformat()}

    async def check(self, inc: dict, step: str) -> None:
        assert inc["category"] == self.cat.id and inc["plan"] == self.plan.id, (step, inc["category"])
        demanded = {c.id for c in self.plan.clocks if applies(c, inc["level"], self.cat.id)
                    and (c.from_ != "resolved" or inc["status"] == "resolved")
                    and not (c.parsed_due()[0] == "every" and inc["status"] == "resolved")}
        assert demanded <= {c["id"].split("#")[0] for c in inc["clocks"]}, (self.plan.id, self.cat.id, step)
        for clock in inc["clocks"]:
            due = datetime.fromisoformat(clock["due_at"])
            assert due.tzinfo is not None and clock["status"] in ("pending", "met", "overdue", "withdrawn"), clock
            assert clock["title"] and clock["source"] and "to" in clock["audience"]
        self.levels.append(inc["level"])
        self.clocks.update(c["id"] for c in inc["clocks"])
        if step not in DRAFTED:
            return
        for kind in ("phone", "written", "final"):
            for lang in ("zh", "en"):
                _, text = await self.call("GET", f"/api/v1/incidents/{inc['id']}/report",
                                          params={"kind": kind, "lang": lang})
                assert isinstance(text, str) and inc["id"] in text and len(text.splitlines()) >= 6, (kind, lang)
                self.checked += 1

    async def run(self) -> None:
        if self.manual:
            _, inc = await self.call("POST", "/api/v1/incidents", json={
                "category": self.fault.split(".", 1)[1], "site": "u1a", "by": "测试值班长甲", "summary": "矩阵测试"})
        else:
            _, body = await self.call("POST", "/api/v1/alerts", json=[self.alert("u1a", "u1")])
            [inc_id] = body["incidents"]
            _, inc = await self.call("GET", f"/api/v1/incidents/{inc_id}")
        inc_id = inc["id"]
        await self.check(inc, "open")
        _, body = await self.call("POST", "/api/v1/alerts", json=[self.alert(s, u) for s, u in SPREAD])
        assert body["incidents"] == [inc_id], (self.cat.id, body)
        _, inc = await self.call("GET", f"/api/v1/incidents/{inc_id}")
        assert inc["sites"] == ["u1a", "u1b", "u3a", "u4a"] and inc["level"] <= self.levels[0]
        await self.check(inc, "upgrade")
        _, inc = await self.call("POST", f"/api/v1/incidents/{inc_id}/flags",
                                 json={"flags": ["injuries"], "by": "测试值班长甲", "reason": "矩阵测试"})
        assert inc["flags"] == ["injuries"] and inc["level"] <= self.levels[-1]
        await self.check(inc, "flags")
        inc = await self.file(inc)  # a report owed while handling (none at some levels)
        await self.check(inc, "report")
        _, inc = await self.call("POST", f"/api/v1/incidents/{inc_id}/resolve",
                                 json={"by": "测试值班长甲", "result": "已恢复"})
        assert inc["status"] == "resolved" and not [c for c in inc["clocks"]
                                                    if c["every_seconds"] and c["status"] == "pending"]
        await self.check(inc, "resolve")
        inc = await self.file(inc, after=True)  # a report owed after the end
        await self.check(inc, "report after resolve")

    async def file(self, inc: dict, after: bool = False) -> dict:
        owed = [c for c in inc["clocks"] if c["status"] in ("pending", "overdue")
                and (c["anchor"] == "resolved") == after]
        if not owed:  # e.g. hohhot-customs owes nothing for a POS fault
            return inc
        clock = owed[0]
        _, inc = await self.call("POST", f"/api/v1/incidents/{inc['id']}/reports/{clock['id']}",
                                 json={"by": "测试值班长甲", "note": "已报告"})
        filed = next(c for c in inc["clocks"] if c["id"] == clock["id"])
        assert filed["status"] == "met" or (clock["every_seconds"] and filed["seq"] == clock["seq"] + 1), filed
        self.filed += 1
        return inc


@pytest.mark.parametrize("plan_id", builtin_ids())
def test_every_category_of_every_plan_walks_open_to_resolved_without_a_5xx(tmp_path, redis_url, service, plan_id):
    cfg = tmp_path / "hall.yml"
    cfg.write_text(org_config(redis_url, plan=plan_id), encoding="utf-8")
    svc = service(cfg, env=TOKENS)
    plan = load_plan(plan_id)

    async def walk_all() -> list[Walk]:
        async with aiohttp.ClientSession() as session:
            walks = [Walk(session, svc.base, plan, cat) for cat in plan.categories]
            await asyncio.gather(*(w.run() for w in walks))
            return walks

    walks = asyncio.run(walk_all())
    assert len(walks) == len(plan.categories) >= 8
    assert all(w.checked == len(DRAFTED) * 6 for w in walks)
    assert any(w.filed for w in walks)
    assert not [e for e in svc.events() if e.get("level") in ("error", "critical")], "errors in the service log"
