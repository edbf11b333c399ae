"""The API's OpenAPI document (served at /api/v1/openapi.json).

Precise where the server is: required strings carry ``minLength`` and a non-blank
pattern, integers their range, enumerations their values, and every status a route can
answer is listed (503 with ``Retry-After`` wherever Redis is asked). What a schema
cannot say is in the descriptions: ``startsAt`` within ``api.alert_max_age`` before and
``api.alert_max_ahead`` after now, times between 2000 and 2099, a site that exists.
Links let a stateful client follow an incident from the request that opened it.
"""
from __future__ import annotations

import copy
from typing import Any

from monitor.config.model import Config
from monitor.incidents.drafts import KINDS
from monitor.incidents.router import FLAGS
from monitor.service.inputs import NOT_BLANK


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _text(limit: int) -> dict:
    """A required string: not blank, at most ``limit`` characters."""
    return {"type": "string", "minLength": 1, "maxLength": limit, "pattern": NOT_BLANK}


# RFC 3339 with an offset, years 2000-2099 (days past 28 are valid too: the pattern keeps
# to dates every month has, so that a generated example is always a real date)
_STAMP = (r"20[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
          r"(\.[0-9]{1,6})?(Z|[+-](0[0-9]|1[0-3]):[0-5][0-9])")
_TIME = {"type": "string", "pattern": f"^{_STAMP}$",
         "description": "RFC 3339 with an offset, between the years 2000 and 2099"}
_OPTIONAL_TIME = {**_TIME, "nullable": True}
_ANSWERED_TIME = {"type": "string", "format": "date-time"}  # in responses: any real date
_ERRORS = {
    "400": "malformed body, field or query", "401": "no bearer token, or an unknown one",
    "403": "the token lacks the scope or the unit", "404": "no such incident, clock or target",
    "408": "the body did not arrive in time", "409": "the change does not apply to the incident as it is",
    "503": "Redis unreachable or hallmon saturated: retry after Retry-After seconds",
}


def _errors(*codes: str) -> dict[str, dict]:
    out = {}
    for code in codes:
        response = _json(_ref("Error"), _ERRORS[code])
        if code == "503":
            response["headers"] = {"Retry-After": {"schema": {"type": "integer", "minimum": 1},
                                                   "description": "seconds"}}
        out[code] = response
    return out


def _with(op: dict, status: str, response: dict) -> dict:
    """``op`` answering ``status`` too."""
    op["responses"][status] = response
    return op


def _op(op_id: str, summary: str, ok: dict, errors: tuple[str, ...], params: list | None = None,
        body: dict | None = None, ok_status: str = "200", links: dict | None = None,
        security: list | None = None) -> dict:
    op: dict[str, Any] = {"operationId": op_id, "summary": summary, "parameters": params or [],
                          "responses": {ok_status: {**ok, **({"links": links} if links else {})}, **_errors(*errors)}}
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    if security is not None:
        op["security"] = security
    return op


def _obj(required: list[str], props: dict) -> dict:
    return {"type": "object", "required": required, "properties": props}


def _q(name: str, schema: dict, description: str = "") -> dict:
    return {"name": name, "in": "query", "schema": schema, **({"description": description} if description else {})}


