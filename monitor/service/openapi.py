"""The API's OpenAPI document (served at /api/v1/openapi.json)."""
from __future__ import annotations

_ERR = {"description": "error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
_INC = {"description": "the incident", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Incident"}}}}
_ID = [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}]


def _post(summary: str, required: list[str], props: dict, params: list | None = None) -> dict:
    return {"post": {"summary": summary, "parameters": params or [],
                     "requestBody": {"required": True, "content": {"application/json": {"schema": {
                         "type": "object", "required": required, "properties": props}}}},
                     "responses": {"200": _INC, "400": _ERR, "401": _ERR, "403": _ERR, "404": _ERR, "409": _ERR}}}


_S = {"type": "string"}
_T = {"type": "string", "format": "date-time"}
_ALERT = {"type": "object", "required": ["labels"], "properties": {
    "labels": {"type": "object", "additionalProperties": _S}, "annotations": {"type": "object", "additionalProperties": _S},
    "startsAt": _T, "endsAt": _T, "generatorURL": _S}}

DOCUMENT = {
    "openapi": "3.0.3",
    "info": {"title": "hallmon", "version": "1"},
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "schemas": {
            "Error": {"type": "object", "required": ["error", "detail"], "properties": {"error": _S, "detail": _S}},
            "Alert": _ALERT,
            "Clock": {"type": "object", "properties": {"id": _S, "title": _S, "due_at": _T, "status": {
                "type": "string", "enum": ["pending", "met", "overdue"]}, "audience": {"type": "object"}, "source": _S}},
            "Incident": {"type": "object", "properties": {
                "id": _S, "status": {"type": "string", "enum": ["open", "acknowledged", "resolved"]},
                "level": {"type": "integer", "minimum": 1, "maximum": 3}, "level_name": _S, "plan": _S,
                "category": _S, "system": _S, "sites": {"type": "array", "items": _S},
                "units": {"type": "array", "items": _S}, "detected_at": _T, "decision": {"type": "object"},
                "clocks": {"type": "array", "items": {"$ref": "#/components/schemas/Clock"}},
                "drill": {"type": "boolean"}, "maintenance": {"type": "boolean"}, "unmapped": {"type": "boolean"}}},
        },
    },
    "security": [{"bearer": []}],
    "paths": {
        "/api/v1/alerts/alertmanager": _post("Alertmanager webhook (version 4)", ["version", "alerts"],
                                             {"version": _S, "alerts": {"type": "array", "items": _ALERT}}),
        "/api/v1/alerts": {"post": {"summary": "alerts in Alertmanager's v2 shape",
                                    "requestBody": {"required": True, "content": {"application/json": {"schema": {
                                        "type": "array", "items": _ALERT}}}},
                                    "responses": {"200": {"description": "accepted"}, "400": _ERR, "401": _ERR, "403": _ERR}}},
        "/api/v1/incidents": {
            "get": {"summary": "list incidents", "parameters": [
                {"name": n, "in": "query", "schema": _S} for n in ("status", "level", "site", "unit", "since", "limit", "offset", "order")],
                "responses": {"200": {"description": "incidents"}, "400": _ERR, "401": _ERR}},
            **_post("open a manual incident", ["category", "site", "by", "summary"],
                    {"category": _S, "site": _S, "by": _S, "summary": _S, "flags": {"type": "array", "items": _S},
                     "level": {"type": "integer"}, "drill": {"type": "boolean"}})},
        "/api/v1/incidents/{id}": {"get": {"summary": "one incident with alerts and timeline", "parameters": _ID,
                                           "responses": {"200": _INC, "404": _ERR}}},
        "/api/v1/incidents/{id}/ack": _post("acknowledge (token, or a signed link ?exp=&sig=)", [], {"by": _S}, _ID),
        "/api/v1/incidents/{id}/reports/{clock}": _post(
            "mark a report filed", ["by"], {"by": _S, "at": _T, "note": _S},
            _ID + [{"name": "clock", "in": "path", "required": True, "schema": _S}]),
        "/api/v1/incidents/{id}/level": _post("set the level", ["level", "by", "reason"],
                                              {"level": {"type": "integer"}, "by": _S, "reason": _S}, _ID),
        "/api/v1/incidents/{id}/flags": _post("set harm flags; the plan re-grades", ["flags", "by", "reason"],
                                              {"flags": {"type": "array", "items": _S}, "by": _S, "reason": _S}, _ID),
        "/api/v1/incidents/{id}/resolve": _post("resolve", ["by", "result"], {"by": _S, "result": _S, "at": _T}, _ID),
        "/api/v1/incidents/{id}/report": {"get": {"summary": "report draft", "parameters": _ID + [
            {"name": "kind", "in": "query", "schema": {"type": "string", "enum": ["phone", "written", "final"]}},
            {"name": "lang", "in": "query", "schema": {"type": "string", "enum": ["zh", "en"]}}],
            "responses": {"200": {"description": "the draft as text, or JSON with Accept: application/json"}}}},
    },
}
