"""The incident API: alert ingest, incidents, people's actions, report drafts.

Every route here needs a bearer token from ``api.tokens`` with the route's scope; a
token limited to units sees and changes only incidents touching those units. The one
exception is an acknowledgement through a signed link (``?exp=&sig=``). Errors are
``{"error": code, "detail": …}``; a malformed body never reaches the store.
"""
from __future__ import annotations

import hmac
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web

from monitor.incidents.drafts import KINDS, render_report
from monitor.incidents.records import Incident
from monitor.incidents.router import FLAGS
from monitor.incidents.store import Conflict, NotFound
from monitor.paging.handoff import build, render
from monitor.paging.rosters import Rosters
from monitor.service import keys
from monitor.service.endpoints import error, target_states
from monitor.service.ingest import BadInput, parse_list, parse_webhook
from monitor.service.openapi import DOCUMENT

routes = web.RouteTableDef()


@dataclass(frozen=True)
class Caller:
    name: str
    scopes: frozenset[str]
    units: frozenset[str] | None  # None: every unit
    person: str | None = None  # the paging.people id of a personal token; its name is ``name``

    def sees(self, inc: Incident) -> bool:
        return self.units is None or bool(self.units & set(inc.units))


class Denied(Exception):
    def __init__(self, status: int, code: str, detail: str):
        self.status, self.code, self.detail = status, code, detail


def caller(request: web.Request, scope: str) -> Caller:
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        raise Denied(401, "unauthorized", "a bearer token is required")
    presented = header[7:].strip().encode()
    for token in request.app[keys.RUNTIME].config.api.tokens:
        if hmac.compare_digest(token.secret.value.encode(), presented):
            if scope not in token.scopes:
                raise Denied(403, "forbidden", f"token {token.name!r} lacks scope {scope}")
            person = next((p for p in request.app[keys.RUNTIME].config.paging.people if p.id == token.person), None)
            return Caller(person.name if person else token.name, frozenset(token.scopes),
                          frozenset(token.units) or None, person.id if person else None)
    raise Denied(401, "unauthorized", "unknown token")


@web.middleware
async def errors_middleware(request: web.Request, handler):
    try:
        return await handler(request)
    except Denied as d:
        return error(d.status, d.code, d.detail)
    except BadInput as err:
        return error(400, "bad_request", str(err))
    except NotFound as err:
        return error(404, "not_found", f"no incident {err}")
    except Conflict as err:
        return error(409, "conflict", str(err))


async def body(request: web.Request) -> Any:
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise BadInput(f"body: larger than the limit of {request.app[keys.RUNTIME].config.api.max_body_bytes} bytes") from None
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as err:
        raise BadInput(f"body: not valid JSON: {err}") from None


def text(obj: Any, key: str, required: bool = True, limit: int = 2000) -> str | None:
    value = obj.get(key) if isinstance(obj, dict) else None
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise BadInput(f"{key}: expected a non-empty string of at most {limit} characters")
    return value


def actor(who: Caller, obj: Any) -> str:
    """Who did it: the person of a personal token (whatever the body says), else the body's ``by``."""
    return who.name if who.person else str(text(obj, "by", limit=100))


def when(obj: Any, key: str) -> datetime | None:
    value = obj.get(key) if isinstance(obj, dict) else None
    if value is None:
        return None
    try:
        dt = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise BadInput(f"{key}: expected an RFC 3339 time") from None
    if dt.tzinfo is None:
        raise BadInput(f"{key}: time needs an offset")
    return dt


def harm_flags(value: Any, required: bool) -> list[str]:
    """The harm flags a person sets (the router's FLAGS), as a list."""
    if not isinstance(value, list) or (required and not value) or not all(
            isinstance(f, str) and f in FLAGS for f in value):
        raise BadInput(f"flags: expected a {'non-empty ' if required else ''}list of {', '.join(FLAGS)}")
    return value


def router(request: web.Request):
    return request.app[keys.ROUTER]


async def visible(request: web.Request, who: Caller) -> Incident:
    doc = await router(request).store.require(request.match_info["id"])
    if not who.sees(doc):
        raise Denied(403, "forbidden", "incident is outside the token's units")
    return doc


