"""A YAML loader that remembers where every key and item stood.

Mappings load as ``LineDict`` and sequences as ``LineList``; both remember their own
line and the line of each key or item, so a validation error deep in the tree can be
reported as ``hall.yml:42: organisation.units[1]...``. Duplicate keys, which plain YAML
silently overwrites, are reported as errors.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from monitor.core.errors import ConfigError, ConfigIssue


class LineDict(dict):
    line: int = 0
    key_lines: dict


class LineList(list):
    line: int = 0
    item_lines: list


class _Loader(yaml.SafeLoader):
    duplicates: list[tuple[int, Any]]  # (line, key) of every key seen twice in one mapping


def _mapping(loader: _Loader, node: yaml.MappingNode) -> LineDict:
    loader.flatten_mapping(node)
    out = LineDict()
    out.line = node.start_mark.line + 1
    out.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in out:
            loader.duplicates.append((key_node.start_mark.line + 1, key))
        out[key] = loader.construct_object(value_node, deep=True)
        out.key_lines[key] = key_node.start_mark.line + 1
    return out


def _sequence(loader: _Loader, node: yaml.SequenceNode) -> LineList:
    out = LineList(loader.construct_object(child, deep=True) for child in node.value)
    out.line = node.start_mark.line + 1
    out.item_lines = [child.start_mark.line + 1 for child in node.value]
    return out


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _sequence)
# Dates and times stay strings: config validation parses them with their time zone.
_Loader.yaml_implicit_resolvers = {
    ch: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for ch, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_text(text: str, file: str) -> Any:
    loader = _Loader(text)
    loader.duplicates = []
    try:
        data = loader.get_single_data()
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = mark.line + 1 if mark else None
        problem = getattr(err, "problem", None) or str(err)
        raise ConfigError([ConfigIssue(file, line, "", f"not valid YAML: {problem}")]) from err
    finally:
        loader.dispose()
    if loader.duplicates:
        raise ConfigError([ConfigIssue(file, line, str(key), "duplicate key")
                           for line, key in loader.duplicates])
    return data


def load_file(path: str | Path) -> Any:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError([ConfigIssue(str(path), None, "", f"cannot read: {err.strerror}")]) from err
    return load_text(text, str(path))


def locate(data: Any, loc: Sequence[Any]) -> tuple[str, int | None]:
    """Follow ``loc`` (a pydantic error location) through the loaded tree: the dotted
    key path and the line of the deepest node reached. Parts of ``loc`` that are not in
    the document (a union's tag) are skipped."""
    path = ""
    line = getattr(data, "line", None)
    node = data
    for part in loc:
        if isinstance(node, dict) and part in node:
            line = node.key_lines.get(part, line) if isinstance(node, LineDict) else line
            path = f"{path}.{part}" if path else str(part)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            if isinstance(node, LineList):
                line = node.item_lines[part]
            path = f"{path}[{part}]"
            node = node[part]
        elif isinstance(node, dict) and part in (node.get("kind"), node.get("type")):
            continue  # a discriminated union's tag (a target's kind, a channel's type), not a key
        elif isinstance(node, dict) and isinstance(part, str):
            path = f"{path}.{part}" if path else part  # a key missing from the document
            break
    return path, line


def _got(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return ""
    return f", got {json.dumps(value, ensure_ascii=False) if isinstance(value, str) else value}"


def schema_issues(err: ValidationError, data: Any, file: str, kinds: Sequence[str] = ()) -> list[ConfigIssue]:
    """Pydantic's errors as located issues; a list whose items failed is not also
    reported as too short. ``kinds`` are the known target kinds, named when one is wrong."""
    errors = err.errors(include_url=False)
    nested = [e["loc"] for e in errors if e["type"] != "too_short"]
    return [_issue(e, data, file, kinds) for e in errors
            if e["type"] != "too_short" or not any(loc[:len(e["loc"])] == e["loc"] for loc in nested)]


def _issue(err: ErrorDetails, data: Any, file: str, kinds: Sequence[str]) -> ConfigIssue:
    path, line = locate(data, err["loc"])
    kind, msg = err["type"], err["msg"]
    if kind == "extra_forbidden":
        msg = "unknown key (a typo?)"
    elif kind == "too_short":
        msg = f"expected at least {err['ctx']['min_length']} item(s)"
    elif kind == "missing":
        msg = "required key missing"
    elif kind == "union_tag_invalid":
        path += ".kind"
        msg = f"unknown target kind {err['ctx']['tag']!r}; known kinds: {', '.join(kinds)}"
    elif kind == "union_tag_not_found":
        path += ".kind"
        msg = f"required key missing; one of: {', '.join(kinds)}"
    else:
        msg = msg.removeprefix("Value error, ").removeprefix("Assertion failed, ") + _got(err.get("input"))
    return ConfigIssue(file, line, path, msg)
