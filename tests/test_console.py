"""The console in a real Chromium against a live `hallmon run`: live updates, the
actions a duty officer takes, drafts to print, languages, unit-limited tokens, sign-in."""
from __future__ import annotations

import re
import time

import pytest
import redis

from tests.consolekit import PLANS, TOKENS, Hall, chromium_present, sign_in

pytestmark = pytest.mark.skipif(not chromium_present(), reason="chromium not installed: run scripts/setup.sh test")


@pytest.fixture(scope="module")
def hall(redis_server, tmp_path_factory):
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    h = Hall(tmp_path_factory.mktemp("console"), redis_server.url)
    yield h
    h.close()


def row(page, incident_id: str):
    return page.locator(f'[data-testid="incident-row"][data-incident-id="{incident_id}"]')


def signed_in(browser, hall, token="chief", **ctx):
    page = sign_in(browser, hall.base, token, **ctx)
    page.wait_for_selector("#levels section", timeout=10_000)
    page.wait_for_selector("#live:not(.off)", timeout=10_000)
    page.wait_for_selector("#live:has-text('实时更新中')")  # the stream is up (no eval: the page's CSP forbids it)
    return page


def test_ups_fault_appears_live_within_a_second_without_reload(browser, hall):
    page = signed_in(browser, hall)
    page.evaluate("window.__sameDocument = true")
    t0 = time.monotonic()
    hall.ups(ups_status="OB DISCHRG", battery_charge="64", input_voltage="0")
    try:
        inc = hall.wait(lambda: next((i for i in hall.api("GET", "/api/v1/incidents?status=open")[1]["incidents"]
                                      if i["category"] == "power"), None), timeout=5)
        opened = time.monotonic()
        row(page, inc["id"]).wait_for(timeout=5000)
        shown = time.monotonic()
        assert shown - opened <= 1.0, f"row shown {shown - opened:.2f}s after the incident was seen open"
        assert shown - t0 <= 3.0
        assert page.evaluate("window.__sameDocument") is True  # no reload
        text = row(page, inc["id"]).inner_text()
        assert "市电中断，UPS 电池供电" in text and "power.on_battery" in text
        assert "测试通关大厅" in text
        clocks = row(page, inc["id"]).get_by_test_id("clock")
        assert clocks.count() >= 1
        assert re.search(r"剩余 \d+:\d\d:\d\d", clocks.first.inner_text())
    finally:
        hall.ups(ups_status="OL", battery_charge="100", input_voltage="229")
    hall.wait(lambda: hall.api("GET", f"/api/v1/incidents/{inc['id']}")[1]["recovered"], timeout=5)
    assert hall.api("POST", f"/api/v1/incidents/{inc['id']}/resolve", {"result": "市电恢复"})[0] == 200
    row(page, inc["id"]).wait_for(state="detached", timeout=3000)
    page.context.close()


