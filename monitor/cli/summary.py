"""Incidents as a duty officer reads them on a terminal: site and unit names, local
times in the config's time zone, faults in words, clocks with status and due time, the
last timeline entries. Every word comes from the console's catalogue (one catalogue for
the console and the command line, Chinese by default, English on request); fault and
category names from monitor/core/faultnames.py.

The API's JSON is read once into typed records here (``Shown``); nothing below reads a
document by key."""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Mapping
from zoneinfo import ZoneInfo

from monitor.console.catalogue import STRINGS
from monitor.core.faultnames import category_name, fault_names
from monitor.core.timesource import parse_iso
from monitor.incidents.records import Ack, Resolution, TimelineEntry
from monitor.plans.clocks import Clock

LAST = 5  # timeline entries a summary shows


def t(key: str, lang: str, **values: Any) -> str:
    text = STRINGS[key][1 if lang == "en" else 0]
    return text.format(**values) if values else text


@dataclass(frozen=True)
class Org:
    """What ``/api/v1/whoami`` says about the organisation the token sees."""

    timezone: ZoneInfo
    units: Mapping[str, str]  # id → name
    sites: Mapping[str, str]
    rosters: tuple[str, ...]

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "Org":
        units = d["organisation"]["units"]
        return cls(timezone=ZoneInfo(d["timezone"]), units={u["id"]: u["name"] for u in units},
                   sites={s["id"]: s["name"] for u in units for s in u["sites"]}, rosters=tuple(d.get("rosters", ())))

    def local(self, at: datetime | None, seconds: bool = False) -> str:
        return at.astimezone(self.timezone).strftime("%Y-%m-%d %H:%M" + (":%S" if seconds else "")) if at else "-"

    def site_names(self, ids: tuple[str, ...], lang: str) -> str:
        return ("、", ", ")[lang == "en"].join(self.sites.get(s, s) for s in ids) or "-"

    def unit_names(self, ids: tuple[str, ...], lang: str) -> str:
        return ("、", ", ")[lang == "en"].join(self.units.get(u, u) for u in ids) or "-"


@dataclass(frozen=True)
class Shown:
    """The fields of an incident document the summary shows."""

    id: str
    status: str
    level: int
    plan: str
    category: str
    system: str
    sites: tuple[str, ...]
    units: tuple[str, ...]
    faults: tuple[str, ...]
    flags: tuple[str, ...]
    detected_at: datetime
    drill: bool
    maintenance: bool
    recovered: bool
    rule: str | None
    source: str | None
    decided_by: str | None
    reason: str | None
    clocks: tuple[Clock, ...]
    acknowledged: Ack | None
    resolved: Resolution | None
    timeline: tuple[TimelineEntry, ...]
    timeline_intact: bool | None

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "Shown":
        dec = d.get("decision") or {}
        return cls(id=d["id"], status=d["status"], level=int(d["level"]), plan=d["plan"], category=d["category"],
                   system=d["system"], sites=tuple(d["sites"]), units=tuple(d["units"]),
                   faults=tuple(d.get("faults", ())), flags=tuple(d.get("flags", ())),
                   detected_at=parse_iso(d["detected_at"]), drill=bool(d.get("drill")),
                   maintenance=bool(d.get("maintenance")), recovered=bool(d.get("recovered")),
                   rule=dec.get("rule"), source=dec.get("source"), decided_by=dec.get("by"), reason=dec.get("reason"),
                   clocks=tuple(Clock.from_json(c) for c in d.get("clocks", ())),
                   acknowledged=Ack.from_json(d["acknowledged"]) if d.get("acknowledged") else None,
                   resolved=Resolution.from_json(d["resolved"]) if d.get("resolved") else None,
                   timeline=tuple(TimelineEntry.from_json(e) for e in d.get("timeline", ())),
                   timeline_intact=d.get("timeline_intact"))

    def what(self, lang: str) -> str:
        return fault_names(self.faults, lang, code=False) or category_name(self.category, lang)

    def marks(self, lang: str) -> str:
        on = (("drill", self.drill), ("maintenance", self.maintenance), ("recovered", self.recovered))
        return " ".join(f"[{t('mark.' + key, lang)}]" for key, flag in on if flag)

    def next_clock(self) -> Clock | None:
        owed = [c for c in self.clocks if c.owed]  # a withdrawn clock is due no more
        return min(owed, key=lambda c: c.due_at) if owed else None


