"""The CLI summary's reading of an incident document (monitor/cli/summary.py)."""
from __future__ import annotations

from monitor.cli.summary import Shown


def clock(cid: str, due: str, status: str) -> dict:
    return {"id": cid, "title": cid, "due_at": due, "status": status, "audience": {"to": [], "cc": []},
            "source": "Shenzhen 4.3.4", "anchor": "detected", "anchored_at": "2026-11-28T08:00:00+08:00"}


def test_the_next_report_is_the_soonest_still_owed_never_a_withdrawn_or_filed_one():
    doc = {"id": "INC-1", "status": "open", "level": 2, "plan": "shenzhen-customs", "category": "power",
           "system": "power", "sites": ["s1"], "units": ["u1"], "detected_at": "2026-11-28T08:00:00+08:00",
           "clocks": [clock("monthly-summary", "2026-11-28T09:00:00+08:00", "withdrawn"),
                      clock("phone", "2026-11-28T09:10:00+08:00", "met"),
                      clock("written", "2026-11-28T10:00:00+08:00", "pending"),
                      clock("update", "2026-11-28T11:00:00+08:00", "overdue")]}
    nxt = Shown.from_json(doc).next_clock()
    assert nxt is not None and nxt.id == "written"
    doc["clocks"] = [clock("monthly-summary", "2026-11-28T09:00:00+08:00", "withdrawn")]
    assert Shown.from_json(doc).next_clock() is None
