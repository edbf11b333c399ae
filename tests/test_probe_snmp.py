"""ups.snmp against a real snmpd serving UPS-MIB through pass_persist, v2c and v3: the
same faults and metrics as ups.nut."""
import asyncio

import pytest

from monitor.core.secret import Secret
from monitor.core.target import Target
from probes import PROBES
from simulators import snmpd as snmpd_sim

pytestmark = pytest.mark.skipif(not snmpd_sim.available(), reason="snmpd missing: scripts/setup.sh test")
NORMAL = {"battery_status": 2, "minutes_remaining": 30, "charge_remaining": 100, "input_voltage": 229,
          "output_source": 3, "output_load": 23, "alarms_present": 0}


def target(address: str, **extra) -> Target:
    spec = PROBES["ups.snmp"].spec.model_validate({"name": "ups-snmp", "kind": "ups.snmp", "address": address,
                                                   **extra})
    return Target(spec=spec, site="hall", unit="u1", system="power")




async def test_v2c_walks_mains_battery_low_and_alarm(checker):
    with snmpd_sim.Snmpd(NORMAL) as agent:
        t = target(agent.address, community=agent.community)
        r = await checker.check(t)
        assert r.ok and r.faults == frozenset(), r.error
        assert r.values == {"hallmon_ups_on_battery": 0.0, "hallmon_ups_battery_charge_ratio": 1.0,
                            "hallmon_ups_battery_runtime_seconds": 1800.0, "hallmon_ups_load_ratio": 0.23,
                            "hallmon_ups_input_voltage_volts": 229.0}
        agent.set({**NORMAL, "output_source": 5, "charge_remaining": 70, "input_voltage": 0})
        assert (await checker.check(t)).faults == {"power.on_battery"}
        agent.set({**NORMAL, "output_source": 5, "battery_status": 3, "charge_remaining": 30})
        assert (await checker.check(t)).faults == {"power.on_battery", "power.low_battery"}
        agent.set({**NORMAL, "output_source": 4, "alarms_present": 2})
        assert (await checker.check(t)).faults == {"power.ups_fault"}


async def test_v3_with_auth_and_privacy(checker, monkeypatch):
    monkeypatch.setenv("HALLMON_T_SNMP_AUTH", snmpd_sim.V3_AUTH)
    monkeypatch.setenv("HALLMON_T_SNMP_PRIV", snmpd_sim.V3_PRIV)
    with snmpd_sim.Snmpd({**NORMAL, "output_source": 5, "minutes_remaining": 3}) as agent:
        r = await checker.check(target(agent.address, version="v3", user=snmpd_sim.V3_USER,
                                       auth_key_env="HALLMON_T_SNMP_AUTH", priv_key_env="HALLMON_T_SNMP_PRIV"))
        assert r.faults == {"power.on_battery", "power.low_battery"}  # 3 min < 5 min runtime threshold


async def test_wrong_community_or_no_agent_is_unreachable(checker):
    with snmpd_sim.Snmpd(NORMAL) as agent:
        r = await checker.check(target(agent.address, community="wrong", timeout="1s", interval="2s"))
        assert r.faults == {"power.ups_unreachable"} and not r.ok
    await asyncio.sleep(0)


def test_v3_without_keys_is_a_config_error():
    from pydantic import ValidationError
    with pytest.raises(ValidationError, match="v3 needs user"):
        PROBES["ups.snmp"].spec.model_validate({"name": "u", "kind": "ups.snmp", "address": "127.0.0.1",
                                                "version": "v3"})


async def test_alarm_table_on_battery_is_not_a_ups_fault(checker):
    # a real UPS lists upsAlarmOnBattery and upsAlarmInputBad whenever mains is lost
    outage = {**NORMAL, "output_source": 5, "charge_remaining": 80, "input_voltage": 0}
    with snmpd_sim.Snmpd({**outage, "alarms_present": 2, "alarm_table": [2, 6]}) as agent:
        t = target(agent.address, community=agent.community)
        r = await checker.check(t)
        assert r.faults == {"power.on_battery"}, r.detail
        agent.set({**outage, "alarms_present": 3, "alarm_table": [2, 6, 3]})  # upsAlarmLowBattery
        assert (await checker.check(t)).faults == {"power.on_battery", "power.low_battery"}
        agent.set({**NORMAL, "alarms_present": 1, "alarm_table": [16]})  # upsAlarmFanFailure on mains
        r = await checker.check(t)
        assert r.faults == {"power.ups_fault"}
        assert r.detail["alarm_table"] == ["1.3.6.1.2.1.33.1.6.3.16"]
        agent.set({**NORMAL, "alarms_present": 1})  # an alarm the agent does not list: still a fault
        assert (await checker.check(t)).faults == {"power.ups_fault"}


async def test_library_errors_at_setup_are_typed_probe_errors_not_crashes(checker):
    """pysnmp raises its own errors while setting up a request (a host it cannot resolve,
    a key it refuses): each becomes a probe error with a reason, never 'probe crashed'."""
    r = await checker.check(target("no-such-host.invalid:161", timeout="2s", interval="5s"))
    assert not r.ok and r.faults == {"power.ups_unreachable"}
    assert "cannot resolve the host" in r.error and "crashed" not in r.error
    # a key the library refuses (the config check below stops it first; built here past it)
    t = target("127.0.0.1:9", timeout="1s", interval="5s")
    spec = t.spec.model_copy(update={"version": "v3", "user": "duty-a", "auth_key_env": Secret("short", "env:K")})
    r = await checker.check(Target(spec=spec, site="hall", unit="u1", system="power"))
    assert not r.ok and "the SNMP library refused the settings" in r.error and "crashed" not in r.error
    # an IPv6 agent address is a UDP/IPv6 transport, not a setup error
    r = await checker.check(target("[::1]:9", timeout="1s", interval="5s"))
    assert not r.ok and r.faults == {"power.ups_unreachable"}
    assert "crashed" not in r.error and "Address family" not in r.error, r.error  # a timeout: nobody there


def test_v3_key_shorter_than_8_characters_is_a_config_error(monkeypatch):
    from pydantic import ValidationError
    monkeypatch.setenv("HALLMON_T_SNMP_SHORT", "short")
    with pytest.raises(ValidationError, match="at least 8 characters"):
        PROBES["ups.snmp"].spec.model_validate({"name": "u", "kind": "ups.snmp", "address": "127.0.0.1",
                                                "version": "v3", "user": "duty-a",
                                                "auth_key_env": "HALLMON_T_SNMP_SHORT"})
