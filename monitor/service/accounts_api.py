"""Sign-in, sign-out, the audit log, and what admins change at run time (machine tokens,
unlocking an account, ending someone's sessions).

    POST   /api/v1/session                 {"username", "password"} → 201 {"token", …} (the token once)
    DELETE /api/v1/session                 sign out: this session ends
    POST   /api/v1/session/everywhere      sign out everywhere: every session of this account ends
    GET    /api/v1/audit                   ?limit=&account=   (accounts:admin)
    GET    /api/v1/accounts                local accounts, no hashes   (accounts:admin)
    POST   /api/v1/accounts/{name}/unlock  clear the account's failed sign-ins   (accounts:admin)
    POST   /api/v1/accounts/{name}/signout end every session of the account   (accounts:admin)
    GET    /api/v1/tokens                  machine tokens, no secrets   (accounts:admin)
    POST   /api/v1/tokens                  {"name", "scopes", "units"?} → 201 {"secret", …} (shown once)
    DELETE /api/v1/tokens/{id}             revoke: the token stops working at once

The password and the tokens travel in bodies and headers only, never in a URL; none of
them is logged (a failed request logs its error's message, which never holds them).
"""
from __future__ import annotations

from typing import AsyncIterator

from aiohttp import web

from monitor.auth.lockout import Lockout
from monitor.auth.roles import SCOPES
from monitor.auth.signin import SignIn
from monitor.auth.store import AuthStore
from monitor.core.errors import Forbidden, Invalid, NotFound
from monitor.core.timesource import iso
from monitor.service import keys
from monitor.service.access import caller
from monitor.service.api import body
from monitor.service.inputs import obj, text

routes = web.RouteTableDef()


async def auth_ctx(app: web.Application) -> AsyncIterator[None]:
    rt = app[keys.RUNTIME]
    app[keys.AUTH] = SignIn(AuthStore(app[keys.REDIS]), lambda: rt.config)
    yield


def _address(request: web.Request) -> str:
    return request.remote or ""


def _signin(request: web.Request) -> SignIn:
    return request.app[keys.AUTH]


@routes.post("/api/v1/session")
async def sign_in(request: web.Request) -> web.Response:
    b = obj(await body(request))
    username, password = b.get("username"), b.get("password")
    if not isinstance(username, str) or not isinstance(password, str) or not password:
        raise Invalid("username, password: expected two non-empty strings")
    token, s = await _signin(request).sign_in(username.strip(), password, _address(request))
    return web.json_response({"token": token, "account": s.account, "name": s.name, "role": s.role,
                              "units": list(s.units) if s.units is not None else None, "source": s.source,
                              "idle_until": iso(s.idle_until), "absolute_until": iso(s.absolute_until)},
                             status=201, headers={"Cache-Control": "no-store"})


def _session(request: web.Request):
    who = caller(request, "incidents:read")
    if who.session is None:
        raise Invalid("this credential is a token, not a sign-in session")
    return who.session


@routes.delete("/api/v1/session")
async def sign_out(request: web.Request) -> web.Response:
    await _signin(request).sign_out(_session(request), _address(request))
    return web.json_response({"signed_out": True})


@routes.post("/api/v1/session/everywhere")
async def sign_out_everywhere(request: web.Request) -> web.Response:
    s = _session(request)
    n = await _signin(request).sign_out_everywhere(s.account, _address(request), s.account)
    return web.json_response({"signed_out": n})


def _limit(request: web.Request) -> int:
    raw = request.query.get("limit", "200")
    if not (raw.isascii() and raw.isdigit() and 1 <= int(raw) <= 10_000):
        raise Invalid("limit: an integer 1..10000")
    return int(raw)


@routes.get("/api/v1/audit")
async def audit(request: web.Request) -> web.Response:
    caller(request, "accounts:admin")
    entries = await _signin(request).store.audit_log(_limit(request), request.query.get("account"))
    return web.json_response({"entries": [e.to_json() for e in entries]})


@routes.get("/api/v1/accounts")
async def accounts(request: web.Request) -> web.Response:
    caller(request, "accounts:admin")
    return web.json_response({"accounts": [a.public_json() for a in await _signin(request).store.accounts()]})


@routes.post("/api/v1/accounts/{name}/unlock")
async def unlock(request: web.Request) -> web.Response:
    who = caller(request, "accounts:admin")
    name = request.match_info["name"]
    signin = _signin(request)
    cleared = await Lockout(signin.store.r, request.app[keys.RUNTIME].config.auth.lockout, signin.store.clock).unlock(name)
    await signin.store.audit("unlocked", name, _address(request), who.name)
    return web.json_response({"account": name, "cleared": cleared})


@routes.post("/api/v1/accounts/{name}/signout")
async def sign_out_account(request: web.Request) -> web.Response:
    who = caller(request, "accounts:admin")
    n = await _signin(request).sign_out_everywhere(request.match_info["name"], _address(request), who.name)
    return web.json_response({"signed_out": n})


@routes.get("/api/v1/tokens")
async def tokens(request: web.Request) -> web.Response:
    caller(request, "accounts:admin")
    return web.json_response({"tokens": [t.public_json() for t in await _signin(request).store.tokens()]})


@routes.post("/api/v1/tokens")
async def create_token(request: web.Request) -> web.Response:
    """A machine token: ``{"name", "scopes": [...], "units"?: [...]}``; its secret is in
    this answer only."""
    who = caller(request, "accounts:admin")
    b = obj(await body(request))
    name = str(text(b, "name", limit=100))
    scopes, units = b.get("scopes"), b.get("units")
    if not isinstance(scopes, list) or not scopes or not all(isinstance(s, str) and s in SCOPES for s in scopes):
        raise Invalid(f"scopes: a non-empty list of {', '.join(SCOPES)}")
    if not set(scopes) <= who.scopes:
        raise Forbidden("a token cannot have scopes its creator lacks")
    known = {u.id for u in request.app[keys.RUNTIME].config.organisation.units}
    if units is not None and (not isinstance(units, list) or not units
                              or not all(isinstance(u, str) and u in known for u in units)):
        raise Invalid(f"units: leave out for every unit, or a non-empty list of {', '.join(sorted(known))}")
    if who.units is not None and (units is None or not set(units) <= who.units):
        raise Forbidden("a token cannot reach units its creator cannot")
    signin = _signin(request)
    token, secret = await signin.store.create_token(name, tuple(dict.fromkeys(scopes)),
                                                    tuple(units) if units is not None else None, who.name)
    await signin.store.audit("token_created", f"token:{token.id}", _address(request), who.name,
                             f"{name}: {', '.join(token.scopes)}")
    return web.json_response({**token.public_json(), "secret": secret}, status=201,
                             headers={"Cache-Control": "no-store"})


@routes.delete("/api/v1/tokens/{id}")
async def revoke_token(request: web.Request) -> web.Response:
    who = caller(request, "accounts:admin")
    signin = _signin(request)
    token = await signin.store.revoke_token(request.match_info["id"])
    if token is None:
        raise NotFound(f"no token {request.match_info['id']!r}")
    await signin.store.audit("token_revoked", f"token:{token.id}", _address(request), who.name, token.name)
    return web.json_response(token.public_json())
