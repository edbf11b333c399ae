"""The incident API: alert ingest, incidents, people's actions, report drafts.

Every route here needs a bearer token from ``api.tokens`` with the route's scope; a
token limited to units sees and changes only incidents touching those units. The one
exception is an acknowledgement through a signed link (``?exp=&sig=``). Errors are
``{"error": code, "detail": …}``; a malformed body never reaches the store.
"""
from __future__ import annotations

import re
import time
from datetime import datetime, timedelta, timezone
from typing import Any

from aiohttp import web

from monitor.core.errors import Forbidden, Invalid
from monitor.incidents.drafts import KINDS, render_report
from monitor.incidents.indexes import Search
from monitor.incidents.records import Incident
from monitor.incidents.router import FLAGS
from monitor.paging import shiftcheck
from monitor.paging.handoff import build, duty_people, render
from monitor.paging.rosters import Rosters
from monitor.service import keys
from monitor.service.access import Caller, actor, caller
from monitor.service.endpoints import target_states
from monitor.service.ingest import Window, check_labels
from monitor.service.inputs import level, obj, parse_json, read_body, text, when
from monitor.service.openapi import document

routes = web.RouteTableDef()
_EXP = re.compile(r"[0-9]{1,12}")
_SIG = re.compile(r"[A-Za-z0-9_=-]{1,256}")  # ASCII, URL-safe: what a signer writes


async def body(request: web.Request) -> Any:
    api = request.app[keys.RUNTIME].config.api
    timeout = request.app[keys.RUNTIME].config.service.http.body_timeout
    return parse_json(await read_body(request, timeout, api.max_body_bytes))


def harm_flags(value: Any, required: bool) -> list[str]:
    """The harm flags a person sets (the router's FLAGS), as a list."""
    if not isinstance(value, list) or (required and not value) or not all(
            isinstance(f, str) and f in FLAGS for f in value):
        raise Invalid(f"flags: expected a {'non-empty ' if required else ''}list of {', '.join(FLAGS)}")
    return value


def router(request: web.Request):
    return request.app[keys.ROUTER]


async def visible(request: web.Request, who: Caller) -> Incident:
    doc = await router(request).store.require(request.match_info["id"])
    if not who.sees(doc):
        raise Forbidden("incident is outside the token's units")
    return doc


# ── ingest ───────────────────────────────────────────────────────────────────────

def window(request: web.Request) -> Window:
    api = request.app[keys.RUNTIME].config.api
    return Window(timedelta(seconds=api.alert_max_age), timedelta(seconds=api.alert_max_ahead))


async def _ingest(request: web.Request, kind: str, wait: bool) -> web.Response:
    """Check the body in full, store it in one command, answer. The alerts are placed in
    incidents by the intake consumer (incidents/intake.py): the Alertmanager webhook is
    answered 202 once stored (Alertmanager never reads the body); the alert list waits
    up to ``api.alert_wait`` for its incidents, else answers 202 with ``pending``."""
    who = caller(request, "alerts:write")
    raw = await read_body(request, request.app[keys.RUNTIME].config.service.http.body_timeout,
                          request.app[keys.RUNTIME].config.api.max_body_bytes)
    at = time.time()
    now = datetime.fromtimestamp(at, timezone.utc)
    alerts = check_labels(kind, parse_json(raw), window(request), now)
    cfg = request.app[keys.RUNTIME].config
    who.check_alerts(alerts, cfg)
    if not alerts:
        return web.json_response({"accepted": 0, "incidents": []}) if wait else \
            web.json_response({"accepted": 0}, status=202)
    intake = request.app[keys.INTAKE]
    entry = await intake.submit(raw, kind, who.name, at, wait)
    if not wait:
        return web.json_response({"accepted": len(alerts)}, status=202)
    incidents = await intake.wait(entry, cfg.api.alert_wait)
    if incidents is None:
        return web.json_response({"accepted": len(alerts), "pending": True}, status=202)
    return web.json_response({"accepted": len(alerts), "incidents": incidents})


@routes.post("/api/v1/alerts/alertmanager")
async def alertmanager_webhook(request: web.Request) -> web.Response:
    return await _ingest(request, "webhook", wait=False)


@routes.post("/api/v1/alerts")
async def alerts(request: web.Request) -> web.Response:
    return await _ingest(request, "list", wait=True)


# ── incidents ────────────────────────────────────────────────────────────────────

