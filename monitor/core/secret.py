"""Secrets (tokens, robot keys) read from the environment or a file named in the
config; their repr never shows them, so they cannot end up in a log line."""
from __future__ import annotations

import os
import re
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


def _secret_env(name: Any) -> Secret:
    if not isinstance(name, str) or not name:
        raise ValueError("expected the name of an environment variable")
    value = os.environ.get(name)
    if not value:
        raise ValueError(f"environment variable {name} is not set")
    return Secret(value, f"env:{name}")


def _secret_file(path: Any) -> Secret:
    try:
        value = Path(str(path)).read_text(encoding="utf-8").strip()
    except OSError as err:
        raise ValueError(f"cannot read secret file: {err.strerror}") from None
    if not value:
        raise ValueError("secret file is empty")
    return Secret(value, f"file:{path}")


SecretEnv = Annotated[Secret, BeforeValidator(_secret_env)]
SecretFile = Annotated[Secret, BeforeValidator(_secret_file)]
