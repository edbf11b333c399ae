"""The config as the incident side reads it: each unit's plan, each site's unit, zone,
uplink and maintenance windows, the organisation the level rules grade scope against,
and the one working-day calendar. Built once per config (``ConfigView.of``), or from a
set of alerts alone when ``plan explain`` runs without a config.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Iterable, Mapping
from zoneinfo import ZoneInfo

from monitor.core.alert import Alert
from monitor.core.workdays import WorkCalendar
from monitor.plans.levels import OrgView
from monitor.plans.model import Plan, load_plan

UPLINK_DEFAULT = "network"  # the system a caused fault folds under when the site names no uplink


@dataclass(frozen=True, slots=True)
class SiteInfo:
    unit: str
    timezone: ZoneInfo
    uplink_system: str  # the system of the site's uplink target
    uplinks: tuple[str, ...] = ()  # the site's uplink targets
    maintenance: tuple[tuple[datetime, datetime], ...] = ()  # announced windows [from, to)


@dataclass(frozen=True)
class ConfigView:
    plan: str  # the organisation's plan (a built-in id or a path)
    org: OrgView
    timezone: ZoneInfo  # service.timezone
    calendar: WorkCalendar
    sites: Mapping[str, SiteInfo] = field(default_factory=dict)
    unit_plans: Mapping[str, str] = field(default_factory=dict)  # units with their own plan
    announced: tuple[Any, ...] = ()  # maintenance windows announced at run time (``maintenance.Window``)
    fold_window: float = 30.0  # a device fault this close to its site's uplink fault folds into it
    plans: Mapping[str, Plan] = field(default_factory=dict)  # the plans the config loaded, by reference

    @classmethod
    def from_config(cls, cfg: Any) -> "ConfigView":
        uplink: dict[str, str] = {}
        for t in cfg.targets:
            if t.name in cfg.uplinks.get(t.site, ()):
                uplink.setdefault(t.site, t.system)
        sites = {
            s.id: SiteInfo(unit=u.id, timezone=cfg.site_timezone(s.id), uplink_system=uplink.get(s.id, UPLINK_DEFAULT),
                           uplinks=tuple(s.uplinks), maintenance=tuple((w.from_, w.to) for w in s.maintenance))
            for u in cfg.organisation.units for s in u.sites}
        return cls(plan=cfg.plan, org=OrgView.from_config(cfg), timezone=ZoneInfo(cfg.service.timezone),
                   calendar=cfg.work_calendar, sites=sites,
                   unit_plans={u.id: u.plan for u in cfg.organisation.units if u.plan},
                   fold_window=cfg.service.fold_window, plans=cfg.plans)

    @classmethod
    def from_alerts(cls, alerts: Iterable[Alert], plan: str, timezone: str = "Asia/Shanghai",
                    calendar: WorkCalendar | None = None) -> "ConfigView":
        """No config: the units and sites the alerts name are the whole organisation."""
        tz = ZoneInfo(timezone)
        unit_sites: dict[str, set[str]] = {}
        sites: dict[str, SiteInfo] = {}
        for a in alerts:
            unit, site = a.labels.get("unit", "?"), a.labels.get("site", "?")
            unit_sites.setdefault(unit, set()).add(site)
            sites.setdefault(site, SiteInfo(unit=unit, timezone=tz, uplink_system=UPLINK_DEFAULT))
        org = OrgView(unit_sites={u: frozenset(s) for u, s in unit_sites.items()},
                      site_unit={s: i.unit for s, i in sites.items()})
        return cls(plan=plan, org=org, timezone=tz, calendar=calendar or WorkCalendar(), sites=sites)

    def with_plan(self, plan: str) -> "ConfigView":
        """Every unit on ``plan`` (``plan explain --plan``)."""
        return replace(self, plan=plan, unit_plans={})

    def plan_for(self, unit: str | None) -> str:
        return self.unit_plans.get(unit or "", self.plan)

    def plan_of(self, ref: str) -> Plan:
        """The plan ``ref`` names, as the running config loaded it (a reload reads plan
        files again; nothing between reloads does); a plan the config does not name
        (``plan explain --plan``) is read from its file."""
        plan = self.plans.get(ref)
        return plan if plan is not None else load_plan(ref)

    def tz(self, site: str | None) -> ZoneInfo:
        info = self.sites.get(site or "")
        return info.timezone if info else self.timezone

    def is_uplink(self, labels: Mapping[str, str]) -> bool:
        """An alert of a site's uplink target itself (not a fault it caused)."""
        info = self.sites.get(labels.get("site") or "")
        return info is not None and labels.get("target") in info.uplinks and "cause" not in labels

    def uplink_system(self, site: str | None) -> str:
        info = self.sites.get(site or "")
        return info.uplink_system if info else UPLINK_DEFAULT

    def windows_over(self, site: str, at: datetime) -> list[tuple[datetime, datetime]]:
        """The maintenance windows (the config's and those announced) over ``site`` at ``at``."""
        info = self.sites.get(site)
        if info is None:
            return []
        return [w for w in info.maintenance if w[0] <= at < w[1]] + [
            (w.start, w.end) for w in self.announced if w.covers(site, info.unit, at)]

    def in_maintenance(self, sites: Iterable[str], at: datetime) -> bool:
        """Every affected site inside a maintenance window at ``at`` (Putian art. 3): the
        incident is recorded as always; paging holds its pages back."""
        names = list(sites)
        return bool(names) and all(self.windows_over(s, at) for s in names)

    def maintenance_until(self, sites: Iterable[str], at: datetime) -> datetime | None:
        """When the first of the sites leaves its windows; None when they are not all in one."""
        names = list(sites)
        if not self.in_maintenance(names, at):
            return None
        return min(max(end for _, end in self.windows_over(s, at)) for s in names)
