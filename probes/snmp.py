"""ups.snmp: RFC 1628 UPS-MIB over SNMP v2c or v3 (pysnmp), onto the same power model
as ups.nut: upsOutputSource battery(5) → on battery, bypass(4) → fault; upsBatteryStatus
low(3)/depleted(4) → low battery.

Alarms: a UPS on battery normally also lists upsAlarmOnBattery (and upsAlarmInputBad) in
upsAlarmTable, so ``upsAlarmsPresent > 0`` alone is not a UPS fault. When alarms are
present the probe walks upsAlarmDescr and judges each well-known alarm (RFC 1628
upsWellKnownAlarms): on battery, input bad, awaiting power and test in progress are the
mains' story, told by the other faults; low / depleted battery → low battery; every other
alarm, a vendor's own, or a table the agent does not serve → ``power.ups_fault``.

pysnmp's own errors are translated here like every other transport's: a host it cannot
resolve is a ``ProbeConnectError``; settings it refuses (a key it rejects) are a
``ProbeSetupError``; a message it cannot decode is a ``ProtocolError``."""
from __future__ import annotations

import socket
import time
from typing import Annotated, Literal

from pyasn1.error import PyAsn1Error
from pydantic import BeforeValidator, model_validator
from pysnmp.error import PySnmpError
from pysnmp.hlapi.v3arch.asyncio import (
    CommunityData,
    ContextData,
    ObjectIdentity,
    ObjectType,
    SnmpEngine,
    Udp6TransportTarget,
    UdpTransportTarget,
    UsmUserData,
    get_cmd,
    usmAesCfb128Protocol,
    usmDESPrivProtocol,
    usmHMACMD5AuthProtocol,
    usmHMACSHAAuthProtocol,
    walk_cmd,
)

from monitor.core.errors import (
    PeerError,
    ProbeConnectError,
    ProbeError,
    ProbeSetupError,
    ProbeTimeout,
    ProtocolError,
)
from monitor.core.reading import Reading
from monitor.core.secret import SecretEnv, SecretFile
from monitor.core.target import Target, TargetSpec, parse_hostport, split_hostport

from .base import Probe
from .power import FAULTS, Thresholds, UpsState, assess

UPS = "1.3.6.1.2.1.33.1"
OIDS = {
    "battery_status": f"{UPS}.2.1.0", "minutes": f"{UPS}.2.3.0", "charge": f"{UPS}.2.4.0",
    "input_voltage": f"{UPS}.3.3.1.3.1", "output_source": f"{UPS}.4.1.0", "load": f"{UPS}.4.4.1.5.1",
    "alarms": f"{UPS}.6.1.0",
}
ALARM_DESCR = f"{UPS}.6.2.1.2"  # upsAlarmDescr: each row names a well-known alarm's OID
WELL_KNOWN = f"{UPS}.6.3."
NOT_A_FAULT = {2, 6, 21, 24}  # onBattery, inputBad, awaitingPower, testInProgress
LOW_BATTERY = {3, 4}  # lowBattery, depletedBattery
MAX_ALARMS = 64
AUTH = {"sha": usmHMACSHAAuthProtocol, "md5": usmHMACMD5AuthProtocol}
PRIV = {"aes": usmAesCfb128Protocol, "des": usmDESPrivProtocol}

SnmpAddress = Annotated[str, BeforeValidator(lambda v: parse_hostport(v, default_port=161))]


class SnmpSpec(TargetSpec, Thresholds):
    kind: Literal["ups.snmp"]
    address: SnmpAddress
    version: Literal["v2c", "v3"] = "v2c"
    community: str = "public"
    user: str | None = None
    auth_protocol: Literal["sha", "md5"] = "sha"
    auth_key_env: SecretEnv | None = None
    auth_key_file: SecretFile | None = None
    priv_protocol: Literal["aes", "des"] = "aes"
    priv_key_env: SecretEnv | None = None
    priv_key_file: SecretFile | None = None

    @model_validator(mode="after")
    def _v3(self) -> "SnmpSpec":
        if self.version == "v3" and (self.user is None or (self.auth_key_env or self.auth_key_file) is None):
            raise ValueError("v3 needs user and auth_key_env (or auth_key_file)")
        for key in (self.auth_key_env or self.auth_key_file, self.priv_key_env or self.priv_key_file):
            # an empty value: a key not read (check-config away from the secrets), not a short one
            if self.version == "v3" and key is not None and key.value and len(key.value) < 8:
                raise ValueError(f"{key.source}: an SNMPv3 key needs at least 8 characters (RFC 3414)")
        return self


