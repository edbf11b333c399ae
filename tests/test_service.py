"""`hallmon run` as a real process: endpoints, reload on SIGHUP, readiness, shards,
and `hallmon probe`."""
import json
import shutil
import signal
import subprocess
import sys
import time
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from monitor.config.model import load_config
from monitor.service.runtime import Shard
from simulators.redisproc import free_port
from tests.conftest import ROOT, write_config


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def org(targets: str) -> str:
    return f"""\
organisation:
  name: t
  units:
    - id: u1
      name: U1
      sites:
        - id: s1
          name: S1
          targets:
{targets}"""


def tcp(name: str, port: int, interval: str = "200ms") -> str:
    return (f'            - {{name: {name}, kind: net.tcp, address: "127.0.0.1:{port}", '
            f'interval: {interval}, timeout: {interval}}}\n')


def wait_for(pred, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def targets(base: str) -> dict:
    return {t["name"]: t for t in json.loads(get(base + "/api/v1/targets")[1])["targets"]}


def test_targets_api_shows_last_reading_and_fault_state(tmp_path, redis_url, service):
    cfg = write_config(tmp_path / "h.yml", org(tcp("closed", free_port())), redis_url)
    svc = service(cfg)
    t = wait_for(lambda: targets(svc.base)["closed"]["last_reading"] and targets(svc.base)["closed"])
    assert t["site"] == "s1" and t["kind"] == "net.tcp"
    assert t["last_reading"]["ok"] is False and "refused" in t["last_reading"]["error"]
    assert t["faults"]["network.down"]["active"] is True
    assert get(svc.base + "/api/v1/targets?target=nope")[0] == 404


def test_metrics_parse_cleanly_in_prometheus_and_promtool(tmp_path, redis_url, service):
    cfg = write_config(tmp_path / "h.yml", org(tcp("closed", free_port())), redis_url)
    svc = service(cfg)
    wait_for(lambda: b"hallmon_fault_active" in get(svc.base + "/metrics")[1])
    status, body = get(svc.base + "/metrics")
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    for name in ("hallmon_probe_success", "hallmon_probe_duration_seconds", "hallmon_fault_active",
                 "hallmon_scheduler_lag_seconds", "hallmon_scheduler_checks_in_flight",
                 "hallmon_scheduler_checks_skipped"):
        assert name in families, name
    active = {s.labels["fault"]: s.value for s in families["hallmon_fault_active"].samples}
    assert active == {"network.down": 1.0, "network.latency": 0.0}
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool missing: scripts/setup.sh test installs the prometheus package")
    res = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True)
    assert res.returncode == 0, res.stderr.decode() + res.stdout.decode()


def test_readyz_fails_while_redis_is_unreachable(tmp_path, service):
    cfg = write_config(tmp_path / "h.yml", org(tcp("x", free_port(), "1s")),
                       redis_url=f"redis://127.0.0.1:{free_port()}/0")
    svc = service(cfg)
    status, body = get(svc.base + "/readyz")
    assert status == 503 and "unreachable" in json.loads(body)["checks"]["redis"]
    assert get(svc.base + "/healthz")[0] == 200


def test_sighup_applies_a_valid_config_and_refuses_an_invalid_one(tmp_path, redis_url, service):
    listen = f"127.0.0.1:{free_port()}"
    cfg = write_config(tmp_path / "h.yml", org(tcp("a", free_port())), redis_url, listen)
    svc = service(cfg)
    wait_for(lambda: "a" in targets(svc.base))
    # an invalid file: refused, every error logged, the old config keeps running
    cfg.write_text(cfg.read_text().replace("interval: 200ms", "interval: -5"))
    svc.signal(signal.SIGHUP)
    wait_for(lambda: any(e["event"] == "reload_refused" for e in svc.events()))
    refused = [e["issue"] for e in svc.events() if e["event"] == "reload_refused"]
    assert any("targets[0].interval: expected a duration like 10s, got -5" in i for i in refused)
    assert set(targets(svc.base)) == {"a"}
    assert svc.proc.poll() is None
    # a valid file: applied
    write_config(cfg, org(tcp("a", free_port()) + tcp("b", free_port())), redis_url, listen)
    svc.signal(signal.SIGHUP)
    wait_for(lambda: set(targets(svc.base)) == {"a", "b"})
    wait_for(lambda: targets(svc.base)["b"]["last_reading"])


def test_sigterm_stops_within_five_seconds_even_with_checks_hanging(tmp_path, redis_url, service):
    import socket

    hang = socket.socket()
    hang.bind(("127.0.0.1", 0))
    hang.listen(100)  # accepts (kernel backlog) and never answers
    port = hang.getsockname()[1]
    body = org(f'            - {{name: h, kind: system.http, url: "http://127.0.0.1:{port}/", '
               f'interval: 10s, timeout: 9s}}\n')
    svc = service(write_config(tmp_path / "h.yml", body, redis_url))
    time.sleep(0.5)
    t0 = time.monotonic()
    svc.signal(signal.SIGTERM)
    assert svc.proc.wait(6) == 0
    assert time.monotonic() - t0 < 5
    hang.close()


def test_shards_cover_every_target_exactly_once(tmp_path, redis_url, service):
    body = org("".join(tcp(f"t{i}", free_port(), "1s") for i in range(30)))
    cfg = write_config(tmp_path / "h.yml", body, redis_url)
    everything = {t.name for t in load_config(cfg).targets}
    seen: list[set] = []
    for i in range(3):
        shard_cfg = write_config(tmp_path / f"h{i}.yml", body, redis_url)
        svc = service(shard_cfg, "--shard", f"{i}/3")
        seen.append(set(targets(svc.base)))
    assert all(seen)  # each shard has work
    assert set().union(*seen) == everything
    assert sum(len(s) for s in seen) == len(everything)


@pytest.mark.parametrize("bad", ["3/3", "-1/2", "x", "1/0"])
def test_bad_shard_is_refused(bad):
    with pytest.raises(ValueError):
        Shard.parse(bad)


def test_probe_command_prints_a_table_and_json(tmp_path):

    server_port = free_port()
    closed = free_port()
    cfg = write_config(tmp_path / "h.yml", org(tcp("open", server_port, "1s") + tcp("closed", closed, "1s")))

    code = ("import asyncio, socket\n"
            f"s = socket.socket(); s.bind(('127.0.0.1', {server_port})); s.listen(10)\n"
            "import time; time.sleep(30)\n")
    listener = subprocess.Popen([sys.executable, "-c", code])
    try:
        time.sleep(0.3)
        run = lambda *a: subprocess.run([sys.executable, "-m", "monitor.cli", "probe", "-c", str(cfg), *a],  # noqa: E731
                                        capture_output=True, text=True, cwd=ROOT)
        res = run()
        assert res.returncode == 1  # one target has a fault
        lines = res.stdout.splitlines()
        assert lines[0].split()[:4] == ["TARGET", "KIND", "SITE", "OK"]
        row = {line.split()[0]: line for line in lines[1:]}
        assert " yes " in row["open"] and " NO " in row["closed"] and "network.down" in row["closed"]
        res = run("open", "--json")
        assert res.returncode == 0
        [reading] = json.loads(res.stdout)
        assert reading["target"] == "open" and reading["ok"] is True
        res = run("nope")
        assert res.returncode == 2 and "no such target: nope" in res.stderr
    finally:
        listener.kill()
