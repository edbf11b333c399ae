"""The ``hallmon`` command line. Each command is a ``register(subparsers)`` function;
later parts of the service add theirs to ``COMMANDS``."""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from typing import Callable

import aiohttp
import structlog
from prometheus_client import CollectorRegistry

from monitor.checks.checker import Checker
from monitor.checks.faults import FaultTracker
from monitor.checks.metrics import ReadingSeries, ServiceMetrics
from monitor.cli import channel, demo, duties, incidents, migrate, oncall, users
from monitor.config.model import load_config
from monitor.core.errors import ConfigError
from monitor.core.logs import configure
from monitor.core.secret import secrets_optional, unreadable
from monitor.core.version import version
from monitor.service.serve import event_loop_policy, serve
from probes import PROBES, ProbeContext

log = structlog.get_logger("hallmon.cli")


# ── run ──────────────────────────────────────────────────────────────────────────

def cmd_run(args: argparse.Namespace) -> int:
    event_loop_policy()
    try:
        asyncio.run(serve(args.config, args.shard))
    except ConfigError as err:
        print(err, file=sys.stderr)
        return 1
    except ValueError as err:  # a bad --shard
        print(f"hallmon run: {err}", file=sys.stderr)
        return 2
    return 0


# ── check-config ─────────────────────────────────────────────────────────────────

def cmd_check_config(args: argparse.Namespace) -> int:
    path = args.config or args.file
    if not path:
        print("hallmon check-config: give the config file (-c FILE)", file=sys.stderr)
        return 2
    try:
        with secrets_optional() as absent:  # CI and workstations have no production secrets
            cfg = load_config(path)
    except ConfigError as err:
        print(err, file=sys.stderr)
        print(f"{len(err.issues)} error(s)", file=sys.stderr)
        return 1
    print(f"{path}: ok ({len(cfg.organisation.units)} units, {len(cfg.sites)} sites, "
          f"{len(cfg.targets)} targets)")
    if absent:
        print(f"note: not readable here, needed by `hallmon run`: {', '.join(dict.fromkeys(absent))}")
    return 0


# ── probe ────────────────────────────────────────────────────────────────────────

async def probe_once(path: str, names: list[str]) -> list[dict]:
    with secrets_optional():  # probing needs no API or paging secret
        cfg = load_config(path)
    targets = [t for t in cfg.targets if not names or t.name in names]
    unknown = set(names) - {t.name for t in targets}
    if unknown:
        raise ValueError(f"no such target: {', '.join(sorted(unknown))}")
    for t in targets:  # a target's own secrets (an SNMPv3 key) are needed, the rest are not
        if missing := unreadable(t.spec):
            raise ValueError(f"target {t.name} needs {', '.join(missing)}, not readable here")
    async with aiohttp.ClientSession() as session:
        probes = {k: cls(ProbeContext(session)) for k, cls in PROBES.items()}
        checker = Checker(probes, FaultTracker(), ReadingSeries(), ServiceMetrics(CollectorRegistry()),
                          lambda alert: None)
        try:
            readings = await asyncio.gather(*(checker.probe(t) for t in targets))
        finally:
            for p in probes.values():
                await p.close()
    return [{"target": t.name, "kind": t.kind, "site": t.site, "unit": t.unit, "system": t.system,
             **r.to_json()} for t, r in zip(targets, readings)]


def cmd_probe(args: argparse.Namespace) -> int:
    try:
        rows = asyncio.run(probe_once(args.config, args.targets))
    except ConfigError as err:
        print(err, file=sys.stderr)
        return 2
    except ValueError as err:
        print(f"hallmon probe: {err}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
    else:
        head = ("TARGET", "KIND", "SITE", "OK", "MS", "FAULTS", "ERROR / VALUES")
        table = [head] + [(r["target"], r["kind"], r["site"], "yes" if r["ok"] else "NO",
                           f"{r['duration_seconds'] * 1000:.1f}", ",".join(r["faults"]) or "-",
                           r["error"] or " ".join(f"{k.removeprefix('hallmon_')}={v:g}"
                                                  for k, v in r["values"].items()))
                          for r in rows]
        widths = [max(len(str(row[i])) for row in table) for i in range(len(head) - 1)]
        for row in table:
            print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)) + "  " + str(row[-1]))
    return 0 if all(not r["faults"] for r in rows) else 1


def register_core(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run the service: probes, incidents, clocks, paging, API, /metrics")
    p.add_argument("-c", "--config", required=True, help="the config file (YAML)")
    p.add_argument("--shard", default="0/1", help="i/n: check only this shard's targets")
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("check-config", help="validate a config file and its plans (exit 0 or 1); "
                                            "needs no secrets in the environment")
    p.add_argument("-c", "--config", help="the config file (YAML)")
    p.add_argument("file", nargs="?", help="the config file, as an alternative to -c")
    p.set_defaults(func=cmd_check_config, log_level="warning")
    p = sub.add_parser("probe", help="check targets once and print readings and faults")
    p.add_argument("-c", "--config", required=True, help="the config file (YAML)")
    p.add_argument("targets", nargs="*", metavar="TARGET", help="target names (default: every target)")
    p.add_argument("--json", action="store_true", help="print the readings as JSON")
    p.set_defaults(func=cmd_probe, log_level="warning")


COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [register_core, demo.register, incidents.register,
                                                                 oncall.register, duties.register, channel.register,
                                                                 migrate.register, users.register]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="hallmon", description="hallmon: monitoring, incidents and paging for service halls and ports.",
        epilog="`hallmon COMMAND --help` shows a command's options. The API clients (incidents, drill, "
               "shift-report…) read $HALLMON_URL and $HALLMON_TOKEN.")
    parser.add_argument("--version", action="version", version=f"hallmon {version()}")
    parser.add_argument("--log-format", choices=("auto", "console", "json"), default="auto",
                        help="log lines as text for a terminal, JSON, or by whether stderr is a terminal")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in COMMANDS:
        register(sub)
    args = parser.parse_args(argv)
    configure(args.log_format, logging.WARNING if getattr(args, "log_level", "") == "warning" else logging.INFO)
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
