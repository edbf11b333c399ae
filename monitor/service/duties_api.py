"""The standing duties' API: shift checks (Guizhou part 2), the monthly summary
(Shenzhen 4.3.4) and drill duties (Guizhou part 1, Xiamen part 5, Shenzhen 7.2).

``duties_ctx`` runs the drill recorder (a consumer of the incident events) and the drill
metrics beside the router; the routes use the same tokens, scopes and error shape as
the incident API.
"""
from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from typing import AsyncIterator

from aiohttp import web

from monitor.core.errors import Conflict, Forbidden, Invalid, NotFound
from monitor.core.supervise import stop, supervise
from monitor.incidents import maintenance, monthly
from monitor.incidents.drills import DrillCollector, Drills, refresh_forever
from monitor.paging import shiftcheck
from monitor.service import keys
from monitor.service.access import Caller, caller
from monitor.service.api import body, router
from monitor.service.inputs import text, when

routes = web.RouteTableDef()


async def duties_ctx(app: web.Application) -> AsyncIterator[None]:
    rt = app[keys.RUNTIME]
    drills = Drills(app[keys.REDIS], lambda: rt.config, app[keys.ROUTER].store)
    app[keys.DRILLS] = drills
    collector = DrillCollector(drills)
    app[keys.REGISTRY].register(collector)
    restarts = rt.metrics.task_restarts
    tasks = [asyncio.create_task(supervise("drill_events", drills.consume, restarts)),
             asyncio.create_task(supervise("drill_metrics", lambda: refresh_forever(drills), restarts))]
    yield
    await stop(tasks)
    app[keys.REGISTRY].unregister(collector)


def _lang(request: web.Request) -> str:
    lang = request.query.get("lang", "zh")
    if lang not in ("zh", "en"):
        raise Invalid("lang: zh or en")
    return lang


def _roster(request: web.Request, given: object) -> str:
    cfg = request.app[keys.RUNTIME].config
    rosters = [r.id for r in cfg.paging.rosters]
    if not rosters:
        raise Invalid("roster: no roster configured (paging.rosters)")
    roster = given if given is not None else rosters[0]
    if not isinstance(roster, str) or roster not in rosters:
        raise Invalid(f"roster: no roster {roster!r}")
    return roster


# ── shift checks ─────────────────────────────────────────────────────────────────

@routes.post("/api/v1/shift-checks")
async def record_shift_check(request: web.Request) -> web.Response:
    """Record a shift check: ``{"moment": "start"|"end", "by", "items": {item: {"ok", "note",
    "follow_up"}}, "roster"?, "at"?}``."""
    caller(request, "incidents:write")
    b = await body(request)
    roster = _roster(request, b.get("roster") if isinstance(b, dict) else None)
    try:
        check = shiftcheck.parse({k: v for k, v in b.items() if k != "roster"} if isinstance(b, dict) else b,
                                 roster, datetime.now(timezone.utc))
    except shiftcheck.BadCheck as err:
        raise Invalid(str(err)) from None
    return web.json_response(await shiftcheck.record(request.app[keys.REDIS], check), status=201)


@routes.get("/api/v1/shift-checks")
async def list_shift_checks(request: web.Request) -> web.Response:
    caller(request, "incidents:read")
    roster = _roster(request, request.query.get("roster"))
    now = datetime.now(timezone.utc)
    since = when(dict(request.query), "since") or now - timedelta(days=7)
    return web.json_response({"roster": roster,
                              "checks": await shiftcheck.recent(request.app[keys.REDIS], roster, since, now)})


# ── the monthly summary ──────────────────────────────────────────────────────────

async def _monthly(request: web.Request, who: Caller, month: object, lang: str, unit: object) -> dict:
    cfg = request.app[keys.RUNTIME].config
    units = monthly.units_of(cfg)
    if unit is not None and unit not in units:
        raise Invalid(f"unit: no unit {unit!r}")
    only = set(units) if who.units is None else set(who.units)
    if unit is not None:
        if unit not in only:
            raise Forbidden("unit is outside the token's units")
        only = {str(unit)}
    tz = cfg.site_timezone("")
    try:
        start, end = monthly.bounds(month if isinstance(month, str) else "", tz)
    except monthly.BadMonth as err:
        raise Invalid(str(err)) from None
    docs = await monthly.of_month(router(request).store, start, end)
    report = monthly.build(str(month), docs, units, lang, only)
    return {**report, "text": monthly.render(report, tz)}


@routes.get("/api/v1/reports/monthly")
async def monthly_report(request: web.Request) -> web.Response:
    """The month's level-3 incidents per unit, drills apart (Shenzhen 4.3.4)."""
    who = caller(request, "incidents:read")
    q = request.query
    return web.json_response(await _monthly(request, who, q.get("month"), _lang(request), q.get("unit")))


