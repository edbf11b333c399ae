"""``hallmon incidents note|assign|merge|ack --all|deliveries`` against a running service:
what a duty officer types, what the service stores, and clear refusals (exit 1)."""
from __future__ import annotations

import json
import urllib.request
from datetime import datetime, timezone

from tests.pagingkit import paging_yaml
from tests.routerkit import TOKENS, alert, org_config
from tests.test_cli_incidents import run


def post_alert(base: str, system: str, site: str = "u1a", unit: str = "u1") -> str:
    body = json.dumps([alert("system.down", site, unit, starts=datetime.now(timezone.utc), system=system,
                             target=f"{site}-{system}")]).encode()
    req = urllib.request.Request(f"{base}/api/v1/alerts", data=body, method="POST",
                                 headers={"Authorization": f"Bearer {TOKENS['HALLMON_T_ADMIN']}",
                                          "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())["incidents"][0]


def show(env: dict, incident_id: str) -> dict:
    res = run("incidents", "show", incident_id, "--json", env=env)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def test_note_assign_merge_ack_all_and_deliveries_from_the_command_line(tmp_path, redis_url, service):
    cfg = tmp_path / "hall.yml"
    cfg.write_text(org_config(redis_url, extra=paging_yaml("http://127.0.0.1:9")), encoding="utf-8")  # refused
    svc = service(cfg, env=TOKENS)
    env = {**TOKENS, "HALLMON_URL": svc.base, "HALLMON_TOKEN": TOKENS["HALLMON_T_ADMIN"]}
    a, b, c = (post_alert(svc.base, s) for s in ("sys-a", "sys-b", "sys-c"))

    res = run("incidents", "note", a, "--text", "已联系测试运维乙", "--by", "测试值班长甲", env=env)
    assert res.returncode == 0, res.stderr
    assert show(env, a)["timeline"][-1]["detail"] == {"note": "已联系测试运维乙"}
    res = run("incidents", "assign", a, "duty-b", "--by", "测试值班长甲", "--reason", "熟悉该系统", env=env)
    assert res.returncode == 0, res.stderr
    assert show(env, a)["assignee"]["person"] == "duty-b"
    res = run("incidents", "show", a, env=env)
    assert "处置人：测试值班长乙" in res.stdout and "指派处置人" in res.stdout

    res = run("incidents", "merge", b, "--into", a, "--by", "测试值班长甲", "--reason", "同一次网络中断", env=env)
    assert res.returncode == 0, res.stderr
    assert a in res.stdout and b in res.stdout
    assert show(env, b)["merged_into"] == a and show(env, a)["merged_from"] == [b]
    # refused with the service's reason, nothing stored
    before = show(env, a)
    for args, said in [(("merge", a, "--into", a), "409"), (("merge", c, "--into", b), "409"),
                       (("assign", a, "nobody"), "400")]:
        res = run("incidents", *args, "--by", "测试值班长甲", *(("--reason", "x") if args[0] == "merge" else ()), env=env)
        assert res.returncode == 1 and said in res.stderr, (args, res.stderr)
    assert show(env, a)["timeline"] == before["timeline"]
    res = run("incidents", "ack", "--by", "测试值班长甲", env=env)
    assert res.returncode == 1 and "--all" in res.stderr

    res = run("incidents", "ack", "--all", "--by", "测试值班长甲", env=env)
    assert res.returncode == 0, res.stderr
    assert "已确认 2 起" in res.stdout and a in res.stdout and c in res.stdout
    assert show(env, a)["status"] == show(env, c)["status"] == "acknowledged"
    res = run("incidents", "ack", "--all", "--by", "测试值班长甲", "--json", env=env)
    assert json.loads(res.stdout) == {"acknowledged": [], "skipped": []}

    res = run("incidents", "deliveries", a, "--lang", "en", env=env)  # the receiver refuses: retried
    assert res.returncode == 0, res.stderr
    assert "Page" in res.stdout and "Failed, retried" in res.stdout and "try 1" in res.stdout
    res = run("incidents", "deliveries", a, "--json", env=env)
    assert all(e["v"] == 1 for e in json.loads(res.stdout)["deliveries"])
