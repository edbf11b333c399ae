"""Hostile and malformed input at the API boundary: every one is a 400 JSON answer that
names the field, nothing is stored, and the refusal comes before Redis is asked (the
same requests against a service whose Redis is down still answer 400, not 503). Every
other failure is JSON too, with a request id."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
import redis

from monitor.core.errors import Invalid
from monitor.service.inputs import parse_json
from simulators.redisproc import free_port
from tests.pagingkit import paging_yaml
from tests.routerkit import alert, auth, make_app

pytestmark = pytest.mark.usefixtures("tokens")  # the config's token secrets (tests.routerkit.TOKENS)


def raw_alert(labels: str = '"fault": "system.down", "site": "u3a", "unit": "u3"', annotations: str = "{}",
              starts: str | None = None) -> bytes:
    starts = starts or (datetime.now(timezone.utc) - timedelta(minutes=1)).isoformat()
    return f'[{{"labels": {{{labels}}}, "annotations": {annotations}, "startsAt": "{starts}"}}]'.encode()


def deep(n: int) -> bytes:
    return b"[" * n + b"]" * n


NOW = datetime.now(timezone.utc)
# (method, path, body, what it tests); {id} and {clock} are an open incident's
HOSTILE = [
    ("POST", "/api/v1/alerts", deep(100_000), "deep nesting (list)"),
    ("POST", "/api/v1/alerts/alertmanager",
     b'{"version": "4", "alerts": ' + b'{"a": ' * 50_000 + b"1" + b"}" * 50_000 + b"}", "deep nesting (object)"),
    ("POST", "/api/v1/alerts", raw_alert('"fault": "system.down", "site": "u3a", "summary": "\\ud800"'),
     "lone surrogate in a label value"),
    ("POST", "/api/v1/alerts", raw_alert('"fault": "system.down", "site": "u3a", "\\udfff": "x"'),
     "lone surrogate in a label name"),
    ("POST", "/api/v1/alerts", raw_alert(annotations='{"summary": "bad \\ud83d tail"}'),
     "lone high surrogate in an annotation"),
    ("POST", "/api/v1/alerts", raw_alert(starts="0001-01-02T00:00:00+08:00"), "startsAt year 1"),
    ("POST", "/api/v1/alerts", raw_alert(starts="9999-12-31T23:59:59-08:00"), "startsAt year 9999"),
    ("POST", "/api/v1/alerts", raw_alert(starts=(NOW - timedelta(days=31)).isoformat()), "startsAt 31 days ago"),
    ("POST", "/api/v1/alerts", raw_alert(starts=(NOW + timedelta(hours=2)).isoformat()), "startsAt 2 h ahead"),
    ("GET", "/api/v1/shift-report?at=0001-01-01T00:00:00%2B08:00", None, "shift report at year 1"),
    ("GET", "/api/v1/shift-report?at=9999-12-31T23:59:59-08:00", None, "shift report at year 9999"),
    ("GET", "/api/v1/incidents?since=0001-01-01T00:00:00Z", None, "list since year 1"),
    ("GET", "/api/v1/incidents?limit=%C2%B2", None, "limit ²"),
    ("POST", "/api/v1/incidents/{id}/ack?exp=%C2%B2&sig=00", b"", "exp=² in an ack link"),
    ("POST", "/api/v1/incidents/{id}/level", json.dumps({"level": 1.0, "by": "测试值班长甲", "reason": "x"}).encode(),
     "level 1.0"),
    ("POST", "/api/v1/incidents/{id}/level", json.dumps({"level": True, "by": "测试值班长甲", "reason": "x"}).encode(),
     "level true"),
    ("POST", "/api/v1/incidents", json.dumps({"level": 2.0, "category": "fire", "site": "u3a", "by": "测试值班长甲",
                                              "summary": "x"}).encode(), "manual level 2.0"),
    ("POST", "/api/v1/incidents/{id}/reports/{clock}", json.dumps({"by": "测试值班长甲", "at": "0001-01-01T00:00:00Z"}).encode(),
     "report filed at year 1"),
    ("POST", "/api/v1/incidents/{id}/resolve", json.dumps({"by": "测试值班长甲", "result": "ok",
                                                           "at": "9999-12-31T23:59:59Z"}).encode(), "resolved at 9999"),
    ("POST", "/api/v1/incidents/{id}/ack", b'{"by": "\\udc00"}', "lone surrogate in by"),
    ("POST", "/api/v1/alerts", b'[{"labels": {"fault": "system.down", "site": "u3a"}, "x": NaN}]', "NaN"),
    ("POST", "/api/v1/alerts", b'[{"labels": {"fault": "system.down", "site": "u3a"}, "x": 1e400}]', "1e400"),
    ("POST", "/api/v1/alerts/alertmanager", b'{"version": "4", "alerts": [], "x": ' + deep(1024) + b"}",
     "1025 levels, one past the parser's limit, in a field nobody reads"),
    ("POST", "/api/v1/alerts", b'[{"labels": {"fault": "system.down", "site": "u3a\xff"}}]', "invalid UTF-8"),
]


@pytest.mark.parametrize("raw,says", [
    (deep(1025), "nested too deeply"), (b'["\\ud800"]', "lone UTF-16 surrogate"),
    (b'{"a": "\\udfff x"}', "lone UTF-16 surrogate"), (b'[1, NaN]', "not valid JSON"),
    (b'{"a": 1,}', "not valid JSON"), (b"\xff", "not valid JSON"),
])
def test_the_parser_refuses_with_a_reason(raw, says):
    """orjson refuses these itself (no walk over the parsed value): each is ``Invalid``
    (400) saying why; a surrogate pair (an emoji) and 1024 levels are still JSON."""
    with pytest.raises(Invalid, match=says):
        parse_json(raw)
    assert parse_json(b'["\\ud83d\\ude00"]') == ["\U0001F600"]
    assert parse_json(deep(1024))


def keys_and_values(url: str) -> dict:
    """The incidents' records (paging and timer keys move on their own)."""
    client = redis.Redis.from_url(url)
    try:
        return {k: client.dump(k) for k in client.keys("hallmon:*")
                if k.split(b":")[1] in (b"incident", b"timeline", b"incidents", b"open", b"seq")}
    finally:
        client.close()


