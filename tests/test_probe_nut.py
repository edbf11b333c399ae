"""ups.nut against a real upsd with NUT's dummy-ups driver, and the NUT parser under
hypothesis and hostile peers."""
import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.core.target import Target
from probes import PROBES
from probes.nut import NutSyntaxError, parse_var_list, quote, split_words
from simulators import upsd as upsd_sim

pytestmark = pytest.mark.skipif(not upsd_sim.available(), reason="nut-server missing: scripts/setup.sh test")

OL = {"ups.status": "OL", "battery.charge": "100", "battery.runtime": "1800", "ups.load": "23",
      "input.voltage": "228.5"}


def target(address: str, ups: str = "ups1", name: str | None = None, **extra) -> Target:
    spec = PROBES["ups.nut"].spec.model_validate({"name": name or ups, "kind": "ups.nut", "address": address,
                                                  "ups": ups, **extra})
    return Target(spec=spec, site="hall", unit="u1", system="power")




async def until(checker, t, pred, timeout=6.0):
    for _ in range(int(timeout / 0.2)):
        r = await checker.check(t)
        if pred(r):
            return r
        await asyncio.sleep(0.2)
    raise AssertionError(f"last reading: {r}")


async def test_a_ups_walks_from_mains_to_battery_to_low_battery_and_back(checker):
    with upsd_sim.Upsd({"ups1": OL}) as ups:
        t = target(ups.address)
        r = await checker.check(t)
        assert r.ok and r.faults == frozenset()
        assert r.values == {"hallmon_ups_on_battery": 0.0, "hallmon_ups_battery_charge_ratio": 1.0,
                            "hallmon_ups_battery_runtime_seconds": 1800.0, "hallmon_ups_load_ratio": 0.23,
                            "hallmon_ups_input_voltage_volts": 228.5}
        ups.write("ups1", {**OL, "ups.status": "OB DISCHRG", "battery.charge": "80", "input.voltage": "0"})
        r = await until(checker, t, lambda r: r.faults)
        assert r.faults == {"power.on_battery"} and r.values["hallmon_ups_on_battery"] == 1.0
        ups.write("ups1", {**OL, "ups.status": "OB LB", "battery.charge": "40", "battery.runtime": "600"})
        r = await until(checker, t, lambda r: "power.low_battery" in r.faults)
        assert r.faults == {"power.on_battery", "power.low_battery"}
        ups.write("ups1", OL)
        await until(checker, t, lambda r: not r.faults)
        states = [(a.labels["fault"], a.ends_at is None) for a in checker.alerts]
        assert states[:2] == [("power.on_battery", True), ("power.low_battery", True)]
        assert set(states[2:]) == {("power.on_battery", False), ("power.low_battery", False)}  # one reading


async def test_thresholds_and_alarm_tokens(checker):
    with upsd_sim.Upsd({"ups1": {**OL, "ups.status": "OB", "battery.charge": "15"},
                        "ups2": {**OL, "ups.status": "OB", "battery.runtime": "120"},
                        "ups3": {**OL, "ups.status": "OL BYPASS ALARM"},
                        "ups4": {**OL, "ups.status": "OL", "battery.charge": "15"}}) as ups:
        r1 = await checker.check(target(ups.address, "ups1"))
        r2 = await checker.check(target(ups.address, "ups2", low_runtime="5m"))
        r3 = await checker.check(target(ups.address, "ups3"))
        r4 = await checker.check(target(ups.address, "ups4"))
        assert r1.faults == {"power.on_battery", "power.low_battery"}  # charge 15 % < 20 %
        assert r2.faults == {"power.on_battery", "power.low_battery"}  # 2 min < 5 min
        assert r3.faults == {"power.ups_fault"}
        assert r4.faults == frozenset()  # on mains: recharging is not an emergency
        # four UPSes on one upsd share one connection
        assert len(checker.probes["ups.nut"].connections) == 1


