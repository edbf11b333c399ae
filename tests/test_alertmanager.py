"""Real Alertmanager posting its webhook to hallmon; two replicas give one incident."""
import asyncio
import json
import shutil
import subprocess
import urllib.request
from datetime import datetime, timezone

import pytest

from simulators.redisproc import free_port
from tests.routerkit import TOKENS, alert, auth, make_app

AM = shutil.which("prometheus-alertmanager")


pytestmark = pytest.mark.usefixtures("tokens")  # the config's token secrets (tests.routerkit.TOKENS)


class Alertmanager:
    def __init__(self, tmp, webhook: str, token_file):
        self.port = free_port()
        cfg = tmp / f"am-{self.port}.yml"
        cfg.write_text(f"""\
route:
  receiver: hallmon
  group_by: [site, fault]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: hallmon
    webhook_configs:
      - url: {webhook}
        send_resolved: true
        http_config:
          authorization: {{credentials_file: {token_file}}}
""")
        (tmp / f"am-data-{self.port}").mkdir()
        self.proc = subprocess.Popen([AM, f"--config.file={cfg}", f"--storage.path={tmp}/am-data-{self.port}",
                                      f"--web.listen-address=127.0.0.1:{self.port}", "--cluster.listen-address="],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.base = f"http://127.0.0.1:{self.port}"

    async def ready(self) -> None:
        for _ in range(100):
            try:
                await asyncio.to_thread(urllib.request.urlopen, self.base + "/-/ready", timeout=1)
                return
            except OSError:
                await asyncio.sleep(0.1)
        raise RuntimeError("alertmanager did not start")

    async def post(self, alerts: list) -> None:
        req = urllib.request.Request(self.base + "/api/v2/alerts", data=json.dumps(alerts).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
        await asyncio.to_thread(urllib.request.urlopen, req, timeout=5)

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


@pytest.mark.skipif(AM is None, reason="prometheus-alertmanager missing: scripts/setup.sh test installs it")
async def test_two_real_alertmanagers_post_to_the_webhook_and_make_one_incident(aiohttp_client, tmp_path, redis_url):
    client = await aiohttp_client(make_app(tmp_path, redis_url))
    token = tmp_path / "token"
    token.write_text(TOKENS["HALLMON_T_ADMIN"])
    webhook = str(client.make_url("/api/v1/alerts/alertmanager"))
    ams = [Alertmanager(tmp_path, webhook, token), Alertmanager(tmp_path, webhook, token)]
    try:
        for am in ams:
            await am.ready()
        a = alert("power.on_battery", "u3a", "u3", starts=datetime.now(timezone.utc))
        a.pop("endsAt", None)
        for am in ams:
            await am.post([a])
        incidents = []
        for _ in range(100):
            resp = await client.get("/api/v1/incidents", headers=auth())
            incidents = (await resp.json())["incidents"]
            if incidents:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)  # let the second replica's webhook arrive too
        resp = await client.get("/api/v1/incidents", headers=auth())
        incidents = (await resp.json())["incidents"]
        assert len(incidents) == 1
        inc = await (await client.get(f"/api/v1/incidents/{incidents[0]['id']}", headers=auth())).json()
        assert inc["category"] == "power" and inc["alerts"][0]["source"] == "alertmanager"
        assert len(inc["alerts"]) == 1
        # resolving at Alertmanager resolves the alert in hallmon: the incident recovers
        a["endsAt"] = datetime.now(timezone.utc).isoformat()
        for am in ams:
            await am.post([a])
        for _ in range(100):
            inc = await (await client.get(f"/api/v1/incidents/{incidents[0]['id']}", headers=auth())).json()
            if inc["recovered"]:
                break
            await asyncio.sleep(0.1)
        assert inc["recovered"] is True and inc["status"] == "open"
    finally:
        for am in ams:
            am.stop()