@pytest.mark.parametrize("plan", PLANS)
def test_ack_flags_level_report_resolve_through_the_console(browser, hall, plan):
    inc = hall.open_incident(f"s-{plan}")
    page = signed_in(browser, hall)
    row(page, inc["id"]).locator("a").click()
    page.get_by_test_id("action-ack").click()
    page.wait_for_selector('[data-testid="status"]:has-text("已确认")')
    assert page.get_by_test_id("timeline-entry").filter(has_text="已确认响应").filter(has_text="测试值班长甲").count() == 1

    # harm flags: the plan re-grades (Xiamen 3(3): injuries are level Ⅱ)
    flags = page.get_by_test_id("action-flags")
    flags.get_by_label("有人员受伤").check()
    flags.get_by_label("理由").fill("一名办事群众摔伤")
    flags.get_by_role("button").click()
    page.wait_for_selector('[data-testid="timeline-entry"]:has-text("登记伤亡与损失")')
    after = hall.api("GET", f"/api/v1/incidents/{inc['id']}")[1]
    assert "injuries" in after["flags"]
    if plan == "xiamen-tax":
        assert after["level"] == 2 and inc["level"] == 3
    page.locator("h1 [data-testid=level]", has_text=after["level_name"]).wait_for()

    # upgrade with a reason
    level = page.get_by_test_id("action-level")
    level.locator("select").select_option("1")
    level.get_by_label("理由").fill("影响扩大，值班领导决定升级")
    level.get_by_role("button").click()
    page.wait_for_selector('[data-testid="timeline-entry"]:has-text("人工调整级别")')
    now = hall.api("GET", f"/api/v1/incidents/{inc['id']}")[1]
    assert now["level"] == 1 and now["decision"]["reason"] == "影响扩大，值班领导决定升级"
    assert now["decision"]["by"] == "测试值班长甲"
    assert page.locator("h1 [data-testid=level]").inner_text() == now["level_name"]
    assert now["clocks"], f"{plan}: a level-1 incident has reporting clocks"
    clock = next(c for c in now["clocks"] if not c["every_seconds"])  # a recurring one moves on instead
    cell = page.locator(f'tr[data-testid="clock"][data-clock-id="{clock["id"]}"]')
    assert cell.get_attribute("data-status") == "pending"

    # a report time in the future is refused in the page; now it is filed and the clock is met
    report = page.get_by_test_id("action-report")
    report.locator("select").select_option(clock["id"])
    report.locator("input[name=at]").fill("2099-01-01T09:00")
    report.get_by_role("button").click()
    page.wait_for_selector("#message:has-text('报送时间不能晚于现在')")
    report.locator("input[name=at]").fill("")
    report.locator("input[name=note]").fill("已电话报告测试单位领导")
    report.get_by_role("button").click()
    page.wait_for_selector(f'tr[data-testid="clock"][data-clock-id="{clock["id"]}"][data-status="met"]')
    assert "测试值班长甲" in page.locator(f'tr[data-testid="clock"][data-clock-id="{clock["id"]}"]').inner_text()

    resolve = page.get_by_test_id("action-resolve")
    resolve.locator("textarea").fill("系统恢复，业务正常")
    resolve.get_by_role("button").click()
    page.wait_for_selector('[data-testid="status"]:has-text("已关闭")')
    assert page.get_by_test_id("action-resolve").count() == 0
    done = hall.api("GET", f"/api/v1/incidents/{inc['id']}")[1]
    assert done["status"] == "resolved" and done["resolved"]["by"] == "测试值班长甲"
    assert page.get_by_test_id("timeline-intact").get_attribute("class") == "intact"
    assert page.get_by_test_id("timeline-entry").count() == len(done["timeline"])
    page.context.close()


def test_draft_is_ready_to_print_on_a4(browser, hall):
    inc = hall.open_incident("hall-1")
    page = signed_in(browser, hall)
    page.goto(f"{hall.base}/console/#/incident/{inc['id']}/draft/phone")
    draft = page.get_by_test_id("draft")
    page.locator("[data-testid=draft]", has_text="测试通关大厅").wait_for()
    assert "核心业务系统无法访问 (system.down)" in draft.inner_text()  # the one fault catalogue
    page.emulate_media(media="print")
    assert page.locator("header.top").is_hidden() and page.get_by_text("打印").is_hidden()
    assert draft.is_visible()
    pdf = page.pdf(prefer_css_page_size=True)
    assert pdf.startswith(b"%PDF")
    assert re.search(rb"/MediaBox \[0 0 59[45]\.\d+ 84[12]\.\d+\]", pdf), "A4 pages"
    page.context.close()
    hall.api("POST", f"/api/v1/incidents/{inc['id']}/resolve", {"result": "测试结束"})


def test_language_switch_turns_every_string_english(browser, hall):
    inc = hall.open_incident("hall-1", fault="power.on_battery", system="power-lang")
    page = signed_in(browser, hall)
    assert page.locator("nav a").first.inner_text() == "当前事件"
    page.get_by_test_id("lang-switch").click()
    page.wait_for_selector("h1:has-text('Open incidents')")
    assert page.locator("nav a").first.inner_text() == "Open incidents"
    # the list is drawn again in English: wait for this row's new text, not the moment between
    page.wait_for_selector(f'[data-testid="incident-row"][data-incident-id="{inc["id"]}"]'
                           ':has-text("Mains power lost, UPS on battery (power.on_battery)")')
    assert page.evaluate("document.documentElement.lang") == "en"
    row(page, inc["id"]).locator("a").click()
    page.wait_for_selector("h2:has-text('Reports due')")
    body = page.locator("main").inner_text()
    assert not re.search(r"[处置操作报告时限定级依据]{4}", body), "no Chinese UI words left in English"
    page.get_by_test_id("lang-switch").click()
    page.wait_for_selector("h2:has-text('报告时限')")
    page.context.close()
    hall.api("POST", f"/api/v1/incidents/{inc['id']}/resolve", {"result": "测试结束"})