@routes.post("/api/v1/reports/monthly")
async def file_monthly(request: web.Request) -> web.Response:
    """File the month's summary: ``{"month", "by", "at"?, "note"?, "unit"?}``; every
    monthly clock of the month's level-3 incidents is met by it."""
    who = caller(request, "incidents:write")
    b = await body(request)
    if not isinstance(b, dict):
        raise Invalid("body: expected a JSON object")
    by, note, at = text(b, "by", limit=100), text(b, "note", required=False), when(b, "at")
    if at is not None and at > datetime.now(timezone.utc):
        raise Invalid("at: must not be in the future")
    report = await _monthly(request, who, b.get("month"), "zh", b.get("unit"))
    filed = []
    for incident_id, clock in monthly.fileable(report):
        inc = await router(request).file_report(incident_id, clock, by, at, note or f"monthly summary {report['month']}")
        done = inc.clock(clock)
        filed.append({"incident": incident_id, "clock": clock, "late": bool(done and done.filed and done.filed.late)})
    return web.json_response({"month": report["month"], "filed": filed, "total": report["total"]})


# ── drills ───────────────────────────────────────────────────────────────────────

@routes.get("/api/v1/drills")
async def drills(request: web.Request) -> web.Response:
    """Every unit's drill clocks: last drill, next due, status."""
    who = caller(request, "incidents:read")
    lang = _lang(request)
    now = datetime.now(timezone.utc)
    clocks = await request.app[keys.DRILLS].snapshot(now)
    return web.json_response({"drills": [c.to_json(now, lang) for c in clocks
                                         if who.units is None or c.duty.unit in who.units]})


# ── maintenance windows (Putian art. 3) ─────────────────────────────────────────

def _window_units(cfg, window: maintenance.Window) -> set[str]:
    return set(window.units) | {cfg.sites[s][0].id for s in window.sites if s in cfg.sites}


@routes.get("/api/v1/maintenance")
async def list_maintenance(request: web.Request) -> web.Response:
    """Windows in force or to come (``?all=true``: ended ones too), the config's among them."""
    who = caller(request, "incidents:read")
    cfg = request.app[keys.RUNTIME].config
    now = datetime.now(timezone.utc)
    every = request.query.get("all") == "true"
    windows = [w for w in await router(request).windows.all() if (every or w.end > now)
               and (who.units is None or _window_units(cfg, w) & who.units)]
    return web.json_response({"windows": [{**w.to_json(), "active": w.start <= now < w.end} for w in windows]})


@routes.post("/api/v1/maintenance")
async def announce_maintenance(request: web.Request) -> web.Response:
    """Announce a window: ``{"sites"|"units", "from", "to", "reason", "by"}``."""
    who = caller(request, "maintenance:write")
    cfg = request.app[keys.RUNTIME].config
    try:
        given = await body(request)
        if who.personal and isinstance(given, dict):
            given = {**given, "by": who.name}  # the signed-in person, whatever the body says
        spec = maintenance.parse(given, cfg.sites, (u.id for u in cfg.organisation.units),
                                 datetime.now(timezone.utc))
    except maintenance.BadWindow as err:
        raise Invalid(str(err)) from None
    units = set(spec["ids"]) if spec["scope"] == "units" else {cfg.sites[s][0].id for s in spec["ids"]}
    if who.units is not None and not units <= who.units:
        raise Forbidden("the window reaches units outside the token's")
    window = await router(request).windows.announce(spec)
    await router(request).rejudge_maintenance()  # incidents at those sites are held from now
    return web.json_response(window.to_json(), status=201)


@routes.delete("/api/v1/maintenance/{id}")
async def end_maintenance(request: web.Request) -> web.Response:
    """End a window now (``?by=NAME``); it stays on record with who ended it."""
    who = caller(request, "maintenance:write")
    window_id = request.match_info["id"]
    by = who.name if who.personal else text(dict(request.query), "by", limit=100)
    if window_id.startswith("config:"):
        raise Conflict("a window from the config ends when the config says so")
    windows = router(request).windows
    current = next((w for w in await windows.stored() if w.id == window_id), None)
    if current is None:
        raise NotFound(f"no maintenance window {window_id!r}")
    if who.units is not None and not _window_units(request.app[keys.RUNTIME].config, current) <= who.units:
        raise Forbidden("the window reaches units outside the token's")
    ended = await windows.end(window_id, str(by))
    await router(request).rejudge_maintenance()  # what the window held is paged now
    return web.json_response(ended.to_json())
