"""Regenerates docs/console.png and docs/console-incident.png, the README's pictures
of the console: a live `hallmon run` with a simulated UPS on battery and two more
incidents, photographed by Debian's chromium.

    .venv/bin/python scripts/console_screenshot.py
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from simulators.redisproc import RedisServer  # noqa: E402
from tests.consolekit import Hall, launch, sign_in  # noqa: E402


def main() -> int:
    out = ROOT / "docs"
    out.mkdir(exist_ok=True)
    with RedisServer(appendonly=False) as redis, tempfile.TemporaryDirectory() as tmp:
        hall = Hall(Path(tmp), redis.url)
        try:
            hall.ups(ups_status="OB DISCHRG", battery_charge="64", input_voltage="0")
            power = hall.wait(lambda: next((i for i in hall.api("GET", "/api/v1/incidents")[1]["incidents"]
                                            if i["category"] == "power"), None))
            hall.open_incident("port-1", fault="pos.link_down", system="pos")
            hall.open_incident("s-xiamen-tax", fault="queue.congested", system="queue")
            hall.api("POST", f"/api/v1/incidents/{power['id']}/ack", {"by": "测试值班长甲"})
            with sync_playwright() as p:
                browser = launch(p)
                page = sign_in(browser, hall.base, "chief", viewport={"width": 1100, "height": 760})
                page.wait_for_selector('[data-testid="incident-row"]')
                time.sleep(1.2)  # a countdown tick
                page.screenshot(path=str(out / "console.png"), full_page=False)
                page.locator(f'[data-incident-id="{power["id"]}"] a').click()
                page.wait_for_selector('[data-testid="timeline-entry"]')
                page.set_viewport_size({"width": 420, "height": 900})
                page.screenshot(path=str(out / "console-incident.png"), full_page=False)
                browser.close()
        finally:
            hall.close()
    print(f"wrote {out / 'console.png'} and {out / 'console-incident.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