def test_unit_limited_token_sees_only_its_units_and_gets_a_clear_403_page(browser, hall):
    hall_inc = hall.open_incident("hall-1")
    port_inc = hall.open_incident("port-1")
    page = signed_in(browser, hall, "agency")
    row(page, port_inc["id"]).wait_for()
    assert row(page, hall_inc["id"]).count() == 0
    assert page.get_by_test_id("incident-row").count() == 1
    # live: a new port incident shows, a new hall incident does not
    later_hall = hall.open_incident("hall-1")
    later_port = hall.open_incident("port-1")
    row(page, later_port["id"]).wait_for(timeout=3000)
    assert row(page, later_hall["id"]).count() == 0
    page.goto(f"{hall.base}/console/#/incident/{hall_inc['id']}")
    page.wait_for_selector('[data-testid="error-page"]')
    assert "不在您令牌的单位范围内" in page.get_by_test_id("error-page").inner_text()
    assert page.get_by_test_id("action-ack").count() == 0
    page.context.close()
    for inc in (hall_inc, port_inc, later_hall, later_port):
        hall.api("POST", f"/api/v1/incidents/{inc['id']}/resolve", {"result": "测试结束"})


def test_unknown_token_and_a_token_gone_stale_get_the_sign_in_page(browser, hall):
    page = sign_in(browser, hall.base, "not-a-token")
    page.wait_for_selector("#signin-msg:has-text('令牌无效或已过期')")
    assert page.get_by_test_id("token-input").is_visible()
    assert page.evaluate("sessionStorage.getItem('hallmon.token')") is None
    # a token that stops working mid-session (revoked, expired) lands on the sign-in page too
    page.get_by_test_id("token-input").fill(TOKENS["chief"])
    page.get_by_test_id("token-input").press("Enter")
    page.wait_for_selector("#levels section")
    page.evaluate("sessionStorage.setItem('hallmon.token', 'revoked')")
    page.reload()
    page.wait_for_selector("#signin-msg:has-text('令牌无效或已过期')")
    page.context.close()


def test_token_is_never_in_a_url_or_the_log_and_the_page_loads_nothing_from_elsewhere(browser, hall):
    urls = []
    ctx = browser.new_context()
    ctx.on("request", lambda req: urls.append(req.url))
    page = ctx.new_page()
    page.goto(f"{hall.base}/console/#token={TOKENS['chief']}")  # the demo's sign-in link: a fragment
    page.wait_for_selector("#levels section")
    assert TOKENS["chief"] not in page.url
    page.goto(f"{hall.base}/console/#/oncall")
    page.wait_for_selector("[data-testid=oncall-now] td")
    assert all(u.startswith(hall.base) for u in urls), urls
    assert not any(TOKENS["chief"] in u for u in urls)
    assert TOKENS["chief"] not in hall.svc.log_path.read_text()
    assert page.evaluate("document.cookie") == ""
    ctx.close()


def test_on_duty_now_and_next_and_the_hand_off_report(browser, hall):
    _, oncall = hall.api("GET", "/api/v1/oncall")
    layer = oncall["rosters"][0]["layers"][0]
    page = signed_in(browser, hall)
    assert layer["now"]["person"]["name"] in page.get_by_test_id("oncall-now").inner_text()
    page.goto(f"{hall.base}/console/#/oncall")
    page.wait_for_selector("[data-testid=oncall-now] td")
    text = page.get_by_test_id("oncall-now").inner_text()
    assert layer["now"]["person"]["name"] in text and layer["next"]["person"]["name"] in text and "值班长" in text
    page.locator("#handoff:not(:has-text('正在加载'))").wait_for()
    assert "hall-duty" in page.locator("#handoff").inner_text() or "值班" in page.locator("#handoff").inner_text()
    page.context.close()


