"""Local servers that speak the chat robots' and gateways' real protocols and check
what they receive (signatures, keys, size limits), recording every request."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

from aiohttp import web


class Robots:
    def __init__(self, dingtalk_secret: str = "SEC-dingtalk-test", dingtalk_token: str = "ding-token",
                 wecom_key: str = "wecom-key", feishu_secret: str = "feishu-secret", webhook_secret: str | None = None):
        self.dingtalk_secret, self.dingtalk_token = dingtalk_secret, dingtalk_token
        self.wecom_key, self.feishu_secret, self.webhook_secret = wecom_key, feishu_secret, webhook_secret
        self.received: dict[str, list] = {"webhook": [], "dingtalk": [], "wecom": [], "feishu": [], "sms": []}
        self.idempotency_keys: list[str] = []  # of every webhook request, copies included
        self.rejected: list[str] = []
        self.fail = {name: 0 for name in self.received}  # answer 500 this many times
        self.errcode = {name: 0 for name in self.received}  # robot error code in a 200 answer
        self.runner: web.AppRunner | None = None
        self.base = ""

    async def start(self) -> "Robots":
        app = web.Application()
        app.router.add_post("/page", self.webhook)
        app.router.add_post("/robot/send", self.dingtalk)
        app.router.add_post("/cgi-bin/webhook/send", self.wecom)
        app.router.add_post("/open-apis/bot/v2/hook/feishu-hook", self.feishu)
        app.router.add_post("/sms", self.sms)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.base = f"http://127.0.0.1:{self.runner.addresses[0][1]}"
        return self

    async def stop(self) -> None:
        await self.runner.cleanup()

    def _failing(self, name: str) -> web.Response | None:
        if self.fail[name] > 0:
            self.fail[name] -= 1
            return web.Response(status=500, text="busy")
        return None

    async def webhook(self, request: web.Request) -> web.Response:
        raw = await request.read()
        if self.webhook_secret:
            want = "sha256=" + hmac.new(self.webhook_secret.encode(), raw, hashlib.sha256).hexdigest()
            if request.headers.get("X-Hallmon-Signature") != want:
                self.rejected.append("webhook: bad signature")
                return web.Response(status=401)
        if (resp := self._failing("webhook")) is not None:
            return resp
        key = request.headers.get("Idempotency-Key", "")
        self.idempotency_keys.append(key)
        if key and self.idempotency_keys.count(key) > 1:  # a copy of a message taken already
            return web.json_response({"ok": True, "duplicate": True})
        self.received["webhook"].append(json.loads(raw))
        return web.json_response({"ok": True})

    async def dingtalk(self, request: web.Request) -> web.Response:
        q = request.query
        ts = q.get("timestamp", "0")
        want = base64.b64encode(hmac.new(self.dingtalk_secret.encode(), f"{ts}\n{self.dingtalk_secret}".encode(),
                                         hashlib.sha256).digest()).decode()
        if q.get("access_token") != self.dingtalk_token or q.get("sign") != want \
                or abs(time.time() * 1000 - int(ts)) > 3600_000:
            self.rejected.append("dingtalk: bad token or signature")
            return web.json_response({"errcode": 310000, "errmsg": "sign not match"})
        if (resp := self._failing("dingtalk")) is not None:
            return resp
        body = await request.json()
        assert body["msgtype"] == "markdown" and body["markdown"]["title"] and body["markdown"]["text"]
        if self.errcode["dingtalk"]:
            return web.json_response({"errcode": self.errcode["dingtalk"], "errmsg": "robot error"})
        self.received["dingtalk"].append(body)
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    async def wecom(self, request: web.Request) -> web.Response:
        if request.query.get("key") != self.wecom_key:
            self.rejected.append("wecom: bad key")
            return web.json_response({"errcode": 93000, "errmsg": "invalid webhook url"})
        body = await request.json()
        if body.get("msgtype") != "markdown" or len(body["markdown"]["content"].encode()) > 4096:
            return web.json_response({"errcode": 40058, "errmsg": "content exceed max length"})
        self.received["wecom"].append(body)
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    async def feishu(self, request: web.Request) -> web.Response:
        body = await request.json()
        ts = body.get("timestamp", "0")
        want = base64.b64encode(hmac.new(f"{ts}\n{self.feishu_secret}".encode(), b"", hashlib.sha256).digest()).decode()
        if body.get("sign") != want:
            self.rejected.append("feishu: bad signature")
            return web.json_response({"code": 19021, "msg": "sign match fail or timestamp is not within one hour"})
        card = body.get("card") or {}
        if body.get("msg_type") == "interactive" and not (card.get("elements") and card.get("header", {}).get("title")):
            return web.json_response({"code": 9499, "msg": "Bad Request"})
        if body.get("msg_type") == "text" and not body.get("content", {}).get("text"):
            return web.json_response({"code": 9499, "msg": "Bad Request"})
        self.received["feishu"].append(body)
        return web.json_response({"code": 0, "msg": "success"})

    async def sms(self, request: web.Request) -> web.Response:
        self.received["sms"].append(await request.json())
        return web.json_response({"status": "queued"})
