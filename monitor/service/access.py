"""Who is calling, decided here and only here: a bearer credential is a token from
``api.tokens`` (the config), a machine token an admin created at run time, or a sign-in
session (monitor/auth). ``identify`` (a middleware) looks the credential up once per
request, before the handler, since sessions and machine tokens live in Redis; the
handlers then ask ``caller(request, scope)``, which stays synchronous.

A session's scopes are its role's (monitor/auth/roles.py); a config token's are the
ones it lists, ``incidents:write`` still covering levels, maintenance and drills as in
0.6; a machine token's are those its admin gave it.

A token without ``units`` sees every unit; a token with units (never an empty list:
that is a config error) reads only what touches its units and writes only there: an
alert it posts must belong to one of its units by its site (the config's unit of a
known site, else the alert's ``unit`` label), or the whole request is refused (403).
"""
from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

import structlog
from aiohttp import web

from monitor.auth.records import Session
from monitor.auth.roles import expand, scopes_of
from monitor.config.model import Config
from monitor.core.errors import Forbidden, HallmonError, SessionExpired, StoreError, Unauthorized
from monitor.incidents.records import Incident
from monitor.service import keys
from monitor.service.inputs import text

log = structlog.get_logger("hallmon.access")


@dataclass(frozen=True)
class Caller:
    name: str
    scopes: frozenset[str]
    units: frozenset[str] | None  # None: every unit
    person: str | None = None  # the paging.people id of a personal token; its name is ``name``
    kind: str = "config"  # "config" (api.tokens), "token" (a machine token), "session" (signed in)
    session: Session | None = None  # the sign-in behind a session caller
    role: str | None = None  # a session's role

    @property
    def personal(self) -> bool:
        """Whether the actor recorded is this caller whatever a body's ``by`` says."""
        return self.person is not None or self.kind == "session"

    def sees(self, inc: Incident) -> bool:
        """An incident touching one of the caller's units."""
        return self.units is None or bool(self.units & set(inc.units))

    def sees_unit(self, unit: str | None) -> bool:
        return self.units is None or unit in self.units

    def check_alerts(self, alerts: Iterable[Mapping[str, str]], cfg: Config) -> None:
        """Each alert's labels name a site (or a unit) of the token's units, or 403."""
        if self.units is None:
            return
        outside = set()
        for labels in alerts:
            site = labels.get("site")
            known = cfg.sites.get(site) if site else None
            unit = known[0].id if known else labels.get("unit")
            if unit not in self.units:
                outside.add(f"{site or '-'}/{unit or '-'}")
        if outside:
            raise Forbidden(f"token {self.name!r} may post alerts only for its units "
                            f"{sorted(self.units)}; refused: {sorted(outside)[:10]}")


# the credential's answer: a Caller, None (no credential) or the error to raise
_WHO: web.RequestKey["Caller | HallmonError | None"] = web.RequestKey("hallmon_caller")


def _config_token(request: web.Request, presented: bytes) -> Caller | None:
    cfg = request.app[keys.RUNTIME].config
    for token in cfg.api.tokens:
        if hmac.compare_digest(token.secret.value.encode(), presented):
            person = next((p for p in cfg.paging.people if p.id == token.person), None)
            return Caller(person.name if person else token.name, expand(token.scopes),
                          None if token.units is None else frozenset(token.units), person.id if person else None)
    return None


async def _resolve(request: web.Request) -> Caller | HallmonError | None:
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        return None
    value = header[7:].strip()
    found = _config_token(request, value.encode("utf-8", "replace"))
    if found is not None:
        return found
    auth = request.app.get(keys.AUTH)
    if auth is None or not value.startswith(("hs_", "hm_")):
        return Unauthorized("unknown token")
    try:
        if value.startswith("hm_"):
            token = await auth.store.token(value)
            if token is None:
                return Unauthorized("unknown token")
            return Caller(token.name, frozenset(token.scopes), None if token.units is None else frozenset(token.units),
                          kind="token")
        idle = request.app[keys.RUNTIME].config.auth.session.idle
        s, why = await auth.store.session(value, idle)
    except StoreError as err:
        return err
    if s is None:
        if why:
            await auth.store.audit("session_expired", "", request.remote or "", "hallmon", why)
            return SessionExpired(f"the session ended ({why} time reached): sign in again")
        return Unauthorized("unknown or ended session: sign in again")
    return Caller(s.name, scopes_of(s.role), None if s.units is None else frozenset(s.units), s.person,
                  kind="session", session=s, role=s.role)


@web.middleware
async def identify(request: web.Request, handler) -> web.StreamResponse:
    """Look the request's credential up once (Redis, for sessions and machine tokens)."""
    request[_WHO] = await _resolve(request)
    return await handler(request)


def caller(request: web.Request, scope: str) -> Caller:
    """The one answer to "who is this, and may they ``scope``?" for every route."""
    who = request.get(_WHO)
    if who is None:
        raise Unauthorized("a bearer token is required")
    if isinstance(who, HallmonError):
        raise who
    if scope not in who.scopes:
        what = f"role {who.role}" if who.role else f"token {who.name!r}"
        raise Forbidden(f"{what} lacks scope {scope}")
    return who


def actor(who: Caller, body: Any) -> str:
    """Who did it: the person of a personal token (whatever the body says), else the body's ``by``."""
    return who.name if who.personal else str(text(body, "by", limit=100))


def reader(request: web.Request) -> Caller:
    """For reads that were open before tokens existed (/api/v1/targets): open while the
    config has no ``api.tokens``, a token with ``incidents:read`` once it has."""
    if not request.app[keys.RUNTIME].config.api.tokens:
        return Caller("anonymous", frozenset(), None)
    return caller(request, "incidents:read")
