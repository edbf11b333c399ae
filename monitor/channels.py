"""Channels: how a message reaches a person. One sender class per channel type, each
speaking its service's real request shape and signing:

- ``webhook``: JSON (DESIGN.md page payload), optional ``X-Hallmon-Signature: sha256=…``
  (HMAC of the body);
- ``dingtalk``: robot webhook, ``timestamp`` + ``sign`` = base64(HMAC-SHA256(secret,
  "{timestamp}\\n{secret}")) as query parameters, markdown; ``errcode`` ≠ 0 is a failure;
- ``wecom``: robot ``key``, markdown cut to 4,096 bytes; ``errcode`` ≠ 0 is a failure;
- ``feishu``: body ``timestamp`` + ``sign`` = base64(HMAC-SHA256(key="{timestamp}\\n{secret}",
  msg="")), text; ``code`` ≠ 0 is a failure;
- ``email``: SMTP with STARTTLS (aiosmtplib);
- ``sms``: a generic HTTP gateway, the body built from a template.

``Delivery`` adds what every channel needs: retries with backoff on 5xx and timeouts
(never on 4xx), a fallback channel, a rate limit past which messages are gathered into
one digest instead of dropped, and ``hallmon_pages_sent_total{channel,outcome}``.
"""
from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import ssl
import time
from collections import deque
from email.message import EmailMessage
from typing import Any

import aiohttp
import aiosmtplib
import structlog
from prometheus_client import CollectorRegistry, Counter

from .messages import Message, digest
from .paging_config import EmailChannel, PagingConfig, Person
from .target import split_hostport

log = structlog.get_logger("hallmon.channels")


class ChannelError(Exception):
    """Sending failed; ``retryable`` for 5xx, timeouts and connection errors."""

    def __init__(self, channel: str, message: str, retryable: bool):
        super().__init__(f"{channel}: {message}")
        self.retryable = retryable


def _secret(*candidates: Any) -> str | None:
    for c in candidates:
        if c is not None:
            return c.value
    return None


class HttpSender:
    def __init__(self, cfg: Any, session: aiohttp.ClientSession):
        self.cfg = cfg
        self.session = session

    async def post(self, url: str, payload: Any, params: dict | None = None,
                   headers: dict | None = None, data: bytes | None = None) -> Any:
        try:
            async with self.session.post(url, params=params, json=None if data is not None else payload,
                                         data=data, headers=headers,
                                         timeout=aiohttp.ClientTimeout(total=self.cfg.timeout)) as resp:
                text = await resp.text()
                if resp.status >= 500:
                    raise ChannelError(self.cfg.id, f"HTTP {resp.status}", retryable=True)
                if resp.status >= 400:
                    raise ChannelError(self.cfg.id, f"HTTP {resp.status}: {text[:200]}", retryable=False)
                try:
                    return json.loads(text) if text else {}
                except ValueError:
                    return {}
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as err:
            raise ChannelError(self.cfg.id, f"{type(err).__name__}: {err}", retryable=True) from err

    @staticmethod
    def check_code(channel: str, body: Any, *keys: str) -> None:
        """Robots answer errors with HTTP 200 and a code in the body."""
        for key in keys:
            if isinstance(body, dict) and body.get(key) not in (None, 0):
                # 130101 / 45009 / 11232: sent too fast; worth trying again later
                retry = body.get(key) in (130101, 45009, 11232, 9499)
                raise ChannelError(channel, f"{key}={body.get(key)} {body.get('errmsg') or body.get('msg')}", retry)


