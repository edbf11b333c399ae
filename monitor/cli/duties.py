"""``hallmon report monthly``, ``hallmon shift-check`` and ``hallmon drills``: clients of
a running service's API, like ``hallmon incidents``."""
from __future__ import annotations

import argparse
import json
import sys
import urllib.parse
from datetime import datetime, timedelta, timezone

from monitor.cli.incidents import ApiError, _client_args, call
from monitor.core.target import parse_duration
from monitor.paging.shiftcheck import ITEMS


def cmd_report_monthly(args: argparse.Namespace) -> int:
    try:
        if args.file:
            if not args.by:
                raise ApiError("--file needs --by")
            body = {"month": args.month, "by": args.by, **({"note": args.note} if args.note else {}),
                    **({"at": args.at} if args.at else {}), **({"unit": args.unit} if args.unit else {})}
            data = call(args, "POST", "/api/v1/reports/monthly", body)
            if args.json:
                print(json.dumps(data, ensure_ascii=False, indent=2))
            else:
                late = sum(1 for f in data["filed"] if f["late"])
                print(f"monthly summary {data['month']} filed: {len(data['filed'])} clock(s) met"
                      + (f", {late} late" if late else ""))
            return 0
        q = {"month": args.month, "lang": args.lang, **({"unit": args.unit} if args.unit else {})}
        data = call(args, "GET", "/api/v1/reports/monthly?" + urllib.parse.urlencode(q))
    except ApiError as err:
        print(f"hallmon report monthly: {err}", file=sys.stderr)
        return 1
    print(json.dumps(data, ensure_ascii=False, indent=2) if args.json else data["text"], end="\n" if args.json else "")
    return 0


def _items(args: argparse.Namespace) -> dict:
    items: dict[str, dict] = {}
    ok = list(ITEMS) if args.ok == "all" else [i for i in (args.ok or "").split(",") if i]
    for item in ok:
        items[item] = {"ok": True}
    for given in args.anomaly or []:
        if not 2 <= len(given) <= 3:
            raise ApiError("--anomaly: ITEM NOTE [FOLLOW-UP]")
        item, note, *follow = given
        items[item] = {"ok": False, "note": note, **({"follow_up": follow[0]} if follow else {})}
    return items


