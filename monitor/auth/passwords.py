"""Local passwords: argon2id (argon2-cffi's defaults, RFC 9106's second recommended
parameter set: 64 MiB, 3 passes), a minimum length, and a verify that costs the same
for an unknown account as for a known one (so a timing does not tell which names exist).
"""
from __future__ import annotations

import asyncio
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_HASHER = PasswordHasher()  # argon2id


@cache
def _dummy() -> str:
    """Verified against when the account does not exist, so both answers take as long
    (made on first use: hashing costs ~50 ms+ of CPU, not to be paid at every start)."""
    return _HASHER.hash("not-a-password: an unknown account is checked against this")


class WeakPassword(ValueError):
    pass


def check_strength(password: str, min_length: int) -> None:
    if len(password) < min_length:
        raise WeakPassword(f"a password needs at least {min_length} characters")
    if len(password) > 1024:
        raise WeakPassword("a password has at most 1024 characters")


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def _verify(stored: str | None, password: str) -> bool:
    try:
        return _HASHER.verify(stored or _dummy(), password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


async def verify(stored: str | None, password: str) -> bool:
    """Whether ``password`` matches ``stored`` (None: no such account, still hashed).
    In a thread: one verify is ~50 ms of CPU, which must not stall the event loop."""
    return await asyncio.to_thread(_verify, stored, password)
