"""Channels against local peers: SMTP with STARTTLS (aiosmtpd), an SMS gateway, WeCom's
4,096-byte limit, no retry on 4xx, and a reminder reaching the duty chief."""
import asyncio
import email
import ssl
from datetime import datetime, timezone

import aiohttp
import pytest
import trustme
from aiohttp import web
from aiosmtpd.controller import Controller

from monitor.config.paging import PagingConfig
from monitor.core.errors import ChannelError, HallmonError
from monitor.durable.events import ClockRef, Headline
from monitor.paging.channels import cut_utf8, sender
from monitor.paging.messages import render
from simulators.redisproc import free_port
from tests.pagingkit import Harness, config, incident, paging_yaml
from tests.robots import Robots
from tests.routerkit import TOKENS, alert, auth, make_app

INC = Headline.of(incident("INC-20261125-0007", category="power", sites=("u3a",), units=("u3",),
                           faults=("power.on_battery",)))
PHONE = ClockRef.of(incident()["clocks"][0])


@pytest.fixture(autouse=True)
def env(monkeypatch):
    for k, v in TOKENS.items():
        monkeypatch.setenv(k, v)


class Inbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((session.ssl is not None, envelope.rcpt_tos, envelope.content.decode()))
        return "250 OK"


@pytest.fixture
def smtp(tmp_path):
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_ctx)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port(), tls_context=server_ctx,
                            require_starttls=True)
    controller.start()
    yield inbox, controller.port, ca_file
    controller.stop()


async def test_email_over_starttls_in_chinese(smtp):
    inbox, port, ca_file = smtp
    paging = PagingConfig.model_validate({"channels": [{"id": "mail", "type": "email", "to": "lead-a@example.invalid",
                                                        "smtp": f"127.0.0.1:{port}", "ca_file": str(ca_file)}]})
    async with aiohttp.ClientSession() as session:
        msg = render("page", "zh", INC, ack_url="http://127.0.0.1:9108/api/v1/incidents/INC/ack?exp=1&sig=x")
        await sender(paging.channels[0], session).send(msg, None, "k-0001")
    [(tls, rcpt, content)] = inbox.messages
    assert tls and rcpt == ["lead-a@example.invalid"]
    mail = email.message_from_string(content)
    assert mail["Message-ID"] == "<k-0001@hallmon>"  # the same for every attempt of this message
    body = mail.get_payload(decode=True).decode()
    assert "供电" in str(email.header.make_header(email.header.decode_header(mail["Subject"])))
    assert "电话报告（六要素）" in body and "UPS" in body and "ack?exp=1" in body


async def test_sms_gateway_gets_the_template_with_the_persons_phone():
    robots = await Robots().start()
    try:
        paging = PagingConfig.model_validate({
            "people": [{"id": "lead-a", "name": "测试值班领导甲", "channels": ["sms"], "phone": "138-0000-0001"}],
            "channels": [{"id": "sms", "type": "sms", "url": f"{robots.base}/sms",
                          "body": {"mobile": "{phone}", "content": "{text}", "ref": "{incident}", "msgid": "{key}"},
                          "max_chars": 60}]})
        async with aiohttp.ClientSession() as session:
            await sender(paging.channels[0], session).send(render("page", "zh", INC), paging.people[0], "k-0002")
        [sms] = robots.received["sms"]
        assert sms["mobile"] == "138-0000-0001" and sms["ref"] == INC.id and len(sms["content"]) <= 60
        assert sms["msgid"] == "k-0002"  # for a gateway that drops copies by client message id
    finally:
        await robots.stop()


async def test_wecom_markdown_is_cut_to_4096_bytes_and_4xx_is_not_retried(monkeypatch):
    monkeypatch.setenv("HALLMON_T_WECOM", "wecom-key")
    robots = await Robots().start()
    try:
        paging = PagingConfig.model_validate({"channels": [
            {"id": "wc", "type": "wecom", "url": f"{robots.base}/cgi-bin/webhook/send", "key_env": "HALLMON_T_WECOM"},
            {"id": "hook", "type": "webhook", "url": f"{robots.base}/nowhere", "retries": 3, "backoff": "10ms"}]})
        big = INC.model_copy(update={"faults": ("power.on_battery",) * 2000})
        async with aiohttp.ClientSession() as session:
            await sender(paging.channels[0], session).send(render("page", "zh", big), None, "k")
            with pytest.raises(ChannelError) as err:
                await sender(paging.channels[1], session).send(render("page", "zh", INC), None, "k")
            assert not err.value.retryable  # 404: not worth retrying
        content = robots.received["wecom"][0]["markdown"]["content"]
        assert len(content.encode()) <= 4096
    finally:
        await robots.stop()
    assert cut_utf8("测" * 2000, 4096).encode().__len__() <= 4096


async def test_feishu_interactive_card_is_signed_and_coloured_by_level(monkeypatch):
    monkeypatch.setenv("HALLMON_T_FEISHU", "feishu-secret")
    robots = await Robots().start()
    try:
        paging = PagingConfig.model_validate({"channels": [
            {"id": "fs", "type": "feishu", "url": f"{robots.base}/open-apis/bot/v2/hook/feishu-hook",
             "secret_env": "HALLMON_T_FEISHU", "card": True},
            {"id": "fs-forged", "type": "feishu", "url": f"{robots.base}/open-apis/bot/v2/hook/feishu-hook",
             "secret_file": __file__, "card": True, "retries": 0}]})
        async with aiohttp.ClientSession() as session:
            msg = render("page", "zh", INC, ack_url="http://127.0.0.1:9108/ack-link")
            await sender(paging.channels[0], session).send(msg, None, "k")
            with pytest.raises(ChannelError):  # code 19021 in a 200 answer
                await sender(paging.channels[1], session).send(msg, None, "k")
    finally:
        await robots.stop()
    [body] = robots.received["feishu"]
    card = body["card"]
    assert body["msg_type"] == "interactive" and card["header"]["template"] == "orange"  # level 2
    assert card["header"]["title"]["content"] == msg.title
    text = card["elements"][0]["text"]
    assert text["tag"] == "lark_md" and "http://127.0.0.1:9108/ack-link" in text["content"]
    assert msg.title not in text["content"]  # the title is the header, not repeated
    assert robots.rejected == ["feishu: bad signature"]


