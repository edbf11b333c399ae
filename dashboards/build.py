"""hallmon's Grafana dashboards, as code. Writes dashboards/json/*.json (what Grafana's
provisioning in dashboards/provisioning/ loads); the JSON is committed.

    python dashboards/build.py [--check] [--dir DIR]

``--check`` writes nothing and exits 1 if a committed dashboard differs from what this
file builds (the test suite runs it). Titles are Chinese (what a duty officer reads),
descriptions English. Every panel has a unit; thresholds where a value means trouble.
Template variables: ``datasource``, ``unit``, ``site`` (regex, "All" = ``.*``) and
``hallmon_url`` (the base of links from a site to its incidents).
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
SEL = 'unit=~"$unit", site=~"$site"'
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}

GREEN, ORANGE, RED = "green", "orange", "red"
UP_DOWN = {"0": ("故障", RED), "1": ("正常", GREEN)}


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str = ""


@dataclass(frozen=True)
class Panel:
    title: str
    description: str
    queries: tuple[Query, ...]
    unit: str
    kind: str = "timeseries"  # timeseries, stat, gauge, table
    thresholds: tuple[tuple[float | None, str], ...] = ((None, GREEN),)
    mappings: dict[str, tuple[str, str]] = field(default_factory=dict)
    links: tuple[tuple[str, str], ...] = ()  # (title, url): data links on every value
    width: int = 12
    height: int = 8
    minmax: tuple[float, float] | None = None


@dataclass(frozen=True)
class Dashboard:
    uid: str
    title: str
    description: str
    panels: tuple[Panel, ...]
    tags: tuple[str, ...] = ("hallmon",)


def q(expr: str, legend: str = "{{site}} {{target}}") -> Query:
    return Query(expr, legend)


# links open the console's pages (a person signs in there; the API would need a token in the URL)
INCIDENTS_OF_SITE = ("该现场的事件 (open incidents at this site)",
                     "${hallmon_url}/console/#/?site=${__field.labels.site}")
INCIDENT = ("事件详情 (the incident)", "${hallmon_url}/console/#/incident/${__field.labels.incident}")

OVERVIEW = Dashboard("hallmon-overview", "hallmon 总览", "Every site's state, open incidents, report clocks.", (
    Panel("各现场状态", "Worst probe result per site: 0 if any of its targets fails. Click a site for its incidents.",
          (q(f"min by (unit, site) (hallmon_probe_success{{{SEL}}})", "{{unit}} / {{site}}"),),
          "none", "stat", ((None, RED), (1, GREEN)), UP_DOWN, (INCIDENTS_OF_SITE,), width=24, height=6),
    Panel("未结事件（按级别）", "Incidents not yet resolved, by plan level (1 is the most severe).",
          (q("max by (level) (hallmon_incidents_open)", "{{level}} 级"),),
          "none", "stat", ((None, GREEN), (1, RED)), width=8, height=6),
    Panel("超时未报的报告", "Report clocks past due and not filed, by incident level.",
          (q("max by (level) (hallmon_clocks_overdue)", "{{level}} 级"),),
          "none", "stat", ((None, GREEN), (1, RED)), width=8, height=6),
    Panel("各现场活动故障数", "Faults active after hysteresis, per site.",
          (q(f"sum by (unit, site) (hallmon_fault_active{{{SEL}}})", "{{unit}} / {{site}}"),),
          "none", "stat", ((None, GREEN), (1, RED)), links=(INCIDENTS_OF_SITE,), width=8, height=6),
    Panel("未关闭的事件", "Every open incident (drills apart), newest first: how long since it was first seen; "
          "each links to its console page.",
          (q("sort(time() - max by (incident, level, category, status) "
             "(hallmon_incident_open_since_timestamp_seconds))", "{{incident}} L{{level}} {{category}}"),),
          "s", "table", ((None, GREEN), (900, ORANGE), (3600, RED)), links=(INCIDENT,), width=24, height=8),
    Panel("即将到期的报告（倒计时）", "Pending report clocks, soonest first: seconds until each is due.",
          (q("sort(max by (incident, clock, level) (hallmon_clock_due_timestamp_seconds) - time())",
             "{{incident}} {{clock}}"),),
          "s", "table", ((None, RED), (300, ORANGE), (900, GREEN)), links=(INCIDENT,), width=24, height=8),
))

POWER = Dashboard("hallmon-power", "电源（UPS）", "UPS state, battery charge and runtime, on-battery history.", (
    Panel("UPS 供电状态", "1 while the UPS runs on battery (mains lost).",
          (q(f"hallmon_ups_on_battery{{{SEL}}}"),), "none", "stat", ((None, GREEN), (1, RED)),
          {"0": ("市电", GREEN), "1": ("电池", RED)}, (INCIDENTS_OF_SITE,), width=8),
    Panel("电池电量", "Battery charge.", (q(f"hallmon_ups_battery_charge_ratio{{{SEL}}}"),),
          "percentunit", "gauge", ((None, RED), (0.2, ORANGE), (0.5, GREEN)), width=8, minmax=(0, 1)),
    Panel("负载", "Output load of the UPS.", (q(f"hallmon_ups_load_ratio{{{SEL}}}"),),
          "percentunit", "gauge", ((None, GREEN), (0.8, ORANGE), (0.9, RED)), width=8, minmax=(0, 1)),
    Panel("剩余续航时间", "The UPS's own estimate of the battery runtime left.",
          (q(f"hallmon_ups_battery_runtime_seconds{{{SEL}}}"),), "s", thresholds=((None, RED), (600, ORANGE),
                                                                                   (1800, GREEN))),
    Panel("30 分钟后电量预测", "Battery charge projected 30 minutes ahead from the last 10 minutes' trend.",
          (q(f"target:hallmon_ups_battery_charge_ratio:predict_30m{{{SEL}}}"),), "percentunit",
          thresholds=((None, RED), (0.1, ORANGE), (0.3, GREEN))),
    Panel("电池供电历史", "Whether the UPS ran on battery at any time in each 5-minute window.",
          (q(f"max_over_time(hallmon_ups_on_battery{{{SEL}}}[5m])"),), "none", thresholds=((None, GREEN), (1, RED))),
    Panel("市电输入电压", "Mains input voltage; China's supply is 220 V, -10 % .. +7 %.",
          (q(f"hallmon_ups_input_voltage_volts{{{SEL}}}"),), "volt",
          thresholds=((None, RED), (198, GREEN), (236, RED))),
))

HALLS = Dashboard("hallmon-halls", "大厅排队", "Queue systems: waiting, longest wait, tickets per hour.", (
    Panel("排队等候人数", "People waiting; the queue.http default for congestion is more than 20.",
          (q(f"hallmon_queue_waiting{{{SEL}}}"),), "short", thresholds=((None, GREEN), (15, ORANGE), (21, RED))),
    Panel("最长等候时间", "Longest current wait; congestion over 30 minutes by default.",
          (q(f"hallmon_queue_longest_wait_seconds{{{SEL}}}"),), "s",
          thresholds=((None, GREEN), (1200, ORANGE), (1800, RED))),
    Panel("每小时取号数", "Tickets issued in the last hour (the counter resets daily).",
          (q(f"increase(hallmon_queue_tickets_issued_total{{{SEL}}}[1h])"),), "short"),
    Panel("排队增长速度", "Change of the waiting count per minute over 10 minutes; over 3 alerts.",
          (q(f"target:hallmon_queue_waiting:deriv_per_minute_10m{{{SEL}}}"),), "short",
          thresholds=((None, GREEN), (3, RED))),
    Panel("开放窗口数", "Service windows open.", (q(f"hallmon_queue_windows_open{{{SEL}}}"),), "short", "stat",
          ((None, RED), (1, GREEN)), width=24, height=6),
))

PAYMENT = Dashboard("hallmon-payment", "POS 支付", "POS links to the acquirer: state and ISO 8583 echo round trip.", (
    Panel("POS 链路状态", "1 if the acquirer answered the 0800 echo with response code 00.",
          (q(f"hallmon_pos_link_up{{{SEL}}}"),), "none", "stat", ((None, RED), (1, GREEN)),
          {"0": ("中断", RED), "1": ("正常", GREEN)}, (INCIDENTS_OF_SITE,), width=24, height=6),
    Panel("回响时延", "Round trip of the last ISO 8583 echo; pos.slow after 3 s by default.",
          (q(f"hallmon_pos_echo_rtt_seconds{{{SEL}}}"),), "s", thresholds=((None, GREEN), (1, ORANGE), (3, RED))),
    Panel("回响时延 P95（5 分钟）", "95th percentile of the echo round trip over 5 minutes; over 2 s alerts.",
          (q(f"target:hallmon_pos_echo_rtt_seconds:p95_5m{{{SEL}}}"),), "s",
          thresholds=((None, GREEN), (2, RED))),
    Panel("链路通断次数（15 分钟）", "Link state changes in 15 minutes; 4 or more is flapping.",
          (q(f"changes(hallmon_pos_link_up{{{SEL}}}[15m])"),), "short", thresholds=((None, GREEN), (4, RED)),
          width=24),
))

NETWORK = Dashboard("hallmon-network", "网络与业务系统", "Links and core business systems.", (
    Panel("探测结果", "1 if the last check reached the device and understood it.",
          (q(f"hallmon_probe_success{{{SEL}}}"),), "none", "stat", ((None, RED), (1, GREEN)), UP_DOWN,
          (INCIDENTS_OF_SITE,), width=24, height=6),
    Panel("丢包率", "ICMP packet loss of the last check; network.loss over 20 % by default.",
          (q(f"hallmon_net_loss_ratio{{{SEL}}}"),), "percentunit", thresholds=((None, GREEN), (0.2, RED)),
          minmax=(0, 1)),
    Panel("往返时延", "Average ICMP round trip of the last check.", (q(f"hallmon_net_rtt_seconds{{{SEL}}}"),),
          "s", thresholds=((None, GREEN), (0.1, ORANGE), (0.3, RED))),
    Panel("TCP 连接时间", "TCP connect time of the last check.", (q(f"hallmon_tcp_connect_seconds{{{SEL}}}"),),
          "s", thresholds=((None, GREEN), (0.5, ORANGE), (1, RED))),
    Panel("DNS 解析时间", "DNS lookup time of the last check.", (q(f"hallmon_dns_lookup_seconds{{{SEL}}}"),),
          "s", thresholds=((None, GREEN), (0.2, ORANGE), (1, RED))),
    Panel("链路通断次数（15 分钟）", "State changes of network targets in 15 minutes; 4 or more is flapping.",
          (q(f'changes(hallmon_probe_success{{{SEL}, system="network"}}[15m])'),), "short",
          thresholds=((None, GREEN), (4, RED))),
    Panel("业务系统响应时间", "HTTP request duration of core systems' health checks.",
          (q(f"hallmon_http_duration_seconds{{{SEL}}}"),), "s", thresholds=((None, GREEN), (1, ORANGE), (2, RED))),
    Panel("业务系统 HTTP 状态码", "HTTP status of the last check (0: no answer).",
          (q(f"hallmon_http_status_code{{{SEL}}}"),), "none", "stat",
          ((None, RED), (200, GREEN), (400, ORANGE), (500, RED))),
    Panel("证书剩余有效期", "Time until the TLS certificate of each https system expires; alerts under 14 days.",
          (q(f"hallmon_tls_cert_expiry_timestamp_seconds{{{SEL}}} - time()"),), "s", "stat",
          ((None, RED), (14 * 86400, ORANGE), (30 * 86400, GREEN))),
    Panel("探测耗时", "Duration of the last check of every target.",
          (q(f"hallmon_probe_duration_seconds{{{SEL}}}"),), "s", thresholds=((None, GREEN), (2, ORANGE), (5, RED))),
    Panel("活动故障", "Faults by target: 1 while active after hysteresis.",
          (q(f"max by (site, target, fault) (hallmon_fault_active{{{SEL}}})", "{{site}} {{target}} {{fault}}"),),
          "none", "table", ((None, GREEN), (1, RED)), links=(INCIDENTS_OF_SITE,)),
))

SELF = Dashboard("hallmon-self", "hallmon 自身", "hallmon's own health: scheduling, checks, paging.", (
    Panel("采集状态", "1 if Prometheus scraped the hallmon instance.", (q('up{job="hallmon"}', "{{instance}}"),),
          "none", "stat", ((None, RED), (1, GREEN)), UP_DOWN, width=8, height=6),
    Panel("监测目标数", "Targets scheduled in each instance (its shard).", (q("hallmon_targets", "{{instance}}"),),
          "short", "stat", ((None, RED), (1, GREEN)), width=8, height=6),
    Panel("进行中的检查", "Checks running now.", (q("hallmon_scheduler_checks_in_flight", "{{instance}}"),),
          "short", "stat", width=8, height=6),
    Panel("调度延迟 P99", "How late checks start, 99th percentile over 5 minutes; over 1 s: add a shard.",
          (q("histogram_quantile(0.99, sum by (instance, le) (rate(hallmon_scheduler_lag_seconds_bucket[5m])))",
             "{{instance}}"),), "s", thresholds=((None, GREEN), (0.5, ORANGE), (1, RED))),
    Panel("跳过的检查", "Checks not started because the previous one still ran: the target's check outlasts "
                   "its interval.", (q("rate(hallmon_scheduler_checks_skipped_total[5m])", "{{instance}}"),),
          "ops", thresholds=((None, GREEN), (0.01, ORANGE))),
    Panel("检查结果", "Checks completed per second, by probe kind and outcome.",
          (q("sum by (kind, outcome) (rate(hallmon_checks_total[5m]))", "{{kind}} {{outcome}}"),), "ops"),
    Panel("已发送通知（按结果，1 小时）", "Pages handed to each channel in the last hour, by outcome.",
          (q("sum by (channel, outcome) (increase(hallmon_pages_sent_total[1h]))", "{{channel}} {{outcome}}"),),
          "short"),
    Panel("告警（每分钟）", "Alerts emitted by the probes' fault tracker, per minute.",
          (q("sum by (state) (rate(hallmon_alerts_total[5m])) * 60", "{{state}}"),), "opm", width=24),
))

DASHBOARDS = (OVERVIEW, POWER, HALLS, PAYMENT, NETWORK, SELF)


def variables() -> list[dict]:
    def label_var(name: str, label: str, query: str) -> dict:
        return {"name": name, "label": label, "type": "query", "datasource": DATASOURCE,
                "query": {"query": query, "refId": name}, "definition": query, "refresh": 2,
                "multi": True, "includeAll": True, "allValue": ".*", "sort": 1,
                "current": {"text": "All", "value": "$__all"}}

    return [
        {"name": "datasource", "label": "数据源", "type": "datasource", "query": "prometheus",
         "current": {"text": "Prometheus", "value": "prometheus"}},
        label_var("unit", "单位", "label_values(hallmon_probe_success, unit)"),
        label_var("site", "现场", 'label_values(hallmon_probe_success{unit=~"$unit"}, site)'),
        {"name": "hallmon_url", "label": "hallmon 地址", "type": "constant", "hide": 2,
         "query": "http://127.0.0.1:9108", "description": "Base URL of hallmon's API, for links to incidents."},
    ]


def panel_json(p: Panel, pid: int, x: int, y: int) -> dict:
    steps = [{"color": c, "value": v} for v, c in p.thresholds]
    defaults: dict = {"unit": p.unit, "thresholds": {"mode": "absolute", "steps": steps}, "color": {
        "mode": "thresholds" if p.kind != "timeseries" else "palette-classic"}}
    if p.minmax:
        defaults["min"], defaults["max"] = p.minmax
    if p.mappings:
        defaults["mappings"] = [{"type": "value", "options": {
            k: {"text": text, "color": color, "index": i} for i, (k, (text, color)) in enumerate(p.mappings.items())}}]
    if p.links:
        defaults["links"] = [{"title": t, "url": u, "targetBlank": True} for t, u in p.links]
    if p.kind == "timeseries" and len(p.thresholds) > 1:
        defaults["custom"] = {"thresholdsStyle": {"mode": "line"}}
    out = {
        "id": pid, "type": p.kind, "title": p.title, "description": p.description, "datasource": DATASOURCE,
        "gridPos": {"h": p.height, "w": p.width, "x": x, "y": y},
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "targets": [{"refId": chr(ord("A") + i), "datasource": DATASOURCE, "expr": qq.expr,
                     "legendFormat": qq.legend, "instant": p.kind in ("stat", "gauge", "table"),
                     "range": p.kind == "timeseries"} for i, qq in enumerate(p.queries)],
        "options": {},
    }
    if p.kind in ("stat", "gauge"):
        out["options"] = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                          "colorMode": "background", "textMode": "value_and_name"}
    elif p.kind == "table":
        out["transformations"] = [{"id": "labelsToFields", "options": {}}]
        out["options"] = {"showHeader": True, "sortBy": [{"displayName": "Value", "desc": False}]}
    return out


def dashboard_json(d: Dashboard) -> dict:
    panels, x, y, row_h = [], 0, 0, 0
    for i, p in enumerate(d.panels, start=1):
        if x + p.width > 24:
            x, y, row_h = 0, y + row_h, 0
        panels.append(panel_json(p, i, x, y))
        x, row_h = x + p.width, max(row_h, p.height)
    links = [{"title": other.title, "url": f"/d/{other.uid}", "type": "link", "keepTime": True,
              "includeVars": True} for other in DASHBOARDS if other is not d]
    return {
        "uid": d.uid, "title": d.title, "description": d.description, "tags": list(d.tags),
        "timezone": "browser", "editable": False, "schemaVersion": 39, "version": 1, "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"}, "templating": {"list": variables()}, "links": links,
        "panels": panels, "annotations": {"list": []},
    }


def render() -> dict[str, str]:
    return {f"{d.uid}.json": json.dumps(dashboard_json(d), ensure_ascii=False, indent=2) + "\n" for d in DASHBOARDS}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if a committed dashboard is stale")
    ap.add_argument("--dir", type=Path, default=HERE / "json")
    args = ap.parse_args(argv)
    stale = []
    built = render()
    for name, text in built.items():
        path = args.dir / name
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            args.dir.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    extra = sorted(p.name for p in args.dir.glob("*.json") if p.name not in built) if args.check else []
    if stale or extra:
        print(f"stale: {', '.join(stale + extra)}: run python dashboards/build.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