_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
_CLOCK = {"name": "clock", "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
_ALERT = _obj(["labels"], {
    "labels": {"type": "object", "minProperties": 1, "additionalProperties": {"type": "string"}},
    "annotations": {"type": "object", "nullable": True, "additionalProperties": {"type": "string"}},
    "startsAt": {"type": "string", "nullable": True, "pattern": f"^(0001-01-01T00:00:00Z|{_STAMP})$",
                 "description": "within api.alert_max_age (30 d) before and api.alert_max_ahead (1 h) after now; "
                                "absent, null or Go's zero time: now"},
    "endsAt": {"type": "string", "nullable": True, "pattern": f"^(0001-01-01T00:00:00Z|{_STAMP})$"},
    "generatorURL": {"type": "string"}})
_FLAGS = {"type": "array", "items": {"type": "string", "enum": list(FLAGS)}}
_LEVEL = {"type": "integer", "enum": [1, 2, 3]}
_NOTE = {**_text(2000), "nullable": True}
_INCIDENT = _ref("Incident")
_FOLLOW = {op: {"operationId": op, "parameters": {"id": "$response.body#/id"}}
           for op in ("getIncident", "ackIncident", "setLevel", "setFlags", "resolveIncident", "getReport")}
_FOLLOW_FIRST = {op: {"operationId": op, "parameters": {"id": "$response.body#/incidents/0"}}
                 for op in ("getIncident", "ackIncident", "setLevel", "resolveIncident")}
_MUTATE = ("400", "401", "403", "404", "408", "409", "503")

_SCHEMAS = {
    "Error": {**_obj(["error", "detail"], {"error": {"type": "string"}, "detail": {"type": "string"}}),
              "additionalProperties": False},
    "Alert": _ALERT,
    "Clock": _obj(["id", "title", "due_at", "status"], {
        "id": {"type": "string"}, "title": {"type": "string"}, "due_at": _ANSWERED_TIME,
        "status": {"type": "string", "enum": ["pending", "met", "overdue", "withdrawn"]},
        "audience": {"type": "object"}, "source": {"type": "string"}}),
    "Incident": _obj(["id", "status", "level", "level_name", "plan", "category", "system", "sites", "units",
                      "detected_at", "decision", "clocks"], {
        "id": {"type": "string"}, "status": {"type": "string", "enum": ["open", "acknowledged", "resolved"]},
        "level": _LEVEL, "level_name": {"type": "string"}, "plan": {"type": "string"},
        "category": {"type": "string"}, "system": {"type": "string"},
        "sites": {"type": "array", "items": {"type": "string"}}, "units": {"type": "array", "items": {"type": "string"}},
        "detected_at": _ANSWERED_TIME, "decision": {"type": "object"}, "clocks": {"type": "array", "items": _ref("Clock")},
        "drill": {"type": "boolean"}, "maintenance": {"type": "boolean"}, "unmapped": {"type": "boolean"}}),
    "IncidentList": _obj(["incidents", "next_offset"], {
        "incidents": {"type": "array", "items": _INCIDENT},
        "next_offset": {"type": "integer", "minimum": 0, "nullable": True}}),
    "IncidentDetail": {"allOf": [_INCIDENT, _obj(["alerts", "timeline", "timeline_intact"], {
        "alerts": {"type": "array", "items": {"type": "object"}},
        "timeline": {"type": "array", "items": {"type": "object"}}, "timeline_intact": {"type": "boolean"}})]},
    "Accepted": _obj(["accepted", "incidents"], {"accepted": {"type": "integer", "minimum": 0},
                                                 "incidents": {"type": "array", "items": {"type": "string"}}}),
    "Stored": _obj(["accepted"], {"accepted": {"type": "integer", "minimum": 0}}),
    "Pending": _obj(["accepted", "pending"], {"accepted": {"type": "integer", "minimum": 0},
                                              "pending": {"type": "boolean", "enum": [True]}}),
    "Targets": _obj(["targets"], {"targets": {"type": "array", "items": _obj(
        ["name", "kind", "site", "unit", "system"], {k: {"type": "string"} for k in ("name", "kind", "site", "unit",
                                                                                    "system")})}}),
}

_READY = _obj(["status", "checks"], {"status": {"type": "string"}, "checks": {"type": "object"}})
_PATHS = {
    "/api/v1/alerts/alertmanager": {"post": _op(
        "postAlertmanager", "Alertmanager webhook (payload version 4)",
        _json(_ref("Stored"), "stored durably (one Redis stream entry); placed in incidents just after"),
        ("400", "401", "403", "408", "503"), ok_status="202",
        body=_obj(["version", "alerts"], {"version": {"type": "string", "enum": ["4"]},
                                          "alerts": {"type": "array", "maxItems": 50_000, "items": {**_ALERT, "properties": {
                                              **_ALERT["properties"],
                                              "status": {"type": "string", "enum": ["firing", "resolved"]}}}}}))},
    "/api/v1/alerts": {"post": _with(_op(
        "postAlerts", "alerts in Alertmanager's v2 shape",
        _json(_ref("Accepted"), "stored and placed: the incidents the alerts joined"),
        ("400", "401", "403", "408", "503"), links=_FOLLOW_FIRST,
        body={"type": "array", "maxItems": 50_000, "items": _ALERT}),
        "202", _json(_ref("Pending"), "stored durably, not placed within api.alert_wait (default 2 s); "
                                      "the alerts join their incidents just after"))},
    "/api/v1/incidents": {
        "get": _op("listIncidents", "list incidents, newest first", _json(_ref("IncidentList"), "one page"),
                   ("400", "401", "403", "503"), params=[
                       _q("status", {"type": "string", "enum": ["open", "acknowledged", "resolved"]}),
                       _q("level", _LEVEL), _q("site", {"type": "string", "minLength": 1, "maxLength": 100}),
                       _q("unit", {"type": "string", "minLength": 1, "maxLength": 100}),
                       _q("category", {"type": "string", "minLength": 1, "maxLength": 100}),
                       _q("since", _TIME), _q("limit", {"type": "integer", "minimum": 1, "maximum": 10_000}),
                       _q("offset", {"type": "integer", "minimum": 0, "maximum": 999_999_999}),
                       _q("order", {"type": "string", "enum": ["newest", "oldest"]})]),
        "post": _op("openManual", "open a manual incident (what no probe sees)", _json(_INCIDENT, "opened"),
                    ("400", "401", "403", "408", "503"), ok_status="201", links=_FOLLOW,
                    body=_obj(["category", "site", "by", "summary"], {
                        "category": _text(40), "site": {**_text(100), "description": "a configured site"},
                        "by": _text(100), "summary": _text(2000), "flags": _FLAGS, "level": {**_LEVEL, "nullable": True, "enum": [1, 2, 3, None]},
                        "drill": {"type": "boolean"}}))},
    "/api/v1/incidents/{id}": {"get": _op("getIncident", "one incident with alerts and timeline",
                                          _json(_ref("IncidentDetail"), "the incident"),
                                          ("401", "403", "404", "503"), params=[_ID])},
    "/api/v1/incidents/{id}/ack": {"post": _op(
        "ackIncident", "acknowledge: with a token, or through a signed link (?exp=&sig=) without one",
        _json(_INCIDENT, "acknowledged"), _MUTATE, security=[{"bearer": []}, {}],
        params=[_ID, _q("exp", {"type": "string", "pattern": "^[0-9]{1,12}$"}, "a signed link's expiry"),
                _q("sig", {"type": "string"}, "a signed link's signature; without both exp and sig: 403")],
        body=_obj(["by"], {"by": _text(100)}))},
    "/api/v1/incidents/{id}/reports/{clock}": {"post": _op(
        "fileReport", "mark a report filed", _json(_INCIDENT, "filed"), _MUTATE, params=[_ID, _CLOCK],
        body=_obj(["by"], {"by": _text(100), "note": _NOTE,
                           "at": {**_OPTIONAL_TIME, "description": "not in the future; default now"}}))},
    "/api/v1/incidents/{id}/level": {"post": _op(
        "setLevel", "set the level by hand", _json(_INCIDENT, "levelled"), _MUTATE, params=[_ID],
        body=_obj(["level", "by", "reason"], {"level": _LEVEL, "by": _text(100), "reason": _text(2000)}))},
    "/api/v1/incidents/{id}/flags": {"post": _op(
        "setFlags", "set harm flags; the plan re-grades", _json(_INCIDENT, "flagged"), _MUTATE, params=[_ID],
        body=_obj(["flags", "by", "reason"], {"flags": {**_FLAGS, "minItems": 1}, "by": _text(100),
                                              "reason": _text(2000)}))},
    "/api/v1/incidents/{id}/resolve": {"post": _op(
        "resolveIncident", "resolve", _json(_INCIDENT, "resolved"), _MUTATE, params=[_ID],
        body=_obj(["by", "result"], {"by": _text(100), "result": _text(2000),
                                     "at": {**_OPTIONAL_TIME, "description": "after detection, not in the future"}}))},
    "/api/v1/incidents/{id}/report": {"get": _op(
        "getReport", "a report draft",
        {"description": "the draft: text, or JSON with Accept: application/json",
         "content": {"text/plain": {"schema": {"type": "string"}}, "application/json": {"schema": _obj(
             ["text"], {"text": {"type": "string"}})}}},
        ("400", "401", "403", "404", "503"),
        params=[_ID, _q("kind", {"type": "string", "enum": list(KINDS)}),
                _q("lang", {"type": "string", "enum": ["zh", "en"]})])},
    "/api/v1/shift-report": {"get": _op(
        "shiftReport", "the shift hand-off report",
        {"description": "JSON, or text with format=text",
         "content": {"application/json": {"schema": {"type": "object"}}, "text/plain": {"schema": {"type": "string"}}}},
        ("400", "401", "403", "503"),
        params=[_q("roster", {"type": "string"}, "a configured roster; default the first"), _q("at", _TIME),
                _q("lang", {"type": "string", "enum": ["zh", "en"]}),
                _q("format", {"type": "string", "enum": ["json", "text"]})])},
    "/api/v1/targets": {"get": _op(
        "listTargets", "every target's last reading and fault state (a token's units only)",
        _json(_ref("Targets"), "targets"), ("401", "403", "404"),
        params=[_q("target", {"type": "string"}, "one target by name")])},
    "/api/v1/openapi.json": {"get": _op("openapi", "this document", _json({"type": "object"}, "OpenAPI 3.0"), (),
                                        security=[])},
    "/healthz": {"get": _op("healthz", "liveness", _json(_obj(["status"], {"status": {"type": "string"}}), "alive"),
                            (), security=[])},
    "/readyz": {"get": {"operationId": "readyz", "summary": "readiness: config loaded and Redis answering",
                        "security": [], "responses": {"200": _json(_READY, "ready"),
                                                      "503": _json(_READY, "not ready, and why")}}},
}

DOCUMENT: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {"title": "hallmon", "version": "1",
             "description": "Errors are {\"error\", \"detail\"} JSON; every response carries X-Request-Id."},
    "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}, "schemas": _SCHEMAS},
    "security": [{"bearer": []}],
    "paths": _PATHS,
}


def document(cfg: Config) -> dict:
    """The document for this configuration: the sites and rosters that exist."""
    doc: dict[str, Any] = copy.deepcopy(DOCUMENT)
    manual = doc["paths"]["/api/v1/incidents"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    manual["properties"]["site"]["enum"] = sorted(cfg.sites)
    rosters = [r.id for r in cfg.paging.rosters]
    if rosters:
        [roster] = [p for p in doc["paths"]["/api/v1/shift-report"]["get"]["parameters"] if p["name"] == "roster"]
        roster["schema"]["enum"] = rosters
    return doc
