"""One power model for every UPS protocol: what a UPS's state means for the hall.

Status tokens (NUT's ``ups.status``; SNMP's UPS-MIB is mapped onto the same tokens):
``OB`` on battery → ``power.on_battery``; ``LB``, or charge / runtime under the target's
thresholds while on battery → ``power.low_battery``; ``ALARM``, ``OVER``, ``BYPASS``,
``RB``, ``FSD`` → ``power.ups_fault``.
"""
from __future__ import annotations

from dataclasses import dataclass

from pydantic import Field

from monitor.core.target import Duration, Model

FAULT_TOKENS = frozenset({"ALARM", "OVER", "BYPASS", "RB", "FSD"})
FAULTS = ("power.on_battery", "power.low_battery", "power.ups_fault", "power.ups_unreachable")


class Thresholds(Model):
    low_charge: float = Field(20.0, ge=0, le=100)  # percent, judged while on battery
    low_runtime: Duration = 300.0  # seconds, judged while on battery


@dataclass(frozen=True)
class UpsState:
    status: frozenset[str]
    charge_pct: float | None = None
    runtime_s: float | None = None
    load_pct: float | None = None
    input_voltage: float | None = None


def assess(state: UpsState, limits: Thresholds) -> tuple[frozenset[str], dict[str, float]]:
    faults: set[str] = set()
    on_battery = "OB" in state.status
    if on_battery:
        faults.add("power.on_battery")
    low = "LB" in state.status or (on_battery and (
        (state.charge_pct is not None and state.charge_pct < limits.low_charge)
        or (state.runtime_s is not None and state.runtime_s < limits.low_runtime)))
    if low:
        faults.add("power.low_battery")
    if state.status & FAULT_TOKENS:
        faults.add("power.ups_fault")
    values = {"hallmon_ups_on_battery": 1.0 if on_battery else 0.0}
    if state.charge_pct is not None:
        values["hallmon_ups_battery_charge_ratio"] = state.charge_pct / 100
    if state.runtime_s is not None:
        values["hallmon_ups_battery_runtime_seconds"] = state.runtime_s
    if state.load_pct is not None:
        values["hallmon_ups_load_ratio"] = state.load_pct / 100
    if state.input_voltage is not None:
        values["hallmon_ups_input_voltage_volts"] = state.input_voltage
    return frozenset(faults), values
