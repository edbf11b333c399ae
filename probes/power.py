"""The one power model: what a UPS reports, whatever protocol carried it, and the
faults and metrics that follow. ``ups.nut`` and ``ups.snmp`` both build a
``PowerState`` and hand it to ``judge``; neither decides a fault on its own.

    on battery                                  → power.on_battery
    low battery flag, or charge / runtime under
    the target's thresholds                     → power.low_battery
    alarm, overload, bypass, replace battery,
    forced shutdown                             → power.ups_fault
    no answer, stale data                       → power.ups_unreachable (the probes' down_fault)
"""
from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import Field

from monitor.reading import Reading
from monitor.target import Duration, TargetSpec

FAULTS = ("power.on_battery", "power.low_battery", "power.ups_fault", "power.ups_unreachable")
DOWN_FAULT = "power.ups_unreachable"


class PowerSpec(TargetSpec):
    """Thresholds shared by every UPS kind."""

    min_charge: float | None = Field(None, ge=0, le=1)  # ratio under which → power.low_battery
    min_runtime: Duration | None = None  # runtime under which → power.low_battery


@dataclass(frozen=True, slots=True)
class PowerState:
    on_battery: bool
    low_battery: bool = False  # the UPS itself says so
    ups_fault: bool = False
    charge_ratio: float | None = None
    runtime_seconds: float | None = None
    load_ratio: float | None = None
    input_voltage: float | None = None
    detail: dict = field(default_factory=dict)  # protocol facts (ups.status, upsOutputSource)


def judge(state: PowerState, spec: PowerSpec, target: str, at: float, duration: float) -> Reading:
    faults: set[str] = set()
    if state.on_battery:
        faults.add("power.on_battery")
    low = state.low_battery
    if spec.min_charge is not None and state.charge_ratio is not None and state.charge_ratio < spec.min_charge:
        low = True
    if spec.min_runtime is not None and state.runtime_seconds is not None and state.runtime_seconds < spec.min_runtime:
        low = True
    if low:
        faults.add("power.low_battery")
    if state.ups_fault:
        faults.add("power.ups_fault")
    values = {"hallmon_ups_on_battery": 1.0 if state.on_battery else 0.0}
    for name, value in (("hallmon_ups_battery_charge_ratio", state.charge_ratio),
                        ("hallmon_ups_battery_runtime_seconds", state.runtime_seconds),
                        ("hallmon_ups_load_ratio", state.load_ratio),
                        ("hallmon_ups_input_voltage_volts", state.input_voltage)):
        if value is not None:
            values[name] = float(value)
    return Reading(target=target, at=at, ok=True, duration=duration, faults=frozenset(faults),
                   values=values, detail=dict(state.detail))
