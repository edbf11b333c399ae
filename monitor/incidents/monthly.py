"""The monthly summary (Shenzhen 4.3.4): by the 3rd of each month, the level-3 incidents
of the month before, unit by unit, with times, cause and result; drills listed apart
(they are not incidents). Filing the summary meets every incident's monthly clock at
once (``POST /api/v1/reports/monthly``, ``hallmon report monthly --file``).

A month is a calendar month in the service's time zone; an incident belongs to the
month in which it was first seen.
"""
from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Iterable
from zoneinfo import ZoneInfo

from monitor.core.faultnames import category_name, fault_name
from monitor.incidents.indexes import Search
from monitor.incidents.records import Incident
from monitor.incidents.store import IncidentStore

_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
T = {  # label: (zh, en)
    "title": ("三级突发事件月度汇总", "Monthly summary of level 3 incidents"),
    "unit": ("单位", "Unit"), "none": ("本月无三级突发事件", "no level 3 incidents this month"),
    "detected": ("发生", "seen"), "resolved": ("处置完毕", "resolved"), "open": ("处置中", "still being handled"),
    "cause": ("原因", "cause"), "result": ("结果", "result"), "drills": ("演练（不计入统计）", "Drills (not counted)"),
    "total": ("合计", "Total"), "filed": ("已报送", "filed"), "due": ("报送期限", "due"),
    "withdrawn": ("已撤销", "withdrawn"),
}


class BadMonth(ValueError):
    pass


def bounds(month: str, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """``2026-11`` → the first instant of November and of December, local time."""
    m = _MONTH.match(month or "")
    if not m or not 2000 <= int(m[1]) <= 2100:
        raise BadMonth("month: expected YYYY-MM, like 2026-11")
    year, mon = int(m[1]), int(m[2])
    start = datetime(year, mon, 1, tzinfo=tz)
    end = datetime(year + (mon == 12), mon % 12 + 1, 1, tzinfo=tz)
    return start, end


async def of_month(store: IncidentStore, start: datetime, end: datetime) -> list[Incident]:
    """What the summary lists of the incidents first seen in [start, end), oldest first:
    the level-3 ones and the drills, read through the store's indexes (nothing else of
    the month, nor of any other month, is read)."""
    out: dict[str, Incident] = {}
    for search in (Search(level=3, since=start, until=end), Search(drill=True, since=start, until=end)):
        offset: int | None = 0
        while offset is not None:
            page = await store.search(search, limit=500, offset=offset, oldest_first=True)
            out.update((inc.id, inc) for inc in page.incidents)
            offset = page.next_offset
    return sorted(out.values(), key=lambda inc: (inc.detected_at, inc.id))


def _iso(dt: datetime | None) -> str | None:
    return dt.isoformat(timespec="seconds") if dt else None


def _row(inc: Incident, lang: str) -> dict:
    monthly = {c.id for c in inc.frozen_plan.plan.clocks if c.parsed_due()[0] == "monthly"}
    return {"id": inc.id, "level": inc.level, "detected_at": _iso(inc.detected_at),
            "resolved_at": _iso(inc.resolved.at) if inc.resolved else None, "sites": list(inc.sites),
            "category": category_name(inc.category, lang),
            "cause": ("、" if lang == "zh" else ", ").join(fault_name(f, lang, code=False) for f in inc.faults),
            "result": inc.resolved.result if inc.resolved else None,
            "clocks": [{"id": c.id, "status": c.status, "due_at": _iso(c.due_at)} for c in inc.clocks
                       if c.id in monthly]}


def build(month: str, docs: Iterable[Incident], units: dict[str, str], lang: str = "zh",
          only: set[str] | None = None) -> dict:
    """The summary as data. ``units``: id → name of the organisation's units; ``only``:
    the units to include (a unit-limited caller)."""
    per_unit: dict[str, list[dict]] = {u: [] for u in units if only is None or u in only}
    drills = []
    for inc in docs:
        mine = [u for u in inc.units if u in per_unit]
        if not mine or inc.folded_into:  # folded: counted in the uplink's incident
            continue
        if inc.drill:
            drills.append(_row(inc, lang))
        elif inc.level == 3:
            for unit in mine:
                per_unit[unit].append(_row(inc, lang))
    return {"month": month, "lang": lang, "source": "Shenzhen 4.3.4",
            "units": [{"unit": u, "name": units[u], "incidents": rows} for u, rows in per_unit.items()],
            "total": len({r["id"] for rows in per_unit.values() for r in rows}), "drills": drills}


def render(report: dict, tz: ZoneInfo) -> str:
    lang = report["lang"]
    en = 1 if lang == "en" else 0
    sep = ": " if en else "："

    def t(key: str) -> str:
        return T[key][en]

    def when(ts: str | None) -> str:
        return datetime.fromisoformat(ts).astimezone(tz).strftime("%m-%d %H:%M") if ts else "-"

    def line(r: dict) -> str:
        end = f"{t('resolved')} {when(r['resolved_at'])}" if r["resolved_at"] else t("open")
        def state(c: dict) -> str:
            return {"met": t("filed"), "withdrawn": t("withdrawn")}.get(c["status"], t("due") + " " + when(c["due_at"]))

        filed = "".join(f" [{c['id']} {state(c)}]" for c in r["clocks"])
        return (f"  {r['id']} {','.join(r['sites'])} {t('detected')} {when(r['detected_at'])}, {end}; "
                f"{r['category']}{sep}{r['cause'] or '-'}; {t('result')}{sep}{r['result'] or '-'}{filed}")

    lines = [f"{t('title')} — {report['month']} ({report['source']})"]
    for unit in report["units"]:
        lines.append(f"{t('unit')}{sep}{unit['name']} ({unit['unit']}), {len(unit['incidents'])}")
        lines += [line(r) for r in unit["incidents"]] or [f"  {t('none')}"]
    lines.append(f"{t('total')}{sep}{report['total']}")
    if report["drills"]:
        lines += ["", f"{t('drills')}{sep}"] + [line(r) for r in report["drills"]]
    return "\n".join(lines) + "\n"


def fileable(report: dict) -> list[tuple[str, str]]:
    """(incident, clock) pairs the summary files: monthly clocks still owed (a withdrawn
    one is not: its incident's level no longer asks for it)."""
    out: list[tuple[str, str]] = []
    for unit in report["units"]:
        for r in unit["incidents"]:
            out += [(r["id"], c["id"]) for c in r["clocks"] if c["status"] in ("pending", "overdue")
                    and (r["id"], c["id"]) not in out]
    return out


def units_of(cfg: Any) -> dict[str, str]:
    return {u.id: u.name for u in cfg.organisation.units}