@routes.post("/api/v1/incidents")
async def create_manual(request: web.Request) -> web.Response:
    who = caller(request, "incidents:write")
    b = obj(await body(request))
    flags = harm_flags(b.get("flags", []), required=False)
    chosen = None if b.get("level") is None else level(b["level"])
    if not isinstance(b.get("drill", False), bool):
        raise Invalid("drill: expected true or false")
    if b.get("drill"):
        caller(request, "drills:write")
    category, site = text(b, "category", limit=40), text(b, "site", limit=100)
    cfg = request.app[keys.RUNTIME].config
    if site not in cfg.sites:
        raise Invalid(f"site: no site {site!r}")
    if not who.sees_unit(cfg.sites[site][0].id):
        raise Forbidden("site is outside the token's units")
    doc = await router(request).open_manual(category, site, actor(who, b), text(b, "summary"),
                                            flags, drill=bool(b.get("drill")), level=chosen)
    return web.json_response(doc.public_json(), status=201)


@routes.get("/api/v1/incidents")
async def list_incidents(request: web.Request) -> web.Response:
    who = caller(request, "incidents:read")
    q = request.query
    since = when(dict(q), "since")
    if "level" in q and q["level"] not in ("1", "2", "3"):
        raise Invalid("level: expected 1, 2 or 3")
    if "status" in q and q["status"] not in ("open", "acknowledged", "resolved"):
        raise Invalid("status: expected open, acknowledged or resolved")
    raw_limit, raw_offset = q.get("limit", "1000"), q.get("offset", "0")
    if not (raw_limit.isascii() and raw_limit.isdigit() and raw_offset.isascii() and raw_offset.isdigit()
            and 1 <= int(raw_limit) <= 10_000 and len(raw_offset) < 10):
        raise Invalid("limit: an integer 1..10000; offset: an integer 0 or more")
    limit, offset = int(raw_limit), int(raw_offset)
    if q.get("order", "newest") not in ("newest", "oldest"):
        raise Invalid("order: newest or oldest")
    for name in ("site", "unit", "category"):
        if name in q and not (0 < len(q[name]) <= 100):
            raise Invalid(f"{name}: 1 to 100 characters")
    # the filters are the store's indexes: a page holds only matches, and a search reads
    # only the documents it returns (a unit-limited token searches only its units)
    search = Search(status=q.get("status"), level=int(q["level"]) if "level" in q else None, site=q.get("site"),
                    unit=q.get("unit"), category=q.get("category"), units_any=who.units, since=since)
    page = await router(request).store.search(search, limit=limit, offset=offset,
                                              oldest_first=q.get("order") == "oldest")
    out = [doc.public_json() for doc in page.incidents if who.sees(doc)]
    # a full page may have more behind it: ask again from next_offset
    return web.json_response({"incidents": out, "next_offset": page.next_offset})


@routes.get("/api/v1/incidents/{id}")
async def show(request: web.Request) -> web.Response:
    doc = await visible(request, caller(request, "incidents:read"))
    store = router(request).store
    return web.json_response({**doc.public_json(), "alerts": [a.to_json() for a in await store.alerts(doc.id)],
                              "timeline": [e.to_json() for e in await store.timeline(doc.id)],
                              "timeline_intact": await store.verify_timeline(doc.id)})


@routes.post("/api/v1/incidents/{id}/ack")
async def ack(request: web.Request) -> web.Response:
    incident_id = request.match_info["id"]
    if "sig" in request.query or "exp" in request.query:
        exp, sig = request.query.get("exp"), request.query.get("sig", "")
        if exp is not None and not _EXP.fullmatch(exp):
            raise Invalid("exp: expected the link's expiry, a Unix time in ASCII digits")
        link = request.app[keys.ACK_SIGNER].verify(incident_id, request.query) if _SIG.fullmatch(sig) else None
        if link is None:
            raise Forbidden("ack link is forged, incomplete or expired")
        if not await link.redeem(request.app[keys.REDIS]):
            raise Forbidden("ack link was used already")
        people = {p.id: p.name for p in request.app[keys.RUNTIME].config.paging.people}
        by = people.get(link.person, link.person)
        doc = await router(request).ack(incident_id, by, via=f"link:{link.person}")
    else:
        who = caller(request, "incidents:write")
        by = actor(who, await body(request))
        await visible(request, who)
        doc = await router(request).ack(incident_id, by, via="api")
    return web.json_response(doc.public_json())


