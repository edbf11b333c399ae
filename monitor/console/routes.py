"""The console's own routes: the page and its assets under ``/console`` (``/``
redirects there), the string catalogue, and two small reads the page needs besides the
incident API: who the token is (``/api/v1/whoami``) and who is on duty
(``/api/v1/oncall``).

The page is one HTML file and plain JS over the JSON API, all shipped in the package:
no CDN, no outside fonts, no build step. It signs in with a name and password (a
session token from ``POST /api/v1/session``) or an API token, keeps it in
sessionStorage and sends it in the Authorization header, so no cookie is set and
there is nothing for another site to forge (docs/accounts.md).
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from aiohttp import web

from monitor.console.catalogue import catalogue
from monitor.core.errors import Invalid
from monitor.core.timesource import iso
from monitor.core.version import version
from monitor.incidents.records import Incident
from monitor.incidents.store import IncidentStore, decode
from monitor.paging.rosters import Rosters
from monitor.service import keys
from monitor.service.access import caller
from monitor.service.inputs import when

STATIC = Path(__file__).parent / "static"
# the page runs only its own files: no inline script, nothing from elsewhere
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                               "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}

routes = web.RouteTableDef()


@routes.get("/")
async def root(request: web.Request) -> web.Response:
    raise web.HTTPFound("/console/")


@routes.get("/console")
async def console_bare(request: web.Request) -> web.Response:
    raise web.HTTPFound("/console/")


@routes.get("/console/")
async def page(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "index.html", headers=HEADERS)


@routes.get("/console/static/{name}")
async def asset(request: web.Request) -> web.FileResponse:
    name = request.match_info["name"]
    path = STATIC / name
    if "/" in name or name.startswith(".") or not path.is_file():
        raise web.HTTPNotFound()
    return web.FileResponse(path, headers=HEADERS)


@routes.get("/console/catalogue.json")
async def strings(request: web.Request) -> web.Response:
    return web.json_response(catalogue(), headers={"Cache-Control": "no-cache"})


@routes.get("/api/v1/whoami")
async def whoami(request: web.Request) -> web.Response:
    """The token's actor, scopes and units, and the organisation it may see (names of
    units and sites, their configured maintenance windows) for display and search."""
    who = caller(request, "incidents:read")
    cfg = request.app[keys.RUNTIME].config
    units = [{"id": u.id, "name": u.name,
              "sites": [{"id": s.id, "name": s.name,
                         "maintenance": [{"from": w.from_.isoformat(), "to": w.to.isoformat(), "reason": w.reason}
                                         for w in s.maintenance]} for s in u.sites]}
             for u in cfg.organisation.units if who.units is None or u.id in who.units]
    return web.json_response({
        "name": who.name, "person": who.person, "scopes": sorted(who.scopes), "kind": who.kind, "role": who.role,
        "units": sorted(who.units) if who.units is not None else None,
        "timezone": cfg.service.timezone, "version": version(),
        "organisation": {"name": cfg.organisation.name, "units": units},
        "rosters": [r.id for r in cfg.paging.rosters],
    })


def row_json(inc: Incident) -> dict:
    """An incident as one row of the console's list: only what ``rowHtml`` in app.js
    reads (the detail view fetches the whole document). A row is ~0.6 KB where the
    public document is ~3 KB; only the clocks still owed, the list shows no other."""
    return {"id": inc.id, "status": inc.status, "level": inc.level, "level_name": inc.level_name,
            "category": inc.category, "faults": list(inc.faults), "sites": list(inc.sites),
            "detected_at": iso(inc.detected_at), "updated_at": iso(inc.updated_at) if inc.updated_at else None,
            "drill": inc.drill, "maintenance": inc.maintenance, "recovered": inc.recovered,
            "clocks": [{"id": c.id, "title": c.title, "title_en": c.title_en, "due_at": iso(c.due_at),
                        "status": c.status} for c in inc.clocks if c.owed]}


class OpenCache:
    """The unresolved incidents as the console lists them, parsed once per version: every
    console that connects or resyncs asks for the whole list, so an unchanged document is
    not parsed again. It holds the incidents open now and nothing else (not the resolved
    ones with a report still owed: those held ~180 KB each in 0.6, frozen plan and all)."""

    def __init__(self) -> None:
        self.parsed: dict[str, tuple[bytes | str, Incident, str]] = {}  # id → (stored JSON, incident, row JSON)

    async def read(self, store: IncidentStore) -> list[tuple[Incident, str]]:
        parsed: dict[str, tuple[bytes | str, Incident, str]] = {}
        for incident_id, raw in await store.unresolved():
            hit = self.parsed.get(incident_id)
            if hit is None or hit[0] != raw:
                inc = (await decode(store.r, [raw]))[0]
                if inc is None:
                    continue
                hit = (raw, inc, json.dumps(row_json(inc), ensure_ascii=False, separators=(",", ":")))
            parsed[incident_id] = hit
        self.parsed = parsed  # only what is open now stays
        return [(inc, text) for _, inc, text in parsed.values()]


OPEN_CACHE: web.AppKey[OpenCache] = web.AppKey("console_open_cache", OpenCache)


@routes.get("/api/v1/incidents-open")
async def open_incidents(request: web.Request) -> web.Response:
    """Every incident not yet resolved that the token sees, read from the store's set of
    live incidents (not a walk through three years of history), each as a lean row
    (``row_json``): the console's list."""
    who = caller(request, "incidents:read")
    docs = await request.app[OPEN_CACHE].read(request.app[keys.ROUTER].store)
    out = [(inc, text) for inc, text in docs if inc.status != "resolved" and who.sees(inc)]
    out.sort(key=lambda item: item[0].detected_at, reverse=True)
    body = '{"incidents":[' + ",".join(text for _, text in out) + "]}"
    return web.Response(text=body, content_type="application/json")


@routes.get("/api/v1/oncall")
async def oncall(request: web.Request) -> web.Response:
    """Each roster layer's person on duty at ``at`` (default now) and the one after."""
    caller(request, "incidents:read")
    cfg = request.app[keys.RUNTIME].config
    at = when(dict(request.query), "at") or datetime.now(timezone.utc)
    if not 1 <= at.year <= 9998:
        raise Invalid("at: a year between 1 and 9998")
    rosters = Rosters(cfg.paging, cfg.work_calendar)
    out = []
    for roster in cfg.paging.rosters:
        layers = []
        for layer in roster.layers:
            now = rosters.shift(roster, layer, at)
            nxt = rosters.shift(roster, layer, now.end)
            layers.append({"id": layer.id, "now": _shift(now), "next": _shift(nxt)})
        out.append({"id": roster.id, "timezone": roster.timezone, "layers": layers})
    return web.json_response({"at": at.isoformat(), "rosters": out})


def _shift(shift) -> dict:
    person = {"id": shift.person.id, "name": shift.person.name} if shift.person else None
    return {"person": person, "from": shift.start.isoformat(), "to": shift.end.isoformat(),
            "override": shift.override}
