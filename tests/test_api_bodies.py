"""Every mutating route answers a body of the wrong JSON type, or a wrongly typed field,
with 400 {"error", "detail"} and changes nothing (never a 500)."""

import pytest

from tests.routerkit import alert, auth, make_app

pytestmark = pytest.mark.usefixtures("tokens")  # the config's token secrets (tests.routerkit.TOKENS)


BODIES = [b"[]", b'"text"', b"42", b"null", b"[{\"by\": \"duty-a\"}]"]
ROUTES = ["/api/v1/incidents", "/api/v1/incidents/{id}/ack", "/api/v1/incidents/{id}/level",
          "/api/v1/incidents/{id}/resolve", "/api/v1/incidents/{id}/reports/{clock}"]


async def test_wrong_body_types_are_400_and_change_nothing(aiohttp_client, tmp_path, redis_url):
    client = await aiohttp_client(make_app(tmp_path, redis_url))
    resp = await client.post("/api/v1/alerts", json=[alert("system.down", "u3a", "u3")], headers=auth())
    [inc_id] = (await resp.json())["incidents"]
    before = await (await client.get(f"/api/v1/incidents/{inc_id}", headers=auth())).json()
    clock = before["clocks"][0]["id"]
    for route in ROUTES:
        for body in BODIES:
            resp = await client.post(route.format(id=inc_id, clock=clock), data=body,
                                     headers={**auth(), "Content-Type": "application/json"})
            assert resp.status == 400, (route, body, resp.status, await resp.text())
            err = await resp.json()
            assert set(err) == {"error", "detail"} and err["detail"]
    for field, value in [("level", True), ("level", "1"), ("flags", "casualties"), ("flags", [{"x": 1}]),
                         ("site", 5), ("drill", "yes")]:
        body = {"by": "duty-a", "category": "fire", "site": "u3a", "summary": "x", field: value}
        resp = await client.post("/api/v1/incidents", json=body, headers=auth())
        assert resp.status == 400, (field, value, resp.status, await resp.text())
    after = await (await client.get(f"/api/v1/incidents/{inc_id}", headers=auth())).json()
    assert after["timeline"] == before["timeline"]
    listed = await (await client.get("/api/v1/incidents", headers=auth())).json()
    assert [i["id"] for i in listed["incidents"]] == [inc_id]
