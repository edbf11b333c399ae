"""The command line as a duty officer and a newcomer meet it: summaries with names, local
times and faults in words; harm flags; a channel test; check-config and probe without
the production secrets; the warnings a half-configured service gives. Each runs the real
``python -m monitor.cli`` (against a live ``hallmon run`` where it is an API client)."""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import urllib.request
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from aiosmtpd.controller import Controller

from monitor.cli import summary
from monitor.cli.incidents import explain
from monitor.cli.main import COMMANDS
from monitor.config.model import load_config
from monitor.core.errors import ConfigError
from monitor.core.faultnames import fault_name
from monitor.core.secret import secrets_optional
from monitor.incidents.view import ConfigView
from monitor.plans.model import builtin_ids
from monitor.service.ingest import parse_list
from simulators.redisproc import free_port
from tests.conftest import ROOT, write_config
from tests.robots import Robots
from tests.routerkit import TOKENS, alert, org_config
from tests.test_newcomer import EXAMPLE_SECRETS

HALLMON = [sys.executable, "-m", "monitor.cli"]
SHANGHAI = ZoneInfo("Asia/Shanghai")


def clean_env(extra: dict | None = None) -> dict:
    """The environment without any hallmon or robot secret (a CI runner, a workstation)."""
    env = {k: v for k, v in os.environ.items() if k not in {*TOKENS, *EXAMPLE_SECRETS, "HALLMON_TOKEN", "HALLMON_URL"}}
    return {**env, **(extra or {})}


def run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*HALLMON, *args], capture_output=True, text=True, cwd=ROOT, env=clean_env(env), timeout=60)