# ── ingest ───────────────────────────────────────────────────────────────────────

async def _ingest(request: web.Request, alerts: list) -> web.Response:
    who = caller(request, "alerts:write")
    if who.units is not None:
        outside = {a.labels.get("unit") for a in alerts} - who.units
        if outside:
            raise Denied(403, "forbidden", f"alerts for units outside the token: {sorted(map(str, outside))}")
    incidents = await router(request).ingest(alerts, actor=who.name)
    return web.json_response({"accepted": len(alerts), "incidents": sorted(set(incidents))})


@routes.post("/api/v1/alerts/alertmanager")
async def alertmanager_webhook(request: web.Request) -> web.Response:
    caller(request, "alerts:write")
    return await _ingest(request, parse_webhook(await body(request)))


@routes.post("/api/v1/alerts")
async def alerts(request: web.Request) -> web.Response:
    caller(request, "alerts:write")
    return await _ingest(request, parse_list(await body(request)))


# ── incidents ────────────────────────────────────────────────────────────────────

@routes.post("/api/v1/incidents")
async def create_manual(request: web.Request) -> web.Response:
    who = caller(request, "incidents:write")
    b = await body(request)
    if not isinstance(b, dict):
        raise BadInput("body: expected a JSON object")
    flags = harm_flags(b.get("flags", []), required=False)
    level = b.get("level")
    if level is not None and (isinstance(level, bool) or level not in (1, 2, 3)):
        raise BadInput("level: expected 1, 2 or 3")
    if not isinstance(b.get("drill", False), bool):
        raise BadInput("drill: expected true or false")
    category, site = text(b, "category", limit=40), text(b, "site", limit=100)
    cfg = request.app[keys.RUNTIME].config
    if site not in cfg.sites:
        raise BadInput(f"site: no site {site!r}")
    if who.units is not None and cfg.sites[site][0].id not in who.units:
        raise Denied(403, "forbidden", "site is outside the token's units")
    doc = await router(request).open_manual(category, site, actor(who, b), text(b, "summary"),
                                            flags, drill=bool(b.get("drill")), level=level)
    return web.json_response(doc.public_json(), status=201)


@routes.get("/api/v1/incidents")
async def list_incidents(request: web.Request) -> web.Response:
    who = caller(request, "incidents:read")
    q = request.query
    since = when(dict(q), "since")
    if "level" in q and q["level"] not in ("1", "2", "3"):
        raise BadInput("level: expected 1, 2 or 3")
    if "status" in q and q["status"] not in ("open", "acknowledged", "resolved"):
        raise BadInput("status: expected open, acknowledged or resolved")
    try:
        limit, offset = int(q.get("limit", 1000)), int(q.get("offset", 0))
    except ValueError:
        raise BadInput("limit, offset: expected integers") from None
    if not 1 <= limit <= 10_000 or offset < 0:
        raise BadInput("limit: 1..10000; offset: 0 or more")
    if q.get("order", "newest") not in ("newest", "oldest"):
        raise BadInput("order: newest or oldest")
    out = []
    page = await router(request).store.list(since=since, limit=limit, offset=offset,
                                            oldest_first=q.get("order") == "oldest")
    for doc in page:
        if not who.sees(doc):
            continue
        if ("status" in q and doc.status != q["status"]) or ("level" in q and doc.level != int(q["level"])) \
                or ("site" in q and q["site"] not in doc.sites) or ("unit" in q and q["unit"] not in doc.units):
            continue
        out.append(doc.public_json())
    # a full page may have more behind it: ask again from next_offset (filters apply after paging)
    return web.json_response({"incidents": out, "next_offset": offset + len(page) if len(page) == limit else None})


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
        link = request.app[keys.ACK_SIGNER].verify(incident_id, request.query)
        if link is None:
            raise Denied(403, "forbidden", "ack link is forged or expired")
        if not await link.redeem(request.app[keys.REDIS]):
            raise Denied(403, "forbidden", "ack link was used already")
        people = {p.id: p.name for p in request.app[keys.RUNTIME].config.paging.people}
        doc = await router(request).ack(incident_id, people.get(link.person, link.person), via=f"link:{link.person}")
    else:
        who = caller(request, "incidents:write")
        await visible(request, who)
        doc = await router(request).ack(incident_id, actor(who, await body(request)), via="api")
    return web.json_response(doc.public_json())


