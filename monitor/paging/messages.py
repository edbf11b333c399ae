"""What a page says: one template per message kind (page, reminder, overdue, resolved,
digest), rendered in Chinese by default or English on request from the same fields.
Every page carries level, fault, site, first seen, the next report due and when, and
the runbook line for the fault's category (PLANS.md §1)."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Mapping
from zoneinfo import ZoneInfo

from monitor.core.errors import ConfigError
from monitor.core.faultnames import category_name, fault_names
from monitor.durable.events import ClockRef, Headline
from monitor.plans.model import load_plan

LABELS = {  # one label per field, both languages
    "level": ("级别", "Level"), "fault": ("故障", "Fault"), "site": ("场所", "Site"),
    "detected": ("首次发现", "First seen"), "next": ("下一份报告", "Next report due"),
    "todo": ("处置要点", "What to do"), "ack": ("确认链接", "Acknowledge"), "clock": ("报告", "Report"),
    "due": ("截止", "Due"), "to": ("报送", "To"), "result": ("处置结果", "Result"), "by": ("处置人", "By"),
    "step": ("升级步骤", "Escalation step"),
}
TITLES = {
    "page": ("{drill}{maint}【{level}】{sites} {category}故障", "{drill}{maint}[{level}] {category} fault at {sites}"),
    "reminder": ("{drill}【报告提醒】{clock} 将于 {due} 到期", "{drill}[Report due soon] {clock} due {due}"),
    "overdue": ("{drill}【报告超时】{clock} 已于 {due} 超时", "{drill}[Report overdue] {clock} was due {due}"),
    "resolved": ("{drill}【已处置】{sites} {category}故障", "{drill}[Resolved] {category} fault at {sites}"),
    "digest": ("【汇总】{count} 条告警通知", "[Digest] {count} notifications"),
}
LINES = {
    "page": ("level", "fault", "site", "detected", "next", "todo", "step", "ack"),
    "reminder": ("clock", "due", "to", "level", "site", "ack"),
    "overdue": ("clock", "due", "to", "level", "site", "step", "ack"),
    "resolved": ("result", "by", "site", "detected"),
}


@dataclass(frozen=True)
class Message:
    kind: str
    title: str
    text: str  # markdown-ish lines
    incident: dict[str, Any] = field(default_factory=dict)
    step: int = 0
    ack_url: str = ""
    lang: str = "zh"


def _i(lang: str) -> int:
    return 1 if lang == "en" else 0


def _local(ts: str | None, tz: ZoneInfo) -> str:
    return datetime.fromisoformat(ts).astimezone(tz).strftime("%m-%d %H:%M") if ts else "-"


def _runbook(inc: Headline, lang: str) -> str:
    """From the incident's frozen plan, carried by the event; an event written before 0.7
    carries none, and the plan of that id stands in."""
    if inc.runbook:
        return inc.runbook.get(lang, "")
    try:
        plan = load_plan(inc.plan or "default")
    except ConfigError:
        return ""
    cat = next((c for c in plan.categories if c.id == inc.category), None)
    return cat.runbook.get(lang) if cat else ""


def render(kind: str, lang: str, inc: Headline, *, clock: ClockRef | None = None, step: int = 0,
           ack_url: str = "", site_names: Mapping[str, str] | None = None, tz: ZoneInfo | None = None,
           detail: Mapping[str, Any] | None = None) -> Message:
    """One message about one incident, from the headline its event carried."""
    tz = tz or ZoneInfo("Asia/Shanghai")
    i = _i(lang)
    names = site_names or {}
    sites = ("、", ", ")[i].join(names.get(s, s) for s in inc.sites)
    nxt = inc.next_clock
    clock_title = (clock.title_en if i else clock.title) if clock else ""
    detail = detail or {}
    values = {
        "level": inc.level_name if i == 0 and inc.level_name else f"Level {inc.level}",
        "fault": fault_names(inc.faults, lang) or inc.category,
        "site": sites or "-",
        "detected": _local(inc.detected_at, tz),
        "next": f"{nxt.title_en if i else nxt.title} {_local(nxt.due_at, tz)}" if nxt else "-",
        "todo": _runbook(inc, lang),
        "ack": ack_url,
        "clock": clock_title,
        "due": _local(clock.due_at if clock else None, tz),
        "to": "、".join(clock.to) if clock else "",
        "result": str(detail.get("result") or ""),
        "by": str(detail.get("by") or ""),
        "step": str(step + 1),
    }
    drill = ("【演练】", "[DRILL] ")[i] if inc.drill else ""
    maint = ("【维护期】", "[MAINTENANCE] ")[i] if inc.maintenance else ""
    title = TITLES[kind][i].format(drill=drill, maint=maint, level=values["level"], sites=sites or "-",
                                   category=category_name(inc.category, ("zh", "en")[i]),
                                   clock=clock_title, due=values["due"])
    sep = "：" if i == 0 else ": "
    lines = [f"**{title}**", inc.id]
    lines += [f"{LABELS[key][i]}{sep}{values[key]}" for key in LINES[kind] if values[key]]
    return Message(kind=kind, title=title, text="\n\n".join(lines), incident=inc.model_dump(mode="json"),
                   step=step, ack_url=ack_url, lang=lang)


def digest(messages: list[Message], lang: str) -> Message:
    i = _i(lang)
    title = TITLES["digest"][i].format(count=len(messages))
    text = "\n\n".join([f"**{title}**"] + [f"- {m.title}" + (f" {m.ack_url}" if m.ack_url else "") for m in messages])
    return Message(kind="digest", title=title, text=text, lang=lang)