async def arun(*args: str, env: dict | None = None) -> tuple[int, str, str]:
    """The CLI from an async test: its loop keeps serving the local peers meanwhile."""
    proc = await asyncio.create_subprocess_exec(*HALLMON, *args, cwd=ROOT, env=clean_env(env),
                                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode, out.decode(), err.decode()


def post_alerts(base: str, alerts: list[dict]) -> list[str]:
    req = urllib.request.Request(base + "/api/v1/alerts", data=json.dumps(alerts).encode(), method="POST",
                                 headers={"Authorization": f"Bearer {TOKENS['HALLMON_T_ADMIN']}",
                                          "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())["incidents"]


# ── help ─────────────────────────────────────────────────────────────────────────

def _parsers(parser: argparse.ArgumentParser, path: str):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helped = {a.dest for a in action._choices_actions}
            for name, sub in action.choices.items():
                assert name in helped, f"`{path} {name}` has no help text"
                yield from _parsers(sub, f"{path} {name}")


def test_every_subcommand_and_option_has_help():
    parser = argparse.ArgumentParser(prog="hallmon")
    sub = parser.add_subparsers(dest="command")
    for register in COMMANDS:
        register(sub)
    seen = 0
    for path, p in _parsers(parser, "hallmon"):
        for action in p._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)) or action.help == argparse.SUPPRESS:
                continue
            assert action.help, f"`{path}` {action.option_strings or action.dest} has no help text"
            seen += 1
    assert seen > 80
    res = run("incidents", "flag", "--help")
    assert res.returncode == 0 and "casualties" in res.stdout and "repeat for several" in res.stdout


# ── incidents list / show / flag ─────────────────────────────────────────────────

def test_show_and_list_read_as_a_duty_officer_reads_them(tmp_path, redis_url, service):
    cfg = tmp_path / "hall.yml"
    cfg.write_text(org_config(redis_url), encoding="utf-8")
    svc = service(cfg, env=TOKENS)
    env = {**TOKENS, "HALLMON_URL": svc.base, "HALLMON_TOKEN": TOKENS["HALLMON_T_ADMIN"]}
    start = (datetime.now(timezone.utc) - timedelta(minutes=3)).replace(microsecond=0)
    [inc_id] = post_alerts(svc.base, [alert("system.down", "u1a", "u1", starts=start)])
    local = start.astimezone(SHANGHAI)

    res = run("incidents", "list", env=env)
    assert res.returncode == 0, res.stderr
    head, row, note = res.stdout.splitlines()
    assert head.split()[:4] == ["编号", "级别", "状态", "首次发现"]
    assert row.startswith(inc_id) and "测试一关甲厅" in row and "核心业务系统无法访问" in row and "未确认" in row
    assert local.strftime("%Y-%m-%d %H:%M") in row and "system.down" not in row
    assert "Asia/Shanghai" in note

    res = run("incidents", "show", inc_id, env=env)
    assert res.returncode == 0, res.stderr
    text = res.stdout
    assert "核心业务系统无法访问 (system.down)" in text
    assert "测试一关甲厅" in text and "测试一关" in text and "u1a" not in text.replace(inc_id, "")
    assert f"首次发现：{local.strftime('%Y-%m-%d %H:%M:%S')}" in text
    doc = json.loads(run("incidents", "show", inc_id, "--json", env=env).stdout)
    assert doc["id"] == inc_id and doc["timeline"] and doc["clocks"]
    for clock in doc["clocks"]:  # each clock with its title, status and local due time
        due = datetime.fromisoformat(clock["due_at"]).astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")
        assert any(clock["title"] in line and "待报送" in line and due in line for line in text.splitlines())
    assert "处置记录（最近 1 条，共 1 条）" in text and "事件开始" in text and "记录完整" in text

    res = run("incidents", "ack", inc_id, "--by", "测试值班长甲", env=env)
    assert res.returncode == 0 and "已确认" in res.stdout
    res = run("incidents", "show", inc_id, env={**env, "HALLMON_URL": f"http://127.0.0.1:{closed_port()}"})
    assert res.returncode == 1 and "cannot reach" in res.stderr and res.stdout == ""  # the service down
    en = run("incidents", "show", inc_id, "--lang", "en", env=env).stdout
    assert "Core business system unreachable (system.down)" in en and "Acknowledged by: 测试值班长甲" in en
    assert "Timeline (last 2 of 2)" in en and "Pending" in en and "(times in Asia/Shanghai)" in en


def test_flag_sets_harm_flags_and_bad_flags_change_nothing(tmp_path, redis_url, service):
    cfg = tmp_path / "hall.yml"
    cfg.write_text(org_config(redis_url), encoding="utf-8")
    svc = service(cfg, env=TOKENS)
    env = {**TOKENS, "HALLMON_URL": svc.base, "HALLMON_TOKEN": TOKENS["HALLMON_T_ADMIN"]}
    [inc_id] = post_alerts(svc.base, [alert("power.on_battery", "u3a", "u3")])
    before = json.loads(run("incidents", "show", inc_id, "--json", env=env).stdout)
    assert before["flags"] == [] and before["level"] > 1

    res = run("incidents", "flag", inc_id, "--flag", "casualties", "--by", "测试值班领导甲", env=env)
    assert res.returncode == 2 and "--reason" in res.stderr  # the reason is required
    res = run("incidents", "flag", inc_id, "--flag", "nope", "--by", "测试值班领导甲", "--reason", "x", env=env)
    assert res.returncode == 2 and "invalid choice: 'nope'" in res.stderr
    res = run("incidents", "flag", "INC-19990101-0001", "--flag", "injuries", "--by", "测试值班领导甲",
              "--reason", "x", env=env)
    assert res.returncode == 1 and "404" in res.stderr
    unchanged = json.loads(run("incidents", "show", inc_id, "--json", env=env).stdout)
    assert unchanged["flags"] == [] and len(unchanged["timeline"]) == len(before["timeline"])

    res = run("incidents", "flag", inc_id, "--flag", "casualties", "--flag", "property_loss",
              "--by", "测试值班领导甲", "--reason", "现场报告一人死亡", env=env)
    assert res.returncode == 0, res.stderr
    assert "一级" in res.stdout  # Shenzhen 2.2: casualties make it level 1
    after = json.loads(run("incidents", "show", inc_id, "--json", env=env).stdout)
    assert sorted(after["flags"]) == ["casualties", "property_loss"] and after["level"] == 1
    assert after["timeline"][-1]["action"] == "flags_set" and after["timeline"][-1]["actor"] == "测试值班领导甲"
    shown = run("incidents", "show", inc_id, env=env).stdout
    assert "伤亡与损失：有人员死亡、有财产损失" in shown
    assert "测试值班领导甲  登记伤亡与损失  2 → 1 (harm-casualties)；有人员死亡、有财产损失；现场报告一人死亡" in shown


# ── channel test ─────────────────────────────────────────────────────────────────

class Inbox:
    def __init__(self):
        self.messages: list[tuple[list[str], str]] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.rcpt_tos, envelope.content.decode()))
        return "250 OK"


