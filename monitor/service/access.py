"""Who is calling: bearer tokens from ``api.tokens``, their scopes and units.

A token without ``units`` sees every unit; a token with units (never an empty list:
that is a config error) reads only what touches its units and writes only there: an
alert it posts must belong to one of its units by its site (the config's unit of a
known site, else the alert's ``unit`` label), or the whole request is refused (403).
"""
from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from aiohttp import web

from monitor.config.model import Config
from monitor.core.errors import Forbidden, Unauthorized
from monitor.incidents.records import Incident
from monitor.service import keys
from monitor.service.inputs import text


@dataclass(frozen=True)
class Caller:
    name: str
    scopes: frozenset[str]
    units: frozenset[str] | None  # None: every unit
    person: str | None = None  # the paging.people id of a personal token; its name is ``name``

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


def caller(request: web.Request, scope: str) -> Caller:
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        raise Unauthorized("a bearer token is required")
    presented = header[7:].strip().encode("utf-8", "replace")
    for token in request.app[keys.RUNTIME].config.api.tokens:
        if hmac.compare_digest(token.secret.value.encode(), presented):
            if scope not in token.scopes:
                raise Forbidden(f"token {token.name!r} lacks scope {scope}")
            person = next((p for p in request.app[keys.RUNTIME].config.paging.people if p.id == token.person), None)
            return Caller(person.name if person else token.name, frozenset(token.scopes),
                          None if token.units is None else frozenset(token.units), person.id if person else None)
    raise Unauthorized("unknown token")


def actor(who: Caller, body: Any) -> str:
    """Who did it: the person of a personal token (whatever the body says), else the body's ``by``."""
    return who.name if who.person else str(text(body, "by", limit=100))


def reader(request: web.Request) -> Caller:
    """For reads that were open before tokens existed (/api/v1/targets): open while the
    config has no ``api.tokens``, a token with ``incidents:read`` once it has."""
    if not request.app[keys.RUNTIME].config.api.tokens:
        return Caller("anonymous", frozenset(), None)
    return caller(request, "incidents:read")
