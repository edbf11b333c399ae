"""ups.nut against a real upsd with dummy-ups drivers."""
from __future__ import annotations

import asyncio

import pytest

from monitor.errors import NutUnknownUps, ProbeConnectError, ProtocolError
from monitor.target import Target
from probes.nut import NutProbe, NutSpec
from simulators.upsdproc import OL, UpsdServer

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def upsd():
    with UpsdServer(["ups1", "ups2"]) as server:
        yield server


def target(address: str, ups: str = "ups1", **kw) -> Target:
    spec = NutSpec(name=f"t-{ups}", kind="ups.nut", address=address, ups=ups, **kw)
    return Target(spec=spec, site="hall", unit="u", system="power")


async def until_status(probe: NutProbe, t: Target, status: str):
    for _ in range(100):
        reading = await probe.check(t)
        if reading.detail["ups.status"] == status:
            return reading
        await asyncio.sleep(0.1)
    raise AssertionError(f"ups.status never became {status!r}, last {reading.detail}")


async def test_walk_ol_ob_lb_ol(upsd):
    probe = NutProbe(None)
    t = target(upsd.address, min_runtime="5m")
    try:
        upsd.set("ups1", OL)
        r = await until_status(probe, t, "OL")
        assert r.ok and r.faults == frozenset()
        assert r.values["hallmon_ups_on_battery"] == 0.0
        assert r.values["hallmon_ups_battery_charge_ratio"] == 1.0
        assert r.values["hallmon_ups_load_ratio"] == 0.23
        assert r.values["hallmon_ups_input_voltage_volts"] == 230.0

        upsd.set("ups1", {**OL, "ups.status": "OB DISCHRG", "battery.charge": "80", "input.voltage": "0"})
        r = await until_status(probe, t, "OB DISCHRG")
        assert r.faults == {"power.on_battery"}
        assert r.values["hallmon_ups_on_battery"] == 1.0

        upsd.set("ups1", {**OL, "ups.status": "OB LB", "battery.charge": "9", "battery.runtime": "120"})
        r = await until_status(probe, t, "OB LB")
        assert r.faults == {"power.on_battery", "power.low_battery"}
        assert r.values["hallmon_ups_battery_runtime_seconds"] == 120.0

        # runtime under the target's threshold is low battery even without LB
        upsd.set("ups1", {**OL, "ups.status": "OB", "battery.runtime": "200"})
        r = await until_status(probe, t, "OB")
        assert r.faults == {"power.on_battery", "power.low_battery"}

        upsd.set("ups1", {**OL, "ups.status": "OL ALARM"})
        r = await until_status(probe, t, "OL ALARM")
        assert r.faults == {"power.ups_fault"}

        upsd.set("ups1", OL)
        r = await until_status(probe, t, "OL")
        assert r.faults == frozenset()
    finally:
        await probe.close()


async def test_one_connection_shared_and_unknown_ups(upsd):
    probe = NutProbe(None)
    try:
        readings = await asyncio.gather(*(probe.check(target(upsd.address, u)) for u in ["ups1", "ups2"] * 5))
        assert all(r.ok for r in readings)
        assert len(probe._conns) == 1
        with pytest.raises(NutUnknownUps) as err:
            await probe.check(target(upsd.address, "nosuch"))
        assert err.value.code == "UNKNOWN-UPS"
        assert (await probe.check(target(upsd.address))).ok  # reconnects after the error
    finally:
        await probe.close()


async def test_upsd_gone_then_refused():
    with UpsdServer(["ups1"]) as server:
        probe = NutProbe(None)
        t = target(server.address)
        assert (await probe.check(t)).ok
        server.stop_upsd()
        with pytest.raises(ProbeConnectError):
            await probe.check(t)
        await probe.close()


async def test_garbage_and_overlong_lines_are_typed_errors():
    async def junk(reader, writer):
        await reader.readline()
        writer.write(b"\x00\xff\xfe binary\n" if junk.mode == "bin" else b"A" * 100_000)
        await writer.drain()
        await asyncio.sleep(1)
        writer.close()

    for mode in ("bin", "long"):
        junk.mode = mode
        server = await asyncio.start_server(junk, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        probe = NutProbe(None)
        with pytest.raises(ProtocolError):
            await probe.check(target(f"127.0.0.1:{port}"))
        await probe.close()
        server.close()
