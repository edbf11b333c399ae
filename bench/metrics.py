"""/metrics render time: 10,000 targets × 6 series, hallmon's ReadingSeries against
prometheus_client's generate_latest over equivalent labelled Gauges (the anchor),
in the same run. Prints both and the ratio; checks the output parses."""
from __future__ import annotations

import argparse
import statistics
import time

from prometheus_client import CollectorRegistry, Gauge, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from monitor.checks.metrics import ReadingSeries
from monitor.core.reading import Reading
from monitor.core.target import Target
from probes.tcp import TcpSpec

FAMILIES = ("hallmon_ups_on_battery", "hallmon_ups_battery_charge_ratio", "hallmon_ups_battery_runtime_seconds")


def timed(fn, repeat: int) -> float:
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t0)
    return statistics.median(runs)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--targets", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()

    series = ReadingSeries()
    registry = CollectorRegistry()
    labels = ["site", "system", "target", "unit"]
    gauges = {name: Gauge(name, "x", labels, registry=registry)
              for name in ("hallmon_probe_success", "hallmon_probe_duration_seconds", *FAMILIES)}
    fault = Gauge("hallmon_fault_active", "x", labels + ["fault"], registry=registry)
    for i in range(args.targets):
        spec = TcpSpec.model_validate({"name": f"ups-{i}", "kind": "net.tcp", "address": "127.0.0.1:1"})
        t = Target(spec=spec, site=f"site-{i // 20}", unit=f"unit-{i // 400}", system="power")
        values = {FAMILIES[0]: 0.0, FAMILIES[1]: 0.97, FAMILIES[2]: 1800.0 + i}
        series.update(t, Reading(target=t.name, at=0.0, ok=True, duration=0.0123, values=values),
                      [("power.on_battery", False)])
        lv = (t.site, "power", t.name, t.unit)
        gauges["hallmon_probe_success"].labels(*lv).set(1)
        gauges["hallmon_probe_duration_seconds"].labels(*lv).set(0.0123)
        for name, v in values.items():
            gauges[name].labels(*lv).set(v)
        fault.labels(*lv, "power.on_battery").set(0)

    text = series.render()
    samples = sum(len(f.samples) for f in text_string_to_metric_families(text))
    assert samples == args.targets * 6, samples
    ours = timed(series.render, args.repeat)
    anchor = timed(lambda: generate_latest(registry), args.repeat)
    print(f"bench/metrics: {args.targets} targets x 6 = {samples} series")
    print(f"  hallmon ReadingSeries.render      {ours * 1000:8.1f} ms")
    print(f"  prometheus_client generate_latest {anchor * 1000:8.1f} ms  (anchor; DESIGN.md: 1.23 s)")
    print(f"  ratio hallmon/anchor              {ours / anchor:8.3f}   (target: <= 100 ms absolute)")


if __name__ == "__main__":
    main()
