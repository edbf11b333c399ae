"""pos.iso8583 and pos.tcp against the acquirer simulator (a bank host cannot exist here)."""
from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, strategies as st
from prometheus_client import CollectorRegistry

from monitor.checker import Checker
from monitor.errors import PeerError, ProbeConnectError, ProtocolError
from monitor.faults import FaultTracker
from monitor.metrics import ReadingSeries, ServiceMetrics
from monitor.target import Target
from probes import PROBES
from probes.iso8583frame import MAX_MESSAGE, FrameError, Framing
from probes.pos import Iso8583Probe, PosSpec, PosTcpSpec
from simulators.acquirer import Acquirer
from simulators.redisproc import free_port


def target(address: str, **kw) -> Target:
    return Target(spec=PosSpec(name="pos-1", kind="pos.iso8583", address=address, **kw),
                  site="hall", unit="u", system="pos")


def checker() -> Checker:
    return Checker({k: cls(None) for k, cls in PROBES.items()}, FaultTracker(), ReadingSeries(),
                   ServiceMetrics(CollectorRegistry()), lambda alert: None)


@pytest.mark.parametrize("length,tpdu", [("binary2", None), ("ascii4", None), ("binary2", "6000030000")])
async def test_echo_ok_each_framing(length, tpdu):
    framing = PosSpec(name="x", kind="pos.iso8583", address="127.0.0.1:1", length_header=length, tpdu=tpdu).framing
    acq = await Acquirer(framing).start()
    probe = Iso8583Probe(None)
    r = await probe.check(target(acq.address, length_header=length, tpdu=tpdu))
    assert r.ok and r.faults == frozenset()
    assert r.values["hallmon_pos_link_up"] == 1.0
    assert r.values["hallmon_pos_echo_rtt_seconds"] > 0
    assert acq.echoes == 1
    await acq.stop()


async def test_de39_not_00_is_link_down_with_code():
    acq = await Acquirer().start()
    acq.mode, acq.code = "code", "91"
    with pytest.raises(PeerError) as err:
        await asyncio.wait_for(Iso8583Probe(None).check(target(acq.address)), 5)
    assert err.value.code == "91"
    r = await checker().probe(target(acq.address))
    assert r.faults == {"pos.link_down"} and r.detail["code"] == "91"
    assert r.values["hallmon_pos_link_up"] == 0.0
    await acq.stop()


@pytest.mark.parametrize("mode,error", [("wrong_stan", ProtocolError), ("garbage", ProtocolError),
                                        ("close", ProbeConnectError)])
async def test_bad_answers_are_typed_errors(mode, error):
    acq = await Acquirer().start()
    acq.mode = mode
    with pytest.raises(error):
        await asyncio.wait_for(Iso8583Probe(None).check(target(acq.address)), 5)
    await acq.stop()


@pytest.mark.parametrize("mode", ["hang", "huge"])
async def test_hang_and_huge_header_end_within_timeout(mode):
    acq = await Acquirer().start()
    acq.mode = mode
    r = await checker().probe(target(acq.address, timeout="300ms", interval="1s"))
    assert not r.ok and r.faults == {"pos.link_down"}
    assert r.duration < 2
    await acq.stop()


async def test_slow_echo_is_pos_slow():
    acq = await Acquirer().start()
    acq.mode, acq.slow_seconds = "slow", 0.2
    r = await Iso8583Probe(None).check(target(acq.address, slow_after="50ms"))
    assert r.ok and r.faults == {"pos.slow"}
    await acq.stop()


async def test_refused_and_pos_tcp():
    port = free_port()
    with pytest.raises(ProbeConnectError):
        await Iso8583Probe(None).check(target(f"127.0.0.1:{port}"))
    acq = await Acquirer().start()
    tcp = Target(spec=PosTcpSpec(name="pos-t", kind="pos.tcp", address=acq.address), site="h", unit="u", system="pos")
    assert (await PROBES["pos.tcp"](None).check(tcp)).values["hallmon_pos_link_up"] == 1.0
    await acq.stop()
    r = await checker().probe(Target(spec=PosTcpSpec(name="pos-t", kind="pos.tcp", address=f"127.0.0.1:{port}"),
                                     site="h", unit="u", system="pos"))
    assert r.faults == {"pos.link_down"}


@given(body=st.binary(min_size=4, max_size=600), length=st.sampled_from(["binary2", "ascii4"]),
       tpdu=st.sampled_from([b"", bytes.fromhex("6000030000")]), rest=st.binary(max_size=20))
def test_framer_roundtrip(body, length, tpdu, rest):
    framing = Framing(length, tpdu)
    assert framing.unframe(framing.frame(body) + rest) == (body, rest)


@given(junk=st.binary(max_size=64), length=st.sampled_from(["binary2", "ascii4"]))
def test_framer_junk_is_frame_error_or_bounded(junk, length):
    framing = Framing(length)

    async def read() -> bytes:
        reader = asyncio.StreamReader()
        reader.feed_data(junk)
        reader.feed_eof()
        return await framing.read(reader)

    try:
        msg = asyncio.run(read())
    except (FrameError, ConnectionError):
        return
    assert len(msg) <= MAX_MESSAGE


def test_framer_refuses_2gb_claim():
    with pytest.raises(FrameError, match="claims"):
        Framing("ascii4").body_length(b"9999")
    with pytest.raises(FrameError, match="ASCII"):
        Framing("ascii4").body_length(b"\x7f\xff\xff\xff")
