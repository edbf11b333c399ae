from urllib.parse import parse_qs, urlparse

import pytest

from monitor.paging.acklink import AckSigner


def _parts(url):
    q = parse_qs(urlparse(url).query)
    return q["exp"][0], q["sig"][0]


def test_link_acknowledges_only_its_incident_and_only_until_it_expires():
    signer = AckSigner(b"k" * 32, ttl=600)
    url = signer.url("http://127.0.0.1:9108/", "INC-1", now=1000)
    assert urlparse(url).path == "/api/v1/incidents/INC-1/ack"
    exp, sig = _parts(url)
    assert signer.verify("INC-1", exp, sig, now=1500)
    assert not signer.verify("INC-1", exp, sig, now=1601)  # expired
    assert not signer.verify("INC-2", exp, sig, now=1500)  # another incident
    assert not signer.verify("INC-1", str(int(exp) + 3600), sig, now=1500)  # extended by hand
    assert not signer.verify("INC-1", exp, sig[:-1] + ("0" if sig[-1] != "0" else "1"), now=1500)
    assert not AckSigner(b"x" * 32).verify("INC-1", exp, sig, now=1500)  # another secret
    assert not signer.verify("INC-1", None, None)


def test_short_secret_is_refused():
    with pytest.raises(ValueError):
        AckSigner(b"short")
