"""The version hallmon reports everywhere (``hallmon --version``, ``hallmon_build_info``,
the console): the installed package's, which pyproject.toml sets."""
from __future__ import annotations

import platform
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version


def version() -> str:
    try:
        return _version("hallmon")
    except PackageNotFoundError:  # running from a checkout that was never installed
        return "0+unknown"


def python() -> str:
    return platform.python_version()
