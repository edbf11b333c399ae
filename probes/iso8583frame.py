"""ISO 8583 framing on a TCP stream: a length header (2-byte binary, big-endian, or
4-byte ASCII digits) counting what follows, optionally a 5-byte TPDU, then the message
as ``pyiso8583`` encodes it. Reads are bounded: a header claiming more than
``MAX_MESSAGE`` bytes is refused before anything is read or allocated."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Literal

MAX_MESSAGE = 8192

LengthHeader = Literal["binary2", "ascii4"]


class FrameError(ValueError):
    """The bytes on the wire are not a frame of the configured shape."""


@dataclass(frozen=True, slots=True)
class Framing:
    length: LengthHeader = "binary2"
    tpdu: bytes = b""  # sent as is; the same number of bytes is skipped in the answer

    @property
    def header_size(self) -> int:
        return 2 if self.length == "binary2" else 4

    def frame(self, message: bytes) -> bytes:
        body = self.tpdu + message
        if len(body) > (0xFFFF if self.length == "binary2" else 9999):
            raise FrameError(f"message of {len(body)} bytes does not fit a {self.length} header")
        head = len(body).to_bytes(2, "big") if self.length == "binary2" else f"{len(body):04d}".encode()
        return head + body

    def body_length(self, header: bytes) -> int:
        if self.length == "binary2":
            n = int.from_bytes(header, "big")
        else:
            if not header.isdigit():
                raise FrameError(f"length header {header!r} is not 4 ASCII digits")
            n = int(header)
        if n > MAX_MESSAGE:
            raise FrameError(f"length header claims {n} bytes (limit {MAX_MESSAGE})")
        if n < len(self.tpdu) + 4:
            raise FrameError(f"length header claims {n} bytes, too short for a message")
        return n

    def unframe(self, data: bytes) -> tuple[bytes, bytes]:
        """A whole frame from a buffer → (message, rest). For tests and simulators."""
        n = self.body_length(data[:self.header_size]) if len(data) >= self.header_size else None
        if n is None or len(data) < self.header_size + n:
            raise FrameError("incomplete frame")
        body = data[self.header_size:self.header_size + n]
        return body[len(self.tpdu):], data[self.header_size + n:]

    async def read(self, reader: asyncio.StreamReader) -> bytes:
        """One message from the stream; ``FrameError`` for a bad header,
        ``ConnectionError`` when the peer closes mid-frame."""
        try:
            header = await reader.readexactly(self.header_size)
            body = await reader.readexactly(self.body_length(header))
        except asyncio.IncompleteReadError as err:
            raise ConnectionError("connection closed mid-frame") from err
        return body[len(self.tpdu):]


def parse_tpdu(text: str | None) -> bytes:
    if not text:
        return b""
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raise ValueError("expected the TPDU as 10 hex digits, like 6000030000") from None
    if len(raw) != 5:
        raise ValueError("expected the TPDU as 10 hex digits, like 6000030000")
    return raw
