"""structlog set-up: readable in a terminal, JSON lines otherwise."""
from __future__ import annotations

import logging
import sys
from typing import Any, MutableMapping

import structlog

from monitor.core.secret import redact


def redact_urls(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """No log line carries a URL's password (a Redis URL in an error, say)."""
    for key, value in event.items():
        if isinstance(value, str) and "@" in value:
            event[key] = redact(value)
    return event


def console_renderer(colors: bool = True) -> structlog.dev.ConsoleRenderer:
    """Readable lines with plain tracebacks: never rich's, which print every frame's local
    variables (a token among them, say) and take seconds for a Redis client's."""
    return structlog.dev.ConsoleRenderer(colors=colors, exception_formatter=structlog.dev.plain_traceback)


def _common() -> list[Any]:
    """What every log line goes through before it is rendered, wherever it goes."""
    return [structlog.contextvars.merge_contextvars, structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True), structlog.processors.format_exc_info,
            redact_urls]


def configure(fmt: str = "auto", level: int = logging.INFO) -> None:
    if fmt == "auto":
        fmt = "console" if sys.stderr.isatty() else "json"
    renderer = (console_renderer() if fmt == "console"
                else structlog.processors.JSONRenderer(ensure_ascii=False))
    structlog.configure(
        processors=[*_common(), renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )


class _FileAndTerminal:
    """JSON lines to a file; events at ``terminal_level`` or above also as one plain line
    (no ANSI codes) on stderr."""

    def __init__(self, path: str, terminal_level: int):
        self.file = open(path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115 - open for the process's life
        self.json = structlog.processors.JSONRenderer(ensure_ascii=False)
        self.terminal_level = terminal_level

    def __call__(self, logger: Any, method: str, event: MutableMapping[str, Any]) -> str:
        line = self.json(logger, method, dict(event))
        self.file.write(f"{line!s}\n")
        if logging.getLevelName(method.upper()) >= self.terminal_level:
            extra = " ".join(f"{k}={v}" for k, v in event.items()
                             if k not in ("event", "level", "timestamp") and v is not None)
            print(f"hallmon {event.get('level', method)}: {event.get('event')} {extra}".rstrip(), file=sys.stderr)
        raise structlog.DropEvent


def configure_file(path: str, terminal_level: int = logging.WARNING) -> None:
    """Everything at INFO and above as JSON lines in ``path``; warnings and errors also on
    the terminal (``hallmon demo``)."""
    structlog.configure(
        processors=[*_common(), _FileAndTerminal(path, terminal_level)],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=False,
    )