def translate(target: str, address: str, err: Exception) -> ProbeError:
    """pysnmp's (and pyasn1's) errors in the probe error tree."""
    cause: BaseException | None = err
    while cause is not None and not isinstance(cause, OSError):
        cause = cause.__cause__ or cause.__context__
    if isinstance(cause, socket.gaierror):
        return ProbeConnectError(target, f"snmp {address}: cannot resolve the host: {cause.strerror}")
    if isinstance(cause, OSError):
        return ProbeConnectError(target, f"snmp {address}: {cause.strerror or cause}")
    if isinstance(err, PySnmpError):
        return ProbeSetupError(target, f"snmp {address}: the SNMP library refused the settings: "
                                       f"{type(err).__name__}: {str(err)[:200]}")
    return ProtocolError(target, f"snmp {address}: undecodable message: {str(err)[:200]}")


def alarm_tokens(alarms: list[str] | None) -> set[str]:
    """upsAlarmDescr values (OIDs) → power-model tokens; ``None``: the table could not be read."""
    if alarms is None:
        return {"ALARM"}
    tokens = set()
    for oid in alarms:
        tail = oid.strip(".").removeprefix(WELL_KNOWN)
        number = int(tail) if tail.isdigit() else None
        if number in NOT_A_FAULT:
            continue
        tokens.add("LB" if number in LOW_BATTERY else "ALARM")
    return tokens


def state_from_mib(v: dict[str, int | None], alarms: list[str] | None = None) -> UpsState:
    tokens = set()
    source = v.get("output_source")
    tokens.add("OB" if source == 5 else "OL")
    if source == 4:
        tokens.add("BYPASS")
    if v.get("battery_status") in (3, 4):
        tokens.add("LB")
    if (v.get("alarms") or 0) > 0:
        tokens |= alarm_tokens(alarms)
    minutes = v.get("minutes")
    return UpsState(status=frozenset(tokens), charge_pct=v.get("charge"),
                    runtime_s=minutes * 60 if minutes is not None else None,
                    load_pct=v.get("load"), input_voltage=v.get("input_voltage"))


class SnmpProbe(Probe):
    spec = SnmpSpec
    system = "power"
    faults = FAULTS
    down_fault = "power.ups_unreachable"

    def __init__(self, ctx):
        super().__init__(ctx)
        self.engine = SnmpEngine()

    def _auth(self, spec: SnmpSpec):
        if spec.version == "v2c":
            return CommunityData(spec.community, mpModel=1)
        key = spec.auth_key_env or spec.auth_key_file
        assert key is not None  # SnmpSpec._v3
        auth = key.value
        priv = spec.priv_key_env or spec.priv_key_file
        return UsmUserData(spec.user, auth, priv.value if priv else None, authProtocol=AUTH[spec.auth_protocol],
                           **({"privProtocol": PRIV[spec.priv_protocol]} if priv else {}))

    async def check(self, target: Target) -> Reading:
        spec = target.spec
        assert isinstance(spec, SnmpSpec)
        try:
            return await self._check(target, spec)
        except (PySnmpError, PyAsn1Error) as err:
            raise translate(target.name, spec.address, err) from err

    async def _check(self, target: Target, spec: SnmpSpec) -> Reading:
        host, port = split_hostport(spec.address)
        at, t0 = time.time(), time.perf_counter()
        udp = Udp6TransportTarget if ":" in host else UdpTransportTarget
        transport = await udp.create((host, port), timeout=max(0.2, spec.timeout / 2), retries=1)
        indication, status, index, binds = await get_cmd(
            self.engine, self._auth(spec), transport, ContextData(),
            *(ObjectType(ObjectIdentity(oid)) for oid in OIDS.values()))
        if indication:
            raise ProbeTimeout(target.name, f"snmp {spec.address}: {indication}")
        if status:
            raise PeerError(target.name, f"snmp {spec.address}: {status.prettyPrint()} at {index}", str(status))
        got: dict[str, int | None] = {}
        for name, (_, value) in zip(OIDS, binds):
            try:
                got[name] = int(value)
            except (TypeError, ValueError):
                got[name] = None  # noSuchObject / noSuchInstance: the agent lacks it
        alarms = await self._alarms(spec, transport) if (got.get("alarms") or 0) > 0 else []
        faults, values = assess(state_from_mib(got, alarms), spec)
        return Reading(target=target.name, at=at, ok=True, duration=time.perf_counter() - t0, faults=faults,
                       values=values, detail={**{k: v for k, v in got.items() if v is not None},
                                              **({"alarm_table": alarms} if alarms else {})})

    async def _alarms(self, spec: SnmpSpec, transport) -> list[str] | None:
        """upsAlarmDescr of every present alarm, at most ``MAX_ALARMS``; ``None`` when
        the agent does not serve the table."""
        out: list[str] = []
        async for indication, status, _, binds in walk_cmd(
                self.engine, self._auth(spec), transport, ContextData(),
                ObjectType(ObjectIdentity(ALARM_DESCR)), lexicographicMode=False):
            if indication or status:
                return None
            out.extend(str(value) for _, value in binds)
            if len(out) >= MAX_ALARMS:
                break
        return out or None

    async def close(self) -> None:
        self.engine.close_dispatcher()
