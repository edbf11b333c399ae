"""net.tcp and system.http against real servers on port 0, through the Checker
(timeouts, typed errors turned into failing readings, the service never crashing)."""
import asyncio

import pytest

from monitor.core.target import Target
from probes import PROBES
from simulators.core import CoreSystem
from simulators.redisproc import free_port


def make_target(spec: dict) -> Target:
    cls = PROBES[spec["kind"]]
    return Target(spec=cls.spec.model_validate(spec), site="hall", unit="u1", system=cls.system)




@pytest.fixture
async def core():
    sim = await CoreSystem().start()
    yield sim
    await sim.stop()


async def start_raw(handler):
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def test_tcp_connects_and_measures(checker):
    server, port = await start_raw(lambda r, w: w.close())
    t = make_target({"name": "gw", "kind": "net.tcp", "address": f"127.0.0.1:{port}"})
    r = await checker.check(t)
    server.close()
    assert r.ok and not r.faults and 0 < r.values["hallmon_tcp_connect_seconds"] < 1


async def test_tcp_refused_is_network_down_with_the_reason(checker):
    t = make_target({"name": "gw", "kind": "net.tcp", "address": f"127.0.0.1:{free_port()}"})
    r = await checker.check(t)
    assert not r.ok and r.faults == {"network.down"}
    assert "refused" in r.error.lower()
    assert [a.labels["fault"] for a in checker.alerts] == ["network.down"]


async def test_http_up_down_and_recovery(checker, core):
    t = make_target({"name": "h2000", "kind": "system.http", "url": core.url})
    r = await checker.check(t)
    assert r.ok and r.detail["status"] == 200 and r.values["hallmon_http_status_code"] == 200
    core.mode = "error"
    r = await checker.check(t)
    assert not r.ok and r.faults == {"system.down"} and "HTTP 503" in r.error
    core.mode = "ok"
    r = await checker.check(t)
    assert r.ok
    assert [(a.labels["fault"], a.ends_at is not None) for a in checker.alerts] == \
        [("system.down", False), ("system.down", True)]


async def test_http_body_match(checker, core):
    ok = make_target({"name": "a", "kind": "system.http", "url": core.url, "body_match": '"status": "UP"'})
    no = make_target({"name": "b", "kind": "system.http", "url": core.url, "body_match": "MAINTENANCE"})
    assert (await checker.check(ok)).ok
    r = await checker.check(no)
    assert not r.ok and "does not match" in r.error


async def test_http_follows_redirects_within_the_limit(checker, core):
    base = core.url.rsplit("/", 1)[0]
    follow = make_target({"name": "a", "kind": "system.http", "url": f"{base}/old"})
    strict = make_target({"name": "b", "kind": "system.http", "url": f"{base}/older", "max_redirects": 1})
    nofollow = make_target({"name": "c", "kind": "system.http", "url": f"{base}/old",
                            "follow_redirects": False, "expect_status": [302]})
    assert (await checker.check(follow)).ok
    r = await checker.check(strict)
    assert not r.ok and "redirects" in r.error
    assert (await checker.check(nofollow)).ok


async def test_http_slow_answer_is_system_slow_not_down(checker, core):
    core.mode, core.slow_seconds = "slow", 0.3
    t = make_target({"name": "a", "kind": "system.http", "url": core.url, "slow_after": "100ms"})
    r = await checker.check(t)
    assert r.ok and r.faults == {"system.slow"}


async def test_http_read_timeout_on_a_server_that_never_answers(checker):
    hung = []

    async def accept_and_hang(reader, writer):
        hung.append(writer)
        await asyncio.sleep(30)

    server, port = await start_raw(accept_and_hang)
    t = make_target({"name": "a", "kind": "system.http", "url": f"http://127.0.0.1:{port}/",
                     "timeout": "2s", "read_timeout": "300ms"})
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    r = await checker.check(t)
    assert loop.time() - t0 < 1.5  # the read timeout, not the overall one, ended it
    assert not r.ok and r.faults == {"system.down"} and "timeout" in r.error.lower()
    server.close()


async def test_overall_timeout_bounds_any_check(checker):
    async def accept_and_hang(reader, writer):
        await asyncio.sleep(30)

    server, port = await start_raw(accept_and_hang)
    t = make_target({"name": "a", "kind": "system.http", "url": f"http://127.0.0.1:{port}/", "timeout": "400ms"})
    r = await checker.check(t)
    assert not r.ok and r.faults == {"system.down"}
    assert r.duration < 1.0
    server.close()


async def test_garbage_instead_of_http_is_a_clear_error_and_the_checker_goes_on(checker, core):
    async def garbage(reader, writer):
        writer.write(b"\x00\xff\xfeNOT HTTP AT ALL\r\n\r\n" * 10)
        await writer.drain()
        writer.close()

    server, port = await start_raw(garbage)
    t = make_target({"name": "a", "kind": "system.http", "url": f"http://127.0.0.1:{port}/"})
    r = await checker.check(t)
    assert not r.ok and r.faults == {"system.down"} and r.error
    server.close()
    # the same checker keeps working for other targets
    assert (await checker.check(make_target({"name": "b", "kind": "system.http", "url": core.url}))).ok
