"""Channels: how a message reaches a person. One sender class per channel type, each
speaking its service's real request shape and signing:

- ``webhook``: JSON (DESIGN.md page payload), optional ``X-Hallmon-Signature: sha256=…``
  (HMAC of the body);
- ``dingtalk``: robot webhook, ``timestamp`` + ``sign`` = base64(HMAC-SHA256(secret,
  "{timestamp}\\n{secret}")) as query parameters, markdown; ``errcode`` ≠ 0 is a failure;
- ``wecom``: robot ``key``, markdown cut to 4,096 bytes; ``errcode`` ≠ 0 is a failure;
- ``feishu``: body ``timestamp`` + ``sign`` = base64(HMAC-SHA256(key="{timestamp}\\n{secret}",
  msg="")), text or (``card: true``) an interactive card; ``code`` ≠ 0 is a failure;
- ``email``: SMTP with STARTTLS (aiosmtplib);
- ``sms``: a generic HTTP gateway, the body built from a template.

``Delivery`` adds what every channel needs: retries with backoff on 5xx and timeouts
(never on 4xx), a fallback channel, a rate limit (shared by replicas through Redis, see
``ratelimit``) past which messages are gathered into one digest instead of dropped, storm batching (pages to one person within
``paging.batch_window`` go as one message), and ``hallmon_pages_sent_total{channel,outcome}``.
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
from typing import Any

import aiohttp
import aiosmtplib
import redis.asyncio as aioredis
import structlog
from prometheus_client import CollectorRegistry, Counter

from monitor.config.paging import EmailChannel, PagingConfig, Person
from monitor.core.errors import ChannelError
from monitor.core.secret import Secret
from monitor.core.target import split_hostport
from monitor.paging.messages import Message, digest
from monitor.paging.ratelimit import MemoryWindow, SharedWindow

log = structlog.get_logger("hallmon.channels")


def _secret(*candidates: Any) -> str | None:
    for c in candidates:
        if c is not None:
            return c.value
    return None


class Sender:
    """One channel kind: ``send`` delivers one message or raises ``ChannelError``."""

    def __init__(self, cfg: Any, session: aiohttp.ClientSession):
        self.cfg = cfg
        self.session = session
        self._secrets = [v.value for v in cfg.__dict__.values() if isinstance(v, Secret)]

    def _redact(self, text: str) -> str:
        """Tokens and keys travel in robot URLs; an error that quotes a URL must not leak them."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    async def send(self, msg: Message, person: Person | None) -> None:
        raise NotImplementedError


class HttpSender(Sender):

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


FEISHU_COLOURS = {1: "red", 2: "orange", 3: "yellow"}


