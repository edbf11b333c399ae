"""Plans as data: an emergency plan's levels, fault categories, level rules, reporting
clocks and runbook lines, each rule citing its article (``source``).

Built-in plans live in ``monitor/plans/*.yml``; ``plan:`` in config names one of them or
a path. Plans are validated like config (every error as ``file:line: path: message``).

Clock ``due`` forms: a duration (``15m``, ``1h``) after the anchor; ``2wd`` (two working
days, China's calendar); ``next_day`` (end of the following calendar day); ``every 1h``
(recurring until the incident ends); ``monthly 3`` (end of day 3 of the next month).
Anchors (``from``): ``detected`` (first seen), ``level`` (when the incident reached the
clock's level: detection, or the upgrade), ``resolved`` (handling finished).
"""
from __future__ import annotations

import fnmatch
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import Field, ValidationError, field_validator, model_validator

from monitor.core.errors import ConfigError, ConfigIssue
from monitor.core.target import Model, RoundTripDuration, parse_duration
from monitor.core.yamlload import load_file, schema_issues

BUILTIN_DIR = Path(__file__).parent / "builtin"
Flag = Literal["casualties", "injuries", "property_loss", "loss_of_control"]  # harm only a person sets
FLAGS: tuple[str, ...] = get_args(Flag)
_DUE_RE = re.compile(r"^(?:(?P<wd>\d+)wd|next_day|every (?P<every>\S+)|monthly (?P<day>\d{1,2})|(?P<dur>\S+))$")


class Text(Model):
    zh: str
    en: str

    def get(self, lang: str) -> str:
        return self.en if lang == "en" else self.zh


class Audience(Model):
    to: tuple[str, ...] = ()
    cc: tuple[str, ...] = ()


class Level(Model):
    id: Literal[1, 2, 3]
    name: Text


class Category(Model):
    id: str
    faults: tuple[str, ...]  # glob patterns over the fault label
    system: str | None = None  # default: the alert's system label
    group: str  # response group (Hohhot art. 6)
    audience: Audience = Audience()
    runbook: Text
    source: str


class When(Model):
    """All given conditions must hold."""

    units_share_at_least: float | None = Field(default=None, ge=0, le=1)
    units_at_least: int | None = Field(default=None, ge=1)
    sites_at_least: int | None = Field(default=None, ge=1)
    head_office: bool | None = None
    unit_all_sites: bool | None = None
    flags_any: tuple[Flag, ...] = ()
    categories: tuple[str, ...] = ()
    lasting_at_least: RoundTripDuration | None = None


class LevelRule(Model):
    id: str
    level: Literal[1, 2, 3]
    when: When = When()
    source: str
    note: str | None = None  # where the plan was vague: the reading hallmon chose


class ClockSpec(Model):
    id: str
    title: Text
    from_: Literal["detected", "level", "resolved"] = Field("level", alias="from")
    due: str
    levels: tuple[Literal[1, 2, 3], ...] = (1, 2, 3)
    categories: tuple[str, ...] = ()  # empty: every category
    audience: Audience = Audience()
    source: str
    note: str | None = None

    @field_validator("due")
    @classmethod
    def _due(cls, v: str) -> str:
        m = _DUE_RE.match(v.strip())
        try:
            if not m:
                raise ValueError
            if m["every"]:
                parse_duration(m["every"])
            elif m["day"] and not 1 <= int(m["day"]) <= 28:
                raise ValueError
            elif m["dur"]:
                parse_duration(m["dur"])
        except ValueError:
            raise ValueError("expected 15m, 2wd, next_day, every 1h or monthly 3") from None
        return v.strip()

    def parsed_due(self) -> tuple[str, float]:
        """(kind, amount): ('after', seconds) | ('wd', n) | ('next_day', 0) | ('every', seconds) | ('monthly', day)."""
        m = _DUE_RE.match(self.due)
        assert m is not None  # checked by the validator
        if m["wd"]:
            return "wd", int(m["wd"])
        if m["every"]:
            return "every", parse_duration(m["every"])
        if m["day"]:
            return "monthly", int(m["day"])
        if self.due == "next_day":
            return "next_day", 0
        return "after", parse_duration(m["dur"])


class Plan(Model):
    id: str
    name: Text
    summary: str = ""  # choices hallmon made where the plan is vague
    levels: tuple[Level, ...]
    categories: tuple[Category, ...]
    level_rules: tuple[LevelRule, ...]
    clocks: tuple[ClockSpec, ...]
    reminder_before: RoundTripDuration = 300.0

    @model_validator(mode="after")
    def _consistent(self) -> "Plan":
        if sorted(lv.id for lv in self.levels) != [1, 2, 3]:
            raise ValueError("levels must be exactly 1, 2 and 3")
        ids = [c.id for c in self.clocks]
        if len(ids) != len(set(ids)):
            raise ValueError("clock ids must be unique")
        if not self.level_rules or self.level_rules[-1].when != When():
            raise ValueError("the last level rule must have no conditions (the fallback level)")
        return self

    def level_name(self, level: int, lang: str = "zh") -> str:
        return next(lv.name.get(lang) for lv in self.levels if lv.id == level)

    def category_for(self, fault: str | None) -> Category | None:
        if fault:
            for cat in self.categories:
                if any(fnmatch.fnmatchcase(fault, pat) for pat in cat.faults):
                    return cat
        return None


def validate_plan(data: Any, file: str) -> Plan:
    try:
        return Plan.model_validate(data)
    except ValidationError as err:
        raise ConfigError(schema_issues(err, data, file)) from None


def builtin_ids() -> list[str]:
    return sorted(p.stem for p in BUILTIN_DIR.glob("*.yml"))


@lru_cache(maxsize=64)
def load_plan(ref: str) -> Plan:
    """A built-in plan by id, or a plan file by path."""
    path = BUILTIN_DIR / f"{ref}.yml" if "/" not in ref and not ref.endswith(".yml") else Path(ref)
    if not path.exists():
        raise ConfigError([ConfigIssue(ref, None, "", f"no such plan; built in: {', '.join(builtin_ids())}")])
    data = load_file(path)
    if isinstance(data, dict) and "base" in data:
        base = data.pop("base")
        if base == data.get("id"):
            raise ConfigError([ConfigIssue(str(path), getattr(data, "line", None), "base",
                                           "a plan cannot be its own base")])
        inherited = load_plan(base).model_dump(mode="json", by_alias=True)
        for key, value in inherited.items():
            data.setdefault(key, value)
    return validate_plan(data, str(path))
