"""The demo's NUT simulator speaks the same protocol as upsd: the ups.nut probe reads it."""
import aiohttp
from prometheus_client import CollectorRegistry

from monitor.checks.checker import Checker
from monitor.checks.faults import FaultTracker
from monitor.checks.metrics import ReadingSeries, ServiceMetrics
from monitor.core.target import Target
from probes import PROBES, ProbeContext
from simulators.nutserver import NutServer


async def test_nut_simulator_drives_the_power_model():
    sim = await NutServer({"ups1": {"ups.status": "OL", "battery.charge": "100", "device.model": 'Test "UPS"'}}).start()
    spec = PROBES["ups.nut"].spec.model_validate({"name": "u", "kind": "ups.nut", "address": sim.address, "ups": "ups1"})
    t = Target(spec=spec, site="s", unit="u", system="power")
    async with aiohttp.ClientSession() as session:
        probes = {k: c(ProbeContext(session)) for k, c in PROBES.items()}
        ch = Checker(probes, FaultTracker(), ReadingSeries(), ServiceMetrics(CollectorRegistry()), lambda a: None)
        r = await ch.check(t)
        assert r.ok and r.detail["device.model"] == 'Test "UPS"'  # quoted value with an escape
        sim.set("ups1", ups_status="OB LB", battery_charge="9")
        assert (await ch.check(t)).faults == {"power.on_battery", "power.low_battery"}
        sim.stale.add("ups1")
        r = await ch.check(t)
        assert r.faults == {"power.ups_unreachable"} and r.detail["code"] == "DATA-STALE"
        await probes["ups.nut"].close()
    await sim.stop()
