"""``hallmon migrate [--check] -c FILE``: the stored forms by version, and the rewrite of
older incident records at rest: the history compacted, indexed and repacked
(``incidents.history.migrate_history``, forced), then the records by version
(monitor/durable/migrate.py). A start of ``hallmon run`` needs none of it: every older
form is read as it is."""
from __future__ import annotations

import argparse
import asyncio
import sys

from monitor.config.model import load_config
from monitor.core.errors import ConfigError, StoreError
from monitor.durable.connection import connect
from monitor.durable.migrate import migrate
from monitor.incidents.history import migrate_history


async def _run(url: str, check: bool) -> int:
    client = connect(url)
    try:
        history = None if check else await migrate_history(client, force=True)
        forms = await migrate(client, check=check)
    finally:
        await client.aclose()
    if history is not None:
        print(f"history: {history} incident documents compacted, repacked or re-indexed")
    for form in forms:
        print(form.line(check))
    if check:
        print("a start of `hallmon run` changes nothing stored: every older form is read as it is")
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    try:
        cfg = load_config(args.config)
    except ConfigError as err:
        print(err, file=sys.stderr)
        return 1
    try:
        return asyncio.run(_run(cfg.service.redis_url, args.check))
    except (StoreError, OSError) as err:
        print(f"hallmon migrate: Redis at {cfg.service.redis_url} unreachable: {err}", file=sys.stderr)
        return 1


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("migrate", help="stored records by schema version; rewrite older incident records at rest")
    p.add_argument("-c", "--config", required=True, help="the config file (YAML): its service.redis_url")
    p.add_argument("--check", action="store_true", help="only say what would change (changes nothing)")
    p.set_defaults(func=cmd_migrate, log_level="warning")
