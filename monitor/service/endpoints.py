"""The service's own endpoints: /metrics, /healthz, /readyz, /api/v1/targets."""
from __future__ import annotations

import redis.exceptions
from aiohttp import web

from monitor.checks.metrics import CONTENT_TYPE, render
from monitor.service import keys

routes = web.RouteTableDef()


def error(status: int, code: str, detail: str) -> web.Response:
    return web.json_response({"error": code, "detail": detail}, status=status)


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    rt = request.app[keys.RUNTIME]
    body = render(request.app[keys.REGISTRY], rt.checker.series)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    checks = {"config": "ok"}
    try:
        await request.app[keys.REDIS].ping()
        checks["redis"] = "ok"
    except (redis.exceptions.RedisError, OSError) as err:
        checks["redis"] = f"unreachable: {err}"
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
    wanted = request.query.get("target")
    out = [t for t in target_states(request.app[keys.RUNTIME]) if not wanted or t["name"] == wanted]
    if wanted and not out:
        return error(404, "not_found", f"no target {wanted!r}")
    return web.json_response({"targets": out})
