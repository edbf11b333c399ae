"""Channels: how a message reaches a person. One ``Sender`` per channel kind, each
speaking its service's real request shape and signing, and each turning its library's
errors into ``ChannelError`` (``retryable`` for 5xx, 429, timeouts, connection errors
and a robot's "too fast" code; anything else is final):

- ``webhook``: JSON (DESIGN.md page payload), optional ``X-Hallmon-Signature: sha256=…``
  (HMAC of the body), and ``Idempotency-Key``: the same for every attempt of a message;
- ``dingtalk``: robot webhook, ``timestamp`` + ``sign`` = base64(HMAC-SHA256(secret,
  "{timestamp}\\n{secret}")) as query parameters, markdown; ``errcode`` ≠ 0 is a failure;
- ``wecom``: robot ``key``, markdown cut to 4,096 bytes; ``errcode`` ≠ 0 is a failure;
- ``feishu``: body ``timestamp`` + ``sign`` = base64(HMAC-SHA256(key="{timestamp}\\n{secret}",
  msg="")), text or (``card: true``) an interactive card; ``code`` ≠ 0 is a failure;
- ``email``: SMTP with STARTTLS (aiosmtplib), ``Message-ID`` the same for every attempt;
- ``sms``: a generic HTTP gateway, the body built from a template (``{key}``: the
  message's idempotency key, for a gateway that deduplicates by a client message id).

Idempotency: an attempt that timed out may have arrived. The webhook (header), SMS
(``{key}``) and email (``Message-ID``) carry one key for all attempts of a message, so
a receiver can drop the copies; the DingTalk, WeCom and Feishu group robots take no such
key, so a retried timeout there can show twice.

Retries, fallback, rate limits and batching are delivery stages (``delivery.py``).
"""
from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import ssl
import time
from email.message import EmailMessage
from typing import Any, Callable, Protocol

import aiohttp
import aiosmtplib

from monitor.config.paging import Channel, EmailChannel, Person
from monitor.core.errors import ChannelError
from monitor.core.secret import Secret
from monitor.core.target import split_hostport
from monitor.paging.messages import Message


def _secret(*candidates: Any) -> str | None:
    for c in candidates:
        if c is not None:
            return c.value
    return None


class Sender(Protocol):
    """One channel kind: ``send`` hands one message over or raises ``ChannelError``;
    ``key`` is the same for every attempt of one message."""

    async def send(self, msg: Message, person: Person | None, key: str) -> None: ...


