"""``POST /api/v1/alerts/zabbix``: hallmon's Zabbix media type posts here.

A problem or recovery becomes one alert in Alertmanager's v2 shape, checked exactly as
``POST /api/v1/alerts`` checks its body (window, the token's units) and stored in the
intake like any other (202 once stored; Zabbix's alerter retries anything else). An
update (acknowledge, comment, severity change) is recorded on the incident holding the
event's alert; an acknowledgement there acknowledges it here.
"""
from __future__ import annotations

import hashlib
import time
from datetime import datetime, timezone
from typing import Mapping

import orjson
import structlog
from aiohttp import web

from monitor.config.sources import ZabbixSource
from monitor.incidents import actions
from monitor.incidents.classify import classify
from monitor.incidents.records import Incident, StoredAlert
from monitor.service import keys
from monitor.service.access import caller
from monitor.service.api import window
from monitor.service.ingest import check_labels
from monitor.service.inputs import parse_json, read_body
from monitor.sources.zabbix import UNMAPPED_FAULT, Events, ZabbixEvent, alert_json, labels_for, parse_event, to_alert

__all__ = ["routes"]

log = structlog.get_logger("hallmon.zabbix")
routes = web.RouteTableDef()
_DEFAULT = ZabbixSource()


@routes.post("/api/v1/alerts/zabbix")
async def zabbix(request: web.Request) -> web.Response:
    who = caller(request, "alerts:write")
    cfg = request.app[keys.RUNTIME].config
    raw = await read_body(request, cfg.service.http.body_timeout, cfg.api.max_body_bytes)
    at = time.time()
    now = datetime.fromtimestamp(at, timezone.utc)
    event = parse_event(parse_json(raw))
    mapping = cfg.sources.zabbix or _DEFAULT
    events = Events(request.app[keys.REDIS])
    recalled = await events.recall(event)
    if recalled is not None:
        labels, starts = recalled
    else:
        labels = labels_for(event, mapping, {sid: unit.id for sid, (unit, _) in cfg.sites.items()})
        starts = min(event.at or now, now)
    who.check_alerts([labels], cfg)
    if event.kind == "update":
        return await _update(request, event, labels, starts, events, mapping.keep_events)
    ends = min(event.recovered_at or now, now) if event.kind == "recovery" else None
    body = [alert_json(labels, event, starts, ends)]
    check_labels("list", body, window(request), now)
    if event.kind == "problem" and recalled is None:
        labels, starts = await events.remember(event, labels, starts, mapping.keep_events)
        body = [alert_json(labels, event, starts, ends)]
    if recalled is None and (labels["fault"] == UNMAPPED_FAULT or labels.get("site") not in cfg.sites):
        log.warning("zabbix_event_unmapped", zabbix_event=event.key, host=event.host, fault=labels.get("fault"),
                 site=labels.get("site"))
    await request.app[keys.INTAKE].submit(orjson.dumps(body), "list", who.name, at, False)
    return web.json_response({"accepted": 1, "kind": event.kind, "zabbix_event": event.key,
                              "labels": labels}, status=202)


async def _update(request: web.Request, event: ZabbixEvent, labels: dict[str, str], starts: datetime,
                  events: Events, keep: float) -> web.Response:
    """Record the update on the open incident holding the problem's alert, once (Zabbix
    re-sends after a restart: an update already recorded changes nothing)."""
    assert event.update is not None  # parse_event: kind update has one
    upd = event.update
    router = request.app[keys.ROUTER]
    alert = to_alert(labels, event, starts)
    incident_id = await router.store.open_for(classify(alert, router.view()).group)
    if incident_id is None:
        log.info("zabbix_update_without_incident", zabbix_event=event.key)
        return web.json_response({"recorded": False, "reason": "no open incident holds this event"})
    digest = hashlib.sha256(orjson.dumps([upd.user, upd.action, upd.message, upd.acknowledged,
                                          upd.at.isoformat() if upd.at else None])).hexdigest()[:16]
    if await events.seen_update(event, digest):
        return web.json_response({"recorded": False, "reason": "already recorded", "incident": incident_id})
    by = f"{upd.user} (Zabbix)"
    detail: dict[str, object] = {"zabbix_event": event.key, "action": upd.action, "message": upd.message}
    now = router.time.now()

    def mutate(inc: Incident, stored: Mapping[str, StoredAlert]) -> actions.Outcome:
        if alert.fingerprint not in stored:
            return None  # the group's incident does not hold this event (another problem's)
        return actions.external_update(inc, by, "zabbix", detail, upd.acknowledged, now)

    inc, change = await router.store.update(incident_id, mutate, [alert.fingerprint])
    if change is None:
        return web.json_response({"recorded": False, "reason": "no open incident holds this event"})
    await events.note_update(event, digest, keep)
    log.info("zabbix_update_recorded", incident=inc.id, zabbix_event=event.key, acknowledged=upd.acknowledged)
    return web.json_response({"recorded": True, "incident": inc.id, "status": inc.status})
