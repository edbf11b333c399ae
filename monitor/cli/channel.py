"""``hallmon channel test NAME -c FILE``: send one test notification through a
configured channel (the same sender, request shape and signing a page uses), so a new
robot, mailbox or gateway is proven before the first real incident needs it.

A webhook receives the page payload with ``"kind": "test"`` and no incident; the
message's words come from the console's catalogue (``--lang``)."""
from __future__ import annotations

import argparse
import asyncio
import sys
import uuid

import aiohttp

from monitor.cli.summary import t
from monitor.config.model import Config, load_config
from monitor.core.errors import ChannelError, ConfigError
from monitor.core.secret import secrets_optional, unreadable
from monitor.paging.channels import sender
from monitor.paging.messages import Message


async def send_test(cfg: Config, channel_id: str, lang: str) -> str:
    channel = next((c for c in cfg.paging.channels if c.id == channel_id), None)
    if channel is None:
        known = ", ".join(c.id for c in cfg.paging.channels) or "none"
        raise ValueError(f"no channel {channel_id!r} in paging.channels (configured: {known})")
    if missing := unreadable(channel):
        raise ValueError(f"channel {channel_id!r} needs {', '.join(missing)}, not readable here")
    # the first person this channel reaches stands in as the recipient (an SMS needs a phone)
    person = next((p for p in cfg.paging.people if channel_id in p.channels), None)
    title = t("cli.test.title", lang)
    msg = Message(kind="test", title=title, text=f"**{title}**\n\n" + t("cli.test.text", lang, channel=channel_id),
                  lang=lang)
    async with aiohttp.ClientSession() as session:
        await sender(channel, session).send(msg, person, f"test-{uuid.uuid4().hex}")
    return t("cli.test.sent", lang, channel=channel_id, type=channel.type)


def cmd_channel_test(args: argparse.Namespace) -> int:
    try:
        with secrets_optional():  # only the tested channel's secrets are needed
            cfg = load_config(args.config)
        print(asyncio.run(send_test(cfg, args.name, args.lang)))
    except ConfigError as err:
        print(err, file=sys.stderr)
        return 2
    except ValueError as err:
        print(f"hallmon channel test: {err}", file=sys.stderr)
        return 2
    except ChannelError as err:
        print(t("cli.test.failed", args.lang, channel=args.name, detail=err), file=sys.stderr)
        return 1
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    ch = sub.add_parser("channel", help="paging channels: send a test notification")
    acts = ch.add_subparsers(dest="channel_action", required=True, metavar="ACTION")
    p = acts.add_parser("test", help="send one test notification through a configured channel")
    p.add_argument("name", help="the channel's id in paging.channels")
    p.add_argument("-c", "--config", required=True, help="the config file (YAML)")
    p.add_argument("--lang", choices=("zh", "en"), default="zh", help="language of the message (default zh)")
    p.set_defaults(func=cmd_channel_test, log_level="warning")
