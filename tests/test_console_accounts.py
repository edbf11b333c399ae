"""Signing in to the console in a real Chromium against a live `hallmon run` with a real
slapd behind it: a directory user and a local one, a wrong password, the lock after
repeated failures, an expired session, sign out everywhere, a forged cross-site POST,
an agency viewer without action controls (and 403 from the API), the admin's audit log."""
from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import redis

from monitor.auth.passwords import hash_password
from monitor.auth.records import Account
from simulators import slapd
from simulators.slapd import BIND_DN, BIND_SECRET, SUFFIX, Slapd, group, person
from tests.consolekit import Hall, chromium_present

pytestmark = [pytest.mark.skipif(not chromium_present(), reason="chromium not installed: run scripts/setup.sh test"),
              pytest.mark.skipif(not slapd.available(), reason="slapd not installed: run scripts/setup.sh test")]

LDIF = person("duty-b", "测试值班长乙", "ldap-duty-b-pass-01") + group("hall-duty", "duty-b")
LOCAL = {"chief-local": ("local-chief-pass-01", "duty_leader", None, "duty-a"),
         "viewer-local": ("local-viewer-pass-01", "agency_viewer", ("hall",), None),
         "admin-local": ("local-admin-pass-01", "admin", None, None),
         "locked-local": ("local-locked-pass-01", "duty_officer", None, None)}


def auth_section(d: Slapd) -> str:
    return f"""\
auth:
  lockout: {{slow_after: 3, lock_after: 3, address_slow_after: 200, address_lock_after: 200, lock_for: 15m}}
  ldap:
    url: "{d.starttls_url}"
    start_tls: true
    ca_file: "{d.ca_file}"
    bind_dn: "{BIND_DN}"
    bind_secret_env: T_LDAP_BIND
    user_base: "ou=people,{SUFFIX}"
    group_base: "ou=groups,{SUFFIX}"
    groups:
      - {{dn: "cn=hall-duty,ou=groups,{SUFFIX}", role: duty_officer}}
"""


@pytest.fixture(scope="module")
def hall(redis_server, tmp_path_factory):
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    client.flushall()
    now = datetime.now(timezone.utc)
    for name, (password, role, units, who) in LOCAL.items():
        display = {"chief-local": "测试值班长甲", "viewer-local": "测试口岸查看员", "admin-local": "测试管理员",
                   "locked-local": "测试值班员丁"}[name]
        acct = Account(name, display, role, units, who, hash_password(password), False, now, now)
        client.set(f"hallmon:auth:account:{name}", json.dumps(acct.to_json()))
        client.sadd("hallmon:auth:accounts", name)
    with Slapd(LDIF) as directory:
        h = Hall(tmp_path_factory.mktemp("accounts"), redis_server.url, auth_section(directory),
                 env={"T_LDAP_BIND": BIND_SECRET})
        h.redis = client
        yield h
        h.close()
    client.close()


def password_sign_in(browser, hall, name: str, password: str, ctx=None):
    ctx = ctx or browser.new_context()
    page = ctx.new_page()
    page.goto(hall.base + "/console/")
    page.get_by_test_id("username-input").fill(name)
    page.get_by_test_id("password-input").fill(password)
    page.get_by_test_id("signin-submit").click()
    return page


def signed_in(page, name: str):
    page.wait_for_selector(f"#who:has-text('{name}')", timeout=10_000)
    page.wait_for_selector("#levels section", timeout=10_000)
    return page


def session_token(page) -> str:
    return page.evaluate("sessionStorage.getItem('hallmon.token')")


def test_a_directory_user_signs_in(browser, hall):
    page = signed_in(password_sign_in(browser, hall, "duty-b", "ldap-duty-b-pass-01"), "测试值班长乙")
    token = session_token(page)
    assert token.startswith("hs_")
    assert token not in page.url
    page.context.close()


def test_a_local_user_signs_in_and_acts_as_themself(browser, hall):
    inc = hall.open_incident("hall-1")
    page = signed_in(password_sign_in(browser, hall, "chief-local", "local-chief-pass-01"), "测试值班长甲")
    page.goto(f"{hall.base}/console/#/incident/{inc['id']}")
    page.get_by_test_id("action-ack").click()
    hall.wait(lambda: hall.api("GET", f"/api/v1/incidents/{inc['id']}")[1]["status"] == "acknowledged")
    timeline = hall.api("GET", f"/api/v1/incidents/{inc['id']}")[1]["timeline"]
    assert timeline[-1]["actor"] == "测试值班长甲"
    assert page.get_by_test_id("action-level").count() == 1  # a duty leader sets levels
    page.context.close()
    hall.api("POST", f"/api/v1/incidents/{inc['id']}/resolve", {"result": "测试结束"})


def test_a_wrong_password_is_told_and_signs_no_one_in(browser, hall):
    page = password_sign_in(browser, hall, "chief-local", "not-the-password-1")
    page.wait_for_selector("[data-testid=signin-message]:has-text('用户名或密码错误')")
    assert session_token(page) is None
    assert page.get_by_test_id("username-input").input_value() == "chief-local"  # kept; the password is not
    assert page.get_by_test_id("password-input").input_value() == ""
    page.context.close()
    hall.redis.delete("hallmon:auth:fail:account:chief-local")


