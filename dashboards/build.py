"""Grafana dashboards as code: ``python dashboards/build.py`` writes dashboards/json/*.json
(a test checks they are in sync, and a test runs every panel's query against a real
Prometheus scraping hallmon). Plain dictionaries in Grafana's JSON model: the handful of
panel shapes used here do not need grafana-foundation-sdk's large dependency.

Titles are Chinese (what a hall's operators read), descriptions English.
"""
from __future__ import annotations

import json
from pathlib import Path

OUT = Path(__file__).with_name("json")
SEL = 'unit=~"$unit",site=~"$site"'
DS = {"type": "prometheus", "uid": "${datasource}"}


def panel(title: str, description: str, exprs: list[tuple[str, str]], unit: str, kind: str = "timeseries",
          thresholds: list[tuple[float, str]] | None = None, links: list[dict] | None = None,
          w: int = 12, h: int = 8) -> dict:
    steps = [{"color": "green", "value": None}] + [{"color": c, "value": v} for v, c in (thresholds or [])]
    return {
        "type": kind, "title": title, "description": description, "datasource": DS,
        "gridPos": {"w": w, "h": h},
        "fieldConfig": {"defaults": {"unit": unit, "thresholds": {"mode": "absolute", "steps": steps},
                                     "links": links or []}, "overrides": []},
        "targets": [{"refId": chr(65 + i), "expr": e, "legendFormat": legend, "datasource": DS}
                    for i, (e, legend) in enumerate(exprs)],
        "options": {},
    }


INCIDENT_LINK = [{"title": "该场所的事件 / incidents of this site",
                  "url": "${hallmon_url}/api/v1/incidents?site=${__field.labels.site}"}]


def dashboard(uid: str, title: str, description: str, panels: list[dict]) -> dict:
    x = y = 0
    for i, p in enumerate(panels):
        p["id"] = i + 1
        if x + p["gridPos"]["w"] > 24:
            x, y = 0, y + 8
        p["gridPos"].update(x=x, y=y)
        x += p["gridPos"]["w"]
    return {
        "uid": uid, "title": title, "description": description, "tags": ["hallmon"], "editable": True,
        "schemaVersion": 39, "time": {"from": "now-6h", "to": "now"}, "refresh": "30s", "timezone": "browser",
        "templating": {"list": [
            {"name": "datasource", "type": "datasource", "query": "prometheus", "label": "数据源"},
            {"name": "hallmon_url", "type": "constant", "query": "http://127.0.0.1:9108", "hide": 2},
            {"name": "unit", "type": "query", "label": "单位 unit", "datasource": DS, "includeAll": True,
             "multi": True, "allValue": ".*", "query": {"query": "label_values(hallmon_probe_success, unit)"},
             "refresh": 2},
            {"name": "site", "type": "query", "label": "场所 site", "datasource": DS, "includeAll": True,
             "multi": True, "allValue": ".*",
             "query": {"query": 'label_values(hallmon_probe_success{unit=~"$unit"}, site)'}, "refresh": 2},
        ]},
        "links": [{"title": "hallmon dashboards", "type": "dashboards", "tags": ["hallmon"], "asDropdown": True}],
        "panels": panels,
    }


