"""Writes a preset deflate dictionary for resolved incident documents (run once per
dictionary version, never again for the same one: documents packed with dictionary N
are read with exactly those bytes forever, and tests/test_packing.py pins its digest).

The dictionary is what every resolved document repeats: the field names in the order
``Incident.to_json`` writes them and the words of every built-in plan's clocks and
levels, taken from resolved incidents made by the lifecycle's own functions for each
built-in plan and each category (pure functions, no Redis). deflate looks back 32 KB,
so the dictionary is cut to that, the most common forms last (nearest the data).

    python scripts/make_zdict.py 2 > monitor/incidents/zdict-2.txt
"""
from __future__ import annotations

import json
import sys
from datetime import datetime, timedelta, timezone

from monitor.core.alert import Alert
from monitor.incidents import actions, lifecycle
from monitor.incidents.classify import group
from monitor.incidents.view import ConfigView
from monitor.plans.model import builtin_ids

FAULTS = ["system.down", "power.on_battery", "pos.link_down", "queue.down", "network.down", "system.slow"]
LIMIT = 32 * 1024


def documents(plan: str) -> list[str]:
    now = datetime(2026, 3, 2, 9, 30, tzinfo=timezone.utc)
    out = []
    for n, fault in enumerate(FAULTS):
        alerts = [Alert(labels={"alertname": "HallmonFault", "fault": fault, "site": f"s{n}", "unit": "u1",
                                "system": f"sys-{n}", "target": f"s{n}-t"}, starts_at=now, source="probe")]
        view = ConfigView.from_alerts(alerts, plan)
        [(key, items)] = group(alerts, view).items()
        inc, _ = lifecycle.open_incident(f"INC-20260302-{n:04d}", key, items, now, view)
        inc, _ = actions.ack(inc, "值班员", "console", now + timedelta(minutes=3))
        inc, _ = actions.resolve(inc, "值班员", "已恢复", now + timedelta(hours=1), now + timedelta(hours=1), view)
        for clock in inc.clocks:
            if clock.owed:
                inc, _ = actions.file_report(inc, clock.id, "值班员", None, "已报送", now + timedelta(hours=2))
        doc = inc.to_json()
        del doc["frozen_plan"]
        out.append(json.dumps(doc, ensure_ascii=False))
    return out


def main(version: str) -> None:
    docs = [d for plan in sorted(builtin_ids()) for d in documents(plan)]
    picked: list[str] = []
    size = 0
    for doc in reversed(docs):  # the default plan's last: nearest the data
        n = len(doc.encode())
        if size + n > LIMIT:
            break
        picked.insert(0, doc)
        size += n
    sys.stdout.write(f"hallmon incident dictionary {version}\n" + "\n".join(picked) + "\n")


if __name__ == "__main__":
    main(sys.argv[1])
