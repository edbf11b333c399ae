"""Recovery across restarts, through real ``hallmon run`` processes and real devices
(issue 17, item 3): TCP listeners a ``net.tcp`` target connects to, and a real upsd
with NUT's dummy-ups driver.

A device faults, its incident opens, hallmon is stopped (SIGTERM, or SIGKILL: nothing
said on the way out), the device recovers meanwhile, hallmon starts on the same Redis:
its first reading ends the fault, the incident shows ``recovered: true`` and the
alert ended. A fault that begins while hallmon is down opens an incident after start;
one that lasts across the restart stays the one incident, still firing. Each shard
takes up only its own targets' faults.
"""
from __future__ import annotations

import json
import signal
import socketserver
import threading
import urllib.request
from datetime import datetime
from pathlib import Path

import pytest

from monitor.plans.model import builtin_ids
from simulators import upsd as upsd_sim
from simulators.redisproc import free_port
from tests.conftest import ServiceProcess
from tests.plankit import wait_for
from tests.routerkit import TOKENS
from tests.test_api_faults import config

AUTH = {"Authorization": f"Bearer {TOKENS['HALLMON_T_ADMIN']}"}
OL = {"ups.status": "OL", "battery.charge": "100", "battery.runtime": "1800", "ups.load": "23",
      "input.voltage": "228.5"}
OB = {**OL, "ups.status": "OB DISCHRG", "battery.charge": "80", "input.voltage": "0"}


