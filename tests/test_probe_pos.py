"""pos.iso8583 against the acquirer simulator (echo 0800/0810, framings, TPDU, declines,
wrong STAN, hang, garbage, a 2 GB length header), pos.tcp, and the framer under hypothesis."""
import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.core.target import Target
from probes import PROBES
from probes.iso8583 import FramingError, frame, parse_length, read_frame
from simulators.acquirer import Acquirer
from simulators.redisproc import free_port


def target(kind: str, address: str, **extra) -> Target:
    spec = PROBES[kind].spec.model_validate({"name": "pos-link", "kind": kind, "address": address, **extra})
    return Target(spec=spec, site="hall", unit="u1", system="payment")




@pytest.mark.parametrize("framing, tpdu", [("binary2", None), ("ascii4", None), ("binary2", "6000010000")])
async def test_echo_round_trip_in_each_framing(checker, framing, tpdu):
    acq = await Acquirer(framing=framing, tpdu=tpdu).start()
    extra = {"framing": framing, **({"tpdu": tpdu} if tpdu else {})}
    r = await checker.check(target("pos.iso8583", acq.address, **extra))
    await acq.stop()
    assert r.ok and r.faults == frozenset() and r.detail["de39"] == "00"
    assert r.values["hallmon_pos_link_up"] == 1.0 and 0 < r.values["hallmon_pos_echo_rtt_seconds"] < 1
    [req] = acq.received
    assert req["t"] == "0800" and req["70"] == "301" and req["11"] == r.detail["stan"] and len(req["7"]) == 10


@pytest.mark.parametrize("mode, error", [
    ("decline", "DE 39 = 91"),
    ("wrong_stan", "STAN 999999"),
    ("garbage", "undecodable"),
    ("huge_length", "claims 65535 bytes"),
    ("close", "closed mid-answer"),
])
async def test_bad_answers_are_link_down_with_the_reason(checker, mode, error):
    acq = await Acquirer().start()
    acq.mode = mode
    r = await checker.check(target("pos.iso8583", acq.address, timeout="2s"))
    await acq.stop()
    assert not r.ok and r.faults == {"pos.link_down"} and error in r.error
    assert r.values == {"hallmon_pos_link_up": 0.0}
    if mode == "decline":
        assert r.detail["code"] == "91"


async def test_hang_ends_at_the_timeout_and_refused_is_down(checker):
    acq = await Acquirer().start()
    acq.mode = "hang"
    r = await checker.check(target("pos.iso8583", acq.address, timeout="300ms", interval="1s"))
    await acq.stop()
    assert r.faults == {"pos.link_down"} and r.duration < 0.8
    r = await checker.check(target("pos.iso8583", f"127.0.0.1:{free_port()}"))
    assert r.faults == {"pos.link_down"} and "refused" in r.error.lower()


async def test_slow_acquirer_is_pos_slow(checker):
    acq = await Acquirer().start()
    acq.delay = 0.3
    r = await checker.check(target("pos.iso8583", acq.address, slow_after="100ms"))
    await acq.stop()
    assert r.ok and r.faults == {"pos.slow"}


async def test_pos_tcp_reachability(checker):
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    r = await checker.check(target("pos.tcp", f"127.0.0.1:{server.sockets[0].getsockname()[1]}"))
    server.close()
    assert r.ok and r.values["hallmon_pos_link_up"] == 1.0
    r = await checker.check(target("pos.tcp", f"127.0.0.1:{free_port()}"))
    assert r.faults == {"pos.link_down"} and r.values == {"hallmon_pos_link_up": 0.0}


def test_bad_tpdu_is_a_config_error():
    from pydantic import ValidationError
    with pytest.raises(ValidationError, match="expected hex digits"):
        PROBES["pos.iso8583"].spec.model_validate({"name": "p", "kind": "pos.iso8583", "address": "127.0.0.1:1",
                                                   "tpdu": "zz"})


@given(st.binary(max_size=3000), st.sampled_from(["binary2", "ascii4"]), st.binary(max_size=5))
def test_framing_round_trips(payload, framing, tpdu):
    async def roundtrip():
        reader = asyncio.StreamReader()
        reader.feed_data(frame(payload, framing, tpdu))
        reader.feed_eof()
        return await read_frame(reader, framing, len(tpdu), 65535)
    assert asyncio.run(roundtrip()) == payload


@given(st.binary(min_size=4, max_size=4))
def test_length_headers_parse_or_fail_cleanly(header):
    try:
        n = parse_length(header, "ascii4")
        assert 0 <= n <= 9999
    except FramingError:
        pass
    assert 0 <= parse_length(header[:2], "binary2") <= 0xFFFF
