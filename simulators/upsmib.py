"""A UPS-MIB (RFC 1628) agent extension for net-snmp's ``pass_persist``: serves the UPS
values from a JSON file the test rewrites. Run by snmpd, one request at a time on stdin."""
from __future__ import annotations

import json
import sys

BASE = ".1.3.6.1.2.1.33"
OIDS = {  # OID → (key in the JSON file, SNMP type)
    f"{BASE}.1.2.1.0": ("battery_status", "integer"),  # upsBatteryStatus
    f"{BASE}.1.2.3.0": ("minutes_remaining", "integer"),  # upsEstimatedMinutesRemaining
    f"{BASE}.1.2.4.0": ("charge_remaining", "integer"),  # upsEstimatedChargeRemaining
    f"{BASE}.1.3.3.1.3.1": ("input_voltage", "integer"),  # upsInputVoltage.1
    f"{BASE}.1.4.1.0": ("output_source", "integer"),  # upsOutputSource
    f"{BASE}.1.4.4.1.5.1": ("output_load", "integer"),  # upsOutputPercentLoad.1
    f"{BASE}.1.6.1.0": ("alarms_present", "gauge"),  # upsAlarmsPresent
}


def _key(oid: str) -> tuple[int, ...]:
    return tuple(int(x) for x in oid.strip(".").split("."))


ORDER = sorted(OIDS, key=_key)


def main(path: str) -> None:
    out = sys.stdout
    while True:
        cmd = sys.stdin.readline()
        if not cmd:
            return
        cmd = cmd.strip()
        if cmd == "PING":
            out.write("PONG\n")
        elif cmd in ("get", "getnext"):
            oid = sys.stdin.readline().strip()
            with open(path) as f:
                values = json.load(f)
            if cmd == "getnext":
                later = [o for o in ORDER if _key(o) > _key(oid)]
                oid = later[0] if later else ""
            if oid in OIDS and OIDS[oid][0] in values:
                key, kind = OIDS[oid]
                out.write(f"{oid}\n{kind}\n{values[key]}\n")
            else:
                out.write("NONE\n")
        elif cmd == "set":
            sys.stdin.readline()
            sys.stdin.readline()
            out.write("not-writable\n")
        out.flush()


if __name__ == "__main__":
    main(sys.argv[1])