@routes.post("/api/v1/incidents/{id}/reports/{clock}")
async def file_report(request: web.Request) -> web.Response:
    who = caller(request, "incidents:write")
    await visible(request, who)
    b = await body(request)
    try:
        doc = await router(request).file_report(request.match_info["id"], request.match_info["clock"],
                                                actor(who, b), when(b, "at"), text(b, "note", required=False))
    except KeyError:
        return error(404, "not_found", f"no clock {request.match_info['clock']!r}")
    except ValueError as err:
        raise BadInput(str(err)) from None
    return web.json_response(doc.public_json())


@routes.post("/api/v1/incidents/{id}/level")
async def set_level(request: web.Request) -> web.Response:
    who = caller(request, "incidents:write")
    await visible(request, who)
    b = await body(request)
    level = b.get("level") if isinstance(b, dict) else None
    if level not in (1, 2, 3) or isinstance(level, bool):
        raise BadInput("level: expected 1, 2 or 3")
    doc = await router(request).set_level(request.match_info["id"], level, actor(who, b),
                                          text(b, "reason"))
    return web.json_response(doc.public_json())


@routes.post("/api/v1/incidents/{id}/flags")
async def set_flags(request: web.Request) -> web.Response:
    """Harm flags only a person sets: ``{"flags": [...], "by", "reason"}``; the level follows the plan."""
    who = caller(request, "incidents:write")
    await visible(request, who)
    b = await body(request)
    flags = harm_flags(b.get("flags") if isinstance(b, dict) else None, required=True)
    doc = await router(request).set_flags(request.match_info["id"], flags, actor(who, b), text(b, "reason"))
    return web.json_response(doc.public_json())


@routes.post("/api/v1/incidents/{id}/resolve")
async def resolve(request: web.Request) -> web.Response:
    who = caller(request, "incidents:write")
    await visible(request, who)
    b = await body(request)
    try:
        doc = await router(request).resolve(request.match_info["id"], actor(who, b),
                                            text(b, "result"), when(b, "at"))
    except ValueError as err:
        raise BadInput(str(err)) from None
    return web.json_response(doc.public_json())


@routes.get("/api/v1/incidents/{id}/report")
async def report(request: web.Request) -> web.Response:
    doc = await visible(request, caller(request, "incidents:read"))
    kind, lang = request.query.get("kind", "phone"), request.query.get("lang", "zh")
    if kind not in KINDS or lang not in ("zh", "en"):
        raise BadInput(f"kind: one of {', '.join(KINDS)}; lang: zh or en")
    store = router(request).store
    draft = render_report(kind, lang, doc, await store.alerts(doc.id), await store.timeline(doc.id),
                          request.app[keys.RUNTIME].config)
    if "json" in request.headers.get("Accept", ""):
        return web.json_response(draft)
    return web.Response(text=draft["text"], content_type="text/plain", charset="utf-8")


@routes.get("/api/v1/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    return web.json_response(DOCUMENT)


@routes.get("/api/v1/shift-report")
async def shift_report(request: web.Request) -> web.Response:
    """The shift hand-off report (Guizhou part 2) as JSON, or as text with ``format=text``."""
    who = caller(request, "incidents:read")
    cfg = request.app[keys.RUNTIME].config
    roster = request.query.get("roster") or (cfg.paging.rosters[0].id if cfg.paging.rosters else None)
    if roster is None or roster not in {r.id for r in cfg.paging.rosters}:
        raise BadInput(f"roster: no roster {roster!r}")
    at = when(dict(request.query), "at") or datetime.now().astimezone()
    targets = target_states(request.app[keys.RUNTIME])
    docs = [d for d in await router(request).store.list(since=at - timedelta(days=31)) if who.sees(d)]
    report = build(Rosters(cfg.paging, cfg.work_calendar), roster, at, targets, [d.public_json() for d in docs])
    if request.query.get("format") == "text":
        return web.Response(text=render(report, request.query.get("lang", "zh")), content_type="text/plain",
                            charset="utf-8")
    return web.json_response(report)
