"""Report drafts (PLANS.md §5), pre-filled from what hallmon observed.

One template per kind — ``phone`` (Shenzhen 4.3.2's six elements), ``written`` (the
written report) and ``final`` (the after-incident review, Guizhou part 4 and Shenzhen
5.4.1) — each a list of fields with a zh and an en label; the same field functions fill
both languages. What only a person can know is marked for them to fill in.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Callable

from monitor.core.faultnames import fault_name
from monitor.incidents.records import Incident, StoredAlert, TimelineEntry

W = {  # the few words the values themselves need
    "fill": {"zh": "【待填写】", "en": "[to fill in]"},
    "open": {"zh": "处置中", "en": "being handled"},
    "acknowledged": {"zh": "已响应，处置中", "en": "acknowledged, being handled"},
    "resolved": {"zh": "已处置完毕", "en": "handled and closed"},
    "recovered": {"zh": "告警已全部恢复", "en": "all alerts have recovered"},
    "firing": {"zh": "仍在告警", "en": "still alerting"},
    "units": {"zh": "个单位", "en": "unit(s)"},
    "sites": {"zh": "个场所", "en": "site(s)"},
    "of_org": {"zh": "占全部单位", "en": "of all units"},
    "rule": {"zh": "定级依据", "en": "graded by"},
    "drill": {"zh": "【演练】", "en": "[DRILL] "},
}


def _w(key: str, lang: str) -> str:
    return W[key][lang]


class Seen:
    """What a draft is filled from: the incident, its alerts and timeline, the config
    (site and unit names, zones)."""

    def __init__(self, inc: Incident, alerts: list[StoredAlert], timeline: list[TimelineEntry], cfg: Any):
        self.inc, self.alerts, self.timeline, self.cfg = inc, alerts, timeline, cfg

    def local(self, ts: datetime) -> str:
        tz = self.cfg.site_timezone(self.inc.sites[0] if self.inc.sites else "")
        return ts.astimezone(tz).strftime("%Y-%m-%d %H:%M")


def _place(s: Seen, lang: str) -> str:
    names = []
    for site in s.inc.sites:
        unit_site = s.cfg.sites.get(site)
        names.append(f"{unit_site[0].name} {unit_site[1].name}" if unit_site else site)
    return "；".join(names) if lang == "zh" else "; ".join(names) or _w("fill", lang)


def _cause(s: Seen, lang: str) -> str:
    seen: list[str] = []
    for a in s.alerts:
        line = fault_name(a.labels.get("fault", "?"), lang)
        desc = a.annotations.get("description") or a.annotations.get("summary")
        text = f"{line} ({a.labels.get('target', a.labels.get('site', ''))}: {desc})" if desc else line
        if text not in seen:
            seen.append(text)
    observed = "; ".join(seen[:8]) + (" …" if len(seen) > 8 else "")
    return f"{observed}; {_w('fill', lang)}" if observed else _w("fill", lang)


def _state(s: Seen, lang: str) -> str:
    firing = sum(1 for a in s.alerts if a.status == "firing")
    parts = [_w(s.inc.status, lang)]
    parts.append(_w("recovered", lang) if s.inc.recovered else f"{_w('firing', lang)}: {firing}")
    return "，".join(parts) if lang == "zh" else ", ".join(parts)


def _impact(s: Seen, lang: str) -> str:
    inc = s.inc
    level = inc.frozen_plan.plan.level_name(inc.level, lang)
    text = (f"{level}; {len(inc.units)} {_w('units', lang)}, {len(inc.sites)} {_w('sites', lang)}; "
            f"{inc.category}/{inc.system}")
    if inc.decision is None:
        return text
    text += f"; {_w('of_org', lang)} {inc.decision.facts.units_share:.0%}"
    return f"{text}; {_w('rule', lang)}: {inc.decision.rule} ({inc.decision.source})"


def _result(s: Seen, lang: str) -> str:
    if s.inc.resolved:
        return f"{s.inc.resolved.result} ({s.local(s.inc.resolved.at)})"
    return _w(s.inc.status, lang)


def _course(s: Seen, lang: str) -> str:
    lines = [f"{s.local(e.at)} {e.actor}: {e.action}" for e in s.timeline if e.action != "alerts"]
    return "\n    ".join(lines) or _w("fill", lang)


def _measures(s: Seen, lang: str) -> str:
    inc = s.inc
    runbook = next((c.runbook.get(lang) for c in inc.frozen_plan.plan.categories if c.id == inc.category), "")
    acts = []
    if inc.acknowledged:
        acts.append(f"{inc.acknowledged.by} {s.local(inc.acknowledged.at)}")
    acts += [f"{r.clock} {r.by} {s.local(r.at)}" for r in inc.reports]
    return f"{runbook} {'; '.join(acts)} {_w('fill', lang)}".strip()


def _fill(s: Seen, lang: str) -> str:
    return _w("fill", lang)


def _time(s: Seen, lang: str) -> str:
    return s.local(s.inc.detected_at)


Field = tuple[str, dict[str, str], Callable[[Seen, str], str]]

TEMPLATES: dict[str, dict[str, Any]] = {
    "phone": {
        "title": {"zh": "电话报告（六要素）", "en": "Phone report (six elements)"},
        "source": "Shenzhen 4.3.2",
        "fields": [
            ("time", {"zh": "时间", "en": "Time"}, _time),
            ("place", {"zh": "地点", "en": "Place"}, _place),
            ("cause", {"zh": "原因", "en": "Cause"}, _cause),
            ("state", {"zh": "现状", "en": "Current state"}, _state),
            ("impact", {"zh": "影响", "en": "Impact"}, _impact),
            ("result", {"zh": "结果", "en": "Result"}, _result),
        ],
    },
    "written": {
        "title": {"zh": "书面报告", "en": "Written report"},
        "source": "Shenzhen 4.3.2",
        "fields": [
            ("time", {"zh": "时间", "en": "Time"}, _time),
            ("place", {"zh": "地点", "en": "Place"}, _place),
            ("cause", {"zh": "原因", "en": "Cause"}, _cause),
            ("course", {"zh": "经过", "en": "Course"}, _course),
            ("state", {"zh": "现状", "en": "State"}, _state),
            ("impact", {"zh": "影响", "en": "Impact"}, _impact),
            ("measures", {"zh": "已采取的措施及效果", "en": "Measures taken and their effect"}, _measures),
            ("forecast", {"zh": "发展趋势、下一步工作及建议", "en": "Forecast, next steps and proposals"}, _fill),
            ("approver", {"zh": "审核领导", "en": "Approving leader"}, _fill),
            ("handler", {"zh": "经办人姓名及电话", "en": "Handler's name and phone"}, _fill),
        ],
    },
    "final": {
        "title": {"zh": "事件总结评估报告", "en": "After-incident review"},
        "source": "Guizhou part 4; Shenzhen 5.4.1",
        "fields": [
            ("summary", {"zh": "事件概要", "en": "Summary"}, _impact),
            ("investigation", {"zh": "调查情况", "en": "Investigation"}, _cause),
            ("course", {"zh": "处置经过", "en": "Course"}, _course),
            ("effect", {"zh": "措施效果", "en": "Effect of measures"}, _measures),
            ("result", {"zh": "处置结果", "en": "Result"}, _result),
            ("problems", {"zh": "存在问题", "en": "Problems found"}, _fill),
            ("lessons", {"zh": "经验教训及改进建议", "en": "Lessons and proposals"}, _fill),
        ],
    },
}
KINDS = tuple(TEMPLATES)


def render_report(kind: str, lang: str, inc: Incident, alerts: list[StoredAlert], timeline: list[TimelineEntry],
                  cfg: Any) -> dict[str, Any]:
    """The draft as JSON (``fields``) and as text ready to print (``text``)."""
    tpl = TEMPLATES[kind]
    seen = Seen(inc, alerts, timeline, cfg)
    fields = [{"key": key, "label": label[lang], "value": fn(seen, lang)} for key, label, fn in tpl["fields"]]
    head = f"{_w('drill', lang) if inc.drill else ''}{tpl['title'][lang]} — {inc.id} ({tpl['source']})"
    sep = "：" if lang == "zh" else ": "
    text = head + "\n" + "\n".join(f"{f['label']}{sep}{f['value']}" for f in fields) + "\n"
    return {"kind": kind, "lang": lang, "incident": inc.id, "title": tpl["title"][lang],
            "source": tpl["source"], "fields": fields, "text": text}
