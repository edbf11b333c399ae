"""Levels: which of a plan's level rules an incident's facts satisfy.

The facts are what the plans grade by: affected units and sites (absolute and as a share
of the organisation), whether a whole unit or a head-office unit is hit, how long the
incident has lasted, and the harm flags only a person sets. The first matching rule
sets the level; the decision keeps the rule and the facts, so a person can see why.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from monitor.plans.model import LevelRule, Plan, When


@dataclass(frozen=True)
class OrgView:
    """The organisation as the level rules see it."""

    unit_sites: Mapping[str, frozenset[str]]  # unit → all its sites
    head_office: frozenset[str] = frozenset()
    site_unit: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_config(cls, cfg: Any) -> "OrgView":
        units = cfg.organisation.units
        return cls(unit_sites={u.id: frozenset(s.id for s in u.sites) for u in units},
                   head_office=frozenset(u.id for u in units if u.head_office),
                   site_unit={s.id: u.id for u in units for s in u.sites})


@dataclass(frozen=True, slots=True)
class Facts:
    """What a level decision saw."""

    category: str
    units: tuple[str, ...]
    sites: tuple[str, ...]
    units_affected: int
    units_total: int
    units_share: float
    units_whole: tuple[str, ...]
    head_office_units: tuple[str, ...]
    lasting_seconds: float
    flags: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"category": self.category, "units": list(self.units), "sites": list(self.sites),
                "units_affected": self.units_affected, "units_total": self.units_total,
                "units_share": self.units_share, "units_whole": list(self.units_whole),
                "head_office_units": list(self.head_office_units), "lasting_seconds": self.lasting_seconds,
                "flags": list(self.flags)}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "Facts":
        return cls(category=d["category"], units=tuple(d["units"]), sites=tuple(d["sites"]),
                   units_affected=int(d["units_affected"]), units_total=int(d["units_total"]),
                   units_share=float(d["units_share"]), units_whole=tuple(d["units_whole"]),
                   head_office_units=tuple(d["head_office_units"]),
                   lasting_seconds=float(d["lasting_seconds"]), flags=tuple(d["flags"]))


@dataclass(frozen=True, slots=True)
class Decision:
    """The level and why: the rule (``manual`` when a person set it) and the facts."""

    level: int
    rule: str
    source: str
    note: str | None
    facts: Facts
    by: str | None = None  # a person's override (rule ``manual``)
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"level": self.level, "rule": self.rule, "source": self.source, "note": self.note,
                               "facts": self.facts.to_json()}
        if self.by is not None:
            out["by"] = self.by
        if self.reason is not None:
            out["reason"] = self.reason
        return out

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "Decision":
        return cls(level=int(d["level"]), rule=d["rule"], source=d["source"], note=d.get("note"),
                   facts=Facts.from_json(d["facts"]), by=d.get("by"), reason=d.get("reason"))


def facts(org: OrgView, category: str, units: Iterable[str], sites: Iterable[str],
          lasting: float, flags: Iterable[str]) -> Facts:
    unit_set, site_set = set(units), set(sites)
    total = len(org.unit_sites) or 1
    known = unit_set & set(org.unit_sites)
    return Facts(
        category=category,
        units=tuple(sorted(unit_set)), sites=tuple(sorted(site_set)),
        units_affected=len(known), units_total=len(org.unit_sites),
        units_share=round(len(known) / total, 4),
        units_whole=tuple(sorted(u for u in known if org.unit_sites[u] and org.unit_sites[u] <= site_set)),
        head_office_units=tuple(sorted(known & org.head_office)),
        lasting_seconds=round(lasting, 1),
        flags=tuple(sorted(set(flags))),
    )


def _holds(when: When, f: Facts) -> bool:
    checks = (
        when.units_share_at_least is None or f.units_share >= when.units_share_at_least,
        when.units_share_above is None or f.units_share > when.units_share_above,
        when.units_at_least is None or f.units_affected >= when.units_at_least,
        when.sites_at_least is None or len(f.sites) >= when.sites_at_least,
        when.head_office is None or bool(f.head_office_units) == when.head_office,
        when.unit_all_sites is None or bool(f.units_whole) == when.unit_all_sites,
        not when.flags_any or bool(set(when.flags_any) & set(f.flags)),
        not when.categories or f.category in when.categories,
        when.lasting_at_least is None or f.lasting_seconds >= when.lasting_at_least,
    )
    return all(checks)


def decide(plan: Plan, f: Facts, rules: Iterable[LevelRule] | None = None) -> Decision:
    for rule in rules if rules is not None else plan.level_rules:
        if _holds(rule.when, f):
            return Decision(rule.level, rule.id, rule.source, rule.note, f)
    raise AssertionError("a plan's last level rule always matches")  # enforced by Plan validation
