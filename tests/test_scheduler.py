"""Scheduler: spread by stable hash, no overlap, global cap, timeouts, no drift."""
import asyncio

from prometheus_client import CollectorRegistry

from monitor.checks.metrics import ServiceMetrics
from monitor.checks.scheduler import Scheduler
from monitor.core.target import Target
from probes.tcp import TcpSpec


def target(name: str, interval: str = "1s", timeout: str = "1s") -> Target:
    spec = TcpSpec.model_validate({"name": name, "kind": "net.tcp", "address": "127.0.0.1:1",
                                   "interval": interval, "timeout": timeout})
    return Target(spec=spec, site="s", unit="u", system="network")


def sample(metrics: ServiceMetrics, name: str) -> float:
    return metrics.registry.get_sample_value(name) or 0.0


async def test_first_checks_spread_evenly_over_the_interval():
    """No herd at start: the first slots the scheduler gives 400 new targets fill every
    tenth of the interval roughly evenly, and every target is then checked. (The spread
    is judged on the slots, not on measured start times: a loaded machine stalling the
    loop for 100 ms would empty a bucket of the measurement, not of the plan.)"""
    checked: set[str] = set()

    async def check(t):
        checked.add(t.name)

    metrics = ServiceMetrics(CollectorRegistry())
    sched = Scheduler(check, metrics, max_concurrent=1000)
    targets = [target(f"t{i}") for i in range(400)]
    now = asyncio.get_running_loop().time()
    first = [sched.slot_after(t, now) - now for t in targets]
    assert all(0 <= s < 1 for s in first)
    buckets = [sum(1 for s in first if i / 10 <= s < (i + 1) / 10) for i in range(10)]
    assert all(15 <= b <= 70 for b in buckets), buckets
    sched.set_targets(targets)
    await asyncio.sleep(1.5)
    await sched.stop()
    assert checked == {t.name for t in targets}


async def test_offsets_are_stable_across_processes_and_restarts():
    metrics = ServiceMetrics(CollectorRegistry())
    a = Scheduler(lambda t: asyncio.sleep(0), metrics, 10)
    b = Scheduler(lambda t: asyncio.sleep(0), metrics, 10)
    now = asyncio.get_running_loop().time()
    t = target("ups-1", interval="10s")
    slot_a, slot_b = a.slot_after(t, now), b.slot_after(t, now)
    assert abs(slot_a - slot_b) < 1e-3
    assert now <= slot_a < now + 10
    # the grid is fixed: the slot after the next slot is exactly one interval later
    assert abs(a.slot_after(t, slot_a + 0.001) - (slot_a + 10)) < 1e-6


async def test_a_check_still_running_is_skipped_not_overlapped():
    running = 0
    most = 0

    async def slow(t):
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.35)
        running -= 1

    metrics = ServiceMetrics(CollectorRegistry())
    sched = Scheduler(slow, metrics, max_concurrent=10)
    sched.set_targets([target("slow", interval="100ms", timeout="100ms")])
    await asyncio.sleep(1.0)
    await sched.stop()
    assert most == 1
    assert sample(metrics, "hallmon_scheduler_checks_skipped_total") >= 4


async def test_global_cap_on_concurrent_checks():
    running = 0
    most = 0

    async def slow(t):
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.2)
        running -= 1

    metrics = ServiceMetrics(CollectorRegistry())
    sched = Scheduler(slow, metrics, max_concurrent=3)
    sched.set_targets([target(f"t{i}", interval="200ms", timeout="200ms") for i in range(12)])
    await asyncio.sleep(0.8)
    assert sample(metrics, "hallmon_scheduler_checks_in_flight") <= 3
    await sched.stop()
    assert most == 3
    # checks that waited for the cap started late, and the lag histogram says so
    assert sample(metrics, "hallmon_scheduler_lag_seconds_count") >= 6
    assert sample(metrics, "hallmon_scheduler_lag_seconds_sum") > 0.1


async def test_no_drift_checks_stay_on_their_grid():
    loop = asyncio.get_running_loop()
    starts: list[float] = []

    async def check(t):
        starts.append(loop.time())
        await asyncio.sleep(0.01)  # work that would accumulate drift with "sleep(interval)"

    metrics = ServiceMetrics(CollectorRegistry())
    sched = Scheduler(check, metrics, max_concurrent=10)
    t = target("grid", interval="50ms", timeout="50ms")
    sched.set_targets([t])
    await asyncio.sleep(2.0)
    await sched.stop()
    assert 37 <= len(starts) <= 41
    first = starts[0]
    for k, s in enumerate(starts):
        assert abs((s - first) - k * 0.05) < 0.03, (k, s - first)


async def test_reload_keeps_unchanged_targets_and_drops_removed_ones():
    seen: list[str] = []

    async def check(t):
        seen.append(t.name)

    metrics = ServiceMetrics(CollectorRegistry())
    sched = Scheduler(check, metrics, max_concurrent=10)
    sched.set_targets([target("a", "100ms", "100ms"), target("b", "100ms", "100ms")])
    await asyncio.sleep(0.35)
    sched.set_targets([target("a", "100ms", "100ms"), target("c", "100ms", "100ms")])
    seen.clear()
    await asyncio.sleep(0.35)
    await sched.stop()
    assert "b" not in seen and "a" in seen and "c" in seen
    assert sample(metrics, "hallmon_targets") == 2