class Device:
    """A TCP service on a fixed loopback port: up (accepting) or down (refused)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.server: socketserver.TCPServer | None = None
        self.up()

    def up(self) -> None:
        class Server(socketserver.ThreadingTCPServer):
            allow_reuse_address = True
            daemon_threads = True

        self.server = Server(("127.0.0.1", self.port), socketserver.BaseRequestHandler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def down(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


def tcp_target(name: str, device: Device) -> str:
    return (f'            - {{name: {name}, kind: net.tcp, address: "127.0.0.1:{device.port}", system: {name}, '
            f'interval: 1s, timeout: 1s}}\n')


def api(svc: ServiceProcess, path: str):
    req = urllib.request.Request(svc.base + path, headers=AUTH)
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def incidents_of(svc: ServiceProcess, system: str) -> list[dict]:
    return [i for i in api(svc, "/api/v1/incidents")["incidents"] if i["system"] == system]


def one_incident(svc: ServiceProcess, system: str) -> dict:
    found = wait_for(lambda: incidents_of(svc, system), timeout=20)
    assert found, f"no incident for {system}:\n{svc.log_path.read_text()[-3000:]}"
    [inc] = found
    return api(svc, f"/api/v1/incidents/{inc['id']}")


def events(svc: ServiceProcess, name: str) -> list[dict]:
    return [e for e in svc.events() if e.get("event") == name]


def stop(svc: ServiceProcess, how: signal.Signals) -> None:
    svc.proc.send_signal(how)
    svc.proc.wait(15)
    svc.stop()  # closes its log


def start(config_path: Path, *extra: str) -> ServiceProcess:
    svc = ServiceProcess(config_path, *extra, env=TOKENS)
    svc.wait_listening(timeout=30)
    return svc


@pytest.fixture
def run():
    """``hallmon run`` processes, each stopped at the end of the test."""
    started: list[ServiceProcess] = []

    def go(config_path: Path, *extra: str) -> ServiceProcess:
        svc = start(config_path, *extra)
        started.append(svc)
        return svc

    yield go
    for svc in started:
        svc.stop()


# every built-in plan, stopped by SIGTERM or SIGKILL in turn (each start costs seconds)
CASES = [(plan, (signal.SIGTERM, signal.SIGKILL)[i % 2]) for i, plan in enumerate(builtin_ids())]


@pytest.mark.parametrize(("plan", "how"), CASES, ids=[f"{p}-{s.name}" for p, s in CASES])
def test_a_device_that_recovers_while_hallmon_is_down_ends_its_incident_after_start(tmp_path, redis_url, run,
                                                                                   plan, how):
    recovers, begins, lasts = Device(), Device(), Device()
    cfg = config(tmp_path, redis_url, targets=tcp_target("gw-recovers", recovers) + tcp_target("gw-begins", begins)
                 + tcp_target("gw-lasts", lasts))
    cfg.write_text(cfg.read_text().replace("plan: shenzhen-customs", f"plan: {plan}"), encoding="utf-8")
    try:
        first = run(cfg)
        recovers.down()
        lasts.down()
        recovering = one_incident(first, "gw-recovers")
        lasting = one_incident(first, "gw-lasts")
        assert recovering["recovered"] is False and recovering["plan"] == plan
        stop(first, how)

        recovers.up()
        begins.down()
        second = run(cfg)
        assert wait_for(lambda: api(second, f"/api/v1/incidents/{recovering['id']}")["recovered"], timeout=20), \
            second.log_path.read_text()[-3000:]
        after = api(second, f"/api/v1/incidents/{recovering['id']}")
        [alert] = after["alerts"]
        assert alert["status"] == "resolved" and alert["endsAt"] and alert["source"] == "probe"
        assert after["status"] == "open"  # a person still resolves it
        assert any(e["action"] == "alerts" and e["detail"].get("recovered") is True for e in after["timeline"])

        begun = one_incident(second, "gw-begins")  # a fault that began while hallmon was down opens as usual
        assert begun["id"] != recovering["id"] and begun["recovered"] is False
        # one that lasts across the restart: the same one incident, its alert still firing
        assert [i["id"] for i in incidents_of(second, "gw-lasts")] == [lasting["id"]]
        still = api(second, f"/api/v1/incidents/{lasting['id']}")
        assert still["recovered"] is False and [a["status"] for a in still["alerts"]] == ["firing"]
        [resumed] = events(second, "faults_resumed")
        assert resumed["faults"] == 2  # gw-recovers and gw-lasts
        [cleared] = [e for e in events(second, "fault_cleared") if e["target"] == "gw-recovers"]
        gap = datetime.fromisoformat(cleared["timestamp"]) - datetime.fromisoformat(resumed["timestamp"])
        print(f"{plan} {how.name}: taken up 2 faults; the recovered one ended {gap.total_seconds():.2f} s later "
              "(its first reading, interval 1 s)")
    finally:
        for device in (recovers, begins, lasts):
            device.down()


def test_each_shard_takes_up_only_its_own_targets(tmp_path, redis_url, run, tokens):
    from monitor.config.model import load_config
    from monitor.service.runtime import Shard

    devices = {f"gw-{i}": Device() for i in range(6)}
    targets = "".join(tcp_target(n, d) for n, d in devices.items())
    cfgs = [config(tmp_path, redis_url, targets=targets, name=f"shard{s}.yml") for s in (0, 1)]  # two listen ports
    shards = {s: [t.name for t in Shard(s, 2).select(load_config(cfgs[s]).targets)] for s in (0, 1)}
    assert shards[0] and shards[1], shards  # both shards hold some of the six
    try:
        procs = [run(cfgs[s], "--shard", f"{s}/2") for s in (0, 1)]
        for d in devices.values():
            d.down()
        opened = {n: one_incident(procs[0], n)["id"] for n in devices}
        for svc in procs:
            stop(svc, signal.SIGKILL)
        for d in devices.values():
            d.up()
        only_first = run(cfgs[0], "--shard", "0/2")  # shard 1 stays down
        assert wait_for(lambda: all(api(only_first, f"/api/v1/incidents/{opened[n]}")["recovered"]
                                    for n in shards[0]), timeout=20)
        [resumed] = events(only_first, "faults_resumed")
        assert resumed["faults"] == len(shards[0])
        # shard 1's devices recovered too, but no process of shard 1 has read them
        assert not any(api(only_first, f"/api/v1/incidents/{opened[n]}")["recovered"] for n in shards[1])
    finally:
        for d in devices.values():
            d.down()


@pytest.mark.skipif(not upsd_sim.available(), reason="nut-server missing: scripts/setup.sh test")
def test_a_ups_back_on_mains_while_hallmon_was_killed_ends_its_power_incident(tmp_path, redis_url, run):
    with upsd_sim.Upsd({"ups1": OL, "ups2": OL}) as ups:
        targets = "".join(f'            - {{name: {u}, kind: ups.nut, address: "{ups.address}", ups: {u}, '
                          f'system: {u}, interval: 1s, timeout: 1s}}\n' for u in ("ups1", "ups2"))
        cfg = config(tmp_path, redis_url, targets=targets)
        first = run(cfg)
        ups.write("ups1", OB)
        on_battery = one_incident(first, "ups1")
        assert "power.on_battery" in on_battery["faults"] and on_battery["recovered"] is False
        stop(first, signal.SIGKILL)

        ups.write("ups1", OL)  # mains back while hallmon is down
        ups.write("ups2", OB)  # and the other one loses mains meanwhile
        second = run(cfg)
        assert wait_for(lambda: api(second, f"/api/v1/incidents/{on_battery['id']}")["recovered"], timeout=20), \
            second.log_path.read_text()[-3000:]
        assert {a["status"] for a in api(second, f"/api/v1/incidents/{on_battery['id']}")["alerts"]} == {"resolved"}
        begun = one_incident(second, "ups2")
        assert "power.on_battery" in begun["faults"] and begun["recovered"] is False


def test_a_restart_with_redis_down_takes_up_the_faults_once_redis_answers(tmp_path, run):
    from simulators.redisproc import RedisServer

    device = Device()
    with RedisServer() as server:
        cfg = config(tmp_path, server.url, targets=tcp_target("gw-late", device))
        try:
            first = run(cfg)
            device.down()
            opened = one_incident(first, "gw-late")
            stop(first, signal.SIGKILL)
            device.up()
            server.proc.terminate()  # Redis down, its data (AOF) kept in its directory
            server.proc.wait(10)
            second = run(cfg)  # starts (and checks) without Redis
            assert wait_for(lambda: events(second, "resume_waiting_for_redis"), timeout=10)
            server.start()
            assert wait_for(lambda: events(second, "faults_resumed"), timeout=20), second.log_path.read_text()[-3000:]
            assert events(second, "faults_resumed")[0]["after_waiting"] is True
            assert wait_for(lambda: api(second, f"/api/v1/incidents/{opened['id']}")["recovered"], timeout=20)
        finally:
            device.down()
