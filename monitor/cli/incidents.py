"""``hallmon incidents …``, ``hallmon plan …`` and ``hallmon drill …``.

``incidents`` and ``drill`` are clients of a running service's API (``--url``, default
``$HALLMON_URL`` or http://127.0.0.1:9108; ``--token``, default ``$HALLMON_TOKEN``).
``plan show`` and ``plan explain`` need no service and no Redis.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime, timezone
from typing import Any

from monitor.cli import summary
from monitor.config.model import load_config
from monitor.core.alert import Alert
from monitor.core.errors import ConfigError, Invalid
from monitor.core.secret import secrets_optional
from monitor.incidents import lifecycle
from monitor.incidents.classify import group
from monitor.incidents.records import Incident
from monitor.incidents.view import ConfigView
from monitor.plans import coverage
from monitor.plans.model import FLAGS, load_plan
from monitor.service.ingest import parse_list, parse_webhook

SCENARIOS = {  # drill scenario → the fault it simulates
    "power": "power.on_battery", "low-battery": "power.low_battery", "pos": "pos.link_down",
    "queue": "queue.down", "congestion": "queue.congested", "system": "system.down", "network": "network.down",
}


class ApiError(Exception):
    pass


def call(args: argparse.Namespace, method: str, path: str, body: Any = None) -> Any:
    url = args.url.rstrip("/") + path
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    if args.token:
        req.add_header("Authorization", f"Bearer {args.token}")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            raw = resp.read()
            return json.loads(raw) if resp.headers.get_content_type() == "application/json" else raw.decode()
    except urllib.error.HTTPError as err:
        try:
            detail = json.loads(err.read())
            raise ApiError(f"{err.code} {detail.get('error')}: {detail.get('detail')}") from None
        except ValueError:
            raise ApiError(f"{err.code} {err.reason}") from None
    except urllib.error.URLError as err:
        raise ApiError(f"cannot reach {args.url}: {err.reason}") from None


def org(args: argparse.Namespace) -> summary.Org:
    """The names and time zone the token's organisation has (from the API, not a config file)."""
    return summary.Org.from_json(call(args, "GET", "/api/v1/whoami"))


def cmd_incidents(args: argparse.Namespace) -> int:
    try:
        if args.action == "list":
            q = {k: v for k in ("status", "level", "site", "unit", "since") if (v := getattr(args, k))}
            data = call(args, "GET", "/api/v1/incidents?" + urllib.parse.urlencode(q))
            if args.json:
                print(json.dumps(data["incidents"], ensure_ascii=False, indent=2))
            else:
                print(summary.list_text(data["incidents"], org(args), args.lang))
            return 0
        if args.action == "export":
            since = args.since or "2000-01-01T00:00:00+00:00"
            out = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout
            offset, seen = 0, set()
            while offset is not None:  # every incident, page by page, oldest first
                data = call(args, "GET", "/api/v1/incidents?" + urllib.parse.urlencode(
                    {"since": since, "order": "oldest", "limit": args.page, "offset": offset}))
                for inc in data["incidents"]:
                    if inc["id"] not in seen:
                        seen.add(inc["id"])
                        full = call(args, "GET", f"/api/v1/incidents/{inc['id']}")
                        out.write(json.dumps(full, ensure_ascii=False) + "\n")
                offset = data.get("next_offset")
            if args.output:
                out.close()
            return 0
        path = f"/api/v1/incidents/{urllib.parse.quote(args.id, safe='')}"
        if args.action == "show":
            data = call(args, "GET", path)
        elif args.action == "draft":
            data = call(args, "GET", f"{path}/report?kind={args.kind}&lang={args.lang}")
        elif args.action == "ack":
            data = call(args, "POST", f"{path}/ack", {"by": args.by})
        elif args.action == "report":
            body = {"by": args.by, **({"note": args.note} if args.note else {}), **({"at": args.at} if args.at else {})}
            data = call(args, "POST", f"{path}/reports/{args.clock}", body)
        elif args.action == "level":
            data = call(args, "POST", f"{path}/level", {"level": args.level, "by": args.by, "reason": args.reason})
        elif args.action == "flag":
            data = call(args, "POST", f"{path}/flags",
                        {"flags": list(dict.fromkeys(args.flag)), "by": args.by, "reason": args.reason})
        else:  # resolve
            data = call(args, "POST", f"{path}/resolve",
                        {"by": args.by, "result": args.result, **({"at": args.at} if args.at else {})})
        if isinstance(data, str):
            print(data)
        elif args.json:
            print(json.dumps(data, ensure_ascii=False, indent=2))
        elif args.action == "show":
            print(summary.show_text(data, org(args), args.lang))
        else:
            print(summary.list_text([data], org(args), args.lang))
    except ApiError as err:
        print(f"hallmon incidents: {err}", file=sys.stderr)
        return 1
    return 0


