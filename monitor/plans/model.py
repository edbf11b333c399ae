"""Plans as data: an emergency plan's levels, fault categories, level rules, reporting
clocks and runbook lines, each rule citing its article (``source``).

Built-in plans live in ``monitor/plans/*.yml``; ``plan:`` in config names one of them or
a path. Plans are validated like config (every error as ``file:line: path: message``).

Clock ``due`` forms: a duration (``15m``, ``1h``) after the anchor; ``2wd`` (two working
days, China's calendar); ``next_day`` (end of the following calendar day); ``every 1h``
(recurring until the incident ends); ``monthly 3`` (end of day 3 of the next month).
Anchors (``from``): ``detected`` (first seen), ``level`` (when the incident reached the
clock's level: detection, or the upgrade), ``resolved`` (handling finished).

Beyond levels and clocks a plan carries: its response groups (Hohhot art. 6), who each
category's reports go to (Xiamen 3(2)2: ``audience_by_category`` on a clock), which
categories are blind spots (hallmon cannot see a device: no statutory clock unless a
clock names the category), its report templates, its drill cadence, the readings it
makes of vague passages (``note``) and the articles it leaves to people or that hallmon
does by itself (``articles``, ``plan show --coverage``).
"""
from __future__ import annotations

import fnmatch
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, Mapping, get_args

import structlog
from pydantic import Field, PrivateAttr, ValidationError, field_validator, model_validator

from monitor.core.errors import ConfigError, ConfigIssue
from monitor.core.target import STORED, Model, RoundTripDuration, parse_duration
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
    audience: Audience = Audience()  # who its reports go to (Xiamen 3(2)2)
    blind_spot: bool = False  # hallmon cannot see the device: engineers' business, no statutory clock
    runbook: Text
    source: str
    note: str | None = None


class Group(Model):
    """A response group that owns categories (Hohhot art. 6)."""

    id: str
    name: Text
    source: str


class Article(Model):
    """An article no rule or clock of the plan encodes: left to people on purpose, or
    done by hallmon itself (rosters, retention, drill mode…)."""

    source: str
    by: Literal["people", "hallmon"]
    what: str


REPORT_KINDS = ("phone", "written", "final")
REPORT_FIELDS = ("time", "place", "cause", "background", "course", "state", "scope", "impact", "losses",
                 "measures", "forecast", "result", "summary", "investigation", "rescue", "effect", "problems", "lessons",
                 "approver", "handler")