def test_phone_width_list_and_incident_fit_the_screen(browser, hall):
    inc = hall.open_incident("hall-1")
    page = signed_in(browser, hall, viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    wide = "document.documentElement.scrollWidth <= window.innerWidth + 1"
    assert page.evaluate(wide)
    row(page, inc["id"]).locator("a").click()
    page.wait_for_selector('[data-testid="action-ack"]')
    assert page.evaluate(wide)
    page.get_by_test_id("action-ack").focus()
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Tab")  # reached by keyboard: :focus-visible applies
    assert page.evaluate("document.activeElement.dataset.testid") == "action-ack"
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"  # visible focus
    page.context.close()
    hall.api("POST", f"/api/v1/incidents/{inc['id']}/resolve", {"result": "测试结束"})


def test_closed_incidents_search_by_unit_level_and_month(browser, hall):
    inc = hall.open_incident("port-1")
    hall.api("POST", f"/api/v1/incidents/{inc['id']}/resolve", {"result": "口岸测试结束"})
    page = signed_in(browser, hall)
    page.goto(f"{hall.base}/console/#/closed")
    form = page.locator("#f-closed")
    form.get_by_label("单位").select_option("port")
    form.get_by_label("级别").select_option(str(inc["level"]))
    form.locator("input[name=month]").fill(inc["detected_at"][:7])
    form.get_by_role("button").click()
    page.wait_for_selector('#closed[aria-busy="false"]')  # this search shown, not the first (unfiltered) one
    row(page, inc["id"]).wait_for()
    rows = page.get_by_test_id("incident-row")
    for i in range(rows.count()):
        assert "测试口岸查验现场" in rows.nth(i).inner_text()
    form.locator("input[name=month]").fill("2020-01")
    form.get_by_role("button").click()
    page.wait_for_selector('#closed[aria-busy="false"]:has-text("没有符合条件的事件")')
    page.context.close()


def test_grafana_site_link_opens_the_sites_open_incidents_only(browser, hall):
    at_port = hall.open_incident("port-1")
    at_hall = hall.open_incident("hall-1")
    page = signed_in(browser, hall)
    page.goto(f"{hall.base}/console/#/?site=port-1")  # dashboards/build.py INCIDENTS_OF_SITE
    row(page, at_port["id"]).wait_for()
    assert row(page, at_hall["id"]).count() == 0
    assert "只显示：测试口岸查验现场" in page.locator("#levels").inner_text()
    later = hall.open_incident("hall-1")  # live updates respect the filter too
    also = hall.open_incident("port-1")
    row(page, also["id"]).wait_for(timeout=3000)
    assert row(page, later["id"]).count() == 0
    page.context.close()
    for inc in (at_port, at_hall, later, also):
        hall.api("POST", f"/api/v1/incidents/{inc['id']}/resolve", {"result": "测试结束"})


def test_issue_13_item_4_a_withdrawn_clock_is_shown_withdrawn_not_counting_down_nor_filable(browser, hall):
    inc = hall.open_incident("hall-1")  # the whole 测试一关: level 2, its phone and written reports
    assert inc["level"] == 2
    status, lowered = hall.api("POST", f"/api/v1/incidents/{inc['id']}/level", {"level": 3, "reason": "影响限于本关"})
    assert status == 200, lowered
    gone = [c["id"] for c in lowered["clocks"] if c["status"] == "withdrawn"]
    owed = [c["id"] for c in lowered["clocks"] if c["status"] in ("pending", "overdue")]
    assert gone and owed, lowered["clocks"]  # the level-2 reports withdrawn, the level-3 summary owed
    page = signed_in(browser, hall)
    chips = row(page, inc["id"]).get_by_test_id("clock")
    chips.first.wait_for()
    assert sorted(chips.evaluate_all("els => els.map(e => e.dataset.clockId)")) == sorted(owed)
    row(page, inc["id"]).locator("a").click()
    for cid in gone:
        cell = page.locator(f'tr[data-testid="clock"][data-clock-id="{cid}"][data-status="withdrawn"]')
        cell.wait_for()
        page.wait_for_function("id => { const c = document.querySelector(`tr[data-clock-id=\"${id}\"] .count`);"
                               " return c && c.textContent !== ''; }", arg=cid)
        text = cell.inner_text()
        assert "已撤销" in text and "剩余" not in text and "已超时" not in text, text
    options = page.get_by_test_id("action-report").locator("option").evaluate_all("els => els.map(e => e.value)")
    assert sorted(options) == sorted(owed)  # a report is filed for a clock still owed only
    entry = page.get_by_test_id("timeline-entry").filter(has_text="人工调整级别")
    assert "撤销报告时限" in entry.inner_text() and all(cid in entry.inner_text() for cid in gone)
    page.context.close()


def test_a_reminder_past_its_due_time_shows_on_the_timeline_as_not_sent(browser, hall):
    from datetime import datetime, timedelta, timezone

    labels = {"alertname": "ConsoleTest", "fault": "system.down", "site": "hall-1", "target": "late-1",
              "system": "sys-late-reminder"}
    starts = (datetime.now(timezone.utc) - timedelta(minutes=30)).isoformat()  # the 15 min phone report is past
    status, out = hall.api("POST", "/api/v1/alerts", [{"labels": labels, "startsAt": starts}])
    assert status == 200, out
    [inc_id] = out["incidents"]
    hall.wait(lambda: any(e["action"] == "overdue" for e in hall.api("GET", f"/api/v1/incidents/{inc_id}")[1]["timeline"]))
    page = signed_in(browser, hall)
    row(page, inc_id).locator("a").click()
    entry = page.get_by_test_id("timeline-entry").filter(has_text="报告即将到期提醒").first
    entry.wait_for()
    assert "未发送：已过截止时间" in entry.inner_text()
    page.context.close()
