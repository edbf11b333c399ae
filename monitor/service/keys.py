"""Every aiohttp AppKey in one place."""
from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import aiohttp
from aiohttp import web
from prometheus_client import CollectorRegistry

if TYPE_CHECKING:
    import redis.asyncio as aioredis

    from monitor.auth.signin import SignIn
    from monitor.durable.connection import Health
    from monitor.incidents.drills import Drills
    from monitor.incidents.intake import Intake
    from monitor.incidents.router import Router
    from monitor.paging.acklink import AckSigner
    from monitor.service.runtime import Runtime

RUNTIME: web.AppKey["Runtime"] = web.AppKey("runtime")
REGISTRY: web.AppKey[CollectorRegistry] = web.AppKey("registry", CollectorRegistry)
SESSION: web.AppKey[aiohttp.ClientSession] = web.AppKey("session", aiohttp.ClientSession)
REDIS: web.AppKey["aioredis.Redis"] = web.AppKey("redis")
STORE_HEALTH: web.AppKey["Health"] = web.AppKey("store_health")
ALERTS: web.AppKey["asyncio.Queue"] = web.AppKey("alerts", asyncio.Queue)
ROUTER: web.AppKey["Router"] = web.AppKey("router")
INTAKE: web.AppKey["Intake"] = web.AppKey("intake")
ACK_SIGNER: web.AppKey["AckSigner"] = web.AppKey("ack_signer")
DRILLS: web.AppKey["Drills"] = web.AppKey("drills")
AUTH: web.AppKey["SignIn"] = web.AppKey("auth")
HISTORY_READY: web.AppKey[asyncio.Event] = web.AppKey("history_ready", asyncio.Event)  # migrate_history ran