def cmd_plan_show(args: argparse.Namespace) -> int:
    try:
        plan = load_plan(args.name)
    except ConfigError as err:
        print(err, file=sys.stderr)
        return 1
    lang = args.lang
    if args.coverage:
        print(coverage.render(plan, lang), end="")
        return 0
    print(f"{plan.id}: {plan.name.get(lang)}")
    if plan.summary:
        print(f"  hallmon's reading: {plan.summary}")
    print("levels:")
    for lv in plan.levels:
        print(f"  {lv.id} {lv.name.get(lang)}")
    print("level rules (first match wins):")
    for r in plan.level_rules:
        cond = ", ".join(f"{k}={v}" for k, v in r.when.model_dump(exclude_defaults=True).items()) or "otherwise"
        print(f"  L{r.level} {r.id:<24} when {cond}  [{r.source}]" + (f"  note: {r.note}" if r.note else ""))
    print("categories:")
    for c in plan.categories:
        print(f"  {c.id:<14} faults {','.join(c.faults):<30} group {c.group:<12} to {','.join(c.audience.to)}  [{c.source}]")
    print("clocks:")
    for spec in plan.clocks:
        levels = ",".join(map(str, spec.levels))
        cats = f" categories {','.join(spec.categories)}" if spec.categories else ""
        print(f"  {spec.id:<22} {spec.title.get(lang)}: {spec.from_} + {spec.due} (levels {levels}{cats})  "
              f"[{spec.source}]" + (f"  note: {spec.note}" if spec.note else ""))
    if plan.drills:
        print("drills:")
    for d in plan.drills:
        print(f"  {d.id:<22} {d.title.get(lang)}: every {d.every} {d.period}(s), levels {','.join(map(str, d.levels))}, "
              f"faults {','.join(d.faults)}  [{d.source}]")
    print("readings (where the plan is vague, what hallmon reads it as):")
    for source, element, note in coverage.readings(plan):
        print(f"  [{source}] {element}: {note}")
    return 0


def explain(alerts: list[Alert], view: ConfigView, now: datetime,
            resolved_at: datetime | None = None) -> list[Incident]:
    """The incidents the router would open for a set of alerts, each with its level,
    decision trace and clocks: the same grouping, uplink folding, level rules and
    calendar as the service, applied to records in memory (no Redis)."""
    out = []
    for n, (key, items) in enumerate(group(alerts, view).items(), 1):
        if not lifecycle.firing(items, now):
            continue  # every alert of the group has ended: the router opens nothing
        inc, _ = lifecycle.open_incident(f"explain-{n}", key, items, now, view, actor="explain")
        if resolved_at is not None:
            inc, _ = lifecycle.close_clocks(inc, resolved_at, view)
        out.append(inc)
    return out


def _explained(inc: Incident) -> dict[str, Any]:
    return {"group": inc.group, "plan": inc.plan, "category": inc.category, "system": inc.system,
            "sites": list(inc.sites), "units": list(inc.units), "faults": list(inc.faults),
            "detected_at": inc.detected_at.isoformat(), "level": inc.level, "level_name": inc.level_name,
            "decision": inc.decision.to_json() if inc.decision else None, "unmapped": inc.unmapped,
            "maintenance": inc.maintenance, "clocks": [c.to_json() for c in inc.clocks]}


