"""Signed ack links: bound to one incident and one person, until they expire, once."""
from urllib.parse import parse_qs, urlparse

import pytest
import redis.asyncio as aioredis

from monitor.paging.acklink import AckSigner


def _query(url):
    return {k: v[0] for k, v in parse_qs(urlparse(url).query).items()}


def test_link_acknowledges_only_its_incident_as_its_person_and_only_until_it_expires():
    signer = AckSigner(b"k" * 32, ttl=600)
    url = signer.url("http://127.0.0.1:9108/", "INC-1", "duty-a", now=1000)
    assert urlparse(url).path == "/api/v1/incidents/INC-1/ack"
    q = _query(url)
    link = signer.verify("INC-1", q, now=1500)
    assert link is not None and link.person == "duty-a" and link.incident == "INC-1"
    assert not signer.verify("INC-1", q, now=1601)  # expired
    assert not signer.verify("INC-2", q, now=1500)  # another incident
    assert not signer.verify("INC-1", {**q, "p": "duty-b"}, now=1500)  # another person's name on it
    assert not signer.verify("INC-1", {**q, "exp": str(int(q["exp"]) + 3600)}, now=1500)  # extended by hand
    assert not signer.verify("INC-1", {**q, "sig": q["sig"][:-1] + ("0" if q["sig"][-1] != "0" else "1")}, now=1500)
    assert not AckSigner(b"x" * 32).verify("INC-1", q, now=1500)  # another secret
    assert not signer.verify("INC-1", {})
    assert not signer.verify("INC-1", {**q, "exp": "²"}, now=1500)  # a digit to str.isdigit, not to int()


async def test_a_link_is_spent_by_its_first_use(redis_url):
    r = aioredis.from_url(redis_url)
    signer = AckSigner(b"k" * 32, ttl=600)
    link = signer.verify("INC-1", _query(signer.url("", "INC-1", "duty-a")))
    assert link is not None
    assert await link.redeem(r) is True
    assert await link.redeem(r) is False
    other = signer.verify("INC-1", _query(signer.url("", "INC-1", "duty-b")))
    assert await other.redeem(r) is True  # another person's link is theirs to use
    assert 0 < await r.ttl(f"hallmon:acklinks:used:{link.sig}") <= 660  # kept until the link expires anyway
    await r.aclose()


def test_short_secret_is_refused():
    with pytest.raises(ValueError):
        AckSigner(b"short")