CHANNELS = """\
paging:
  people:
    - {{id: duty-a, name: 测试值班长甲, channels: [ops-webhook, ops-mail, ops-ding]}}
  channels:
    - {{id: ops-webhook, type: webhook, url: "{base}/page", secret_env: NC_WEBHOOK_SECRET}}
    - {{id: ops-mail, type: email, to: duty-a@example.invalid, smtp: "127.0.0.1:{smtp}", starttls: false}}
    - {{id: ops-ding, type: dingtalk, url: "{base}/robot/send", token_env: NC_DING_TOKEN, secret_env: NC_DING_SECRET}}
    - {{id: gone, type: webhook, url: "http://127.0.0.1:{closed}/page"}}
    - {{id: hung, type: webhook, url: "http://127.0.0.1:{hung}/page", timeout: 1s}}
  rosters:
    - id: hall-duty
      timezone: Asia/Shanghai
      layers:
        - {{id: duty_chief, members: [duty-a], rotation: {{every: 1d, handoff: "08:30", start: 2026-11-02}}}}
  policies:
    - id: default
      steps:
        - {{notify: {{roster: hall-duty, layer: duty_chief}}}}
"""


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_channel_test_sends_through_the_configured_channel(tmp_path):
    robots = await Robots(webhook_secret="hook-secret-0123").start()
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    hung = socket.socket()  # accepts connections (the backlog) and never answers
    hung.bind(("127.0.0.1", 0))
    hung.listen(8)
    try:
        cfg = tmp_path / "hall.yml"
        cfg.write_text(org_config("redis://127.0.0.1:1/0") + CHANNELS.format(
            base=robots.base, smtp=controller.port, closed=closed_port(), hung=hung.getsockname()[1]),
            encoding="utf-8")
        secrets = {"NC_WEBHOOK_SECRET": "hook-secret-0123", "NC_DING_TOKEN": robots.dingtalk_token,
                   "NC_DING_SECRET": robots.dingtalk_secret}

        code, out, err = await arun("channel", "test", "ops-webhook", "-c", str(cfg), env=secrets)
        assert code == 0, err
        assert "ops-webhook" in out and "webhook" in out
        [payload] = robots.received["webhook"]  # signed as a page is (Robots checks the HMAC)
        assert payload["kind"] == "test" and payload["title"] == "【测试】hallmon 通知渠道测试"
        assert "ops-webhook" in payload["text"] and payload["recipient"]["name"] == "测试值班长甲"
        assert robots.rejected == []

        code, out, err = await arun("channel", "test", "ops-mail", "-c", str(cfg), "--lang", "en", env=secrets)
        assert code == 0, err
        [(rcpt, content)] = inbox.messages
        assert rcpt == ["duty-a@example.invalid"] and "Subject: [TEST] hallmon channel test" in content

        code, out, err = await arun("channel", "test", "ops-ding", "-c", str(cfg), env=secrets)
        assert code == 0, err
        [ding] = robots.received["dingtalk"]  # token and signature checked by the robot
        assert ding["markdown"]["title"] == "【测试】hallmon 通知渠道测试"

        # failures: a peer down, an unknown channel, a channel whose secret is absent here
        code, out, err = await arun("channel", "test", "gone", "-c", str(cfg), env=secrets)
        assert code == 1 and "渠道 gone 发送失败" in err
        code, out, err = await arun("channel", "test", "hung", "-c", str(cfg), "--lang", "en", env=secrets)
        assert code == 1 and "Channel hung failed" in err  # the channel's own timeout ends the wait
        code, out, err = await arun("channel", "test", "nope", "-c", str(cfg), env=secrets)
        assert code == 2 and "no channel 'nope'" in err and "ops-webhook" in err
        code, out, err = await arun("channel", "test", "ops-ding", "-c", str(cfg))
        assert code == 2 and "env:NC_DING_TOKEN" in err
        assert len(robots.received["webhook"]) == 1 and len(robots.received["dingtalk"]) == 1
    finally:
        hung.close()
        controller.stop()
        await robots.stop()


# ── check-config, probe, run, shift-report ───────────────────────────────────────

