"""The service starts on a config, serves its endpoints and stops on SIGTERM."""
import signal
import time
import urllib.request

from tests.conftest import write_config


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def test_service_serves_health_ready_metrics_and_stops_on_sigterm(tmp_path, redis_url, service):
    cfg = write_config(tmp_path / "hall.yml", """\
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
        """, redis_url=redis_url)
    svc = service(cfg)
    assert get(svc.base + "/healthz")[0] == 200
    status, body = get(svc.base + "/readyz")
    assert status == 200, body
    time.sleep(1.5)
    status, body = get(svc.base + "/metrics")
    assert status == 200
    assert 'hallmon_probe_success{site="s1",system="network",target="closed-port",unit="u1"} 0' in body.decode()
    t0 = time.monotonic()
    svc.signal(signal.SIGTERM)
    assert svc.proc.wait(5) == 0
    assert time.monotonic() - t0 < 5
    events = [e["event"] for e in svc.events()]
    assert events.count("fault_active") == 1 and "stopped" in events