async def send(client, method: str, path: str, body: bytes | None):
    headers = {**auth(), "Content-Type": "application/json"}
    return await client.request(method, path, data=body, headers=headers)


async def test_hostile_inputs_are_400_json_and_store_nothing(aiohttp_client, tmp_path, redis_url):
    client = await aiohttp_client(make_app(tmp_path, redis_url, extra=paging_yaml("http://127.0.0.1:9")))
    resp = await client.post("/api/v1/alerts", json=[alert("system.down", "u3a", "u3")], headers=auth())
    [inc_id] = (await resp.json())["incidents"]
    clock = (await (await client.get(f"/api/v1/incidents/{inc_id}", headers=auth())).json())["clocks"][0]["id"]
    before = keys_and_values(redis_url)
    for method, path, body, what in HOSTILE:
        resp = await send(client, method, path.format(id=inc_id, clock=clock), body)
        assert resp.status == 400, (what, resp.status, await resp.text())
        assert resp.content_type == "application/json", what
        err = await resp.json()
        assert err["error"] == "bad_request" and err["detail"], (what, err)
        assert resp.headers["X-Request-Id"]
    assert keys_and_values(redis_url) == before  # nothing stored, nothing changed
    draft = await client.get(f"/api/v1/incidents/{inc_id}/report?kind=written", headers=auth())
    assert draft.status == 200


async def test_hostile_inputs_are_refused_before_redis(aiohttp_client, tmp_path):
    """Redis is not there at all: each hostile request still answers 400, so none of them
    reached Redis; a well-formed request answers 503 with Retry-After."""
    client = await aiohttp_client(make_app(tmp_path, f"redis://127.0.0.1:{free_port()}/0",
                                           extra=paging_yaml("http://127.0.0.1:9")))
    for method, path, body, what in HOSTILE:
        resp = await send(client, method, path.format(id="INC-20261201-0001", clock="phone"), body)
        assert resp.status == 400, (what, resp.status, await resp.text())
    resp = await client.post("/api/v1/alerts", data=raw_alert(), headers={**auth(), "Content-Type": "application/json"})
    assert resp.status == 503 and resp.headers["Retry-After"]
    assert (await resp.json())["error"] == "store_unavailable"


@pytest.mark.parametrize("method,path,headers,status,code", [
    ("GET", "/api/v1/nope", {}, 404, "not_found"),
    ("DELETE", "/api/v1/incidents", {}, 405, "method_not_allowed"),
    ("GET", "/api/v1/incidents", {}, 401, "unauthorized"),
    ("GET", "/api/v1/incidents", {"Authorization": "Bearer wrong"}, 401, "unauthorized"),
    ("POST", "/api/v1/alerts", auth("HALLMON_T_READ"), 403, "forbidden"),
    ("GET", "/api/v1/incidents/INC-20260101-0001", auth(), 404, "not_found"),
    ("GET", "/api/v1/targets?target=nope", auth(), 404, "not_found"),
])
async def test_every_refusal_is_json_with_a_request_id(aiohttp_client, tmp_path, redis_url, method, path, headers,
                                                       status, code):
    client = await aiohttp_client(make_app(tmp_path, redis_url))
    resp = await client.request(method, path, headers={**headers, "X-Request-Id": "req-42"})
    assert resp.status == status and resp.content_type == "application/json"
    assert (await resp.json())["error"] == code
    assert resp.headers["X-Request-Id"] == "req-42"


async def test_a_conflict_is_409_json(aiohttp_client, tmp_path, redis_url):
    client = await aiohttp_client(make_app(tmp_path, redis_url))
    resp = await client.post("/api/v1/alerts", json=[alert("system.down", "u3a", "u3")], headers=auth())
    [inc_id] = (await resp.json())["incidents"]
    done = {"by": "测试值班长甲", "result": "恢复"}
    assert (await client.post(f"/api/v1/incidents/{inc_id}/resolve", json=done, headers=auth())).status == 200
    resp = await client.post(f"/api/v1/incidents/{inc_id}/resolve", json=done, headers=auth())
    assert resp.status == 409 and (await resp.json())["error"] == "conflict"
    resp = await client.post(f"/api/v1/incidents/{inc_id}/reports/no-such-clock", json={"by": "测试值班长甲"},
                             headers=auth())
    assert resp.status == 404 and "no-such-clock" in (await resp.json())["detail"]
