"""A real Zabbix 6.0 server (Debian's zabbix-server-pgsql on a private PostgreSQL, its
frontend's API under ``php -S``) runs hallmon's media type from deploy/zabbix/: values
sent to a trapper item fire a trigger, the action's webhook posts to hallmon.

Problem → incident at the mapped site; an acknowledgement made in Zabbix → the incident
acknowledged by that Zabbix user; recovery → the alert ended. Failure paths: hallmon
answering 503 (Zabbix's alerter retries: one alert, not two) and the Zabbix server
restarting between problem and recovery.
"""
from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from aiohttp import web

from tests import zabbixkit
from tests.routerkit import TOKENS, auth, make_app

# the first run on a machine loads Zabbix's SQL into the cached template cluster: minutes
pytestmark = [pytest.mark.usefixtures("tokens"), pytest.mark.timeout(900),
              pytest.mark.skipif(zabbixkit.available() is not None, reason=str(zabbixkit.available()))]
ROOT = Path(__file__).resolve().parent.parent

MAPPING = """\
sources:
  zabbix:
    rules:
      - {match: {host_group: "Halls/Futian"}, set: {site: u1a}}
      - {match: {tag: component, value: ups}, set: {fault: power.on_battery}}
"""


class Estate:
    """One Zabbix with hallmon's media type imported through the API, a host group, two
    hosts (an UPS in Halls/Futian, a printer in Office), a trapper item and trigger on
    each, and an action sending problems, recoveries and updates to a user ``hallmon``
    whose one media is hallmon's."""

    def __init__(self, root: Path):
        self.pg, template = zabbixkit.with_template()
        try:
            self.z = zabbixkit.Zabbix(root, self.pg, self.pg.copy(template, "zabbix"))
        except BaseException:
            self.pg.stop()
            raise
        z = self.z
        # Zabbix's own host would page about the test machine: off
        [own] = z.api("host.get", {"filter": {"host": "Zabbix server"}, "output": ["hostid"]})
        z.api("host.update", {"hostid": own["hostid"], "status": 1})
        src = (ROOT / "deploy/zabbix/hallmon_mediatype.yaml").read_text()
        assert z.api("configuration.import", {"format": "yaml", "source": src,
                                              "rules": {"mediaTypes": {"createMissing": True}}}) is True
        [mt] = z.api("mediatype.get", {"filter": {"name": "hallmon"}, "output": "extend"})
        self.mediatype = mt
        halls = z.api("hostgroup.create", {"name": "Halls/Futian"})["groupids"][0]
        office = z.api("hostgroup.create", {"name": "Office"})["groupids"][0]
        for host, group, key, prio, tags in (
                ("ups-futian-1", halls, "ups.onbattery", 5, [{"tag": "component", "value": "ups"}]),
                ("printer-3", office, "printer.jam", 1, [])):
            hid = z.api("host.create", {"host": host, "groups": [{"groupid": group}]})["hostids"][0]
            z.api("item.create", {"hostid": hid, "name": key, "key_": key, "type": 2, "value_type": 3})
            z.api("trigger.create", {"description": f"{host} {key}", "expression": f"last(/{host}/{key})=1",
                                     "priority": prio, "tags": tags})
        # the media sits on a user of its own: Zabbix tells nobody of their own updates, and
        # the tests acknowledge as Admin (a super admin role: it may see every host)
        [group] = z.api("usergroup.get", {"filter": {"name": "Zabbix administrators"}, "output": ["usrgrpid"]})
        hallmon = z.api("user.create", {
            "username": "hallmon", "passwd": "test-only-Passw0rd", "roleid": "3",
            "usrgrps": [{"usrgrpid": group["usrgrpid"]}],
            "medias": [{"mediatypeid": mt["mediatypeid"], "sendto": "hallmon", "active": 0, "severity": 63,
                        "period": "1-7,00:00-24:00"}]})["userids"][0]
        message = {"default_msg": 1, "mediatypeid": mt["mediatypeid"]}
        z.api("action.create", {
            "name": "hallmon", "eventsource": 0, "status": 0, "esc_period": "1h",
            "operations": [{"operationtype": 0, "opmessage": message, "opmessage_usr": [{"userid": hallmon}]}],
            "recovery_operations": [{"operationtype": 11, "opmessage": {"default_msg": 1}}],
            "update_operations": [{"operationtype": 12, "opmessage": {"default_msg": 1}}]})
        for host, key in (("ups-futian-1", "ups.onbattery"), ("printer-3", "printer.jam")):
            z.send_until_processed(host, key, "0")

    def point_at(self, url: str, token: str) -> None:
        """What an operator does after importing: hallmon's URL and token in the media type."""
        params = [dict(p) for p in self.mediatype["parameters"]]
        for p in params:
            p["value"] = {"hallmon_url": url, "hallmon_token": token, "instance": "zabbix-test"}.get(p["name"],
                                                                                                  p["value"])
        self.z.api("mediatype.update", {"mediatypeid": self.mediatype["mediatypeid"], "parameters": params,
                                        "attempt_interval": "1s", "maxattempts": 5})

    def close(self) -> None:
        try:
            self.z.close()
        finally:
            self.pg.stop()