def test_check_config_and_probe_need_no_secrets_and_take_c(tmp_path):
    example = str(ROOT / "examples/hallmon.yml")
    for args in (("check-config", example), ("check-config", "-c", example)):
        res = run(*args)
        assert res.returncode == 0, res.stderr
        assert "ok (" in res.stdout and "env:DINGTALK_TOKEN" in res.stdout  # named, not an error
    # the other offline commands that read a config need no secret either
    res = run("oncall", "who", "-c", example, "--at", "2026-12-01T10:00+08:00", "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)
    alerts = tmp_path / "alerts.json"
    alerts.write_text(json.dumps([alert("system.down", "futian-hall", "futian")]))
    res = run("plan", "explain", "-c", example, "--alerts", str(alerts), "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)[0]["sites"] == ["futian-hall"]
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    try:
        port = listener.getsockname()[1]
        cfg = write_config(tmp_path / "p.yml", f"""\
            api:
              tokens:
                - {{name: ops, secret_env: NC_ABSENT_TOKEN, scopes: [incidents:read]}}
            organisation:
              name: t
              units:
                - id: u1
                  name: 测试单位
                  sites:
                    - id: s1
                      name: 测试现场
                      targets:
                        - {{name: up, kind: net.tcp, address: "127.0.0.1:{port}"}}
                        - {{name: ups-v3, kind: ups.snmp, address: "127.0.0.1:{port}", version: v3, user: hallmon,
                            auth_key_env: NC_ABSENT_SNMP_KEY}}
            """)
        res = run("check-config", "-c", str(cfg))
        assert res.returncode == 0, res.stderr
        assert "env:NC_ABSENT_TOKEN" in res.stdout and "env:NC_ABSENT_SNMP_KEY" in res.stdout
        res = run("probe", "-c", str(cfg), "up", "--json")
        assert res.returncode == 0, res.stderr
        [row] = json.loads(res.stdout)
        assert row["target"] == "up" and row["ok"] is True
        res = run("probe", "-c", str(cfg), "ups-v3")  # a target's own secret is needed to probe it
        assert res.returncode == 2 and "target ups-v3 needs env:NC_ABSENT_SNMP_KEY" in res.stderr
    finally:
        listener.close()
    res = run("run", "-c", str(cfg))  # the service itself still refuses to start without them
    assert res.returncode == 1 and "NC_ABSENT_TOKEN is not set" in res.stderr


def test_check_config_reports_every_error_in_one_pass(tmp_path):
    cfg = write_config(tmp_path / "bad.yml", """\
        plan: no-such-plan
        organisation:
          name: t
          units:
            - id: u1
              name: 测试单位
              plan: also-missing
              sites:
                - id: s1
                  name: 测试现场
                  targets:
                    - {name: a, kind: net.tcp, address: "127.0.0.1:9", interval: -5}
        paging:
          people:
            - {id: p1, name: 测试值班长甲, channels: [c1]}
          channels:
            - {id: c1, type: dingtalk, url: "http://127.0.0.1:1/x", tokn_env: X}
            - {id: c2, type: webhook, url: 5}
        api:
          tokens:
            - {name: port, secret_env: NC_ABSENT, scopes: [incidents:read], units: [nope]}
        """)
    res = run("check-config", "-c", str(cfg))
    assert res.returncode == 1
    lines = res.stderr.splitlines()
    assert lines[-1] == "6 error(s)"
    assert lines[:-1] == [
        f"{cfg}:2: plan: no-such-plan: no such plan; built in: default, guizhou-tax, hohhot-customs, putian-tax, "
        "shenzhen-customs, xiamen-tax",
        f"{cfg}:8: organisation.units[0].plan: also-missing: no such plan; built in: default, guizhou-tax, "
        "hohhot-customs, putian-tax, shenzhen-customs, xiamen-tax",
        f"{cfg}:13: organisation.units[0].sites[0].targets[0].interval: expected a duration like 10s, got -5",
        f"{cfg}:18: paging.channels[0].tokn_env: unknown key (a typo?)",
        f"{cfg}:19: paging.channels[1].url: Input should be a valid string, got 5",
        f"{cfg}:22: api.tokens[0].units[0]: no unit 'nope'",  # checked though the schema failed elsewhere
    ]
    assert run("check-config").returncode == 2


def test_run_warns_once_without_paging_and_shift_report_says_no_roster(tmp_path, redis_url, service):
    cfg = tmp_path / "hall.yml"
    cfg.write_text(org_config(redis_url), encoding="utf-8")
    svc = service(cfg, env=TOKENS)
    warned = [e for e in svc.events() if e.get("event") == "paging_not_configured"]
    assert len(warned) == 1 and warned[0]["level"] == "warning" and "paging:" in warned[0]["effect"]
    env = {**TOKENS, "HALLMON_URL": svc.base, "HALLMON_TOKEN": TOKENS["HALLMON_T_ADMIN"]}
    res = run("shift-report", env=env)
    assert res.returncode == 1 and res.stdout.strip() == "没有配置值班表。" and "None" not in res.stdout + res.stderr
    res = run("shift-report", "--lang", "en", env=env)
    assert res.returncode == 1 and res.stdout.strip() == "No roster configured."


@pytest.mark.parametrize("section", [CHANNELS])
def test_run_with_paging_gives_no_such_warning(tmp_path, redis_url, service, section):
    text = org_config(redis_url) + section.format(base="http://127.0.0.1:1", smtp=1, closed=1, hung=1)
    cfg = tmp_path / "hall.yml"
    cfg.write_text(text, encoding="utf-8")
    svc = service(cfg, env={**TOKENS, "NC_WEBHOOK_SECRET": "s", "NC_DING_TOKEN": "t", "NC_DING_SECRET": "s"})
    assert not [e for e in svc.events() if e.get("event") == "paging_not_configured"]


# ── every built-in plan ──────────────────────────────────────────────────────────

@pytest.mark.parametrize("plan", builtin_ids())
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_summaries_read_in_words_under_every_built_in_plan(tmp_path, plan, lang):
    """The same incidents the service would open (plan explain's path), shown as the CLI
    shows them: every fault in words, every clock by its title with its local due time."""
    cfg = tmp_path / "hall.yml"
    cfg.write_text(org_config("redis://127.0.0.1:1/0", plan=plan), encoding="utf-8")
    with secrets_optional():
        view = ConfigView.from_config(load_config(cfg)).with_plan(plan)
    now = datetime(2026, 11, 25, 2, 0, tzinfo=timezone.utc)
    raw = [alert(f, "u1a", "u1", starts=now - timedelta(minutes=5)) for f in
           ("system.down", "power.on_battery", "pos.link_down", "queue.down", "network.down")]
    incidents = explain(parse_list(raw), view, now)
    assert len(incidents) >= 3
    org = summary.Org(ZoneInfo("Asia/Shanghai"), {"u1": "测试一关"}, {"u1a": "测试一关甲厅"}, ())
    docs = [inc.public_json() for inc in incidents]
    listed = summary.list_text(docs, org, lang)
    for inc, doc in zip(incidents, docs):
        shown = summary.show_text(doc, org, lang)
        for fault in inc.faults:
            assert f"{fault_name(fault, lang)}" in shown and fault_name(fault, lang, code=False) in listed
        assert "测试一关甲厅" in shown and "u1a" not in shown
        for clock in inc.clocks:
            title = clock.title_en if lang == "en" else clock.title
            due = clock.due_at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")
            assert any(title in line and due in line for line in shown.splitlines()), (plan, clock.id)


def test_paging_references_are_checked_in_the_same_pass_as_schema_errors(tmp_path):
    cfg = write_config(tmp_path / "bad.yml", """\
        organisation:
          name: t
          units:
            - id: u1
              name: 测试单位
              sites:
                - id: s1
                  name: 测试现场
                  targets:
                    - {name: a, kind: net.tcp, address: "127.0.0.1:9", interval: soon}
        paging:
          people:
            - {id: p1, name: 测试值班长甲, channels: [hook]}
          channels:
            - {id: hook, type: webhook, url: "http://127.0.0.1:9/x"}
          policies:
            - id: default
              steps:
                - {notify: {roster: missing, layer: duty_chief}}
        """)
    with pytest.raises(ConfigError) as err:
        load_config(cfg)
    assert [(i.line, i.path) for i in err.value.issues] == [
        (11, "organisation.units[0].sites[0].targets[0].interval"),
        (20, "paging.policies[0].steps[0].notify.roster")]
