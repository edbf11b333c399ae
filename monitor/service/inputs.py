"""What a caller sends, checked before anything is stored: the body read within its
size and time limits, JSON that Redis and the report drafts can hold (no lone
surrogates, no nesting deep enough to exhaust the parser), times inside 2000–2099 with
an offset, strings and integers of exactly their type. Every refusal is ``Invalid``
(400) naming the field; a body that does not arrive in time is ``RequestTimeout``."""
from __future__ import annotations

import asyncio
import re
from datetime import datetime, timezone
from typing import Any

import orjson
from aiohttp import web

from monitor.core.errors import Invalid, RequestTimeout

EARLIEST = datetime(2000, 1, 1, tzinfo=timezone.utc)
LATEST = datetime(2100, 1, 1, tzinfo=timezone.utc)
# a character that is not white space, in Python's sense (str.isspace) and therefore in the
# OpenAPI document's too (ECMA-262's \s lacks U+001C-U+001F and U+0085, so both name them)
NOT_BLANK = r"[^\s\u001c-\u001f\u0085]"
_NOT_BLANK = re.compile(NOT_BLANK)


def parse_json(raw: bytes) -> Any:
    """JSON text (RFC 8259) as Python values, by orjson: it refuses what Redis and the
    drafts could not hold (lone surrogates, invalid UTF-8), NaN and Infinity, numbers
    beyond a double, and nesting deeper than 1024 (no recursion to exhaust)."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as err:
        msg = str(err)
        if "depth limit" in msg:
            raise Invalid("body: JSON nested too deeply (more than 1024 levels)") from None
        if "surrogate in string" in msg:  # orjson: "no low …" / "invalid high surrogate in string"
            raise Invalid(f"body: a lone UTF-16 surrogate is not text ({msg})") from None
        raise Invalid(f"body: not valid JSON: {msg}") from None


async def read_body(request: web.Request, timeout: float, limit: int) -> bytes:
    try:
        async with asyncio.timeout(timeout):
            return await request.read()
    except TimeoutError:
        raise RequestTimeout(f"body: not received within {timeout:g}s") from None
    except web.HTTPRequestEntityTooLarge:
        raise Invalid(f"body: larger than the limit of {limit} bytes") from None


_TIMES: dict[str, datetime] = {}  # text → time, of valid times only: a storm's alerts share a few


def parse_time(value: Any, where: str) -> datetime:
    """An RFC 3339 time with an offset, between the years 2000 and 2099."""
    if not isinstance(value, str):
        raise Invalid(f"{where}: expected an RFC 3339 time string")
    known = _TIMES.get(value)
    if known is not None:
        return known
    dt = _parse_time(value, where)
    if len(_TIMES) >= 4096:
        _TIMES.clear()
    _TIMES[value] = dt
    return dt


def _parse_time(value: str, where: str) -> datetime:
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise Invalid(f"{where}: not an RFC 3339 time: {value[:40]!r}") from None
    if dt.tzinfo is None:
        raise Invalid(f"{where}: time needs an offset (Z or +08:00)")
    try:
        utc = dt.astimezone(timezone.utc)
    except OverflowError:  # year 1 east of UTC, year 9999 west of it
        utc = None
    if utc is None or not EARLIEST <= utc < LATEST:
        raise Invalid(f"{where}: expected a time between 2000 and 2099, got {value[:40]!r}")
    return dt


def text(obj: Any, key: str, required: bool = True, limit: int = 2000) -> str | None:
    value = obj.get(key) if isinstance(obj, dict) else None
    if value is None and not required:
        return None
    if not isinstance(value, str) or not _NOT_BLANK.search(value) or len(value) > limit:
        raise Invalid(f"{key}: expected a non-empty string of at most {limit} characters")
    return value


def when(obj: Any, key: str) -> datetime | None:
    value = obj.get(key) if isinstance(obj, dict) else None
    return None if value is None else parse_time(value, key)


def level(value: Any) -> int:
    """1, 2 or 3 as a JSON integer: not ``1.0``, not ``true``, not ``"1"``."""
    if type(value) is not int or value not in (1, 2, 3):
        raise Invalid("level: expected the integer 1, 2 or 3")
    return value


def obj(value: Any) -> dict:
    if not isinstance(value, dict):
        raise Invalid("body: expected a JSON object")
    return value
