"""alertrules/: promtool accepts the rules, every alert has unit tests that fire it and
keep it quiet, device alerts carry a fault the plans know, and every hallmon metric a
rule reads is one hallmon produces."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "alertrules" / "hallmon.rules.yml"
RULE_TESTS = sorted((ROOT / "alertrules" / "tests").glob("*.test.yml"))
FAULTS = {"power.on_battery", "power.low_battery", "power.ups_fault", "power.ups_unreachable", "queue.down",
          "queue.stalled", "queue.congested", "pos.link_down", "pos.slow", "system.down", "system.slow",
          "system.cert_expiring", "network.down", "network.loss", "network.latency", "network.dns"}

pytestmark = pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")


def rules() -> list[dict]:
    return [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]


def test_promtool_check_rules():
    out = subprocess.run(["promtool", "check", "rules", str(RULES)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"SUCCESS: {len(rules())} rules found" in out.stdout


@pytest.mark.parametrize("path", RULE_TESTS, ids=lambda p: p.name)
def test_promtool_unit_tests(path):
    out = subprocess.run(["promtool", "test", "rules", path.name], capture_output=True, text=True,
                         cwd=path.parent)
    assert out.returncode == 0, out.stdout + out.stderr


def test_promtool_unit_tests_catch_a_broken_rule(tmp_path):
    """The unit tests are not vacuous: loosen one threshold and they fail."""
    broken = RULES.read_text().replace("* 60 > 3 and hallmon_queue_waiting > 30", "* 60 > 0 and hallmon_queue_waiting > 0")
    assert broken != RULES.read_text()
    (tmp_path / "hallmon.rules.yml").write_text(broken)
    (tmp_path / "tests").mkdir()
    test = ROOT / "alertrules" / "tests" / "devices.test.yml"
    (tmp_path / "tests" / test.name).write_text(test.read_text())
    out = subprocess.run(["promtool", "test", "rules", test.name], capture_output=True, text=True,
                         cwd=tmp_path / "tests")
    assert out.returncode != 0 and "HallmonQueueRisingFast" in out.stdout + out.stderr


def test_every_alert_is_tested_firing_and_quiet():
    fired: set[str] = set()
    quiet: set[str] = set()
    for path in RULE_TESTS:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (fired if check["exp_alerts"] else quiet).add(check["alertname"])
    alerts = {r["alert"] for r in rules() if "alert" in r}
    assert alerts - fired == set(), "alerts never shown firing"
    # the watchdog is the one alert that must never be quiet
    assert alerts - quiet == {"HallmonWatchdog"}, "alerts never shown staying quiet"


def test_alert_labels_let_the_router_classify_them():
    for rule in rules():
        if "alert" not in rule:
            continue
        labels, ann = rule["labels"], rule["annotations"]
        assert ("fault" in labels) != ("team" in labels), rule["alert"]
        if "fault" in labels:
            assert labels["fault"] in FAULTS, rule["alert"]
            # site, unit and system come from the series: no aggregation may drop them
            assert " by " not in rule["expr"] and "sum(" not in rule["expr"], rule["alert"]
        else:  # about hallmon itself, or a standing duty for the emergency office (drills)
            assert labels["team"] in ("hallmon-ops", "emergency-office")
        assert re.search(r"[\u4e00-\u9fff]", ann["summary"]), f"{rule['alert']}: summary must be Chinese"
        assert ann["description"].isascii(), f"{rule['alert']}: description in English"


def test_rules_read_only_metrics_hallmon_produces():
    source = "".join(p.read_text(encoding="utf-8") for d in ("monitor", "probes") for p in (ROOT / d).rglob("*.py"))
    used = set()
    for rule in rules():
        used |= set(re.findall(r"\bhallmon_[a-z_]+", rule["expr"]))
    base = {re.sub(r"_(bucket|count|sum)$", "", n) if n.startswith("hallmon_scheduler_lag") else n for n in used}
    missing = sorted(n for n in base if f'"{n}"' not in source)
    assert missing == []
