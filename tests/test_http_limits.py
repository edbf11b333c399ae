"""What one client can hold of `hallmon run`: connections that never finish their
headers are closed after ``service.http.idle_timeout``; past the connection cap (the
configured one, or what the fd limit leaves after the probes' and Redis's share) a new
connection gets 503 JSON and is closed; a body that does not arrive is 408. Under a
256-fd limit, 500 slow connections never starve the probes into a false network.down."""
from __future__ import annotations

import json
import resource
import socket
import time

from tests.routerkit import TOKENS
from tests.test_api_faults import config, events

FD_LIMIT = 256


def low_fd_limit() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (FD_LIMIT, FD_LIMIT))


def test_500_slow_connections_are_closed_and_probes_keep_their_fds(tmp_path, service, redis_url):
    up = socket.socket()
    up.bind(("127.0.0.1", 0))
    up.listen(4096)  # a healthy device: the kernel completes every probe's connect
    targets = (f'            - {{name: core-gw, kind: net.tcp, address: "127.0.0.1:{up.getsockname()[1]}", '
               f'interval: 200ms, timeout: 200ms, for: 0s}}')
    cfg = config(tmp_path, redis_url, targets=targets,
                 service=", max_concurrent_checks: 20, redis_pool: {size: 8}, http: {idle_timeout: 6s}")
    svc = service(cfg, env=dict(TOKENS), preexec_fn=low_fd_limit)
    [listening] = events(svc, "listening")
    cap = listening["max_connections"]
    assert listening["fd_limit"] == FD_LIMIT and cap == FD_LIMIT - 20 - 8 - 4 - 64  # (4: the long-held Redis pool)
    host, port = svc.base.removeprefix("http://").split(":")
    slow = []
    try:
        t0 = time.monotonic()
        for _ in range(500):
            s = socket.create_connection((host, int(port)), timeout=5)
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: hallmon\r\n")  # headers never finished
            slow.append(s)
        opened = time.monotonic() - t0
        refused, closed_at = 0, []
        for s in slow:
            data = b""
            try:
                while chunk := s.recv(4096):
                    data += chunk
            except ConnectionResetError:  # refused while our unread request sat in its buffer
                refused += 1
                data = b""
            closed_at.append(time.monotonic() - t0)
            if data:
                head, _, body = data.partition(b"\r\n\r\n")
                assert head.startswith(b"HTTP/1.1 503") and json.loads(body)["error"] == "saturated"
                refused += 1
        held = len(slow) - refused
        # the idle timeout (6 s) is far longer than opening 500 connections takes, so none
        # held was closed (freeing its slot) before the last one came: held is concurrent
        assert opened < 6, f"opening took {opened:.1f}s: the machine is too slow for this test's premise"
        assert held <= cap and refused >= len(slow) - cap
        assert max(closed_at) < opened + 6 + 3  # idle_timeout 6 s, then closed
        # meanwhile the probe kept reaching its device: not one false network.down
        assert not [e for e in events(svc, "fault_active") + events(svc, "fault_pending")]
        print(f"\n500 slow connections under a {FD_LIMIT}-fd limit: {held} held (cap {cap}), {refused} answered "
              f"503 at once; all closed {max(closed_at):.1f}s after the first (idle_timeout 6 s); 0 false network.down")
        # and the service answers normally afterwards
        with socket.create_connection((host, int(port)), timeout=5) as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: hallmon\r\nConnection: close\r\n\r\n")
            assert s.recv(4096).startswith(b"HTTP/1.1 200")
    finally:
        for s in slow:
            s.close()
        up.close()


def test_a_body_that_never_arrives_is_408_json(tmp_path, service, redis_url):
    svc = service(config(tmp_path, redis_url, service=", http: {body_timeout: 1s}"), env=dict(TOKENS))
    host, port = svc.base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        t0 = time.monotonic()
        s.sendall(b"POST /api/v1/alerts HTTP/1.1\r\nHost: hallmon\r\nContent-Type: application/json\r\n"
                  b"Authorization: Bearer " + TOKENS["HALLMON_T_ADMIN"].encode() + b"\r\n"
                  b"Content-Length: 1000\r\n\r\n[{\"labels\":")
        data = b""
        while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        waited = time.monotonic() - t0
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408"), data
    assert json.loads(body)["error"] == "request_timeout" and 0.9 < waited < 5
    [failed] = events(svc, "request_failed")
    assert failed["error_class"] == "RequestTimeout" and failed["status"] == 408


def test_connection_cap_follows_the_config_when_fds_allow(tmp_path, service, redis_url):
    svc = service(config(tmp_path, redis_url, service=", http: {max_connections: 10, idle_timeout: 5s}"),
                  env=dict(TOKENS))
    [listening] = events(svc, "listening")
    assert listening["max_connections"] == 10
    host, port = svc.base.removeprefix("http://").split(":")
    held = [socket.create_connection((host, int(port)), timeout=5) for _ in range(10)]
    try:
        time.sleep(0.3)
        with socket.create_connection((host, int(port)), timeout=5) as extra:
            assert extra.recv(4096).startswith(b"HTTP/1.1 503 Service Unavailable")
        assert len(events(svc, "http_connections_refused")) == 1
    finally:
        for s in held:
            s.close()
    time.sleep(0.3)
    with socket.create_connection((host, int(port)), timeout=5) as s:  # room again
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: hallmon\r\nConnection: close\r\n\r\n")
        assert s.recv(4096).startswith(b"HTTP/1.1 200")


def test_malformed_http_is_json_and_one_log_line(tmp_path, service, redis_url):
    svc = service(config(tmp_path, redis_url), env=dict(TOKENS))
    host, port = svc.base.removeprefix("http://").split(":")
    garbage = [b"GET /healthz HTTP/1.1\r\nX-Long: " + b"a" * 10_000 + b"\r\n\r\n",  # header past 8 KiB
               b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",  # TLS on the plain port
               b"GET /healthz HTTP/1.1\r\nHost: h\r\nContent-Length: x\r\n\r\n"]
    for raw in garbage:
        with socket.create_connection((host, int(port)), timeout=5) as s:
            s.sendall(raw)
            data = b""
            while chunk := s.recv(4096):
                data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        assert b" 400 " in head.split(b"\r\n")[0] and b"application/json" in head, data
        assert json.loads(body)["error"] == "bad_request"
    time.sleep(0.2)
    assert len(events(svc, "request_failed")) == len(garbage)
    assert "Traceback" not in svc.log_path.read_text()