class ReportTemplate(Model):
    """One report draft: its fields in order, the article it follows, and whether the
    duty log's call record goes with it (Shenzhen 4.3.2)."""

    title: Text
    source: str
    fields: tuple[str, ...] = Field(min_length=1)
    duty_log: bool = False
    note: str | None = None

    @field_validator("fields")
    @classmethod
    def _known(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [f for f in v if f not in REPORT_FIELDS]
        if unknown:
            raise ValueError(f"unknown report field(s) {', '.join(unknown)}; known: {', '.join(REPORT_FIELDS)}")
        return v


class DrillSpec(Model):
    """A drill duty: at least one drill matching ``faults`` and ``levels`` in every
    ``every`` calendar ``period`` (per unit)."""

    id: str
    title: Text
    period: Literal["quarter", "year"]
    every: int = Field(1, ge=1, le=10)
    faults: tuple[str, ...] = ("*",)  # glob patterns: which drills count
    levels: tuple[Literal[1, 2, 3], ...] = (1, 2, 3)
    audience: Audience = Audience()
    source: str
    note: str | None = None

    def counts(self, faults: list[str], level: int) -> bool:
        return level in self.levels and any(fnmatch.fnmatchcase(f, p) for f in faults for p in self.faults)


class When(Model):
    """All given conditions must hold."""

    units_share_at_least: float | None = Field(default=None, ge=0, le=1)
    units_share_above: float | None = Field(default=None, ge=0, lt=1)  # strictly more ("most units": more than half)
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
    audience_by_category: bool = False  # add the category's audience (Xiamen 3(2)2)
    drills: bool = True  # False: a drill does not get this clock (Shenzhen 4.3.4 counts real incidents)
    source: str
    note: str | None = None
    # resolved against the plan's categories when the plan is validated (not stored)
    _audiences: dict[str, Audience] = PrivateAttr(default_factory=dict)
    _blind: set[str] = PrivateAttr(default_factory=set)

    def audience_for(self, category: str) -> Audience:
        return self._audiences.get(category, self._audiences.get("", self.audience))

    def applies(self, level: int, category: str, drill: bool = False) -> bool:
        """Whether an incident at ``level`` in ``category`` gets this clock: a blind spot
        only when the clock names it, a drill only when the clock allows drills."""
        named = category in self.categories
        return (level in self.levels and (named or not self.categories) and (named or category not in self._blind)
                and (self.drills or not drill))

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
    manual_level: str = ""  # the article under which a person sets the level; "" when the plan names none
    groups: tuple[Group, ...] = ()
    other_audience: Audience = Audience()  # reports of an incident no category matched
    reports: dict[Literal["phone", "written", "final"], ReportTemplate] = {}
    drills: tuple[DrillSpec, ...] = ()
    articles: tuple[Article, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> "Plan":
        if sorted(lv.id for lv in self.levels) != [1, 2, 3]:
            raise ValueError("levels must be exactly 1, 2 and 3")
        ids = [c.id for c in self.clocks]
        if len(ids) != len(set(ids)):
            raise ValueError("clock ids must be unique")
        if not self.level_rules or self.level_rules[-1].when != When():
            raise ValueError("the last level rule must have no conditions (the fallback level)")
        groups = {g.id for g in self.groups}
        stray = sorted({c.group for c in self.categories} - groups) if groups else []
        if stray:
            raise ValueError(f"categories name groups the plan does not define: {', '.join(stray)}")
        if len({d.id for d in self.drills}) != len(self.drills):
            raise ValueError("drill ids must be unique")
        blind = {c.id for c in self.categories if c.blind_spot}
        for clock in self.clocks:
            clock._blind.update(blind)
            if clock.audience_by_category:
                for cat in (*self.categories, None):
                    extra = cat.audience if cat else self.other_audience
                    clock._audiences[cat.id if cat else ""] = Audience(
                        to=tuple(dict.fromkeys(clock.audience.to + extra.to)),
                        cc=tuple(dict.fromkeys(clock.audience.cc + extra.cc)))
        return self

    def group_of(self, category: str) -> Group | None:
        """The response group that owns ``category`` (when the plan names groups)."""
        cat = next((c for c in self.categories if c.id == category), None)
        return next((g for g in self.groups if cat and g.id == cat.group), None)

    @property
    def manual_level_source(self) -> str:
        """What a level set by a person cites: the plan's article, or the plan itself."""
        return self.manual_level or f"{self.id}: set by a person (the plan names no article)"

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


def stored_plan(data: Mapping[str, Any]) -> Plan:
    """A plan frozen into an incident by any release, read leniently (issue 17): older
    field forms normalised (0.5 froze durations as numbers), keys this release does not
    know dropped. A frozen plan that still does not validate (a rule this release
    refuses) is never an error for the incident: its plan's built-in definition stands in
    (or the default plan's), and that is logged once per plan version."""
    try:
        return Plan.model_validate(data, context=STORED)
    except ValidationError as err:
        ref = data.get("id") if isinstance(data.get("id"), str) else "default"
        stand_in = ref if ref in builtin_ids() else "default"
        structlog.get_logger("hallmon.plans").warning(
            "frozen_plan_unreadable", plan=ref, stand_in=stand_in, error=str(err).splitlines()[0][:200])
        return load_plan(stand_in)


def builtin_ids() -> list[str]:
    return sorted(p.stem for p in BUILTIN_DIR.glob("*.yml"))


def load_plan(ref: str) -> Plan:
    """A built-in plan by id, or a plan file by path. A built-in plan is read once per
    process; a plan file is read again on every call, so that a reload (SIGHUP) sees
    the edited file: the running config holds the plans it loaded (``Config.plans``),
    and the service reads plans from there, never from here per alert."""
    builtin = "/" not in ref and not ref.endswith(".yml")
    return _builtin_plan(ref) if builtin else _read_plan(Path(ref))


@lru_cache(maxsize=64)
def _builtin_plan(ref: str) -> Plan:
    return _read_plan(BUILTIN_DIR / f"{ref}.yml", ref)


def _read_plan(path: Path, ref: str | None = None) -> Plan:
    ref = ref or str(path)
    if not path.exists():
        raise ConfigError([ConfigIssue(ref, None, "", f"no such plan; built in: {', '.join(builtin_ids())}")])
    data = load_file(path)
    if isinstance(data, dict) and "base" in data:
        base = data.pop("base")
        if base == data.get("id"):
            raise ConfigError([ConfigIssue(str(path), getattr(data, "line", None), "base",
                                           "a plan cannot be its own base")])
        inherited = load_plan(base).model_dump(mode="json", by_alias=True)
        if isinstance(data.get("reports"), dict):  # report templates: per kind
            data["reports"] = {**inherited.get("reports", {}), **data["reports"]}
        for key, value in inherited.items():
            data.setdefault(key, value)
    return validate_plan(data, str(path))
