"""A paging section for the router test organisation: fictitious people, local robots."""
from __future__ import annotations

import textwrap


def paging_yaml(robots_base: str, wait: str = "1s", extra_channels: str = "", leader_channels: str = "[ops-webhook]",
                policies: str | None = None) -> str:
    policies = policies or f"""\
            - id: default
              steps:
                - {{notify: {{roster: hall-duty, layer: duty_chief}}}}
                - {{wait: {wait}}}
                - {{notify: {{roster: hall-duty, layer: duty_leader}}}}
"""
    return textwrap.dedent(f"""\
        paging:
          people:
            - {{id: duty-a, name: 测试值班长甲, channels: [ops-webhook]}}
            - {{id: duty-b, name: 测试值班长乙, channels: [ops-webhook]}}
            - {{id: lead-a, name: 测试值班领导甲, channels: {leader_channels}, phone: "138-0000-0001"}}
            - {{id: lead-b, name: 测试值班领导乙, channels: [ops-webhook], lang: en}}
          channels:
            - {{id: ops-webhook, type: webhook, url: "{robots_base}/page", retries: 1, backoff: 100ms}}
{extra_channels}          rosters:
            - id: hall-duty
              timezone: Asia/Shanghai
              layers:
                - {{id: duty_chief, members: [duty-a, duty-b], rotation: {{every: 1d, handoff: "08:30", start: 2026-11-02}}}}
                - {{id: duty_leader, members: [lead-a, lead-b], rotation: {{every: 7d, handoff: "08:30", start: 2026-11-02}}}}
          policies:
{policies}""")