class WebhookSender(HttpSender):
    async def send(self, msg: Message, person: Person | None) -> None:
        payload = {"kind": msg.kind, "incident": msg.incident, "title": msg.title, "text": msg.text,
                   "step": msg.step, "recipient": {"id": person.id, "name": person.name} if person else None,
                   "ack_url": msg.ack_url}
        body = json.dumps(payload, ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json"}
        secret = _secret(self.cfg.secret_env, self.cfg.secret_file)
        if secret:
            headers["X-Hallmon-Signature"] = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        await self.post(self.cfg.url, None, headers=headers, data=body)


def dingtalk_sign(secret: str, timestamp: str) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(mac).decode()


class DingTalkSender(HttpSender):
    async def send(self, msg: Message, person: Person | None) -> None:
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
    async def send(self, msg: Message, person: Person | None) -> None:
        key = _secret(self.cfg.key_env, self.cfg.key_file)
        body = await self.post(self.cfg.url, {"msgtype": "markdown",
                                              "markdown": {"content": cut_utf8(msg.text, WECOM_LIMIT)}},
                               params={"key": key} if key else None)
        self.check_code(self.cfg.id, body, "errcode")


def feishu_sign(secret: str, timestamp: str) -> str:
    mac = hmac.new(f"{timestamp}\n{secret}".encode(), b"", hashlib.sha256).digest()
    return base64.b64encode(mac).decode()


class FeishuSender(HttpSender):
    async def send(self, msg: Message, person: Person | None) -> None:
        payload: dict[str, Any] = {"msg_type": "text", "content": {"text": msg.text.replace("**", "")}}
        secret = _secret(self.cfg.secret_env, self.cfg.secret_file)
        if secret:
            ts = str(int(time.time()))
            payload.update(timestamp=ts, sign=feishu_sign(secret, ts))
        body = await self.post(self.cfg.url, payload)
        self.check_code(self.cfg.id, body, "code", "StatusCode")


class SmsSender(HttpSender):
    async def send(self, msg: Message, person: Person | None) -> None:
        if person is None or not person.phone:
            raise ChannelError(self.cfg.id, "recipient has no phone number", retryable=False)
        text = f"{msg.title} {msg.ack_url}".strip()[: self.cfg.max_chars]
        payload = {k: v.format(phone=person.phone, text=text, incident=msg.incident.get("id", ""))
                   for k, v in self.cfg.body.items()}
        token = _secret(self.cfg.token_env)
        await self.post(self.cfg.url, payload, headers={"Authorization": f"Bearer {token}"} if token else None)


class EmailSender:
    def __init__(self, cfg: EmailChannel, session: aiohttp.ClientSession):
        self.cfg = cfg

    async def send(self, msg: Message, person: Person | None) -> None:
        mail = EmailMessage()
        mail["From"], mail["To"], mail["Subject"] = self.cfg.sender, self.cfg.to, msg.title
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
            raise ChannelError(self.cfg.id, f"{type(err).__name__}: {err}", retryable=True) from err


SENDERS = {"webhook": WebhookSender, "dingtalk": DingTalkSender, "wecom": WeComSender, "feishu": FeishuSender,
           "email": EmailSender, "sms": SmsSender}


class _Window:
    """A sliding-window rate limit with a digest of what did not fit."""

    def __init__(self, messages: int, per: float):
        self.messages, self.per = messages, per
        self.sent: deque[float] = deque()
        self.held: list[tuple[Message, Person | None]] = []
        self.flusher: asyncio.Task | None = None

    def admit(self) -> bool:
        now = time.monotonic()
        while self.sent and now - self.sent[0] >= self.per:
            self.sent.popleft()
        if len(self.sent) < self.messages:
            self.sent.append(now)
            return True
        return False

    def wait(self) -> float:
        return max(0.0, self.per - (time.monotonic() - self.sent[0])) if self.sent else 0.0


class Delivery:
    def __init__(self, paging: PagingConfig, session: aiohttp.ClientSession, registry: CollectorRegistry):
        self.channels = {c.id: c for c in paging.channels}
        self.senders = {c.id: SENDERS[c.type](c, session) for c in paging.channels}
        self.windows = {c.id: _Window(c.rate_limit.messages, c.rate_limit.per)
                        for c in paging.channels if c.rate_limit}
        self.sent = Counter("hallmon_pages_sent_total", "Messages handed to a channel, by outcome.",
                            ["channel", "outcome"], registry=registry)
        self.batch_window = paging.batch_window
        self._batches: dict[tuple[str, str], list[Message]] = {}
        self._batch_tasks: set[asyncio.Task] = set()

    async def page(self, channel_id: str, msg: Message, person: Person | None) -> str:
        """Like ``send``, but with ``batch_window`` set, pages to one person on one
        channel within the window go out as one message."""
        if self.batch_window <= 0 or person is None:
            return await self.send(channel_id, msg, person)
        key = (channel_id, person.id)
        if key in self._batches:
            self._batches[key].append(msg)
            self.sent.labels(channel_id, "batched").inc()
            return "batched"
        self._batches[key] = [msg]
        task = asyncio.create_task(self._send_batch(key, person))
        self._batch_tasks.add(task)
        task.add_done_callback(self._batch_tasks.discard)
        return "batched"

    async def _send_batch(self, key: tuple[str, str], person: Person) -> None:
        await asyncio.sleep(self.batch_window)
        batch = self._batches.pop(key)
        await self.send(key[0], batch[0] if len(batch) == 1 else digest(batch, person.lang), person)

    async def send(self, channel_id: str, msg: Message, person: Person | None, _depth: int = 0) -> str:
        """Deliver; returns the outcome (sent, digested, failed, fallback)."""
        window = self.windows.get(channel_id)
        if window is not None and not window.admit():
            window.held.append((msg, person))
            if window.flusher is None or window.flusher.done():
                window.flusher = asyncio.create_task(self._flush(channel_id, window))
            self.sent.labels(channel_id, "digested").inc()
            return "digested"
        cfg = self.channels[channel_id]
        for attempt in range(cfg.retries + 1):
            try:
                await self.senders[channel_id].send(msg, person)
                self.sent.labels(channel_id, "sent").inc()
                return "sent"
            except ChannelError as err:
                log.warning("page_send_failed", channel=channel_id, attempt=attempt + 1, error=str(err),
                            retryable=err.retryable)
                if not err.retryable:
                    break
                if attempt < cfg.retries:
                    await asyncio.sleep(cfg.backoff * (2 ** attempt))
        self.sent.labels(channel_id, "failed").inc()
        if cfg.fallback and _depth < 3:
            log.warning("page_fallback", channel=channel_id, fallback=cfg.fallback)
            outcome = await self.send(cfg.fallback, msg, person, _depth + 1)
            return "fallback" if outcome in ("sent", "digested", "fallback") else outcome
        return "failed"

    async def _flush(self, channel_id: str, window: _Window) -> None:
        while window.held:
            await asyncio.sleep(window.wait() + 0.01)
            if not window.admit():
                continue
            batch, window.held = window.held, []
            msg = digest([m for m, _ in batch], batch[0][0].lang)
            try:
                await self.senders[channel_id].send(msg, batch[0][1])
                self.sent.labels(channel_id, "sent").inc()
            except ChannelError as err:
                log.error("digest_send_failed", channel=channel_id, error=str(err), held=len(batch))
                self.sent.labels(channel_id, "failed").inc()

    async def close(self) -> None:
        for task in list(self._batch_tasks):
            task.cancel()
        for window in self.windows.values():
            if window.flusher and not window.flusher.done():
                window.flusher.cancel()
