"""The ``paging:`` section of the config: people, channels, rosters, escalation policies."""
from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Literal, Union

from pydantic import Field, field_validator, model_validator

from monitor.core.secret import SecretEnv, SecretFile
from monitor.core.target import AwareTime, Duration, HostPort, Model, Name, RoundTripDuration

_HANDOFF = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


class Person(Model):
    id: Name
    name: str
    channels: tuple[str, ...] = Field(min_length=1)
    phone: str | None = None  # for sms channels
    lang: Literal["zh", "en"] = "zh"


class RateLimit(Model):
    messages: int = Field(default=20, ge=1)
    per: Duration = 60.0


class ChannelBase(Model):
    id: Name
    # with a fallback: retries (5xx, timeouts) before the fallback takes the message;
    # without one, a retryable failure is retried until the page is sent, acknowledged
    # or resolved (other messages: for ``paging.give_up_after``)
    retries: int = Field(default=2, ge=0, le=10)
    backoff: Duration = 1.0  # doubled after every failure, up to max_backoff
    max_backoff: Duration = 60.0
    timeout: Duration = 10.0  # one attempt, this channel only: a hung receiver delays nobody else
    concurrency: int = Field(default=4, ge=1, le=64)  # messages on the wire at once on this channel
    fallback: str | None = None  # a channel to use when this one keeps failing
    rate_limit: RateLimit | None = None


class WebhookChannel(ChannelBase):
    type: Literal["webhook"]
    url: str
    secret_env: SecretEnv | None = None  # HMAC-SHA256 of the body in X-Hallmon-Signature
    secret_file: SecretFile | None = None


class DingTalkChannel(ChannelBase):
    type: Literal["dingtalk"]
    url: str = "https://oapi.dingtalk.com/robot/send"
    token_env: SecretEnv | None = None
    token_file: SecretFile | None = None
    secret_env: SecretEnv | None = None
    secret_file: SecretFile | None = None
    rate_limit: RateLimit | None = RateLimit()  # 20 messages a minute per robot


class WeComChannel(ChannelBase):
    type: Literal["wecom"]
    url: str = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send"
    key_env: SecretEnv | None = None
    key_file: SecretFile | None = None
    rate_limit: RateLimit | None = RateLimit()


class FeishuChannel(ChannelBase):
    type: Literal["feishu"]
    url: str  # https://open.feishu.cn/open-apis/bot/v2/hook/<token>
    secret_env: SecretEnv | None = None
    secret_file: SecretFile | None = None
    card: bool = False  # an interactive card (header coloured by level) instead of text


class EmailChannel(ChannelBase):
    type: Literal["email"]
    to: str
    smtp: HostPort
    sender: str = "hallmon@localhost"
    starttls: bool = True
    ca_file: str | None = None  # trust this CA for the SMTP server's certificate
    username_env: SecretEnv | None = None
    password_env: SecretEnv | None = None


class SmsChannel(ChannelBase):
    type: Literal["sms"]
    url: str  # the gateway's HTTP endpoint
    # placeholders: {phone}, {text}, {incident}, and {key}: the same for every attempt of
    # one message, for a gateway that deduplicates by a client message id
    body: dict[str, str] = Field(default_factory=lambda: {"phone": "{phone}", "text": "{text}"})
    token_env: SecretEnv | None = None  # sent as a bearer token
    max_chars: int = Field(default=300, ge=20)


Channel = Annotated[Union[WebhookChannel, DingTalkChannel, WeComChannel, FeishuChannel, EmailChannel, SmsChannel],
                    Field(discriminator="type")]


class Rotation(Model):
    every: Duration = 86400.0
    handoff: str = "08:30"
    start: date

    @field_validator("handoff")
    @classmethod
    def _handoff(cls, v: str) -> str:
        if not _HANDOFF.match(v):
            raise ValueError("expected a local time like 08:30")
        return v

    @field_validator("every")
    @classmethod
    def _whole_hours(cls, v: float) -> float:
        if v < 3600:
            raise ValueError("expected a rotation of at least 1h")
        return v


class Layer(Model):
    id: Name
    members: tuple[str, ...] = Field(min_length=1)
    rotation: Rotation
    working_days_only: bool = False  # nobody from this layer on China's non-working days


class Override(Model):
    layer: str
    person: str
    from_: AwareTime = Field(alias="from")
    to: AwareTime

    @model_validator(mode="after")
    def _order(self) -> "Override":
        if self.to <= self.from_:
            raise ValueError("to: must be after from")
        return self