def test_repeated_failures_lock_the_account_with_a_clear_message(browser, hall):
    page = password_sign_in(browser, hall, "locked-local", "wrong-password-01")
    page.wait_for_selector("[data-testid=signin-message]:has-text('用户名或密码错误')")
    for attempt, status in (("wrong-password-02", 401), ("wrong-password-03", 429)):
        page.get_by_test_id("password-input").fill(attempt)
        with page.expect_response("**/api/v1/session") as answer:
            page.get_by_test_id("signin-submit").click()
        assert answer.value.status == status
    page.wait_for_selector("[data-testid=signin-message]:has-text('已锁定')")
    assert "已锁定 900 秒" in page.get_by_test_id("signin-message").inner_text()
    page.get_by_test_id("password-input").fill(LOCAL["locked-local"][0])  # the right one: still locked
    page.get_by_test_id("signin-submit").click()
    page.wait_for_selector("[data-testid=signin-message]:has-text('已锁定')")
    assert session_token(page) is None
    page.context.close()


def test_an_expired_session_lands_on_the_sign_in_page(browser, hall):
    page = signed_in(password_sign_in(browser, hall, "chief-local", "local-chief-pass-01"), "测试值班长甲")
    # the session's idle end moved into the past: what 30 idle minutes would do
    for key in hall.redis.keys("hallmon:auth:session:*"):
        doc = json.loads(hall.redis.get(key))
        if doc["account"] == "chief-local":
            doc["idle_until"] = (datetime.now(timezone.utc) - timedelta(seconds=1)).isoformat()
            hall.redis.set(key, json.dumps(doc), keepttl=True)
    page.get_by_role("link", name="已关闭事件").click()
    page.wait_for_selector("[data-testid=signin-message]:has-text('登录已过期')")
    assert page.get_by_test_id("username-input").is_visible()
    assert session_token(page) is None
    page.context.close()


def test_sign_out_everywhere_ends_the_other_tabs_session(browser, hall):
    one = signed_in(password_sign_in(browser, hall, "duty-b", "ldap-duty-b-pass-01"), "测试值班长乙")
    two = signed_in(password_sign_in(browser, hall, "duty-b", "ldap-duty-b-pass-01"), "测试值班长乙")
    stale = session_token(two)
    one.get_by_test_id("signout-everywhere").click()
    one.wait_for_selector("[data-testid=username-input]")
    two.reload()
    two.wait_for_selector("[data-testid=username-input]")
    assert hall.api("GET", "/api/v1/whoami", token=stale)[0] == 401
    one.context.close()
    two.context.close()


class Attacker(BaseHTTPRequestHandler):
    """Another site: its page posts to hallmon's ack route in the victim's browser."""

    target = ""

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        body = f"""<!doctype html><html><body>
<form id="f" method="POST" action="{self.target}" enctype="text/plain">
<input name='{{"by": "attacker", "x": "' value='"}}'></form>
<script>
fetch("{self.target}", {{method: "POST", credentials: "include", headers: {{"Content-Type": "application/json"}},
  body: JSON.stringify({{by: "attacker"}})}}).catch(() => {{}}).finally(() => document.getElementById("f").submit());
</script></body></html>""".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


def test_a_forged_cross_site_post_is_refused_and_changes_nothing(browser, hall):
    inc = hall.open_incident("hall-1")
    ctx = browser.new_context()
    signed_in(password_sign_in(browser, hall, "chief-local", "local-chief-pass-01", ctx), "测试值班长甲")
    Attacker.target = f"{hall.base}/api/v1/incidents/{inc['id']}/ack"
    server = ThreadingHTTPServer(("127.0.0.1", 0), Attacker)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        evil = ctx.new_page()  # the same browser, signed in to the console in another tab
        evil.goto(f"http://127.0.0.1:{server.server_port}/")
        evil.wait_for_url(f"{hall.base}/api/**")  # the form did post, after the fetch
        assert json.loads(evil.inner_text("body"))["error"] == "unauthorized"
    finally:
        server.shutdown()
    assert hall.api("GET", f"/api/v1/incidents/{inc['id']}")[1]["status"] == "open"
    ctx.close()
    hall.api("POST", f"/api/v1/incidents/{inc['id']}/resolve", {"result": "测试结束"})


def test_an_agency_viewer_sees_no_action_controls_and_the_api_refuses_it(browser, hall):
    inc = hall.open_incident("hall-1")
    page = signed_in(password_sign_in(browser, hall, "viewer-local", "local-viewer-pass-01"), "测试口岸查看员")
    page.goto(f"{hall.base}/console/#/incident/{inc['id']}")
    page.wait_for_selector("[data-testid=timeline-entry]")
    for hook in ("action-ack", "action-level", "action-flags", "action-report", "action-resolve"):
        assert page.get_by_test_id(hook).count() == 0, hook
    token = session_token(page)
    status, out = hall.api("POST", f"/api/v1/incidents/{inc['id']}/ack", {}, token=token)
    assert status == 403 and out["detail"] == "role agency_viewer lacks scope incidents:write"
    assert hall.api("GET", f"/api/v1/incidents/{inc['id']}")[1]["status"] == "open"
    assert page.locator("#nav-audit").is_hidden()
    page.context.close()
    hall.api("POST", f"/api/v1/incidents/{inc['id']}/resolve", {"result": "测试结束"})


def test_an_admin_reads_the_audit_log_in_the_console(browser, hall):
    # its own failure to read back: under xdist the module's other tests may run in another process
    wrong = password_sign_in(browser, hall, "chief-local", "not-the-password-1")
    wrong.wait_for_selector("[data-testid=signin-message]:has-text('用户名或密码错误')")
    wrong.context.close()
    page = signed_in(password_sign_in(browser, hall, "admin-local", "local-admin-pass-01"), "测试管理员")
    page.locator("#nav-audit").click()
    page.wait_for_selector("[data-testid=audit-entry]")
    events = {e.get_attribute("data-event") for e in page.get_by_test_id("audit-entry").all()}
    assert {"signin", "signin_failed"} <= events
    text = page.get_by_test_id("audit-log").inner_text()
    assert "登录成功" in text and "local-chief-pass-01" not in text and "not-the-password-1" not in text
    page.context.close()
