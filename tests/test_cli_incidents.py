"""The incidents, plan and drill commands against a running service and offline."""
import json
import subprocess
import sys
from datetime import datetime, timedelta, timezone

from tests.conftest import ROOT
from tests.routerkit import TOKENS, alert, org_config

HALLMON = [sys.executable, "-m", "monitor.cli"]


def run(*args, env=None):
    import os
    return subprocess.run([*HALLMON, *args], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, **(env or {})}, timeout=60)


def test_plan_explain_prints_level_trace_and_clocks_without_redis(tmp_path):
    cfg = tmp_path / "hall.yml"
    cfg.write_text(org_config("redis://127.0.0.1:1/0"), encoding="utf-8")
    t0 = datetime(2026, 11, 25, 1, 0, tzinfo=timezone.utc)
    alerts = tmp_path / "alerts.json"
    alerts.write_text(json.dumps([alert("system.down", "u1a", "u1", starts=t0),
                                  alert("system.down", "u1b", "u1", starts=t0 + timedelta(minutes=2))]))
    res = run("plan", "explain", "--plan", "shenzhen-customs", "--alerts", str(alerts), "-c", str(cfg), "--json",
              env=TOKENS)
    assert res.returncode == 0, res.stderr
    [inc] = json.loads(res.stdout)
    assert inc["level"] == 2 and inc["decision"]["rule"] == "scope-whole-unit"
    assert inc["decision"]["facts"]["units_whole"] == ["u1"]
    due = {c["id"]: c["due_at"] for c in inc["clocks"]}
    assert due["phone-report"] == "2026-11-25T09:15:00+08:00"
    res = run("plan", "explain", "--plan", "xiamen-tax", "--alerts", str(alerts), "--resolved-at",
              "2026-09-30T17:00:00+08:00")
    assert res.returncode == 0, res.stderr
    assert "result-written" in res.stdout and "2026-10-09T17:00:00+08:00" in res.stdout
    bad = tmp_path / "bad.json"
    bad.write_text('[{"labels": 5}]')
    res = run("plan", "explain", "--plan", "default", "--alerts", str(bad))
    assert res.returncode == 1 and "[0].labels" in res.stderr


def test_plan_show_lists_rules_with_sources_and_hallmons_readings():
    res = run("plan", "show", "guizhou-tax", "--lang", "en")
    assert res.returncode == 0
    assert "time-span" in res.stdout and "Guizhou part 3" in res.stdout and "hallmon's reading" in res.stdout
    assert run("plan", "show", "nope").returncode == 1


def test_incidents_commands_and_drill_through_the_api(tmp_path, redis_url, service):
    cfg = tmp_path / "hall.yml"
    cfg.write_text(org_config(redis_url), encoding="utf-8")
    svc = service(cfg, env=TOKENS)
    env = {**TOKENS, "HALLMON_URL": svc.base, "HALLMON_TOKEN": TOKENS["HALLMON_T_ADMIN"]}
    res = run("drill", "power", "--site", "u3a", "--unit", "u3", env=env)
    assert res.returncode == 0, res.stderr
    inc_id = res.stdout.split("incident(s) ")[1].strip()
    assert inc_id.startswith("DRILL-")
    res = run("incidents", "list", "--json", env=env)
    [inc] = json.loads(res.stdout)
    assert inc["id"] == inc_id and inc["drill"] is True and inc["category"] == "power"
    assert run("incidents", "ack", inc_id, "--by", "测试值班长甲", env=env).returncode == 0
    res = run("incidents", "draft", inc_id, "--kind", "phone", "--lang", "en", env=env)
    assert "[DRILL]" in res.stdout and "Place: 测试三关 测试三关大厅" in res.stdout
    res = run("incidents", "level", inc_id, "2", "--by", "测试值班领导甲", "--reason", "演练升级", env=env)
    assert res.returncode == 0 and "二级" in res.stdout
    res = run("incidents", "report", inc_id, "phone-report", "--by", "测试值班长甲", "--note", "已电话报告", env=env)
    assert res.returncode == 0
    res = run("incidents", "resolve", inc_id, "--by", "测试值班长甲", "--result", "演练结束", env=env)
    assert res.returncode == 0 and "已关闭" in res.stdout
    out = tmp_path / "export.jsonl"
    assert run("incidents", "export", "--since", "2026-01-01T00:00:00+08:00", "-o", str(out), env=env).returncode == 0
    [line] = out.read_text().splitlines()
    exported = json.loads(line)
    assert exported["id"] == inc_id and exported["timeline_intact"] is True
    assert [e["action"] for e in exported["timeline"]][:2] == ["opened", "acknowledged"]
    assert next(c for c in exported["clocks"] if c["id"] == "phone-report")["status"] == "met"
    res = run("incidents", "ack", "INC-19990101-0001", "--by", "x", env=env)
    assert res.returncode == 1 and "404" in res.stderr
    res = run("incidents", "list", env={**env, "HALLMON_TOKEN": "wrong"})
    assert res.returncode == 1 and "401" in res.stderr


def test_fire_drill_is_a_manual_incident(tmp_path, redis_url, service):
    cfg = tmp_path / "hall.yml"
    cfg.write_text(org_config(redis_url), encoding="utf-8")
    svc = service(cfg, env=TOKENS)
    env = {**TOKENS, "HALLMON_URL": svc.base, "HALLMON_TOKEN": TOKENS["HALLMON_T_ADMIN"]}
    res = run("drill", "fire", "--site", "u2a", "--by", "测试值班长乙", env=env)
    assert res.returncode == 0, res.stderr
    res = run("incidents", "list", "--json", env=env)
    [inc] = json.loads(res.stdout)
    assert inc["category"] == "public_safety" and inc["drill"] is True and inc["units"] == ["u2"]


def test_export_writes_every_incident_page_by_page(tmp_path, redis_url, service):
    import urllib.request

    cfg = tmp_path / "hall.yml"
    cfg.write_text(org_config(redis_url), encoding="utf-8")
    svc = service(cfg, env=TOKENS)
    env = {**TOKENS, "HALLMON_URL": svc.base, "HALLMON_TOKEN": TOKENS["HALLMON_T_ADMIN"]}
    start = datetime.now(timezone.utc) - timedelta(minutes=10)
    faults = ["system.down", "pos.link_down", "queue.down", "power.on_battery", "network.down"]
    for i, fault in enumerate(faults):
        body = json.dumps([alert(fault, "u3a", "u3", starts=start + timedelta(seconds=i))]).encode()
        req = urllib.request.Request(svc.base + "/api/v1/alerts", data=body, method="POST", headers={
            "Authorization": f"Bearer {TOKENS['HALLMON_T_ADMIN']}", "Content-Type": "application/json"})
        urllib.request.urlopen(req, timeout=5).read()
    out = tmp_path / "export.jsonl"
    res = run("incidents", "export", "--page", "2", "-o", str(out), env=env)
    assert res.returncode == 0, res.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == len(faults) == len({r["id"] for r in rows})
    assert [r["detected_at"] for r in rows] == sorted(r["detected_at"] for r in rows)
    res = run("incidents", "list", "--json", env=env)
    assert len(json.loads(res.stdout)) == len(faults)