@routes.post("/api/v1/incidents/{id}/reports/{clock}")
async def file_report(request: web.Request) -> web.Response:
    who = caller(request, "incidents:write")
    b = obj(await body(request))
    by, at, note = actor(who, b), when(b, "at"), text(b, "note", required=False)
    await visible(request, who)
    doc = await router(request).file_report(request.match_info["id"], request.match_info["clock"], by, at, note)
    return web.json_response(doc.public_json())


@routes.post("/api/v1/incidents/{id}/level")
async def set_level(request: web.Request) -> web.Response:
    who = caller(request, "incidents:level")
    b = obj(await body(request))
    chosen, by, reason = level(b.get("level")), actor(who, b), text(b, "reason")
    await visible(request, who)
    doc = await router(request).set_level(request.match_info["id"], chosen, by, reason)
    return web.json_response(doc.public_json())


@routes.post("/api/v1/incidents/{id}/flags")
async def set_flags(request: web.Request) -> web.Response:
    """Harm flags only a person sets: ``{"flags": [...], "by", "reason"}``; the level follows the plan."""
    who = caller(request, "incidents:write")
    b = obj(await body(request))
    flags, by, reason = harm_flags(b.get("flags"), required=True), actor(who, b), text(b, "reason")
    await visible(request, who)
    doc = await router(request).set_flags(request.match_info["id"], flags, by, reason)
    return web.json_response(doc.public_json())


@routes.post("/api/v1/incidents/{id}/resolve")
async def resolve(request: web.Request) -> web.Response:
    who = caller(request, "incidents:write")
    b = obj(await body(request))
    by, result, at = actor(who, b), text(b, "result"), when(b, "at")
    await visible(request, who)
    doc = await router(request).resolve(request.match_info["id"], by, result, at)
    return web.json_response(doc.public_json())


@routes.get("/api/v1/incidents/{id}/report")
async def report(request: web.Request) -> web.Response:
    who = caller(request, "incidents:read")
    kind, lang = request.query.get("kind", "phone"), request.query.get("lang", "zh")
    if kind not in KINDS or lang not in ("zh", "en"):
        raise Invalid(f"kind: one of {', '.join(KINDS)}; lang: zh or en")
    doc = await visible(request, who)
    store = router(request).store
    cfg = request.app[keys.RUNTIME].config
    draft = render_report(kind, lang, doc, await store.alerts(doc.id), await store.timeline(doc.id), cfg,
                          duty_people(Rosters(cfg.paging, cfg.work_calendar), datetime.now(timezone.utc)))
    if "json" in request.headers.get("Accept", ""):
        return web.json_response(draft)
    return web.Response(text=draft["text"], content_type="text/plain", charset="utf-8")


@routes.get("/api/v1/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    return web.json_response(document(request.app[keys.RUNTIME].config))


@routes.get("/api/v1/shift-report")
async def shift_report(request: web.Request) -> web.Response:
    """The shift hand-off report (Guizhou part 2) as JSON, or as text with ``format=text``."""
    who = caller(request, "incidents:read")
    cfg = request.app[keys.RUNTIME].config
    roster = request.query.get("roster", cfg.paging.rosters[0].id if cfg.paging.rosters else None)
    if roster is None:
        raise Invalid("roster: no roster configured (paging.rosters)")
    if roster not in {r.id for r in cfg.paging.rosters}:
        raise Invalid(f"roster: no roster {roster!r}")
    if request.query.get("lang", "zh") not in ("zh", "en") or request.query.get("format", "json") not in ("json", "text"):
        raise Invalid("lang: zh or en; format: json or text")
    at = when(dict(request.query), "at") or datetime.now().astimezone()
    targets = [t for t in target_states(request.app[keys.RUNTIME]) if who.sees_unit(t["unit"])]
    docs = [d for d in await router(request).store.list(since=at - timedelta(days=31)) if who.sees(d)]
    checks = await shiftcheck.recent(request.app[keys.REDIS], roster, at - timedelta(days=31), at)
    report = build(Rosters(cfg.paging, cfg.work_calendar), roster, at, targets, [d.public_json() for d in docs],
                   checks)
    if request.query.get("format") == "text":
        return web.Response(text=render(report, request.query.get("lang", "zh")), content_type="text/plain",
                            charset="utf-8")
    return web.json_response(report)
