"""``hallmon user add|passwd|list|disable|unlock -c FILE``: local accounts, written to
the config's Redis directly (the service needs no restart: a sign-in reads the store).

A password is never an argument (it would show in ``ps`` and the shell's history): it
is asked twice at the terminal, or read from the first line of standard input with
``--password-stdin`` (scripts, tests). ``passwd`` and ``disable`` end the account's
sessions; every change is in the audit log with the actor ``cli``.
"""
from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
from dataclasses import replace
from datetime import datetime, timezone

from monitor.auth import passwords
from monitor.auth.lockout import Lockout
from monitor.auth.records import Account
from monitor.auth.roles import ROLES
from monitor.auth.store import AuthStore
from monitor.config.model import Config, load_config
from monitor.core.errors import ConfigError, StoreError
from monitor.core.secret import secrets_optional
from monitor.durable import connection as redisconn


class Refusal(ValueError):
    pass


def _password(args: argparse.Namespace, cfg: Config) -> str:
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            raise Refusal("the two passwords differ")
    try:
        passwords.check_strength(password, cfg.auth.password_min_length)
    except passwords.WeakPassword as err:
        raise Refusal(str(err)) from None
    return password


def _units(cfg: Config, given: str | None) -> tuple[str, ...] | None:
    if given is None:
        return None
    units = tuple(u.strip() for u in given.split(",") if u.strip())
    known = {u.id for u in cfg.organisation.units}
    if not units or not set(units) <= known:
        raise Refusal(f"--units: a comma-separated list of {', '.join(sorted(known))}")
    return units


async def _run(args: argparse.Namespace, cfg: Config) -> str:
    client = redisconn.connect(cfg.service.redis_url, pool_size=2, socket_connect_timeout=2, socket_timeout=5,
                               decode_responses=True)
    store = AuthStore(client)
    try:
        return await ACTIONS[args.user_action](args, cfg, store)
    finally:
        await client.aclose()


async def _add(args: argparse.Namespace, cfg: Config, store: AuthStore) -> str:
    if args.person is not None and args.person not in {p.id for p in cfg.paging.people}:
        raise Refusal(f"--person: no person {args.person!r} in paging.people")
    units = _units(cfg, args.units)
    if await store.account(args.name) is not None:
        raise Refusal(f"an account {args.name!r} exists already (hallmon user passwd to change its password)")
    password = _password(args, cfg)
    now = datetime.now(timezone.utc)
    person_name = next((p.name for p in cfg.paging.people if p.id == args.person), None)
    account = Account(args.name, args.display or person_name or args.name, args.role, units, args.person,
                      passwords.hash_password(password), False, now, now)
    if not await store.add_account(account):
        raise Refusal(f"an account {args.name!r} exists already")
    await store.audit("account_added", args.name, "", "cli", f"role {args.role}")
    return f"account {args.name} added: {args.role}, units {', '.join(units) if units else 'all'}"


async def _existing(store: AuthStore, name: str) -> Account:
    account = await store.account(name)
    if account is None:
        raise Refusal(f"no account {name!r} (hallmon user list)")
    return account


async def _passwd(args: argparse.Namespace, cfg: Config, store: AuthStore) -> str:
    account = await _existing(store, args.name)
    password = _password(args, cfg)
    await store.put_account(replace(account, password_hash=passwords.hash_password(password),
                                    changed_at=datetime.now(timezone.utc)))
    ended = await store.end_sessions(args.name)
    await store.audit("password_changed", args.name, "", "cli", f"{ended} sessions ended")
    return f"password of {args.name} changed; {ended} session(s) ended"


async def _disable(args: argparse.Namespace, cfg: Config, store: AuthStore) -> str:
    account = await _existing(store, args.name)
    await store.put_account(replace(account, disabled=True, changed_at=datetime.now(timezone.utc)))
    ended = await store.end_sessions(args.name)
    await store.audit("account_disabled", args.name, "", "cli", f"{ended} sessions ended")
    return f"account {args.name} disabled; {ended} session(s) ended"


async def _unlock(args: argparse.Namespace, cfg: Config, store: AuthStore) -> str:
    await Lockout(store.r, cfg.auth.lockout, store.clock).unlock(args.name)
    await store.audit("unlocked", args.name, "", "cli")
    return f"failed sign-ins of {args.name} cleared"


async def _list(args: argparse.Namespace, cfg: Config, store: AuthStore) -> str:
    accounts = await store.accounts()
    if args.json:
        return json.dumps([a.public_json() for a in accounts], ensure_ascii=False, indent=2)
    rows = [("NAME", "ROLE", "UNITS", "PERSON", "STATE")] + [
        (a.name, a.role, ",".join(a.units) if a.units else "all", a.person or "-",
         "disabled" if a.disabled else "active") for a in accounts]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1] for r in rows)


ACTIONS = {"add": _add, "passwd": _passwd, "disable": _disable, "unlock": _unlock, "list": _list}


def cmd_user(args: argparse.Namespace) -> int:
    try:
        with secrets_optional():  # accounts need none of the config's secrets
            cfg = load_config(args.config)
        print(asyncio.run(_run(args, cfg)))
    except ConfigError as err:
        print(err, file=sys.stderr)
        return 2
    except Refusal as err:
        print(f"hallmon user {args.user_action}: {err}", file=sys.stderr)
        return 2
    except StoreError as err:
        print(f"hallmon user {args.user_action}: the store cannot be reached: {err}", file=sys.stderr)
        return 1
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    user = sub.add_parser("user", help="local accounts: add, passwd, list, disable, unlock")
    acts = user.add_subparsers(dest="user_action", required=True, metavar="ACTION")

    def action(name: str, help: str, named: bool = True) -> argparse.ArgumentParser:
        p = acts.add_parser(name, help=help)
        if named:
            p.add_argument("name", help="the account's sign-in name")
        p.add_argument("-c", "--config", required=True, help="the config file (YAML)")
        p.set_defaults(func=cmd_user, log_level="warning")
        return p

    p = action("add", "add a local account")
    p.add_argument("--role", required=True, choices=ROLES, help="what the person may do, in their units")
    p.add_argument("--units", help="comma-separated unit ids (default: every unit)")
    p.add_argument("--person", help="the paging.people id this account is")
    p.add_argument("--display", help="the name recorded as the actor (default: the person's name)")
    p.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    p = action("passwd", "set a new password (ends the account's sessions)")
    p.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    action("disable", "disable an account (ends its sessions)")
    action("unlock", "clear an account's failed sign-ins")
    p = action("list", "list the local accounts", named=False)
    p.add_argument("--json", action="store_true", help="print the accounts as JSON")
