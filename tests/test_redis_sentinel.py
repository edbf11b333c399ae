"""``redis+sentinel://`` URLs: hallmon asks a real Redis Sentinel for the primary and
keeps its state there; a malformed URL is a config error naming the key."""
from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
import redis

from monitor.durable.connection import SentinelURL, parse_sentinel
from simulators.redisproc import RedisServer, free_port
from tests.conftest import HALLMON, write_config

ORG = """\
    plan: default
    organisation:
      name: t
      units:
        - id: u1
          name: U1
          sites:
            - id: s1
              name: S1
              targets:
                - {name: closed-port, kind: net.tcp, address: "127.0.0.1:1", interval: 1s, timeout: 1s}
    """


class SentinelProcess:
    def __init__(self, primary_port: int, service: str = "hallmon"):
        self.dir = Path(tempfile.mkdtemp(prefix="hallmon-sentinel-"))
        self.port = free_port()
        conf = self.dir / "sentinel.conf"
        conf.write_text(f"port {self.port}\nbind 127.0.0.1\ndir {self.dir}\n"
                        f"sentinel monitor {service} 127.0.0.1 {primary_port} 1\n"
                        f"sentinel down-after-milliseconds {service} 1000\n")
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.proc = subprocess.Popen([binary, str(conf), "--sentinel"], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("redis sentinel did not start")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(5)
        shutil.rmtree(self.dir, ignore_errors=True)


def test_parse_sentinel_urls():
    assert parse_sentinel("redis+sentinel://127.0.0.2:26379,127.0.0.3:26379/hallmon/2") == SentinelURL(
        (("127.0.0.2", 26379), ("127.0.0.3", 26379)), "hallmon", 2, None)
    assert parse_sentinel("redis+sentinel://:s%40cret@h:26379/svc").password == "s@cret"
    for bad in ("redis+sentinel://h:26379", "redis+sentinel://h/svc", "redis+sentinel://h:26379/svc/x",
                "redis+sentinel:///svc"):
        with pytest.raises(ValueError):
            parse_sentinel(bad)


def test_bad_sentinel_url_is_a_config_error(tmp_path):
    cfg = write_config(tmp_path / "h.yml", ORG, redis_url="redis+sentinel://127.0.0.1/hallmon")
    out = subprocess.run([*HALLMON, "check-config", str(cfg)], capture_output=True, text=True)
    assert out.returncode == 1
    assert "h.yml:1: service.redis_url" in out.stdout + out.stderr
    assert "expected host:port" in out.stdout + out.stderr


def test_hallmon_finds_the_primary_through_sentinel(tmp_path, service):
    with RedisServer(appendonly=False) as primary:
        sentinel = SentinelProcess(primary.port)
        try:
            cfg = write_config(tmp_path / "h.yml", ORG,
                               redis_url=f"redis+sentinel://127.0.0.1:{sentinel.port}/hallmon/3")
            svc = service(cfg)
            with urllib.request.urlopen(svc.base + "/readyz", timeout=5) as resp:
                assert resp.status == 200
            # the closed port's fault opens an incident: stored on the primary, in db 3
            client = redis.Redis(port=primary.port, db=3)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not client.keys("hallmon:incident:*"):
                time.sleep(0.1)
            assert client.keys("hallmon:incident:*")
            client.close()
        finally:
            sentinel.stop()
