"""NUT's network protocol on the wire (docs/net-protocol.txt): space-separated words,
double-quoted values with backslash escapes, one line per message, ``ERR <CODE>`` for
errors, ``BEGIN LIST …`` / ``END LIST …`` around lists.

Everything read is bounded: a line is at most ``MAX_LINE`` bytes and a list at most
``MAX_LIST`` lines, so a peer dripping bytes or sending junk costs a typed error, not
memory.
"""
from __future__ import annotations

import asyncio

MAX_LINE = 4096
MAX_LIST = 5000


class WireError(ValueError):
    """The bytes are not a NUT protocol line."""


def parse_line(line: str) -> list[str]:
    """``VAR ups1 ups.status "OB LB"`` → ``["VAR", "ups1", "ups.status", "OB LB"]``."""
    words: list[str] = []
    i, n = 0, len(line)
    while i < n:
        c = line[i]
        if c == " ":
            i += 1
            continue
        if c == '"':
            buf = []
            i += 1
            while True:
                if i >= n:
                    raise WireError("unterminated quoted value")
                c = line[i]
                if c == "\\":
                    if i + 1 >= n:
                        raise WireError("dangling escape")
                    buf.append(line[i + 1])
                    i += 2
                elif c == '"':
                    i += 1
                    break
                else:
                    buf.append(c)
                    i += 1
            words.append("".join(buf))
        else:
            j = i
            while j < n and line[j] not in ' "':
                j += 1
            words.append(line[i:j])
            i = j
    return words


def quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def format_line(words: list[str]) -> str:
    """Inverse of ``parse_line``: words that need it are quoted."""
    return " ".join(w if w and not any(c in w for c in ' "\\') else quote(w) for w in words)


async def read_line(reader: asyncio.StreamReader) -> str:
    """One line, without its newline; ``WireError`` for over-long or non-text lines,
    ``ConnectionError`` when the peer closes."""
    try:
        raw = await reader.readuntil(b"\n")
    except asyncio.LimitOverrunError as err:
        raise WireError(f"line longer than {MAX_LINE} bytes") from err
    except asyncio.IncompleteReadError as err:
        raise ConnectionError("connection closed by upsd") from err
    if len(raw) > MAX_LINE:
        raise WireError(f"line longer than {MAX_LINE} bytes")
    try:
        text = raw.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError as err:
        raise WireError("line is not text") from err
    if any(ord(c) < 32 and c != "\t" for c in text):
        raise WireError("line contains control characters")
    return text