class _Base:
    def __init__(self, cfg: Any, session: aiohttp.ClientSession):
        self.cfg = cfg
        self.session = session
        self._secrets = [v.value for v in cfg.__dict__.values() if isinstance(v, Secret)]

    def _redact(self, text: str) -> str:
        """Tokens and keys travel in robot URLs; an error that quotes a URL must not leak them."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text


class HttpSender(_Base):

    async def post(self, url: str, payload: Any, params: dict | None = None,
                   headers: dict | None = None, data: bytes | None = None) -> Any:
        try:
            async with self.session.post(url, params=params, json=None if data is not None else payload,
                                         data=data, headers=headers,
                                         timeout=aiohttp.ClientTimeout(total=self.cfg.timeout)) as resp:
                text = await resp.text()
                if resp.status >= 500 or resp.status == 429:
                    raise ChannelError(self.cfg.id, f"HTTP {resp.status}", retryable=True)
                if resp.status >= 400:
                    raise ChannelError(self.cfg.id, self._redact(f"HTTP {resp.status}: {text[:200]}"), retryable=False)
                try:
                    return json.loads(text) if text else {}
                except ValueError:
                    return {}
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as err:
            raise ChannelError(self.cfg.id, self._redact(f"{type(err).__name__}: {err}"), retryable=True) from err

    @staticmethod
    def check_code(channel: str, body: Any, *keys: str) -> None:
        """Robots answer errors with HTTP 200 and a code in the body."""
        for key in keys:
            if isinstance(body, dict) and body.get(key) not in (None, 0):
                # 130101 / 45009 / 11232: sent too fast; worth trying again later
                retry = body.get(key) in (130101, 45009, 11232, 9499)
                raise ChannelError(channel, f"{key}={body.get(key)} {body.get('errmsg') or body.get('msg')}", retry)


class WebhookSender(HttpSender):
    async def send(self, msg: Message, person: Person | None, key: str) -> None:
        payload = {"kind": msg.kind, "incident": msg.incident, "title": msg.title, "text": msg.text,
                   "step": msg.step, "recipient": {"id": person.id, "name": person.name} if person else None,
                   "ack_url": msg.ack_url}
        body = json.dumps(payload, ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json", "Idempotency-Key": key}
        secret = _secret(self.cfg.secret_env, self.cfg.secret_file)
        if secret:
            headers["X-Hallmon-Signature"] = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        await self.post(self.cfg.url, None, headers=headers, data=body)


def dingtalk_sign(secret: str, timestamp: str) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(mac).decode()


class DingTalkSender(HttpSender):
    async def send(self, msg: Message, person: Person | None, key: str) -> None:
        params = {}
        token = _secret(self.cfg.token_env, self.cfg.token_file)
        if token:
            params["access_token"] = token
        secret = _secret(self.cfg.secret_env, self.cfg.secret_file)
        if secret:
            ts = str(int(time.time() * 1000))
            params.update(timestamp=ts, sign=dingtalk_sign(secret, ts))
        body = await self.post(self.cfg.url, {"msgtype": "markdown",
                                              "markdown": {"title": msg.title, "text": msg.text}}, params=params)
        self.check_code(self.cfg.id, body, "errcode")


WECOM_LIMIT = 4096


def cut_utf8(text: str, limit: int) -> str:
    raw = text.encode()
    if len(raw) <= limit:
        return text
    return raw[:limit - 3].decode("utf-8", "ignore") + "…"


class WeComSender(HttpSender):
    async def send(self, msg: Message, person: Person | None, key: str) -> None:
        robot_key = _secret(self.cfg.key_env, self.cfg.key_file)
        body = await self.post(self.cfg.url, {"msgtype": "markdown",
                                              "markdown": {"content": cut_utf8(msg.text, WECOM_LIMIT)}},
                               params={"key": robot_key} if robot_key else None)
        self.check_code(self.cfg.id, body, "errcode")


def feishu_sign(secret: str, timestamp: str) -> str:
    mac = hmac.new(f"{timestamp}\n{secret}".encode(), b"", hashlib.sha256).digest()
    return base64.b64encode(mac).decode()


FEISHU_COLOURS = {1: "red", 2: "orange", 3: "yellow"}


class FeishuSender(HttpSender):
    async def send(self, msg: Message, person: Person | None, key: str) -> None:
        payload: dict[str, Any]
        if self.cfg.card:
            body = msg.text.split("\n\n", 1)[1] if msg.text.startswith("**") and "\n\n" in msg.text else msg.text
            payload = {"msg_type": "interactive", "card": {
                "header": {"title": {"tag": "plain_text", "content": msg.title},
                           "template": FEISHU_COLOURS.get(msg.incident.get("level") or 0, "blue")},
                "elements": [{"tag": "div", "text": {"tag": "lark_md", "content": body}}]}}
        else:
            payload = {"msg_type": "text", "content": {"text": msg.text.replace("**", "")}}
        secret = _secret(self.cfg.secret_env, self.cfg.secret_file)
        if secret:
            ts = str(int(time.time()))
            payload.update(timestamp=ts, sign=feishu_sign(secret, ts))
        body = await self.post(self.cfg.url, payload)
        self.check_code(self.cfg.id, body, "code", "StatusCode")


class SmsSender(HttpSender):
    async def send(self, msg: Message, person: Person | None, key: str) -> None:
        if person is None or not person.phone:
            raise ChannelError(self.cfg.id, "recipient has no phone number", retryable=False)
        text = f"{msg.title} {msg.ack_url}".strip()[: self.cfg.max_chars]
        payload = {k: v.format(phone=person.phone, text=text, incident=msg.incident.get("id", ""), key=key)
                   for k, v in self.cfg.body.items()}
        token = _secret(self.cfg.token_env)
        await self.post(self.cfg.url, payload, headers={"Authorization": f"Bearer {token}"} if token else None)


class EmailSender(_Base):
    cfg: EmailChannel

    async def send(self, msg: Message, person: Person | None, key: str) -> None:
        mail = EmailMessage()
        mail["From"], mail["To"], mail["Subject"] = self.cfg.sender, self.cfg.to, msg.title
        mail["Message-ID"] = f"<{key}@hallmon>"
        mail.set_content(msg.text.replace("**", "") + "\n")
        host, port = split_hostport(self.cfg.smtp)
        context = ssl.create_default_context(cafile=self.cfg.ca_file) if self.cfg.starttls else None
        try:
            await aiosmtplib.send(mail, hostname=host, port=port, start_tls=self.cfg.starttls, tls_context=context,
                                  username=_secret(self.cfg.username_env), password=_secret(self.cfg.password_env),
                                  timeout=self.cfg.timeout)
        except aiosmtplib.SMTPResponseException as err:
            raise ChannelError(self.cfg.id, f"SMTP {err.code} {err.message}", retryable=err.code >= 400 and err.code < 500) from err
        except (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError) as err:
            raise ChannelError(self.cfg.id, self._redact(f"{type(err).__name__}: {err}"), retryable=True) from err


SENDERS: dict[str, Callable[[Any, aiohttp.ClientSession], Sender]] = {
    "webhook": WebhookSender, "dingtalk": DingTalkSender, "wecom": WeComSender, "feishu": FeishuSender,
    "email": EmailSender, "sms": SmsSender}


def sender(cfg: Channel, session: aiohttp.ClientSession) -> Sender:
    return SENDERS[cfg.type](cfg, session)