@pytest.fixture(scope="module")
def estate(tmp_path_factory):
    e = Estate(tmp_path_factory.mktemp("zabbix"))
    yield e
    e.close()


async def wait_for(check, what: str, timeout: float = 60.0):
    for _ in range(int(timeout / 0.2)):
        out = await check()
        if out:
            return out
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


async def incidents(client) -> list[dict]:
    return (await (await client.get("/api/v1/incidents", headers=auth())).json())["incidents"]


async def show(client, incident_id: str) -> dict:
    return await (await client.get(f"/api/v1/incidents/{incident_id}", headers=auth())).json()


async def send(estate: Estate, host: str, key: str, value: str) -> None:
    answer = await asyncio.to_thread(estate.z.send, host, key, value)
    assert "processed: 1" in answer["info"], answer


async def test_problem_ack_and_recovery_through_a_real_zabbix(aiohttp_client, tmp_path, redis_url, estate):
    client = await aiohttp_client(make_app(tmp_path, redis_url, extra=MAPPING))
    estate.point_at(str(client.make_url("/")), TOKENS["HALLMON_T_ADMIN"])
    await send(estate, "ups-futian-1", "ups.onbattery", "1")
    [doc] = await wait_for(lambda: incidents(client), "the problem's incident")
    assert doc["category"] == "power" and doc["sites"] == ["u1a"] and doc["faults"] == ["power.on_battery"]
    shown = await show(client, doc["id"])
    [alert] = shown["alerts"]
    assert alert["labels"]["zabbix_event"].startswith("zabbix-test:") and alert["labels"]["host"] == "ups-futian-1"

    # a duty officer acknowledges in Zabbix: the update operation reaches the incident
    eventid = alert["labels"]["zabbix_event"].split(":")[1]
    await asyncio.to_thread(estate.z.api, "event.acknowledge",
                            {"eventids": eventid, "action": 2 | 4, "message": "测试：已到现场"})

    async def acked():
        d = await show(client, doc["id"])
        return d if d["status"] == "acknowledged" else None
    after = await wait_for(acked, "the Zabbix acknowledgement")
    assert after["acknowledged"]["by"].endswith("(Zabbix)") and "Admin" in after["acknowledged"]["by"]
    [entry] = [e for e in after["timeline"] if e["action"] == "acknowledged"]
    assert entry["detail"]["message"] == "测试：已到现场" and entry["detail"]["via"] == "zabbix"

    await send(estate, "ups-futian-1", "ups.onbattery", "0")

    async def recovered():
        d = await show(client, doc["id"])
        return d if d["alerts"][0]["status"] == "resolved" else None
    done = await wait_for(recovered, "the recovery")
    assert done["recovered"] and len(done["alerts"]) == 1

    # an event no rule maps (an office printer, severity information): kept, category other, flagged
    await send(estate, "printer-3", "printer.jam", "1")
    docs = await wait_for(lambda: _more(client, 2), "the unmapped event's incident")
    [other] = [d for d in docs if d["id"] != doc["id"]]
    assert other["category"] == "other" and other["unmapped"] is True
    await send(estate, "printer-3", "printer.jam", "0")


async def _more(client, n: int):
    docs = await incidents(client)
    return docs if len(docs) >= n else None


async def test_zabbix_retries_a_503_and_a_server_restart_between_problem_and_recovery_loses_nothing(
        aiohttp_client, tmp_path, redis_url, estate):
    """hallmon answers 503 to the first two posts (Redis gone, say): Zabbix's alerter
    retries, and the incident holds one alert. Then zabbix_server restarts; the
    recovery, sent after, still ends that alert."""
    app = make_app(tmp_path, redis_url, extra=MAPPING)
    refused: list[dict] = []

    @web.middleware
    async def flaky(request: web.Request, handler):
        body = json.loads(await request.read()) if request.path == "/api/v1/alerts/zabbix" else None
        # only this test's problem: the shared server may still send an earlier test's events
        if body is not None and len(refused) < 2 and "ups-futian-1" in json.dumps(body, ensure_ascii=False):
            refused.append(body)
            return web.json_response({"error": "unavailable", "detail": "test"}, status=503,
                                     headers={"Retry-After": "1"})
        return await handler(request)

    app.middlewares.insert(0, flaky)
    client = await aiohttp_client(app)
    estate.point_at(str(client.make_url("/")), TOKENS["HALLMON_T_ADMIN"])
    await send(estate, "ups-futian-1", "ups.onbattery", "1")
    [doc] = await wait_for(lambda: incidents(client), "the problem's incident after Zabbix's retries")
    assert len(refused) == 2 and refused[0] == refused[1]  # the same body, re-sent
    assert len((await show(client, doc["id"]))["alerts"]) == 1

    await asyncio.to_thread(estate.z.stop_server)
    await asyncio.to_thread(estate.z.start_server)
    await asyncio.to_thread(estate.z.send_until_processed, "ups-futian-1", "ups.onbattery", "0")

    async def recovered():
        d = await show(client, doc["id"])
        return d if d["recovered"] else None
    done = await wait_for(recovered, "the recovery after the restart")
    assert len(done["alerts"]) == 1 and done["alerts"][0]["status"] == "resolved"
    assert len(await incidents(client)) == 1
