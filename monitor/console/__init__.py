"""The incident console: a web page for the people on duty, served by hallmon itself."""
from __future__ import annotations

from aiohttp import web

from monitor.console import events, routes


def install(app: web.Application) -> None:
    """Add the console's routes, the event stream and its hub to the service's app."""
    app[routes.OPEN_CACHE] = routes.OpenCache()
    app.cleanup_ctx.append(events.hub_ctx)
    app.add_routes(routes.routes)
    app.add_routes(events.routes)