class Roster(Model):
    id: Name
    timezone: str = "Asia/Shanghai"
    layers: tuple[Layer, ...] = Field(min_length=1)
    overrides: tuple[Override, ...] = ()


class NotifyTarget(Model):
    roster: str | None = None
    layer: str | None = None
    person: str | None = None
    channel: str | None = None

    @model_validator(mode="after")
    def _one(self) -> "NotifyTarget":
        given = [self.person is not None, self.channel is not None, self.roster is not None]
        if sum(given) != 1 or (self.roster is not None) != (self.layer is not None):
            raise ValueError("notify one of: {roster, layer}, {person} or {channel}")
        return self


class Step(Model):
    notify: NotifyTarget | None = None
    wait: RoundTripDuration | None = None  # frozen into the incident's paging state: survives JSON

    @model_validator(mode="after")
    def _one(self) -> "Step":
        if (self.notify is None) == (self.wait is None):
            raise ValueError("a step is either notify or wait")
        return self


class PolicyMatch(Model):
    levels: tuple[Literal[1, 2, 3], ...] = (1, 2, 3)
    categories: tuple[str, ...] = ()


class Policy(Model):
    id: Name
    match: PolicyMatch = PolicyMatch()
    steps: tuple[Step, ...] = Field(min_length=1)


class PagingConfig(Model):
    people: tuple[Person, ...] = ()
    channels: tuple[Channel, ...] = ()
    rosters: tuple[Roster, ...] = ()
    policies: tuple[Policy, ...] = ()
    # pages to one person on one channel within this window go as one message (not webhooks);
    # at most 5 s, well inside the escalation timers' lease
    batch_window: Duration = Field(default=0.0, ge=0.0, le=5.0)
    # a page left "sending" this long (its process died mid-send) is sent again, and an
    # event a dead replica took is taken over; keep it above a channel's worst send time
    resend_after: Duration = Field(default=30.0, ge=1.0, le=3600.0)
    # an event that failed this many times goes to the dead-letter stream hallmon:events:dead
    dead_letter_after: int = Field(default=5, ge=1, le=100)
    # reminders, overdue notices, resolution notices and hand-off reports stop being retried
    # after this long (a page is retried until it is sent, acknowledged or resolved)
    give_up_after: Duration = Field(default=86400.0, ge=60.0)
    lang: Literal["zh", "en"] = "zh"

    def cross_issues(self) -> list[tuple[tuple, str]]:
        """References that must resolve: (location, message)."""
        out: list[tuple[tuple, str]] = []
        people = {p.id for p in self.people}
        channels = {c.id for c in self.channels}
        rosters = {r.id: {lay.id for lay in r.layers} for r in self.rosters}
        for i, p in enumerate(self.people):
            for j, c in enumerate(p.channels):
                if c not in channels:
                    out.append((("paging", "people", i, "channels", j), f"no channel {c!r}"))
        for i, ch in enumerate(self.channels):
            if ch.fallback is not None and ch.fallback not in channels:
                out.append((("paging", "channels", i, "fallback"), f"no channel {ch.fallback!r}"))
        for i, r in enumerate(self.rosters):
            for j, lay in enumerate(r.layers):
                for k, m in enumerate(lay.members):
                    if m not in people:
                        out.append((("paging", "rosters", i, "layers", j, "members", k), f"no person {m!r}"))
            for j, o in enumerate(r.overrides):
                if o.person not in people:
                    out.append((("paging", "rosters", i, "overrides", j, "person"), f"no person {o.person!r}"))
                if o.layer not in rosters[r.id]:
                    out.append((("paging", "rosters", i, "overrides", j, "layer"), f"no layer {o.layer!r}"))
        for i, pol in enumerate(self.policies):
            for j, step in enumerate(pol.steps):
                n = step.notify
                loc = ("paging", "policies", i, "steps", j, "notify")
                if n is None:
                    continue
                if n.roster is not None and (n.roster not in rosters or n.layer not in rosters[n.roster]):
                    out.append(((*loc, "roster"), f"no roster layer {n.roster}/{n.layer}"))
                if n.person is not None and n.person not in people:
                    out.append(((*loc, "person"), f"no person {n.person!r}"))
                if n.channel is not None and n.channel not in channels:
                    out.append(((*loc, "channel"), f"no channel {n.channel!r}"))
        return out
