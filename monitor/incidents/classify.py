"""Classify: an alert and the config view in, a ``Classification`` out. Pure.

The alert's unit (from its site, or its ``unit`` label for a site the config does not
know) picks the plan; the plan's categories map the ``fault`` label to a category and
system. Alerts of one category and system form one group: the open incident they join.
A fault the fault tracker marks as caused by the site's uplink (label ``cause``) folds
into the uplink fault's group, so a site cut off is one incident, not one per device.
Drills group apart from real incidents. The router and ``plan explain`` both group here.
"""
from __future__ import annotations

from typing import Iterable

from monitor.core.alert import Alert
from monitor.incidents.records import Classification
from monitor.incidents.view import ConfigView


def classify(alert: Alert, view: ConfigView) -> Classification:
    labels = alert.labels
    site = labels.get("site")
    info = view.sites.get(site) if site else None
    unit = info.unit if info else labels.get("unit")
    ref = view.plan_for(unit)
    plan = view.plan_of(ref)
    fault = labels.get("fault")
    cat = plan.category_for(fault)
    cause = labels.get("cause")
    if cause:  # folded under the uplink's incident
        group_cat = plan.category_for(cause)
        system = view.uplink_system(site)
    else:
        group_cat = cat
        system = (cat.system if cat and cat.system else None) or labels.get("system") or "unknown"
    category = group_cat.id if group_cat else "other"
    drill = labels.get("drill") == "true"
    return Classification(plan=ref, category=category, system=system, site=site, unit=unit, fault=fault,
                          unmapped=cat is None or info is None, drill=drill, manual=alert.source == "manual",
                          group=f"{'drill|' if drill else ''}{category}|{system}", fingerprint=alert.fingerprint)


def group(alerts: Iterable[Alert], view: ConfigView) -> dict[str, list[tuple[Alert, Classification]]]:
    """Alerts by the group they join, each with its classification, in arrival order."""
    groups: dict[str, list[tuple[Alert, Classification]]] = {}
    for alert in alerts:
        c = classify(alert, view)
        groups.setdefault(c.group, []).append((alert, c))
    return groups