async def test_unknown_ups_and_dead_driver_are_unreachable_with_nuts_code(checker):
    with upsd_sim.Upsd({"ups1": OL}) as ups:
        r = await checker.check(target(ups.address, "nosuch"))
        assert r.faults == {"power.ups_unreachable"} and r.detail["code"] == "UNKNOWN-UPS"
        assert (await checker.check(target(ups.address))).ok  # the shared connection still works
        ups.stop_driver(0)
        r = await until(checker, target(ups.address), lambda r: not r.ok, timeout=20)
        assert r.faults == {"power.ups_unreachable"} and r.detail["code"] in ("DRIVER-NOT-CONNECTED", "DATA-STALE")


async def test_reconnects_after_upsd_goes_away(checker):
    ups = upsd_sim.Upsd({"ups1": OL}).start()
    t = target(ups.address)
    assert (await checker.check(t)).ok
    ups.stop()
    r = await checker.check(t)
    assert r.faults == {"power.ups_unreachable"} and not r.ok
    again = upsd_sim.Upsd({"ups1": OL})
    again.port = ups.port  # the same address comes back
    (again.dir / "upsd.conf").write_text(f"LISTEN 127.0.0.1 {ups.port}\n")
    with again.start():
        r = await until(checker, t, lambda r: r.ok)
        assert r.faults == frozenset()


async def test_a_restarted_upsd_is_not_read_as_an_unreachable_ups(checker):
    ups = upsd_sim.Upsd({"ups1": OL}).start()
    t = target(ups.address)
    assert (await checker.check(t)).ok  # the shared connection is now open and kept
    ups.stop()
    again = upsd_sim.Upsd({"ups1": OL})
    again.port = ups.port
    (again.dir / "upsd.conf").write_text(f"LISTEN 127.0.0.1 {ups.port}\n")
    with again.start():
        r = await checker.check(t)  # the kept connection is dead; the check reopens it
        assert r.ok and r.faults == frozenset(), r.error
    assert checker.alerts == []


async def _hostile(handler):
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    return server, f"127.0.0.1:{server.sockets[0].getsockname()[1]}"


@pytest.mark.parametrize("reply, error", [
    (b"BEGIN LIST VAR ups1\n" + b"VAR ups1 x \"" + b"a" * 5000 + b"\"\n", "longer than"),
    (b"\x00\xff\xfe\x80garbage\n", "not text"),
    (b"HELLO WORLD\n", "expected BEGIN LIST VAR"),
    (b"BEGIN LIST VAR ups1\nVAR ups1 x \"unterminated\nEND LIST VAR ups1\n", "unterminated"),
])
async def test_hostile_replies_are_typed_errors(checker, reply, error):
    async def answer(reader, writer):
        await reader.readline()
        writer.write(reply)
        await writer.drain()
        await asyncio.sleep(1)
        writer.close()

    server, address = await _hostile(answer)
    r = await checker.check(target(address, timeout="2s"))
    server.close()
    assert not r.ok and r.faults == {"power.ups_unreachable"} and error in r.error


async def test_a_slow_drip_ends_at_the_timeout(checker):
    async def drip(reader, writer):
        await reader.readline()
        for _ in range(100):
            writer.write(b"B")
            await writer.drain()
            await asyncio.sleep(0.1)

    server, address = await _hostile(drip)
    r = await checker.check(target(address, timeout="500ms", interval="1s"))
    server.close()
    assert not r.ok and r.faults == {"power.ups_unreachable"} and r.duration < 1.0


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r"), max_size=80))
def test_quoted_values_round_trip(value):
    assert split_words(f"VAR ups1 battery.charge {quote(value)}") == ["VAR", "ups1", "battery.charge", value]


@given(st.lists(st.text(max_size=60), max_size=8))
def test_the_parser_never_fails_other_than_with_a_syntax_error(lines):
    try:
        parse_var_list("ups1", lines)
    except NutSyntaxError:
        pass