def _width(text: str) -> int:
    """Columns a terminal gives the text: CJK characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, width: int) -> str:
    return text + " " * max(0, width - _width(text))


def table(rows: list[list[str]]) -> str:
    widths = [max(_width(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join(("  ".join(_pad(c, w) for c, w in zip(r, widths)) + "  " + r[-1]).rstrip() for r in rows)


def level_name(level: int, lang: str) -> str:
    key = f"level.{level}"
    return t(key, lang) if key in STRINGS else t("level.n", lang, n=level)


def clock_title(clock: Clock, lang: str) -> str:
    return clock.title_en if lang == "en" else clock.title


def list_text(docs: list[Mapping[str, Any]], org: Org, lang: str) -> str:
    """``incidents list``: a header, then one row per incident (local times, site names)."""
    if not docs:
        return t("list.empty", lang)
    head = [t(k, lang) for k in ("cli.id", "inc.level", "inc.status", "detected", "inc.sites", "cli.next",
                                 "inc.faults")]
    rows = [head]
    for d in docs:
        inc = Shown.from_json(d)
        nxt = inc.next_clock()
        rows.append([inc.id, level_name(inc.level, lang), t(f"status.{inc.status}", lang), org.local(inc.detected_at),
                     org.site_names(inc.sites, lang),
                     f"{org.local(nxt.due_at)} {clock_title(nxt, lang)}" if nxt else "-",
                     " ".join(filter(None, (inc.what(lang), inc.marks(lang))))])
    return table(rows) + "\n" + t("cli.times", lang, tz=org.timezone.key)


def detail_text(e: TimelineEntry, lang: str) -> str:
    """What a timeline entry changed, in short (as the console's ``detailText`` says it)."""
    d = e.detail
    bits: list[str] = []
    if "from" in d and "to" in d:
        bits.append(f"{d['from']} → {d['to']}")
    if isinstance(d.get("upgraded"), Mapping):
        up = d["upgraded"]
        bits.append(f"{up.get('from')} → {up.get('to')} ({up.get('rule')})")
    if d.get("clock"):
        bits.append(str(d["clock"]))
    if isinstance(d.get("flags"), list):
        bits.append("、".join(t(f"flag.{f}", lang) if f"flag.{f}" in STRINGS else str(f) for f in d["flags"]))
    bits += [str(d[k]) for k in ("reason", "result", "note") if d.get(k)]
    if d.get("late"):
        bits.append(t("clock.latefiled", lang))
    if "alerts" in d and e.action != "report_filed":
        bits.append(f"{t('inc.alerts', lang)}: {d['alerts']}")
    return ("；", "; ")[lang == "en"].join(bits)


def show_text(d: Mapping[str, Any], org: Org, lang: str) -> str:
    """``incidents show``: the summary a duty officer reads."""
    inc = Shown.from_json(d)
    sep = ": " if lang == "en" else "："
    lines = [" ".join(filter(None, (inc.id, level_name(inc.level, lang), t(f"status.{inc.status}", lang),
                                    inc.marks(lang)))),
             f"{t('inc.faults', lang)}{sep}{fault_names(inc.faults, lang) or '-'}",
             f"{t('inc.category', lang)}{sep}{category_name(inc.category, lang)}  "
             f"{t('inc.plan', lang)}{sep}{inc.plan}",
             f"{t('inc.sites', lang)}{sep}{org.site_names(inc.sites, lang)}  "
             f"{t('inc.units', lang)}{sep}{org.unit_names(inc.units, lang)}",
             f"{t('detected', lang)}{sep}{org.local(inc.detected_at, seconds=True)} {t('cli.times', lang, tz=org.timezone.key)}"]
    if inc.rule:
        why = f"{t('decision.rule', lang)} {inc.rule}" + (f" [{inc.source}]" if inc.source else "")
        if inc.decided_by:
            why += f"  {t('decision.by', lang)}{sep}{inc.decided_by}"
        if inc.reason:
            why += f"  {t('decision.reason', lang)}{sep}{inc.reason}"
        lines.append(f"{t('inc.decision', lang)}{sep}{why}")
    if inc.flags:
        lines.append(f"{t('inc.flags', lang)}{sep}" + ("、", ", ")[lang == "en"].join(
            t(f"flag.{f}", lang) if f"flag.{f}" in STRINGS else f for f in inc.flags))
    if inc.acknowledged:
        lines.append(f"{t('inc.acked', lang)}{sep}{inc.acknowledged.by} {org.local(inc.acknowledged.at)}")
    if inc.resolved:
        lines.append(f"{t('inc.resolved', lang)}{sep}{inc.resolved.result} ({inc.resolved.by} "
                     f"{org.local(inc.resolved.at)})")
    if inc.clocks:
        lines.append(f"{t('inc.clocks', lang)}{sep.rstrip()}")
        rows = [[t(k, lang) for k in ("clock.title", "clock.status", "clock.due", "clock.audience")]]
        for c in sorted(inc.clocks, key=lambda c: c.due_at):
            status = t(f"clockstatus.{c.status}", lang) + (
                f" ({c.filed.by} {org.local(c.filed.at)})" if c.filed else "")
            rows.append([clock_title(c, lang), status, org.local(c.due_at), "、".join(c.audience.to) or "-"])
        lines += ["  " + row for row in table(rows).splitlines()]
    if inc.timeline:
        last = inc.timeline[-LAST:]
        lines.append(t("cli.last", lang, n=len(last), total=len(inc.timeline)) + sep.rstrip())
        for e in last:
            action = t(f"action.{e.action}", lang) if f"action.{e.action}" in STRINGS else e.action
            detail = detail_text(e, lang)
            lines.append(f"  {org.local(e.at, seconds=True)}  {e.actor}  {action}" + (f"  {detail}" if detail else ""))
        if inc.timeline_intact is not None:
            lines.append("  " + t("inc.intact" if inc.timeline_intact else "inc.broken", lang))
    lines.append(t("cli.raw", lang, id=inc.id))
    return "\n".join(lines)
