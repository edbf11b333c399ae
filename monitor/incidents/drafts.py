"""Report drafts (PLANS.md §5), pre-filled from what hallmon observed.

The incident's own plan decides each draft (``reports:`` in the plan, frozen into the
incident): its title, the article it follows and its fields in order, so a Xiamen
incident's written report has Xiamen's elements and cites Xiamen. Every field has one
zh and one en label here and one function that fills both languages. Where the plan asks
for the duty log's call record (Shenzhen 4.3.2) it goes under the phone report; the
handler and the approving leader come from the roster (``people``), and what only a
person can know is left as a marked blank.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Callable

from monitor.core.faultnames import category_name, fault_name
from monitor.incidents.records import Incident, StoredAlert, TimelineEntry
from monitor.plans.model import REPORT_KINDS, ReportTemplate, load_plan

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
    "first_seen": {"zh": "首次发现", "en": "first seen"},
    "flags": {"zh": "人员标记", "en": "flagged by a person"},
    "casualties": {"zh": "人员伤亡", "en": "casualties"}, "injuries": {"zh": "人员受伤", "en": "injuries"},
    "property_loss": {"zh": "财产损失", "en": "property loss"},
    "loss_of_control": {"zh": "事态接近失控", "en": "near loss of control"},
    "duty_log": {"zh": "电话报告记录（值班记录）", "en": "Call record (duty log)"},
}
ACTIONS = {  # timeline actions in words
    "opened": ("发现故障，生成事件", "fault seen, incident opened"), "alerts": ("告警变化", "alerts changed"),
    "upgraded": ("级别提升", "level raised"), "relevel": ("重新定级", "re-graded"),
    "level_set": ("人工定级", "level set by hand"), "acknowledged": ("值班人员响应", "acknowledged"),
    "flags_set": ("标记伤亡或损失", "harm flagged"), "report_filed": ("报告已报送", "report filed"),
    "reminder": ("报告到期提醒", "report reminder"), "overdue": ("报告超时", "report overdue"),
    "resolved": ("处置完毕", "resolved"),
}


def _w(key: str, lang: str) -> str:
    return W[key][lang]


class Seen:
    """What a draft is filled from: the incident, its alerts and timeline, the config
    (site and unit names, zones) and the people on duty (``{"handler", "leader"}``)."""

    def __init__(self, inc: Incident, alerts: list[StoredAlert], timeline: list[TimelineEntry], cfg: Any,
                 people: dict | None):
        self.inc, self.alerts, self.timeline, self.cfg, self.people = inc, alerts, timeline, cfg, people or {}

    def local(self, ts: datetime) -> str:
        tz = self.cfg.site_timezone(self.inc.sites[0] if self.inc.sites else "")
        return ts.astimezone(tz).strftime("%Y-%m-%d %H:%M")


def _join(items: list[str], lang: str) -> str:
    return ("；" if lang == "zh" else "; ").join(items)


def _place(s: Seen, lang: str) -> str:
    names = []
    for site in s.inc.sites:
        unit_site = s.cfg.sites.get(site)
        names.append(f"{unit_site[0].name} {unit_site[1].name}" if unit_site else site)
    return _join(names, lang) or _w("fill", lang)


def _cause(s: Seen, lang: str) -> str:
    seen: list[str] = []
    for a in s.alerts:
        words = fault_name(a.labels.get("fault") or "?", lang)  # in words, the code in brackets
        where = a.labels.get("target") or a.labels.get("site", "")
        text = f"{words}（{where}）" if lang == "zh" else f"{words} ({where})"
        if text not in seen:
            seen.append(text)
    observed = _join(seen[:8], lang) + (" …" if len(seen) > 8 else "")
    return f"{observed}; {_w('fill', lang)}" if observed else _w("fill", lang)


def _state(s: Seen, lang: str) -> str:
    firing = sum(1 for a in s.alerts if a.status == "firing")
    parts = [_w(s.inc.status, lang)]
    parts.append(_w("recovered", lang) if s.inc.recovered else f"{_w('firing', lang)}: {firing}")
    return "，".join(parts) if lang == "zh" else ", ".join(parts)


def _scope(s: Seen, lang: str) -> str:
    inc = s.inc
    text = f"{len(inc.units)} {_w('units', lang)}, {len(inc.sites)} {_w('sites', lang)}"
    if inc.decision is not None:
        text += f"; {_w('of_org', lang)} {inc.decision.facts.units_share:.0%}"
    return f"{text}: {_place(s, lang)}"


def _impact(s: Seen, lang: str) -> str:
    inc = s.inc
    words = ("、" if lang == "zh" else ", ").join(fault_name(f, lang, code=False) for f in inc.faults)
    text = (f"{inc.frozen_plan.plan.level_name(inc.level, lang)}; {category_name(inc.category, lang)}: "
            f"{words or '-'}; {_scope(s, lang)}")
    if inc.decision is None:
        return text
    return f"{text}; {_w('rule', lang)}: {inc.decision.rule} ({inc.decision.source})"


def _background(s: Seen, lang: str) -> str:
    return (f"{category_name(s.inc.category, lang)} / {s.inc.system}; {_w('first_seen', lang)} "
            f"{s.local(s.inc.detected_at)}; {_w('fill', lang)}")


def _losses(s: Seen, lang: str) -> str:
    flags = [_w(f, lang) for f in s.inc.flags if f in W]
    return f"{_w('flags', lang)}: {'、'.join(flags)}; {_w('fill', lang)}" if flags else _w("fill", lang)


def _result(s: Seen, lang: str) -> str:
    if s.inc.resolved:
        return f"{s.inc.resolved.result} ({s.local(s.inc.resolved.at)})"
    return _w(s.inc.status, lang)


def _course(s: Seen, lang: str) -> str:
    i = 1 if lang == "en" else 0
    lines = [f"{s.local(e.at)} {e.actor}: {ACTIONS.get(e.action, (e.action,) * 2)[i]}"
             for e in s.timeline if e.action != "alerts"]
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


def _person(who: dict | None, lang: str, phone: bool) -> str:
    if not who:
        return _w("fill", lang)
    if not phone:
        return who["name"]
    return f"{who['name']} {who.get('phone') or _w('fill', lang)}"


def _approver(s: Seen, lang: str) -> str:
    return _person(s.people.get("leader"), lang, phone=False)


def _handler(s: Seen, lang: str) -> str:
    return _person(s.people.get("handler"), lang, phone=True)


def _time(s: Seen, lang: str) -> str:
    return s.local(s.inc.detected_at)


FIELDS: dict[str, tuple[dict[str, str], Callable[[Seen, str], str]]] = {
    "time": ({"zh": "时间", "en": "Time"}, _time),
    "place": ({"zh": "地点", "en": "Place"}, _place),
    "cause": ({"zh": "原因", "en": "Cause"}, _cause),
    "background": ({"zh": "背景", "en": "Background"}, _background),
    "course": ({"zh": "经过", "en": "Course"}, _course),
    "state": ({"zh": "现状", "en": "Current state"}, _state),
    "scope": ({"zh": "影响范围", "en": "Scope"}, _scope),
    "impact": ({"zh": "影响", "en": "Impact"}, _impact),
    "losses": ({"zh": "造成损失", "en": "Losses"}, _losses),
    "measures": ({"zh": "已采取的措施及效果", "en": "Measures taken and their effect"}, _measures),
    "forecast": ({"zh": "发展趋势、下一步工作及建议", "en": "Forecast, next steps and proposals"}, _fill),
    "result": ({"zh": "结果", "en": "Result"}, _result),
    "summary": ({"zh": "事件概要", "en": "Summary"}, _impact),
    "investigation": ({"zh": "调查情况", "en": "Investigation"}, _cause),
    "rescue": ({"zh": "救助情况", "en": "Rescue"}, _losses),
    "effect": ({"zh": "措施效果", "en": "Effect of measures"}, _measures),
    "problems": ({"zh": "存在问题", "en": "Problems found"}, _fill),
    "lessons": ({"zh": "经验教训及改进建议", "en": "Lessons and proposals"}, _fill),
    "approver": ({"zh": "签发领导", "en": "Approving leader"}, _approver),
    "handler": ({"zh": "承办人姓名及电话", "en": "Handler's name and phone"}, _handler),
}
DUTY_LOG = (  # Shenzhen 4.3.2: what the duty officer records of every phone report
    ("our_handler", {"zh": "本方承办人全名", "en": "Our handler (full name)"}),
    ("their_handler", {"zh": "对方承办人全名", "en": "Their handler (full name)"}),
    ("our_time", {"zh": "本方承办时间", "en": "Our time"}),
    ("their_time", {"zh": "对方承办时间", "en": "Their time"}),
    ("their_department", {"zh": "对方部门", "en": "Their department"}),
    ("their_phone", {"zh": "对方联系电话", "en": "Their phone"}),
)
KINDS = REPORT_KINDS


def _template(inc: Incident, kind: str) -> ReportTemplate:
    """The incident's own plan's template; the default plan's for an incident frozen
    before plans carried templates."""
    plans = [inc.frozen_plan.plan, load_plan("default")]
    return next(tpl for plan in plans for k, tpl in plan.reports.items() if k == kind)


def _duty_log(s: Seen, lang: str) -> list[dict]:
    clocks = sorted((c for c in s.inc.clocks if c.anchor != "resolved" and c.status != "withdrawn"),
                    key=lambda c: c.due_at)
    departments = "、".join(clocks[0].audience.to) if clocks and clocks[0].audience.to else ""
    values = {"our_handler": _person(s.people.get("handler"), lang, phone=False),
              "their_department": departments or _w("fill", lang)}
    return [{"key": key, "label": label[lang], "value": values.get(key, _w("fill", lang))} for key, label in DUTY_LOG]


def render_report(kind: str, lang: str, inc: Incident, alerts: list[StoredAlert], timeline: list[TimelineEntry],
                  cfg: Any, people: dict | None = None) -> dict[str, Any]:
    """The draft as JSON (``fields``) and as text ready to print (``text``). ``people``:
    ``{"handler": {name, phone}, "leader": {name, phone}}`` as the roster has them now."""
    tpl = _template(inc, kind)
    seen = Seen(inc, alerts, timeline, cfg, people)
    fields = []
    for key in tpl.fields:
        label, fill = FIELDS[key]
        fields.append({"key": key, "label": label[lang], "value": fill(seen, lang)})
    record = _duty_log(seen, lang) if tpl.duty_log else []
    head = f"{_w('drill', lang) if inc.drill else ''}{tpl.title.get(lang)} — {inc.id} ({tpl.source})"
    sep = "：" if lang == "zh" else ": "
    text = head + "\n" + "\n".join(f"{f['label']}{sep}{f['value']}" for f in fields) + "\n"
    if record:
        text += f"\n{_w('duty_log', lang)}\n" + "\n".join(f"  {r['label']}{sep}{r['value']}" for r in record) + "\n"
    return {"kind": kind, "lang": lang, "incident": inc.id, "plan": inc.plan, "title": tpl.title.get(lang),
            "source": tpl.source, "fields": fields, "duty_log": record, "text": text}
