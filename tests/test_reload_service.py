"""SIGHUP and the `service:` section: keys read once at start (listen, redis_url, the
Redis pool, the HTTP limits, …) are refused by name while the rest of the new file
applies; no log line ever carries the Redis URL's password, neither a refused reload
nor an invalid URL nor a Redis that cannot be reached."""
from __future__ import annotations

import json
import signal
import time
import urllib.request

import redis

from simulators.redisproc import RedisServer, free_port
from tests.test_api_faults import config, events

PASSWORD = "s3cret-hallmon-pw"
OTHER = "n3w-secret-pw"


def targets(base: str) -> set[str]:
    with urllib.request.urlopen(base + "/api/v1/targets", timeout=5) as r:
        return {t["name"] for t in json.loads(r.read())["targets"]}


def wait_for(pred, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := pred():
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def tcp(name: str) -> str:
    return f'            - {{name: {name}, kind: net.tcp, address: "127.0.0.1:{free_port()}", interval: 1s, timeout: 1s}}\n'


def test_restart_only_keys_are_refused_by_name_the_rest_applies_no_password_logged(tmp_path, service):
    with RedisServer() as server:
        plain = redis.Redis.from_url(server.url)
        plain.config_set("requirepass", PASSWORD)
        plain.close()
        url = f"redis://:{PASSWORD}@127.0.0.1:{server.port}/0"
        cfg = config(tmp_path, url, targets=tcp("a").rstrip("\n"))
        # no api.tokens here: /api/v1/targets is open
        cfg.write_text(cfg.read_text().replace("  tokens:\n    - {name: ops, secret_env: HALLMON_T_ADMIN, scopes: "
                                               "[alerts:write, incidents:read, incidents:write]}\n", ""))
        svc = service(cfg, env={"HALLMON_T_LINK": "link-secret-0123456789abcdef"})
        wait_for(lambda: svc.base and json.loads(urllib.request.urlopen(svc.base + "/readyz").read())["status"]
                 == "ready")
        listen = events(svc, "listening")[0]["address"]

        # a new listen address, Redis URL (another password), pool, and one more target
        text = cfg.read_text()
        changed = (text.replace(listen, f"127.0.0.1:{free_port()}").replace(PASSWORD, OTHER)
                   .replace("timezone: Asia/Shanghai}", "timezone: Asia/Shanghai, redis_pool: {size: 9}}")
                   + tcp("b"))
        cfg.write_text(changed)
        svc.signal(signal.SIGHUP)
        wait_for(lambda: targets(svc.base) == {"a", "b"})  # the rest applied, on the old address
        [refused] = events(svc, "reload_needs_restart")
        assert refused["keys"] == ["service.listen", "service.redis_url", "service.redis_pool"]
        assert json.loads(urllib.request.urlopen(svc.base + "/readyz").read())["status"] == "ready"  # old URL kept

        # an invalid URL carrying a password: refused whole, the password not in the log
        cfg.write_text(changed.replace(f"redis://:{OTHER}@", f"http://:{OTHER}@"))
        svc.signal(signal.SIGHUP)
        wait_for(lambda: events(svc, "reload_refused"))
        issues = [e["issue"] for e in events(svc, "reload_refused")]
        assert any("service.redis_url" in i and ":***@" in i for i in issues), issues

        # Redis gone: the unreachable line names the URL without its password
        server.stop()
        wait_for(lambda: events(svc, "redis_unreachable"))
        assert ":***@" in events(svc, "redis_unreachable")[0]["url"]
        log = svc.log_path.read_text()
        assert PASSWORD not in log and OTHER not in log