class FeishuSender(HttpSender):
    async def send(self, msg: Message, person: Person | None) -> None:
        payload: dict[str, Any]
        if self.cfg.card:
            body = msg.text.split("\n\n", 1)[1] if msg.text.startswith("**") and "\n\n" in msg.text else msg.text
            payload = {"msg_type": "interactive", "card": {
                "header": {"title": {"tag": "plain_text", "content": msg.title},
                           "template": FEISHU_COLOURS.get(msg.incident.get("level"), "blue")},
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
    async def send(self, msg: Message, person: Person | None) -> None:
        if person is None or not person.phone:
            raise ChannelError(self.cfg.id, "recipient has no phone number", retryable=False)
        text = f"{msg.title} {msg.ack_url}".strip()[: self.cfg.max_chars]
        payload = {k: v.format(phone=person.phone, text=text, incident=msg.incident.get("id", ""))
                   for k, v in self.cfg.body.items()}
        token = _secret(self.cfg.token_env)
        await self.post(self.cfg.url, payload, headers={"Authorization": f"Bearer {token}"} if token else None)


class EmailSender(Sender):
    cfg: EmailChannel

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
            raise ChannelError(self.cfg.id, self._redact(f"{type(err).__name__}: {err}"), retryable=True) from err


SENDERS = {"webhook": WebhookSender, "dingtalk": DingTalkSender, "wecom": WeComSender, "feishu": FeishuSender,
           "email": EmailSender, "sms": SmsSender}


class _Batch:
    """Pages for one person on one channel: the first goes at once, the ones that follow
    within the window wait for its end and go together as one message."""

    def __init__(self) -> None:
        self.last = float("-inf")
        self.held: list[tuple[Message, asyncio.Future]] = []
        self.flusher: asyncio.Task | None = None


class Delivery:
    def __init__(self, paging: PagingConfig, session: aiohttp.ClientSession, registry: CollectorRegistry,
                 client: aioredis.Redis | None = None):
        """With ``client``, rate limits are shared by every replica and held digests
        survive a restart (``SharedWindow``); without, they are this process's own."""
        self.channels = {c.id: c for c in paging.channels}
        self.people = {p.id: p for p in paging.people}
        self.senders = {c.id: SENDERS[c.type](c, session) for c in paging.channels}
        self.windows: dict[str, MemoryWindow | SharedWindow] = {
            c.id: SharedWindow(client, c.id, c.rate_limit.messages, c.rate_limit.per) if client is not None
            else MemoryWindow(c.rate_limit.messages, c.rate_limit.per)
            for c in paging.channels if c.rate_limit}
        self.flushers: dict[str, asyncio.Task] = {}
        self.batch_window = paging.batch_window
        self.batches: dict[tuple[str, str], _Batch] = {}
        self.sent = Counter("hallmon_pages_sent_total", "Messages handed to a channel, by outcome.",
                            ["channel", "outcome"], registry=registry)

    async def send(self, channel_id: str, msg: Message, person: Person | None, _depth: int = 0) -> str:
        """Deliver; returns the outcome (sent, digested, failed, fallback)."""
        window = self.windows.get(channel_id)
        if window is not None and not await window.admit():
            await window.hold({"title": msg.title, "ack_url": msg.ack_url, "lang": msg.lang,
                               "person": person.id if person else None})
            self._start_flusher(channel_id)
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

    async def send_batched(self, channel_id: str, msg: Message, person: Person | None) -> str:
        """Like ``send``, but pages to one person on one channel within ``batch_window``
        go as one message: the first at once, the ones that follow together at the
        window's end. Returns once the message, alone or in its batch, is handed over."""
        if self.batch_window <= 0 or person is None:
            return await self.send(channel_id, msg, person)
        batch = self.batches.setdefault((person.id, channel_id), _Batch())
        now = time.monotonic()
        if not batch.held and now - batch.last >= self.batch_window:
            batch.last = now
            return await self.send(channel_id, msg, person)
        done = asyncio.get_running_loop().create_future()
        batch.held.append((msg, done))
        if batch.flusher is None or batch.flusher.done():
            batch.flusher = asyncio.create_task(self._flush_batch(channel_id, person, batch))
        return await asyncio.shield(done)

    async def _flush_batch(self, channel_id: str, person: Person, batch: _Batch) -> None:
        await asyncio.sleep(max(0.0, batch.last + self.batch_window - time.monotonic()))
        held, batch.held = batch.held, []
        batch.last = time.monotonic()
        msg = held[0][0] if len(held) == 1 else digest([m for m, _ in held], person.lang)
        try:
            outcome = await self.send(channel_id, msg, person)
        except BaseException as err:  # cancelled at shutdown: the pages stay unmarked and are resent
            for _, done in held:
                if not done.done():
                    done.set_exception(err if isinstance(err, Exception) else asyncio.CancelledError())
            raise
        if len(held) > 1:
            log.info("pages_batched", channel=channel_id, person=person.id, count=len(held), outcome=outcome)
            self.sent.labels(channel_id, "batched").inc(len(held))
        for _, done in held:
            if not done.done():
                done.set_result(outcome)

    def _start_flusher(self, channel_id: str) -> None:
        task = self.flushers.get(channel_id)
        if task is None or task.done():
            self.flushers[channel_id] = asyncio.create_task(self._flush(channel_id, self.windows[channel_id]))

    async def resume_held(self) -> None:
        """Flush digests that a process which stopped (or died) left held."""
        for channel_id, window in self.windows.items():
            if await window.has_held():
                self._start_flusher(channel_id)

    async def _flush(self, channel_id: str, window: MemoryWindow | SharedWindow) -> None:
        while await window.has_held():
            await asyncio.sleep(await window.wait() + 0.01)
            if not await window.lock():  # another replica is flushing this channel
                await asyncio.sleep(0.2)
                continue
            try:
                if not await window.admit():
                    continue
                batch = await window.take()
                if not batch:
                    continue
                lang = batch[0]["lang"]
                msg = digest([Message(kind="page", title=b["title"], text="", ack_url=b["ack_url"], lang=lang)
                              for b in batch], lang)
                try:
                    await self.senders[channel_id].send(msg, self.people.get(batch[0]["person"] or ""))
                    self.sent.labels(channel_id, "sent").inc()
                except ChannelError as err:
                    log.error("digest_send_failed", channel=channel_id, error=str(err), held=len(batch))
                    self.sent.labels(channel_id, "failed").inc()
                await window.taken(len(batch))
            finally:
                await window.unlock()

    async def close(self) -> None:
        for task in [*self.flushers.values()] + [b.flusher for b in self.batches.values()]:
            if task and not task.done():
                task.cancel()