def test_messages_come_from_one_template_in_both_languages():
    zh = render("reminder", "zh", INC, clock=PHONE)
    en = render("reminder", "en", INC, clock=PHONE)
    assert zh.title == "【报告提醒】电话报告（六要素） 将于 11-25 09:15 到期"
    assert en.title == "[Report due soon] Phone report (six elements) due 11-25 09:15"
    assert "报送：单位领导" in zh.text and "To: 单位领导" in en.text
    drill = render("page", "en", INC.model_copy(update={"drill": True}))
    assert drill.title.startswith("[DRILL] ")


async def test_a_reminder_reaches_the_duty_chief(aiohttp_client, tmp_path, redis_url):
    robots = await Robots().start()
    plan = tmp_path / "quick.yml"
    plan.write_text("""\
base: default
id: quick-test
name: {zh: 测试快速预案, en: Quick test plan}
reminder_before: 2s
clocks:
  - {id: quick-report, title: {zh: 快速报告, en: Quick report}, due: 3s, source: test plan}
""")
    try:
        client = await aiohttp_client(make_app(tmp_path, redis_url, plan=str(plan),
                                               extra=paging_yaml(robots.base, wait="1h")))
        resp = await client.post("/api/v1/alerts", json=[alert("power.on_battery", "u3a", "u3",
                                                               starts=datetime.now(timezone.utc))], headers=auth())
        assert resp.status == 200
        for _ in range(80):
            kinds = [p["kind"] for p in robots.received["webhook"]]
            if "overdue" in kinds:
                break
            await asyncio.sleep(0.1)
        pages = robots.received["webhook"]
        kinds = [p["kind"] for p in pages]
        assert kinds[:3] == ["page", "reminder", "overdue"], kinds
        assert pages[1]["recipient"]["id"] == pages[0]["recipient"]["id"]  # the report's owner: the duty chief
        assert "快速报告" in pages[1]["title"]
        assert pages[2]["recipient"]["id"].startswith("lead-")  # overdue goes one step up
    finally:
        await robots.stop()


async def test_a_robot_error_that_quotes_the_url_does_not_leak_the_token(monkeypatch):
    monkeypatch.setenv("HALLMON_T_DING_TOKEN", "ding-token-sekrit")
    monkeypatch.setenv("HALLMON_T_DING_SECRET", "SEC-sekrit")

    async def echo(request: web.Request) -> web.Response:
        return web.Response(status=400, text=f"bad request to {request.url}")

    app = web.Application()
    app.router.add_post("/robot/send", echo)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    paging = PagingConfig.model_validate({"channels": [{
        "id": "ding", "type": "dingtalk", "url": f"http://127.0.0.1:{runner.addresses[0][1]}/robot/send",
        "token_env": "HALLMON_T_DING_TOKEN", "secret_env": "HALLMON_T_DING_SECRET"}]})
    try:
        async with aiohttp.ClientSession() as session:
            with pytest.raises(ChannelError) as err:
                await sender(paging.channels[0], session).send(render("page", "zh", INC), None, "k")
    finally:
        await runner.cleanup()
    assert isinstance(err.value, HallmonError) and not err.value.retryable  # 4xx: not worth retrying
    assert "access_token=***" in str(err.value) and "sekrit" not in str(err.value)


class RefusingInbox:
    """An SMTP server that answers every message with a transient 451."""

    def __init__(self):
        self.attempts = 0

    async def handle_DATA(self, server, session, envelope):
        self.attempts += 1
        return "451 4.3.0 mailbox busy, try later"


@pytest.mark.parametrize("peer", ["answers 451", "is down"])
async def test_a_failing_smtp_server_is_retried_then_the_fallback_takes_the_page(peer, redis_url):
    """Regression (0.5): EmailSender's error path raised AttributeError, so an SMTP failure
    skipped the retries and the fallback, and escalation stalled on the e-mail step."""
    robots = await Robots().start()
    inbox = RefusingInbox()
    controller = None
    if peer == "answers 451":
        controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
        controller.start()
        port = controller.port
    else:
        port = free_port()  # nothing listens there
    paging = f"""\
paging:
  channels:
    - {{id: mail, type: email, to: lead-a@example.invalid, smtp: "127.0.0.1:{port}", starttls: false,
       retries: 2, backoff: 10ms, timeout: 2s, fallback: hook}}
    - {{id: hook, type: webhook, url: "{robots.base}/page"}}
  policies:
    - id: mail
      steps:
        - {{notify: {{channel: mail}}}}
"""
    try:
        async with Harness(redis_url, config(redis_url, paging)) as h:
            await h.publish("opened", incident())
            await h.until(lambda: robots.received["webhook"], timeout=10, advance=0.05)
            if controller is not None:
                assert inbox.attempts == 3  # the first try and two retries
            assert len(robots.received["webhook"]) == 1
            assert h.metric("hallmon_page_retries_total", channel="mail") == 2
            assert h.metric("hallmon_pages_sent_total", channel="mail", outcome="failed") == 1
            assert h.metric("hallmon_pages_sent_total", channel="hook", outcome="sent") == 1
    finally:
        if controller is not None:
            controller.stop()
        await robots.stop()
