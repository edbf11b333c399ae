"""Recovery across a restart: what this shard's targets left firing, taken up again.

The fault tracker lives in the process; the incidents live in Redis. A process that
starts (after a stop, a crash, an upgrade) knows no fault, so a device that recovered
while hallmon was down gives a healthy first reading, which is no transition: its
incident would never hear that the fault ended (``recovered`` false for good). On start
each shard reads the open incidents' alerts that came from its own probes (source
``probe``, label ``target`` one of this shard's targets) and still fire, and hands them
to the tracker (``FaultTracker.resume``): its first readings then end what has ended,
and a fault that is still there repeats nothing. A fault that began while hallmon was
down is none of this: the tracker sees it first, and it opens as usual.

Start-up does not wait on Redis (docs/habits.md, habit 11): the service waits a moment
for the answer so that the first readings find the tracker seeded, then starts its
checks anyway and takes the answer when Redis gives it (a fault already seen by then is
left as the tracker has it).
"""
from __future__ import annotations

import asyncio
from typing import Iterable

import structlog

from monitor.checks.faults import FaultTracker
from monitor.core.errors import StoreError
from monitor.core.target import Target
from monitor.incidents.records import StoredAlert
from monitor.incidents.store import IncidentStore

log = structlog.get_logger("hallmon.recovery")


async def left_firing(store: IncidentStore, targets: Iterable[str]) -> list[StoredAlert]:
    """The firing probe alerts of open incidents whose target is one of ``targets``."""
    names = set(targets)
    out = []
    for incident_id in await store.open_ids():
        out += [a for a in await store.alerts(incident_id)
                if a.status == "firing" and a.source == "probe" and a.labels.get("target") in names
                and a.labels.get("fault")]
    return out


async def resume(tracker: FaultTracker, store: IncidentStore, targets: list[Target], retry: float = 1.0) -> int:
    """Seed ``tracker`` with what ``targets`` left firing, retrying while Redis cannot
    answer; returns how many faults were taken up."""
    waiting = False
    while True:
        try:
            alerts = await left_firing(store, (t.name for t in targets))
            break
        except StoreError as err:
            if not waiting:
                log.warning("resume_waiting_for_redis", error=str(err),
                            effect="faults left firing before the restart are taken up once Redis answers")
                waiting = True
            await asyncio.sleep(retry)
        except Exception:  # a bug: said once, and the service runs on as a fresh start would
            log.exception("resume_failed")
            return 0
    taken = [a for a in alerts
             if tracker.resume(a.labels["target"], a.labels["fault"], a.starts_at.timestamp(), a.labels)]
    log.info("faults_resumed", faults=len(taken), targets=len({a.labels["target"] for a in taken}),
             after_waiting=waiting)
    return len(taken)