def cmd_shift_check(args: argparse.Namespace) -> int:
    try:
        body = {"moment": args.moment, "by": args.by, "items": _items(args),
                **({"roster": args.roster} if args.roster else {}), **({"at": args.at} if args.at else {})}
        data = call(args, "POST", "/api/v1/shift-checks", body)
    except ApiError as err:
        print(f"hallmon shift-check: {err}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(data, ensure_ascii=False, indent=2))
    else:
        bad = [i for i, f in data["items"].items() if not f["ok"]]
        print(f"shift check ({data['moment']}) by {data['by']} recorded: {len(data['items'])} item(s)"
              + (f", anomalies: {', '.join(bad)}" if bad else ", all in order"))
    return 0


def cmd_drills(args: argparse.Namespace) -> int:
    try:
        data = call(args, "GET", f"/api/v1/drills?lang={args.lang}")
    except ApiError as err:
        print(f"hallmon drills: {err}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(data["drills"], ensure_ascii=False, indent=2))
        return 0
    for d in data["drills"]:
        print(f"{d['unit']:<12} {d['kind']:<18} {d['status']:<8} due {d['due_at']}  last {d['last_at'] or '-'}  "
              f"{d['title']}  [{d['source']}]")
    return 0


def cmd_maintenance(args: argparse.Namespace) -> int:
    try:
        if args.action == "add":
            start = datetime.fromisoformat(args.start) if args.start else datetime.now(timezone.utc)
            end = args.to or (start + timedelta(seconds=parse_duration(args.duration))).isoformat()
            scope = {"sites": args.sites.split(",")} if args.sites else {"units": (args.units or "").split(",")}
            data = call(args, "POST", "/api/v1/maintenance", {**scope, "from": start.isoformat(), "to": end,
                                                               "reason": args.reason, "by": args.by})
            rows = [data]
        elif args.action == "end":
            data = call(args, "DELETE", f"/api/v1/maintenance/{urllib.parse.quote(args.id, safe='')}?"
                        + urllib.parse.urlencode({"by": args.by}))
            rows = [data]
        else:
            data = call(args, "GET", "/api/v1/maintenance" + ("?all=true" if args.all else ""))
            rows = data["windows"]
    except (ApiError, ValueError) as err:
        print(f"hallmon maintenance: {err}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(data, ensure_ascii=False, indent=2))
        return 0
    for w in rows:
        ended = f"  ended by {w['ended_by']}" if w.get("ended_by") else ""
        print(f"{w['id']:<22} {','.join(w['sites'] or w['units']):<20} {w['from']} → {w['to']}  "
              f"{w['by']}: {w['reason']}{ended}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    rep = sub.add_parser("report", help="reports beyond one incident: the monthly summary (Shenzhen 4.3.4)")
    racts = rep.add_subparsers(dest="report_kind", required=True, metavar="KIND")
    p = racts.add_parser("monthly", help="the month's level-3 incidents per unit, drills apart; --file meets its clocks")
    p.add_argument("--month", required=True, help="YYYY-MM")
    p.add_argument("--lang", choices=("zh", "en"), default="zh", help="language (default zh)")
    p.add_argument("--unit", help="only this unit (its id)")
    p.add_argument("--file", action="store_true", help="mark the summary filed: every monthly clock of the month is met")
    p.add_argument("--by", help="who filed it (with --file)")
    p.add_argument("--at", help="RFC 3339 time it was filed (with --file)")
    p.add_argument("--note", help="a note kept with the filing (with --file)")
    _client_args(p)
    p.set_defaults(func=cmd_report_monthly, log_level="warning")

    p = sub.add_parser("shift-check", help="record the shift check: fire, water, power, theft, monitoring, phones")
    p.add_argument("--moment", choices=("start", "end"), required=True, help="start or end of the shift")
    p.add_argument("--by", required=True, help="who checked")
    p.add_argument("--ok", help=f"items found in order, comma separated ({','.join(ITEMS)}), or 'all'")
    p.add_argument("--anomaly", nargs="+", action="append", metavar="ITEM NOTE [FOLLOW-UP]",
                   help="ITEM NOTE [FOLLOW-UP]: an anomaly found and what was done about it")
    p.add_argument("--roster", help="the roster (default: the first configured)")
    p.add_argument("--at", help="RFC 3339 time of the check (default now)")
    _client_args(p)
    p.set_defaults(func=cmd_shift_check, log_level="warning")

    mnt = sub.add_parser("maintenance", help="announce, list and end maintenance windows (Putian art. 3)")
    macts = mnt.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = macts.add_parser("add", help="announce a window: pages for faults inside it are held back")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--sites", help="comma-separated site ids")
    where.add_argument("--units", help="comma-separated unit ids (every site of each)")
    p.add_argument("--from", dest="start", help="RFC 3339 start (default now)")
    until = p.add_mutually_exclusive_group(required=True)
    until.add_argument("--to", help="RFC 3339 end")
    until.add_argument("--for", dest="duration", help="how long, like 2h")
    p.add_argument("--reason", required=True, help="why (shown on held pages and the console)")
    p.add_argument("--by", required=True, help="who announces it")
    p = macts.add_parser("list", help="windows in force or to come")
    p.add_argument("--all", action="store_true", help="ended windows too")
    p = macts.add_parser("end", help="end a window now")
    p.add_argument("id", help="the window's id, as `maintenance list` shows")
    p.add_argument("--by", required=True, help="who ends it")
    for p in macts.choices.values():
        _client_args(p)
    mnt.set_defaults(func=cmd_maintenance, log_level="warning")

    p = sub.add_parser("drills", help="every unit's drill duties: last drill, next due, status")
    p.add_argument("--lang", choices=("zh", "en"), default="zh", help="language (default zh)")
    _client_args(p)
    p.set_defaults(func=cmd_drills, log_level="warning")
