"""``hallmon oncall who`` and ``hallmon oncall show``: the duty rosters from the config."""
from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone

from monitor.config.model import load_config
from monitor.core.errors import ConfigError
from monitor.core.secret import secrets_optional
from monitor.paging.rosters import Rosters


def _rosters(args: argparse.Namespace) -> Rosters:
    with secrets_optional():  # rosters need no token or robot key
        cfg = load_config(args.config)
    return Rosters(cfg.paging, cfg.work_calendar)


def _at(text: str | None) -> datetime:
    if not text:
        return datetime.now(timezone.utc)
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        raise ValueError("--at needs an offset, like 2026-12-01T09:00+08:00")
    return dt


def cmd_who(args: argparse.Namespace) -> int:
    try:
        rosters = _rosters(args)
        at = _at(args.at)
        ids = [args.roster] if args.roster else list(rosters.rosters)
        if not ids:
            raise ValueError("the config has no rosters (paging.rosters)")
        unknown = [r for r in ids if r not in rosters.rosters]
        if unknown:
            raise ValueError(f"no roster {unknown[0]!r}")
    except (ConfigError, ValueError) as err:
        print(f"hallmon oncall: {err}", file=sys.stderr)
        return 1
    rows = [{"roster": r, "layer": s.layer, "person": s.person.id if s.person else None,
             "name": s.person.name if s.person else None, "from": s.start.isoformat(), "to": s.end.isoformat(),
             "override": s.override} for r in ids for s in rosters.who(r, at)]
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
    else:
        for row in rows:
            print(f"{row['roster']:<14} {row['layer']:<14} {row['person'] or '-':<12} {row['name'] or '-':<10} "
                  f"{row['from']} → {row['to']}{'  (override)' if row['override'] else ''}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    try:
        rosters = _rosters(args)
        if args.roster not in rosters.rosters:
            raise ValueError(f"no roster {args.roster!r}")
        shifts = rosters.schedule(args.roster, _at(args.at), args.days)
    except (ConfigError, ValueError) as err:
        print(f"hallmon oncall: {err}", file=sys.stderr)
        return 1
    for s in shifts:
        print(f"{s.start.strftime('%Y-%m-%d %a %H:%M')} → {s.end.strftime('%m-%d %H:%M')}  {s.layer:<14} "
              f"{(s.person.name if s.person else '-')}{'  (override)' if s.override else ''}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("oncall", help="who is on duty")
    acts = p.add_subparsers(dest="oncall_action", required=True, metavar="ACTION")
    w = acts.add_parser("who", help="each roster layer's person on duty at a time")
    w.add_argument("-c", "--config", required=True, help="the config file (YAML)")
    w.add_argument("--roster", help="only this roster (default: every roster)")
    w.add_argument("--at", help="RFC 3339 time (default now)")
    w.add_argument("--json", action="store_true", help="print JSON")
    w.set_defaults(func=cmd_who, log_level="warning")
    s = acts.add_parser("show", help="a roster's shifts, day by day")
    s.add_argument("roster", help="the roster's id")
    s.add_argument("-c", "--config", required=True, help="the config file (YAML)")
    s.add_argument("--days", type=int, default=14, help="how many days (default 14)")
    s.add_argument("--at", help="RFC 3339 start (default now)")
    s.set_defaults(func=cmd_show, log_level="warning")
