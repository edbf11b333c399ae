"""What a plan covers, article by article (``hallmon plan show NAME --coverage``), and the
readings it makes of vague passages (``hallmon plan show NAME``).

Every element of a plan cites its articles in ``source``: categories (runbooks and
audiences), level rules, clocks, drills, report templates, response groups, and the
``articles`` the plan notes as done by hallmon itself or deliberately left to people.
Coverage turns that inside out: each article, and what hallmon does for it, so that a
reviewer from the hall can check the plan in one page.
"""
from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass

from monitor.plans.model import Plan

_PART = re.compile(r"^(?P<doc>[A-Za-z]+)\s*(?P<kind>art\.|part)?\s*(?P<rest>.*)$")


def articles(source: str) -> list[str]:
    """``Hohhot art. 19, 20`` → ``Hohhot art. 19``, ``Hohhot art. 20``; documents apart
    with ``;``."""
    out: list[str] = []
    for part in source.split(";"):
        m = _PART.match(part.strip())
        if not m:
            continue
        prefix = f"{m['doc']} {m['kind']} " if m["kind"] else f"{m['doc']} "
        items = [i.strip() for i in m["rest"].split(",") if i.strip()] or [""]
        out += [(prefix + i).strip() for i in items if (prefix + i).strip() not in out]
    return out


@dataclass(frozen=True)
class Entry:
    article: str
    element: str  # what encodes it: "clock phone-report", "level rule scope-most-units" …
    does: str


def _cond(rule) -> str:
    cond = ", ".join(f"{k}={v:g}s" if k == "lasting_at_least" else f"{k}={v}"
                     for k, v in rule.when.model_dump(exclude_defaults=True).items())
    return f"level {rule.level} when {cond or 'nothing else matched'}"


def entries(plan: Plan, lang: str = "en") -> list[Entry]:
    out: list[Entry] = []

    def add(source: str, element: str, does: str) -> None:
        out.extend(Entry(a, element, does) for a in articles(source))

    for c in plan.categories:
        aud = f"; reports to {', '.join(c.audience.to)}" if c.audience.to else ""
        aud += f" cc {', '.join(c.audience.cc)}" if c.audience.cc else ""
        blind = " (a blind spot: no statutory clock)" if c.blind_spot else ""
        add(c.source, f"category {c.id}", f"faults {', '.join(c.faults)}: runbook{aud}{blind}")
    for g in plan.groups:
        add(g.source, f"group {g.id}", f"response group {g.name.get(lang)} owns its categories' incidents")
    for r in plan.level_rules:
        add(r.source, f"level rule {r.id}", _cond(r))
    for k in plan.clocks:
        levels = ",".join(map(str, k.levels))
        by_cat = " (+ the category's departments)" if k.audience_by_category else ""
        add(k.source, f"clock {k.id}", f"{k.title.get(lang)}: {k.from_} + {k.due}, levels {levels}, "
                                       f"to {', '.join(k.audience.to) or '-'}{by_cat}")
    for kind, t in plan.reports.items():
        add(t.source, f"report {kind}", f"{t.title.get(lang)}: {', '.join(t.fields)}"
                                        + (" + duty-log record" if t.duty_log else ""))
    for d in plan.drills:
        add(d.source, f"drill {d.id}", f"{d.title.get(lang)}: at least one every {d.every} {d.period}(s)")
    for a in plan.articles:
        if a.by == "hallmon":
            add(a.source, "hallmon", a.what)
    return out


def own_document(plan: Plan) -> str | None:
    """The document a built-in plan encodes (``shenzhen-customs`` → ``Shenzhen``)."""
    return None if plan.id == "default" else plan.id.split("-")[0].capitalize()


def _key(article: str) -> list:
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", article)]


def render(plan: Plan, lang: str = "en") -> str:
    own = own_document(plan)
    by_article: dict[str, list[Entry]] = defaultdict(list)
    for e in entries(plan, lang):
        by_article[e.article].append(e)
    mine = sorted((a for a in by_article if own and a.split()[0] == own), key=_key)
    borrowed = sorted((a for a in by_article if a not in mine), key=_key)
    lines = [f"{plan.id}: {plan.name.get(lang)} - coverage"]
    for title, group in ((f"articles of {own or 'the plans'} that hallmon encodes:", mine),
                         ("borrowed from other plans (hallmon's defaults):", borrowed)):
        if not group:
            continue
        lines += ["", title]
        for article in group:
            lines.append(f"  {article}")
            lines += [f"    {e.element}: {e.does}" for e in by_article[article]]
    left = [(a, item.what) for item in plan.articles if item.by == "people" for a in articles(item.source)]
    if left:
        lines += ["", "left to people (no rule or clock does it):"]
        lines += [f"  {a}: {what}" for a, what in sorted(left, key=lambda x: _key(x[0]))]
    return "\n".join(lines) + "\n"


def markdown(plans: list[Plan], lang: str = "en") -> str:
    """The README's table "plan → what hallmon does, article by article", from the same
    entries as ``--coverage`` (``scripts/coverage_table.py`` writes it; a test keeps the
    README equal to it): each plan's own articles and what it leaves to people; the
    default plan, every plan's base, with all of its articles."""
    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    rows = ["| plan | article | what hallmon does (the plan element that does it) |", "|---|---|---|"]
    for plan in plans:
        own = own_document(plan)
        by_article: dict[str, list[Entry]] = defaultdict(list)
        for e in entries(plan, lang):
            if own is None or e.article.split()[0] == own:
                by_article[e.article].append(e)
        left: dict[str, list[str]] = defaultdict(list)
        for item in plan.articles:
            if item.by == "people":
                for a in articles(item.source):
                    left[a].append(item.what)
        name = plan.id if own else f"{plan.id} (every plan's base)"
        for article in sorted(set(by_article) | set(left), key=_key):
            does = [f"{e.element}: {e.does}" for e in by_article.get(article, [])]
            does += [f"left to people: {what}" for what in left.get(article, [])]
            rows.append(f"| {name} | {cell(article)} | {cell('<br>'.join(does))} |")
            name = ""
    return "\n".join(rows) + "\n"


def readings(plan: Plan) -> list[tuple[str, str, str]]:
    """(source, element, reading) for every vague passage the plan reads a certain way."""
    out: list[tuple[str, str, str]] = []
    for kind, items in (("category", plan.categories), ("level rule", plan.level_rules), ("clock", plan.clocks),
                        ("drill", plan.drills)):
        out += [(x.source, f"{kind} {x.id}", x.note) for x in items if x.note]  # type: ignore[attr-defined]
    out += [(t.source, f"report {k}", t.note) for k, t in plan.reports.items() if t.note]
    return out
