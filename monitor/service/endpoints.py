"""The service's own endpoints: /metrics, /healthz, /readyz, /api/v1/targets."""
from __future__ import annotations

from aiohttp import web

from monitor.checks.metrics import CONTENT_TYPE, render
from monitor.core.errors import NotFound
from monitor.service import keys
from monitor.service.access import reader

routes = web.RouteTableDef()


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    rt = request.app[keys.RUNTIME]
    assert rt.checker is not None  # started by checks_ctx before the first request
    body = render(request.app[keys.REGISTRY], rt.checker.series)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    """Ready when the config is loaded, Redis answers (the watch pings it every second;
    while it is down, each call asks once more) and the stored history is in its
    current form (``incidents.history``)."""
    health = request.app[keys.STORE_HEALTH]
    if not health.ok:
        await health.probe(request.app[keys.REDIS])
    history = request.app.get(keys.HISTORY_READY)
    checks = {"config": "ok", "redis": health.reason,
              "history": "ok" if history is None or history.is_set() else "migrating"}
    ready = all(v == "ok" for v in checks.values())
    return web.json_response({"status": "ready" if ready else "not ready", "checks": checks},
                             status=200 if ready else 503)


def target_states(rt) -> list[dict]:
    """Every target's last reading and fault state (the targets API, the shift report)."""
    checker = rt.checker
    out = []
    for t in rt.targets:
        reading = checker.last.get(t.name)
        out.append({
            "name": t.name, "kind": t.kind, "site": t.site, "unit": t.unit, "system": t.system,
            "interval_seconds": t.interval,
            "last_reading": reading.to_json() if reading else None,
            "faults": checker.tracker.state(t.name),
        })
    return out


@routes.get("/api/v1/targets")
async def targets(request: web.Request) -> web.Response:
    """Open while the config has no ``api.tokens``; then a token with ``incidents:read``,
    and a unit-limited token sees its units' targets only."""
    who = reader(request)
    wanted = request.query.get("target")
    out = [t for t in target_states(request.app[keys.RUNTIME])
           if (not wanted or t["name"] == wanted) and who.sees_unit(t["unit"])]
    if wanted and not out:
        raise NotFound(f"no target {wanted!r}")
    return web.json_response({"targets": out})
