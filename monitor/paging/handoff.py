"""The shift hand-off report (Guizhou part 2: check every system at each shift start and
end): the shift check item by item (``shiftcheck``), every site's devices now, what
happened during the shift and its follow-up, and what the next shift inherits. Built
from plain data so the API, the CLI and the automatic hand-off message share it;
rendered from one template in zh or en. And the hand-off scheduler (``Handoffs``)
that sends it at every hand-off."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Awaitable, Callable, Iterable
from zoneinfo import ZoneInfo

import redis.asyncio as aioredis
import structlog

from monitor.config.model import Config
from monitor.core.clock import Clock
from monitor.core.faultnames import category_name, fault_name
from monitor.core.supervise import check_cancelled
from monitor.durable.connection import UNAVAILABLE
from monitor.paging import shiftcheck
from monitor.paging.outbox import Job, Marks, Outbox
from monitor.paging.rosters import Rosters

log = structlog.get_logger("hallmon.handoff")

T = {  # label: (zh, en)
    "title": ("交接班报告", "Shift hand-off report"),
    "shift": ("班次", "Shift"), "out": ("交班值班长", "Outgoing duty chief"), "in": ("接班值班长", "Incoming duty chief"),
    "devices": ("设备状态", "Devices now"), "ok": ("正常", "ok"), "fault": ("故障", "FAULT"),
    "during": ("本班异常及处置", "During the shift"), "inherit": ("移交下一班", "The next shift inherits"),
    "none": ("无", "none"), "due": ("待报", "due"), "filed": ("已报", "filed"),
    "open": ("未确认", "open"), "acknowledged": ("已确认", "acknowledged"), "resolved": ("已处置", "resolved"),
    "pending": ("未到期", "pending"), "overdue": ("已超时", "overdue"), "ack_by": ("确认", "ack by"),
    "level": ("{}级", "L{}"),
    "checks": ("交接班检查", "Shift check"), "start": ("上岗", "start"), "end": ("离岗", "end"),
    "unchecked": ("未检查", "not checked"), "anomaly": ("异常", "ANOMALY"), "follow_up": ("后续处置", "follow-up"),
    "hallmon": ("监测", "hallmon sees"), "on_mains": ("市电供电", "on mains"), "on_battery": ("电池供电", "ON BATTERY"),
    "unseen": ("读不到", "cannot read"), "anomalies": ("未处置完的异常", "Anomalies still open"),
}


def _t(key: str, lang: str) -> str:
    return T.get(key, (key, key))[1 if lang == "en" else 0]


def duty_people(rosters: Rosters, at: datetime) -> dict:
    """The first roster's duty chief (who handles and writes reports) and duty leader
    (who approves them) at ``at``, as report drafts name them."""
    out: dict = {}
    roster = next(iter(rosters.rosters.values()), None)
    if roster is None:
        return out
    for role, layer in zip(("handler", "leader"), roster.layers):
        person = rosters.shift(roster, layer, at).person
        if person is not None:
            out[role] = {"id": person.id, "name": person.name, "phone": person.phone}
    return out


def build(rosters: Rosters, roster_id: str, at: datetime, targets: Iterable[dict], incidents: list[dict],
          checks: list[dict] = ()) -> dict:  # type: ignore[assignment]
    """The report as data. ``targets`` as /api/v1/targets gives them; ``incidents`` as the
    store holds them; ``checks`` the recorded shift checks of the last weeks."""
    targets = list(targets)
    roster = rosters.rosters[roster_id]
    chief = roster.layers[0]
    current = rosters.shift(roster, chief, at)
    previous = rosters.shift(roster, chief, current.start - timedelta(seconds=1))
    start = current.start
    sites: dict[str, list] = {}
    for t in targets:
        reading = t.get("last_reading") or {}
        active = sorted(f for f, s in (t.get("faults") or {}).items() if s.get("active"))
        sites.setdefault(t["site"], []).append({"target": t["name"], "kind": t["kind"], "ok": bool(reading.get("ok")),
                                                "faults": active})
    during, inherit, due = [], [], []
    for inc in incidents:
        if inc.get("drill"):
            continue
        touched = max(inc.get("updated_at", inc["detected_at"]), inc["detected_at"])
        if datetime.fromisoformat(touched) >= start:
            during.append({"id": inc["id"], "level": inc["level"], "category": inc["category"], "sites": inc["sites"],
                           "status": inc["status"], "acknowledged": inc.get("acknowledged"),
                           "resolved": inc.get("resolved"),
                           "reports_filed": [r["clock"] for r in inc.get("reports", [])]})
        if inc["status"] != "resolved":
            inherit.append({"id": inc["id"], "level": inc["level"], "category": inc["category"], "sites": inc["sites"]})
        for c in inc["clocks"]:
            if c["status"] in ("pending", "overdue"):
                due.append({"incident": inc["id"], "clock": c["id"], "title": c["title"],
                            "title_en": c.get("title_en") or c["title"], "due_at": c["due_at"],
                            "status": c["status"]})
    return {
        "roster": roster_id, "timezone": roster.timezone, "at": at.isoformat(), "shift_start": start.isoformat(), "shift_end": current.end.isoformat(),
        "outgoing": previous.person.model_dump() if previous.person else None,
        "incoming": current.person.model_dump() if current.person else None,
        "checks": shiftcheck.section(list(checks), targets, start),
        "sites": sites, "during": during, "inherit": inherit,
        "clocks_due": sorted(due, key=lambda c: c["due_at"]),
    }


def render(report: dict, lang: str = "zh") -> str:
    sep = "：" if lang != "en" else ": "
    en = 1 if lang == "en" else 0
    tz = ZoneInfo(report.get("timezone", "Asia/Shanghai"))
    name = lambda p: p["name"] if p else "-"  # noqa: E731
    when = lambda ts: datetime.fromisoformat(ts).astimezone(tz).strftime("%m-%d %H:%M")  # noqa: E731
    cat = lambda c: category_name(c, lang)  # noqa: E731
    level = lambda n: _t("level", lang).format(("一", "二", "三")[n - 1] if not en and 1 <= n <= 3 else n)  # noqa: E731
    lines = [f"{_t('title', lang)} — {report['roster']}",
             f"{_t('shift', lang)}{sep}{when(report['shift_start'])} → {when(report['shift_end'])}",
             f"{_t('out', lang)}{sep}{name(report['outgoing'])}    {_t('in', lang)}{sep}{name(report['incoming'])}"]
    lines += _checks(report.get("checks"), lang, when)
    lines += ["", f"{_t('devices', lang)}{sep}"]
    for site, devices in sorted(report["sites"].items()):
        states = ", ".join(f"{d['target']} {_t('ok', lang) if d['ok'] and not d['faults'] else _t('fault', lang)}"
                           + (f" ({'，'.join(fault_name(f, lang, code=False) for f in d['faults'])})" if d["faults"] else "")
                           for d in devices)
        lines.append(f"  {site}: {states}")
    lines += ["", f"{_t('during', lang)}{sep}"]
    for i in report["during"] or []:
        ack = f" {_t('ack_by', lang)} {i['acknowledged']['by']}" if i.get("acknowledged") else ""
        res = f" {i['resolved']['by']}{sep}{i['resolved']['result']}" if i.get("resolved") else ""
        filed = f" {_t('filed', lang)} {','.join(i['reports_filed'])}" if i["reports_filed"] else ""
        lines.append(f"  {i['id']} {level(i['level'])} {cat(i['category'])} {','.join(i['sites'])} "
                     f"{_t(i['status'], lang)}{ack}{res}{filed}")
    if not report["during"]:
        lines.append(f"  {_t('none', lang)}")
    lines += ["", f"{_t('inherit', lang)}{sep}"]
    for i in report["inherit"]:
        lines.append(f"  {i['id']} {level(i['level'])} {cat(i['category'])} {','.join(i['sites'])}")
    for c in report["clocks_due"]:
        lines.append(f"  {_t('due', lang)} {c['incident']} {c['title_en' if en else 'title']} {when(c['due_at'])} ({_t(c['status'], lang)})")
    anomalies = (report.get("checks") or {}).get("anomalies", [])
    for a in anomalies:
        lines.append(f"  {_t('anomaly', lang)} {shiftcheck.ITEMS[a['item']][en]}{sep}{a.get('note')}")
    if not report["inherit"] and not report["clocks_due"] and not anomalies:
        lines.append(f"  {_t('none', lang)}")
    return "\n".join(lines) + "\n"


class Handoffs:
    """At every duty-chief hand-off of every roster, the shift report goes to the
    outgoing and incoming duty chiefs, once each (queued in the outbox; the marks keep
    each to once). Replicas note in Redis that one of them is watching; a hand-off less
    than an hour ago that fell while none was (all down) is sent on start."""

    ALIVE = "hallmon:paging:handoffs-alive"

    def __init__(self, client: aioredis.Redis, config: Callable[[], Config], rosters: Callable[[], Rosters],
                 outbox: Outbox, marks: Marks, clock: Clock):
        self.r, self.config, self.rosters, self.outbox, self.marks, self.clock = \
            client, config, rosters, outbox, marks, clock

    async def send(self, roster_id: str, handoff: datetime, report: dict) -> int:
        """Queue the report for both duty chiefs; returns how many were queued now (not before)."""
        people = {p.id: p for p in self.config().paging.people}
        jobs = []
        for who in ("outgoing", "incoming"):
            person = people.get((report.get(who) or {}).get("id", ""))
            if person is None:
                continue
            for ch in person.channels:
                key = f"shift:{roster_id}:{handoff.isoformat()}:{person.id}:{ch}"
                if await self.marks.get(key) is None:
                    jobs.append(Job(key=key, kind="shift", channel=ch, person=person.id, report=report,
                                    detail={"handoff": handoff.isoformat()}, created=self.clock.time()))
        async with self.r.pipeline(transaction=True) as pipe:
            for job in jobs:
                await self.outbox.put(pipe, job)
            added = await pipe.execute()
        self.outbox.wake()
        return sum(1 for ok in added[::2] if ok)  # HSETNX answers 1 for a job new to the outbox

    async def run(self, report_for: Callable[[str, datetime], Awaitable[dict]]) -> None:
        try:
            seen = float(await self.r.get(self.ALIVE) or "inf")
        except UNAVAILABLE:
            seen = float("inf")
        now = self.clock.now()
        rosters = self.rosters()
        for roster in rosters.rosters.values():
            start = rosters.shift(roster, roster.layers[0], now).start
            if seen < start.timestamp() and now - start < timedelta(hours=1):
                log.info("handoff_missed_while_down", roster=roster.id, handoff=start.isoformat())
                await self._handoff(roster.id, start, now, report_for)
        after = now  # the next hand-off is the first one after this
        while True:
            check_cancelled()
            try:
                await self.r.set(self.ALIVE, f"{self.clock.time():.3f}", ex=30 * 86400)
            except UNAVAILABLE:
                pass  # the event loop reports Redis trouble
            rosters = self.rosters()  # after a reload, the rosters it brought
            ends = {r.id: rosters.shift(r, r.layers[0], after).end for r in rosters.rosters.values()}
            when = min(ends.values(), default=None)
            wait = (when - self.clock.now()).total_seconds() if when else 60.0
            if when is None or wait > 0:  # wake up every minute to say this replica is watching
                await self.clock.sleep(min(60.0, wait))
                continue
            if -wait <= 3600:  # a hand-off more than an hour ago (this process was asleep) is past helping
                for roster_id, end in ends.items():  # every roster handing off at that time
                    if end == when:
                        await self._handoff(roster_id, when, when + timedelta(seconds=1), report_for)
            after = max(when, self.clock.now() - timedelta(hours=1))

    async def _handoff(self, roster_id: str, handoff: datetime, at: datetime,
                       report_for: Callable[[str, datetime], Awaitable[dict]]) -> None:
        try:
            await self.send(roster_id, handoff, await report_for(roster_id, at))
        except Exception as err:
            log.error("handoff_report_failed", roster=roster_id, error_class=type(err).__name__, error=str(err),
                      exc_info=err)


def _checks(section: dict | None, lang: str, when) -> list[str]:
    """The shift check, item by item: hallmon's readings, the start and end checks."""
    if not section:
        return []
    sep = "：" if lang != "en" else ": "
    en = 1 if lang == "en" else 0
    lines = ["", f"{_t('checks', lang)}{sep}"]
    for row in section["items"]:
        seen = []
        for r in row["hallmon"]:
            state = _t("unseen", lang) if not r["seen"] else _t("ok", lang) if r["ok"] else _t("fault", lang)
            if r["on_mains"] is not None and r["seen"]:
                state = _t("on_mains", lang) if r["on_mains"] else _t("on_battery", lang)
            seen.append(f"{r['target']} {state}")
        parts = [f"{_t('hallmon', lang)} {', '.join(seen)}"] if seen else []
        for moment in ("start", "end"):
            found = row[moment]
            if found is None:
                parts.append(f"{_t(moment, lang)} {_t('unchecked', lang)}")
                continue
            verdict = _t("ok", lang) if found["ok"] else f"{_t('anomaly', lang)} {found.get('note') or ''}".strip()
            parts.append(f"{_t(moment, lang)} {found['by']} {verdict}")
        lines.append(f"  {shiftcheck.ITEMS[row['item']][en]}{sep}{('; ' if en else '；').join(parts)}")
    if section["anomalies"]:
        lines.append(f"  {_t('anomalies', lang)}{sep}")
        for a in section["anomalies"]:
            follow = f" ({_t('follow_up', lang)}{sep}{a['follow_up']})" if a.get("follow_up") else ""
            lines.append(f"    {shiftcheck.ITEMS[a['item']][en]} {when(a['at'])} {a['by']}{sep}{a.get('note')}{follow}")
    return lines