def dashboards() -> dict[str, dict]:
    return {
        "overview": dashboard("hallmon-overview", "大厅与口岸总览", "Every site's state, open incidents, reports due.", [
            panel("各场所状态", "Worst probe result per site (1 = all devices answer).",
                  [(f"min by (unit, site) (hallmon_probe_success{{{SEL}}})", "{{site}}")], "bool_yes_no", "stat",
                  [(0.5, "green")], INCIDENT_LINK, w=24),
            panel("活跃故障", "Faults active now, per site and fault.",
                  [(f"sum by (site, fault) (hallmon_fault_active{{{SEL}}})", "{{site}} {{fault}}")], "none",
                  "table", [(1, "red")], INCIDENT_LINK),
            panel("未结事件（按级别）", "Incidents not yet resolved, by plan level.",
                  [("sum by (level) (hallmon_incidents_open)", "L{{level}}")], "none", "bargauge", [(1, "red")]),
            panel("报告截止倒计时", "Seconds until each pending report is due (negative: late).",
                  [("sort(hallmon_clock_due_timestamp_seconds - time())", "{{incident}} {{clock}}")], "s", "table",
                  [(-1e12, "red"), (0, "orange"), (900, "green")]),
            panel("超时未报", "Reports past due and not filed, by level.",
                  [("sum by (level) (hallmon_clocks_overdue)", "L{{level}}")], "none", "stat", [(1, "red")]),
        ]),
        "power": dashboard("hallmon-power", "供电与UPS", "UPS state, charge, runtime and on-battery history.", [
            panel("UPS 电池供电", "1 while the UPS runs on battery (mains lost).",
                  [(f"hallmon_ups_on_battery{{{SEL}}}", "{{site}} {{target}}")], "bool_on_off", "stat", [(1, "red")]),
            panel("电池电量", "Battery charge.", [(f"hallmon_ups_battery_charge_ratio{{{SEL}}}", "{{target}}")],
                  "percentunit", "timeseries", [(0.2, "red"), (0.5, "orange")]),
            panel("剩余供电时间", "Estimated battery runtime.",
                  [(f"hallmon_ups_battery_runtime_seconds{{{SEL}}}", "{{target}}")], "s", "timeseries",
                  [(300, "red"), (900, "orange")]),
            panel("负载与市电电压", "Output load; input (mains) voltage.",
                  [(f"hallmon_ups_load_ratio{{{SEL}}}", "load {{target}}"),
                   (f"hallmon_ups_input_voltage_volts{{{SEL}}}", "V {{target}}")], "percentunit"),
            panel("电池供电历史", "Whether each UPS was on battery during the last hour.",
                  [(f"max_over_time(hallmon_ups_on_battery{{{SEL}}}[1h])", "{{target}}")], "bool_on_off",
                  "state-timeline", [(1, "red")], w=24),
        ]),
        "halls": dashboard("hallmon-halls", "办税与通关大厅排队", "Queue waiting, longest wait, tickets per hour.", [
            panel("排队等候人数", "People waiting.", [(f"hallmon_queue_waiting{{{SEL}}}", "{{site}}")], "none",
                  "timeseries", [(20, "orange"), (50, "red")]),
            panel("最长等候时间", "Longest current wait.",
                  [(f"hallmon_queue_longest_wait_seconds{{{SEL}}}", "{{site}}")], "s", "timeseries",
                  [(1200, "orange"), (1800, "red")]),
            panel("每小时取号量", "Tickets issued per hour.",
                  [(f"increase(hallmon_queue_tickets_issued_total{{{SEL}}}[1h])", "{{site}}")], "none", "bargauge"),
            panel("开放窗口数", "Service windows open.", [(f"hallmon_queue_windows_open{{{SEL}}}", "{{site}}")],
                  "none", "stat", [(0, "red"), (1, "green")]),
        ]),
        "payment": dashboard("hallmon-payment", "POS 缴款链路", "POS link state and ISO 8583 echo round trip.", [
            panel("POS 链路状态", "1 when the acquirer answered the echo with 00.",
                  [(f"hallmon_pos_link_up{{{SEL}}}", "{{site}} {{target}}")], "bool_on_off", "stat",
                  [(0.5, "green")], INCIDENT_LINK),
            panel("报文往返时间", "ISO 8583 echo round trip.",
                  [(f"hallmon_pos_echo_rtt_seconds{{{SEL}}}", "{{target}}"),
                   (f"hallmon:pos_echo_rtt_seconds:p95_5m{{{SEL}}}", "p95 5m {{target}}")], "s", "timeseries",
                  [(1, "orange"), (2, "red")]),
        ]),
        "network": dashboard("hallmon-network", "网络与业务系统", "Reachability, loss, latency, certificates.", [
            panel("探测成功率", "Share of successful checks over 5 minutes, per target.",
                  [(f"avg_over_time(hallmon_probe_success{{{SEL}}}[5m])", "{{site}} {{target}}")], "percentunit",
                  "timeseries", [(0.9, "orange"), (0.99, "green")]),
            panel("丢包率与往返时延", "ICMP loss and round trip.",
                  [(f"hallmon_net_loss_ratio{{{SEL}}}", "loss {{target}}"),
                   (f"hallmon_net_rtt_seconds{{{SEL}}}", "rtt {{target}}")], "percentunit", "timeseries",
                  [(0.2, "red")]),
            panel("业务系统响应时间", "Core system HTTP latency.",
                  [(f"hallmon_http_duration_seconds{{{SEL}}}", "{{target}}")], "s", "timeseries",
                  [(2, "orange"), (5, "red")]),
            panel("证书剩余天数", "Days until each TLS certificate expires.",
                  [(f"(hallmon_tls_cert_expiry_timestamp_seconds{{{SEL}}} - time()) / 86400", "{{target}}")], "d",
                  "bargauge", [(0, "red"), (14, "orange"), (30, "green")]),
            panel("DNS 解析时间", "DNS lookup time.", [(f"hallmon_dns_lookup_seconds{{{SEL}}}", "{{target}}")], "s"),
        ]),
        "hallmon": dashboard("hallmon-self", "hallmon 自身运行", "Scheduler lag, checks, pages sent.", [
            panel("调度延迟 p99", "How late checks start (99th percentile over 5 minutes).",
                  [("histogram_quantile(0.99, sum by (le) (rate(hallmon_scheduler_lag_seconds_bucket[5m])))", "p99")],
                  "s", "timeseries", [(0.5, "orange"), (1, "red")]),
            panel("进行中的检查", "Checks in flight.", [("sum(hallmon_scheduler_checks_in_flight)", "in flight")],
                  "none"),
            panel("检查速率", "Checks per second by kind and outcome; skipped checks.",
                  [("sum by (kind, outcome) (rate(hallmon_checks_total[5m]))", "{{kind}} {{outcome}}"),
                   ("sum(rate(hallmon_scheduler_checks_skipped_total[5m]))", "skipped")], "ops"),
            panel("通知发送结果", "Pages handed to channels, by outcome.",
                  [("sum by (channel, outcome) (hallmon_pages_sent_total)", "{{channel}} {{outcome}}")], "none",
                  "bargauge", [(1, "green")]),
        ]),
    }


def write() -> None:
    OUT.mkdir(exist_ok=True)
    for name, dash in dashboards().items():
        (OUT / f"{name}.json").write_text(json.dumps(dash, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    write()
