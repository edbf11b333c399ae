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


def _local(ts: str, cfg: Any, doc: dict) -> str:
    tz = cfg.site_timezone(doc["sites"][0] if doc.get("sites") else "")
    return datetime.fromisoformat(ts).astimezone(tz).strftime("%Y-%m-%d %H:%M")


def _place(doc, alerts, timeline, cfg, lang):
    names = []
    for site in doc["sites"]:
        unit_site = cfg.sites.get(site)
        names.append(f"{unit_site[0].name} {unit_site[1].name}" if unit_site else site)
    return "；".join(names) if lang == "zh" else "; ".join(names) or _w("fill", lang)


def _cause(doc, alerts, timeline, cfg, lang):
    seen = []
    for a in alerts:
        line = fault_name(a["labels"].get("fault", "?"), lang)
        desc = a["annotations"].get("description") or a["annotations"].get("summary")
        text = f"{line} ({a['labels'].get('target', a['labels'].get('site', ''))}: {desc})" if desc else line
        if text not in seen:
            seen.append(text)
    observed = "; ".join(seen[:8]) + (" …" if len(seen) > 8 else "")
    return f"{observed}; {_w('fill', lang)}" if observed else _w("fill", lang)


def _state(doc, alerts, timeline, cfg, lang):
    firing = sum(1 for a in alerts if a["status"] == "firing")
    parts = [_w(doc["status"], lang)]
    parts.append(_w("recovered", lang) if doc.get("recovered") else f"{_w('firing', lang)}: {firing}")
    return "，".join(parts) if lang == "zh" else ", ".join(parts)


def _impact(doc, alerts, timeline, cfg, lang):
    facts = (doc.get("decision") or {}).get("facts", {})
    share = facts.get("units_share")
    level = doc["frozen_plan"]["levels"][doc["level"] - 1]["name"][lang] if doc.get("frozen_plan") else doc["level"]
    text = (f"{level}; {len(doc['units'])} {_w('units', lang)}, {len(doc['sites'])} {_w('sites', lang)}; "
            f"{doc['category']}/{doc['system']}")
    if share is not None:
        text += f"; {_w('of_org', lang)} {share:.0%}"
    return f"{text}; {_w('rule', lang)}: {doc['decision']['rule']} ({doc['decision']['source']})"


def _result(doc, alerts, timeline, cfg, lang):
    if doc.get("resolved"):
        return f"{doc['resolved']['result']} ({_local(doc['resolved']['at'], cfg, doc)})"
    return _w(doc["status"], lang)


def _course(doc, alerts, timeline, cfg, lang):
    lines = [f"{_local(e['at'], cfg, doc)} {e['actor']}: {e['action']}" for e in timeline
             if e["action"] not in ("alerts",)]
    return "\n    ".join(lines) or _w("fill", lang)


def _measures(doc, alerts, timeline, cfg, lang):
    plan = doc.get("frozen_plan") or {}
    runbook = next((c["runbook"][lang] for c in plan.get("categories", []) if c["id"] == doc["category"]), "")
    acts = []
    if doc.get("acknowledged"):
        acts.append(f"{doc['acknowledged']['by']} {_local(doc['acknowledged']['at'], cfg, doc)}")
    acts += [f"{r['clock']} {r['by']} {_local(r['at'], cfg, doc)}" for r in doc.get("reports", [])]
    return f"{runbook} {'; '.join(acts)} {_w('fill', lang)}".strip()


def _fill(doc, alerts, timeline, cfg, lang):
    return _w("fill", lang)


def _time(doc, alerts, timeline, cfg, lang):
    return _local(doc["detected_at"], cfg, doc)


Field = tuple[str, dict[str, str], Callable[..., str]]

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


def render_report(kind: str, lang: str, doc: dict, alerts: list[dict], timeline: list[dict], cfg: Any) -> dict:
    tpl = TEMPLATES[kind]
    fields = [{"key": key, "label": label[lang], "value": fn(doc, alerts, timeline, cfg, lang)}
              for key, label, fn in tpl["fields"]]
    head = f"{_w('drill', lang) if doc.get('drill') else ''}{tpl['title'][lang]} — {doc['id']} ({tpl['source']})"
    sep = "：" if lang == "zh" else ": "
    text = head + "\n" + "\n".join(f"{f['label']}{sep}{f['value']}" for f in fields) + "\n"
    return {"kind": kind, "lang": lang, "incident": doc["id"], "title": tpl["title"][lang],
            "source": tpl["source"], "fields": fields, "text": text}
