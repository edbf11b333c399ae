"""Secrets (tokens, robot keys) read from the environment or a file named in the
config; their repr never shows them, so they cannot end up in a log line."""
from __future__ import annotations

import contextvars
import os
import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator

# scheme://user:password@ — the password part, in any text (a URL inside an error message too)
_URL_PASSWORD = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*://[^\s/@:]*):[^\s/@]*@")


def redact(text: str) -> str:
    """``text`` with every URL's password replaced by ``***`` (redis://:***@host:6379/0)."""
    return _URL_PASSWORD.sub(r"\1:***@", text) if "@" in text else text


@dataclass(frozen=True)
class Secret:
    """A token or key read from the environment or a file. Its repr never shows it."""

    value: str = field(repr=False)
    source: str

    def __repr__(self) -> str:
        return f"Secret({self.source})"

    __str__ = __repr__


# set while a config is checked away from its secrets (check-config, probe): a missing
# secret is noted here (its source) instead of failing validation
_ABSENT: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("hallmon_absent_secrets", default=None)


@contextmanager
def secrets_optional():
    """Validate a config without its secrets (CI, a workstation): each secret that
    cannot be read becomes an empty ``Secret`` and its source is listed in the yielded
    list, for the caller to mention; every other check is as strict as ever."""
    absent: list[str] = []
    token = _ABSENT.set(absent)
    try:
        yield absent
    finally:
        _ABSENT.reset(token)


def unreadable(model: Any) -> list[str]:
    """Sources of a config object's own secrets that ``secrets_optional`` let through
    unread: a command that needs them (a channel test, a probe) names them and stops."""
    return [v.source for v in vars(model).values() if isinstance(v, Secret) and not v.value]


def _missing(source: str, message: str) -> Secret:
    absent = _ABSENT.get()
    if absent is None:
        raise ValueError(message)
    absent.append(source)
    return Secret("", source)


def _secret_env(name: Any) -> Secret:
    if not isinstance(name, str) or not name:
        raise ValueError("expected the name of an environment variable")
    value = os.environ.get(name)
    if not value:
        return _missing(f"env:{name}", f"environment variable {name} is not set")
    return Secret(value, f"env:{name}")


def _secret_file(path: Any) -> Secret:
    try:
        value = Path(str(path)).read_text(encoding="utf-8").strip()
    except OSError as err:
        return _missing(f"file:{path}", f"cannot read secret file: {err.strerror}")
    if not value:
        return _missing(f"file:{path}", "secret file is empty")
    return Secret(value, f"file:{path}")


SecretEnv = Annotated[Secret, BeforeValidator(_secret_env)]
SecretFile = Annotated[Secret, BeforeValidator(_secret_file)]
