"""/metrics: the service's own metrics from an injected prometheus_client registry,
plus every target's latest reading rendered by ``ReadingSeries``.

prometheus_client takes about 1.2 s to render 60,000 labelled gauges and holds the GIL
while doing it, stalling the probes. ``ReadingSeries`` instead renders each target's
lines once, when its reading arrives (label strings precomputed per target), so a
scrape is a join over prebuilt strings.
"""
from __future__ import annotations

import math
from typing import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from monitor.core.reading import Reading
from monitor.core.target import Target
from monitor.core.version import python, version

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# name → (type, help). Probes may only emit families listed here.
FAMILIES: dict[str, tuple[str, str]] = {
    "hallmon_probe_success": ("gauge", "1 if the last check reached the device and understood it."),
    "hallmon_probe_duration_seconds": ("gauge", "Duration of the last check."),
    "hallmon_fault_active": ("gauge", "1 while the fault is active after hysteresis."),
    "hallmon_tcp_connect_seconds": ("gauge", "TCP connect time of the last check."),
    "hallmon_http_status_code": ("gauge", "HTTP status of the last check."),
    "hallmon_http_duration_seconds": ("gauge", "HTTP request duration of the last check."),
    "hallmon_tls_cert_expiry_timestamp_seconds": ("gauge", "Expiry of the peer certificate (unix time)."),
    "hallmon_ups_on_battery": ("gauge", "1 while the UPS runs on battery."),
    "hallmon_ups_battery_charge_ratio": ("gauge", "Battery charge, 0..1."),
    "hallmon_ups_battery_runtime_seconds": ("gauge", "Estimated battery runtime."),
    "hallmon_ups_load_ratio": ("gauge", "Output load, 0..1."),
    "hallmon_ups_input_voltage_volts": ("gauge", "Input (mains) voltage."),
    "hallmon_queue_waiting": ("gauge", "People waiting in the queue."),
    "hallmon_queue_longest_wait_seconds": ("gauge", "Longest current wait."),
    "hallmon_queue_tickets_issued_total": ("counter", "Tickets issued today (as reported by the queue system)."),
    "hallmon_queue_windows_open": ("gauge", "Service windows open."),
    "hallmon_pos_link_up": ("gauge", "1 if the acquirer answered the echo with 00."),
    "hallmon_pos_echo_rtt_seconds": ("gauge", "Round trip of the last ISO 8583 echo."),
    "hallmon_net_loss_ratio": ("gauge", "Packet loss of the last check, 0..1."),
    "hallmon_net_rtt_seconds": ("gauge", "Average round trip of the last check."),
    "hallmon_dns_lookup_seconds": ("gauge", "DNS lookup time of the last check."),
}


def escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def label_string(labels: dict[str, str]) -> str:
    return ",".join(f'{k}="{escape(v)}"' for k, v in sorted(labels.items()))


def fmt(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


class ReadingSeries:
    """The latest reading of every target, as prebuilt exposition lines."""

    def __init__(self) -> None:
        self._labels: dict[str, str] = {}
        self._lines: dict[str, dict[str, str]] = {}  # target → family → lines

    def update(self, target: Target, reading: Reading, faults: Iterable[tuple[str, bool]]) -> None:
        labels = self._labels.get(target.name)
        if labels is None:
            labels = self._labels[target.name] = label_string(target.labels)
        lines = {
            "hallmon_probe_success": f"hallmon_probe_success{{{labels}}} {1 if reading.ok else 0}\n",
            "hallmon_probe_duration_seconds": f"hallmon_probe_duration_seconds{{{labels}}} {fmt(reading.duration)}\n",
            "hallmon_fault_active": "".join(
                f'hallmon_fault_active{{{labels},fault="{f}"}} {1 if on else 0}\n' for f, on in faults),
        }
        for name, value in reading.values.items():
            if name in FAMILIES:
                lines[name] = f"{name}{{{labels}}} {fmt(value)}\n"
        self._lines[target.name] = lines

    def retain(self, targets: Iterable[Target]) -> None:
        keep = {t.name: t for t in targets}
        for name in [n for n in self._lines if n not in keep]:
            del self._lines[name]
        self._labels = {n: label_string(keep[n].labels) for n in self._labels if n in keep}

    def render(self) -> str:
        out: list[str] = []
        per_target = list(self._lines.values())
        for name, (kind, help_) in FAMILIES.items():
            body = [lines[name] for lines in per_target if name in lines]
            if body:
                out.append(f"# HELP {name} {help_}\n# TYPE {name} {kind}\n")
                out.extend(body)
        return "".join(out)


class ServiceMetrics:
    """The service's own metrics, in the registry it is given."""

    def __init__(self, registry: CollectorRegistry):
        self.registry = registry
        self.scheduler_lag = Histogram(
            "hallmon_scheduler_lag_seconds", "How late each check started after its scheduled time.",
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10), registry=registry)
        self.checks_in_flight = Gauge("hallmon_scheduler_checks_in_flight", "Checks running now.",
                                      registry=registry)
        self.checks_skipped = Counter(
            "hallmon_scheduler_checks_skipped_total",
            "Checks not started because the previous check of the target was still running.",
            registry=registry)
        self.checks = Counter("hallmon_checks_total", "Checks completed.", ["kind", "outcome"],
                              registry=registry)
        self.targets = Gauge("hallmon_targets", "Targets scheduled in this process.", registry=registry)
        self.alerts = Counter("hallmon_alerts_total", "Alerts emitted by the fault tracker.", ["state"],
                              registry=registry)
        self.reloads = Counter("hallmon_config_reloads_total", "Config reloads.", ["outcome"],
                               registry=registry)
        self.task_restarts = Counter(
            "hallmon_task_restarts", "Background loops restarted after they crashed or returned.", ["task"],
            registry=registry)
        self.build_info = Gauge("hallmon_build_info", "hallmon's version (the value is always 1).",
                                ["version", "python"], registry=registry)
        self.build_info.labels(version(), python()).set(1)


def render(registry: CollectorRegistry, series: ReadingSeries) -> bytes:
    return generate_latest(registry) + series.render().encode()