def cmd_plan_explain(args: argparse.Namespace) -> int:
    try:
        if not args.plan and not args.config:
            raise ValueError("give --plan, -c CONFIG, or both")
        with open(args.alerts, encoding="utf-8") as f:
            data = json.load(f)
        alerts = parse_webhook(data) if isinstance(data, dict) else parse_list(data)
        if args.config:
            with secrets_optional():  # explaining needs no token or robot key
                view = ConfigView.from_config(load_config(args.config))
            if args.plan:
                view = view.with_plan(args.plan)
        else:
            view = ConfigView.from_alerts(alerts, args.plan)
        load_plan(view.plan)
        resolved = datetime.fromisoformat(args.resolved_at) if args.resolved_at else None
        if resolved is not None and resolved.tzinfo is None:
            raise ValueError("--resolved-at needs an offset, like 2026-12-01T17:00+08:00")
        result = [_explained(inc) for inc in explain(alerts, view, datetime.now(timezone.utc), resolved)]
    except (OSError, ValueError, Invalid, ConfigError) as err:
        print(f"hallmon plan explain: {err}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=2))
        return 0
    for inc in result:
        d = inc["decision"]
        print(f"incident {inc['category']}/{inc['system']}: level {inc['level']} ({inc['level_name']}), "
              f"detected {inc['detected_at']}, faults {','.join(inc['faults'])}")
        print(f"  rule {d['rule']} [{d['source']}]" + (f" note: {d['note']}" if d["note"] else ""))
        fx = d["facts"]
        print(f"  facts: units {fx['units']} ({fx['units_affected']}/{fx['units_total']} = {fx['units_share']:.0%}), "
              f"sites {fx['sites']}, whole units {fx['units_whole']}, head office {fx['head_office_units']}")
        for c in inc["clocks"]:
            print(f"  clock {c['id']:<22} due {c['due_at']}{' (estimated)' if c['estimated'] else ''}  "
                  f"{c['title']}  [{c['source']}]")
    return 0


def cmd_drill(args: argparse.Namespace) -> int:
    now = datetime.now(timezone.utc).isoformat()
    try:
        if args.scenario in SCENARIOS:
            fault = SCENARIOS[args.scenario]
            alert = {"labels": {"alertname": "HallmonDrill", "fault": fault, "site": args.site,
                                "target": f"drill-{args.scenario}", "drill": "true",
                                **({"unit": args.unit} if args.unit else {})},
                     "annotations": {"summary": f"演练 / drill: {fault} at {args.site}"}, "startsAt": now}
            data = call(args, "POST", "/api/v1/alerts", [alert])
            print(f"drill {args.scenario} at {args.site}: incident(s) {', '.join(data['incidents'])}")
        else:  # fire, epidemic, public order…: a manual incident marked as a drill
            data = call(args, "POST", "/api/v1/incidents", {"category": args.scenario, "site": args.site,
                                                            "by": args.by, "summary": f"演练 / drill: {args.scenario}",
                                                            "drill": True})
            print(f"drill {args.scenario} at {args.site}: incident {data['id']}")
    except ApiError as err:
        print(f"hallmon drill: {err}", file=sys.stderr)
        return 1
    return 0


def cmd_shift_report(args: argparse.Namespace) -> int:
    q = {k: v for k in ("roster", "at", "lang") if (v := getattr(args, k))}
    try:
        if not org(args).rosters:
            print(summary.t("oncall.none", args.lang or "zh"))
            return 1
        if args.json:
            print(json.dumps(call(args, "GET", "/api/v1/shift-report?" + urllib.parse.urlencode(q)),
                             ensure_ascii=False, indent=2))
        else:
            print(call(args, "GET", "/api/v1/shift-report?" + urllib.parse.urlencode({**q, "format": "text"})), end="")
    except ApiError as err:
        print(f"hallmon shift-report: {err}", file=sys.stderr)
        return 1
    return 0


def _client_args(p: argparse.ArgumentParser, lang: bool = False) -> None:
    p.add_argument("--url", default=os.environ.get("HALLMON_URL", "http://127.0.0.1:9108"),
                   help="the hallmon service (default: $HALLMON_URL or http://127.0.0.1:9108)")
    p.add_argument("--token", default=os.environ.get("HALLMON_TOKEN"),
                   help="your API token (default: $HALLMON_TOKEN)")
    p.add_argument("--json", action="store_true", help="print the API's JSON document instead of a summary")
    if lang:
        p.add_argument("--lang", choices=("zh", "en"), default="zh", help="language of the summary (default zh)")


ACTIONS = {  # name → (help, required options)
    "show": ("one incident: faults, sites, clocks, the last timeline entries (--json: the whole document)", ()),
    "ack": ("acknowledge: you are handling it (stops the escalation)", ("by",)),
    "resolve": ("close the incident with its result", ("by", "result")),
    "level": ("set the level by hand, with a reason (the plan's level is overridden)", ("by", "reason")),
    "flag": ("record harm only a person can see (casualties, injuries…); the level follows the plan",
             ("by", "reason")),
    "report": ("mark a report filed for one clock (CLOCK: its id, as `show --json` lists)", ("by",)),
    "draft": ("print a report draft (phone, written or final) ready to send", ()),
}
OPTION_HELP = {"by": "who did it (a personal token records its own person instead)",
               "result": "what was done and how it ended", "reason": "why (kept on the timeline)"}


def register(sub: argparse._SubParsersAction) -> None:
    inc = sub.add_parser("incidents", help="list, show and act on incidents (an API client)")
    acts = inc.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = acts.add_parser("list", help="incidents with level, status, first seen, sites and the next report due")
    p.add_argument("--status", choices=("open", "acknowledged", "resolved"), help="only incidents in this status")
    p.add_argument("--level", choices=("1", "2", "3"), help="only incidents of this level")
    p.add_argument("--site", help="only incidents at this site (its id)")
    p.add_argument("--unit", help="only incidents of this unit (its id)")
    p.add_argument("--since", help="only incidents detected since (RFC 3339)")
    _client_args(p, lang=True)
    p = acts.add_parser("export", help="incidents with alerts and timeline as JSON lines")
    p.add_argument("--since", help="from this time (RFC 3339; default: every incident)")
    p.add_argument("-o", "--output", help="write to this file (default: standard output)")
    p.add_argument("--page", type=int, default=1000, help=argparse.SUPPRESS)
    _client_args(p)
    for name, (text, extra) in ACTIONS.items():
        p = acts.add_parser(name, help=text, description=text)
        p.add_argument("id", help="the incident id (INC-…, DRILL-…)")
        if name == "level":
            p.add_argument("level", type=int, choices=(1, 2, 3), help="the new level (1 most severe)")
        if name == "flag":
            p.add_argument("--flag", action="append", required=True, choices=FLAGS,
                           help="a harm flag; repeat for several")
        if name == "report":
            p.add_argument("clock", help="the clock's id, e.g. phone-report")
            p.add_argument("--note", help="to whom it went, their name and phone")
        if name in ("report", "resolve"):
            p.add_argument("--at", help="RFC 3339 time it actually happened (default: now)")
        if name == "draft":
            p.add_argument("--kind", choices=("phone", "written", "final"), default="phone",
                           help="which report (default phone)")
        for opt in extra:
            p.add_argument(f"--{opt}", required=True, help=OPTION_HELP[opt])
        _client_args(p, lang=True)
    inc.set_defaults(func=cmd_incidents, log_level="warning")

    plan = sub.add_parser("plan", help="show a plan; explain the decision for a set of alerts")
    pacts = plan.add_subparsers(dest="plan_action", required=True, metavar="ACTION")
    p = pacts.add_parser("show", help="a plan's levels, rules, categories and clocks, each citing its article")
    p.add_argument("name", help="a built-in plan id (shenzhen-customs, xiamen-tax…) or a plan file")
    p.add_argument("--coverage", action="store_true", help="article by article: what encodes it, what is left to people")
    p.add_argument("--lang", choices=("zh", "en"), default="zh", help="language (default zh)")
    p.set_defaults(func=cmd_plan_show, log_level="warning")
    p = pacts.add_parser("explain", help="the incidents, levels and clocks a set of alerts would give")
    p.add_argument("--plan", help="the plan for every unit (default: the config's plans)")
    p.add_argument("--alerts", required=True, help="a JSON file: v2 alert list or Alertmanager webhook")
    p.add_argument("-c", "--config", help="the organisation (units, sites, uplinks, calendar) as the service has it")
    p.add_argument("--resolved-at", help="also close the clocks as if resolved then (RFC 3339)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_plan_explain, log_level="warning")

    p = sub.add_parser("shift-report", help="the shift hand-off report: devices, the shift's incidents, what is inherited")
    p.add_argument("--roster", help="the roster (default: the first configured)")
    p.add_argument("--at", help="the hand-off time (RFC 3339; default now)")
    p.add_argument("--lang", choices=("zh", "en"), help="language (default zh)")
    _client_args(p)
    p.set_defaults(func=cmd_shift_report, log_level="warning")

    p = sub.add_parser("drill", help="run a fault through the whole chain, marked as a drill")
    p.add_argument("scenario", help=f"{', '.join(SCENARIOS)} or a manual kind (fire, epidemic, public_order…)")
    p.add_argument("--site", required=True, help="the site's id")
    p.add_argument("--unit", help="the unit's id (default: the site's)")
    p.add_argument("--by", default="drill", help="who runs the drill (manual kinds)")
    _client_args(p)
    p.set_defaults(func=cmd_drill, log_level="warning")
