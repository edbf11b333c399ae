"""Config validation: every mistake in a file reported at once, as file:line: path."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import TypeAdapter, ValidationError

from monitor.config.model import Secret, SecretEnv, SecretFile, load_config
from monitor.core.errors import ConfigError
from monitor.core.target import parse_duration, parse_hostport

ROOT = Path(__file__).resolve().parent.parent

BAD = """\
service:
  listen: localhost
  timezone: Mars/Olympus
  redis_url: http://127.0.0.1:1/0
organisation:
  name: x
  units:
    - id: u1
      name: U1
      sites:
        - id: s1
          name: S1
          uplinks: [nope]
          targets:
            - {name: a, kind: net.tcp, address: "127.0.0.1:99999"}
            - {name: a, kind: net.tcp, address: "127.0.0.1:80", interval: -5}
            - {name: b, kind: net.foo, address: "127.0.0.1:5"}
            - {name: c, kind: system.http, url: "ftp://x", intervall: 10s}
            - {name: d, kind: net.tcp}
            - {name: e, kind: net.tcp, address: "127.0.0.1:1", timeout: 20s}
    - id: u1
      name: U1b
      sites: []
"""


def test_example_config_is_valid(monkeypatch):
    for key in ("HALLMON_TOKEN_CHIEF", "HALLMON_TOKEN_LEADER", "HALLMON_TOKEN_PORT", "HALLMON_TOKEN_AM",
                "HALLMON_LINK_SECRET", "DINGTALK_TOKEN", "DINGTALK_SECRET"):
        monkeypatch.setenv(key, "x")
    cfg = load_config(ROOT / "examples" / "hallmon.yml")
    h2000 = next(t for t in cfg.targets if t.name == "futian-h2000")
    assert (h2000.system, h2000.site, h2000.unit) == ("core", "futian-hall", "futian")
    assert h2000.spec.slow_after == 2.0


def test_every_mistake_is_reported_at_once_with_file_line_and_path(tmp_path):
    path = tmp_path / "hall.yml"
    path.write_text(BAD)
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    lines = str(exc.value).splitlines()
    p = str(path)
    expected = [
        f"{p}:2: service.listen: expected an address with a port",
        f"{p}:3: service.timezone: expected an IANA time zone like Asia/Shanghai, got \"Mars/Olympus\"",
        f"{p}:13: organisation.units[0].sites[0].uplinks[0]: uplink 'nope' is not a target of this site",
        f"{p}:15: organisation.units[0].sites[0].targets[0].address: expected a port between 1 and 65535",
        f"{p}:16: organisation.units[0].sites[0].targets[1].interval: expected a duration like 10s, got -5",
        f"{p}:16: organisation.units[0].sites[0].targets[1].name: duplicate target id 'a'",
        f"{p}:17: organisation.units[0].sites[0].targets[2].kind: unknown target kind 'net.foo'",
        f"{p}:18: organisation.units[0].sites[0].targets[3].intervall: unknown key",
        f"{p}:18: organisation.units[0].sites[0].targets[3].url: expected an http:// or https:// URL",
        f"{p}:19: organisation.units[0].sites[0].targets[4].address: required key missing",
        f"{p}:21: organisation.units[1].id: duplicate unit id 'u1'",
        f"{p}:23: organisation.units[1].sites: expected at least 1 item",
    ]
    for want in expected:
        assert any(line.startswith(want) for line in lines), (want, lines)
    assert any("redis_url" in line for line in lines)
    assert len(exc.value.issues) == len(lines)


def test_timeout_longer_than_interval_is_an_error(tmp_path):
    path = tmp_path / "t.yml"
    path.write_text(BAD.split("    - id: u1\n      name: U1b")[0].replace("uplinks: [nope]", "uplinks: []"))
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    assert any(i.path.endswith("targets[5].timeout") and "longer than interval" in i.message
               for i in exc.value.issues)


@pytest.mark.parametrize("text, message", [
    ("organisation: {name: x\n", "not valid YAML"),
    ("organisation: {name: x}\norganisation: {name: y}\n", "duplicate key"),
    ("- a\n- b\n", "expected a mapping at the top level"),
])
def test_broken_files_get_a_located_error(tmp_path, text, message):
    path = tmp_path / "b.yml"
    path.write_text(text)
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    assert message in str(exc.value)
    assert str(exc.value).startswith(f"{path}:")


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.yml")


def test_check_config_exit_codes(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text(BAD)
    secrets = {k: "x" for k in ("HALLMON_TOKEN_CHIEF", "HALLMON_TOKEN_LEADER", "HALLMON_TOKEN_PORT", "HALLMON_TOKEN_AM",
                                "HALLMON_LINK_SECRET", "DINGTALK_TOKEN", "DINGTALK_SECRET")}
    ok = subprocess.run([sys.executable, "-m", "monitor.cli", "check-config", str(ROOT / "examples/hallmon.yml")],
                        capture_output=True, text=True, cwd=ROOT, env={**os.environ, **secrets})
    assert ok.returncode == 0, ok.stderr
    assert "9 targets" in ok.stdout
    res = subprocess.run([sys.executable, "-m", "monitor.cli", "check-config", str(bad)],
                         capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 1
    assert f"{bad}:16: organisation.units[0].sites[0].targets[1].interval" in res.stderr
    assert "error(s)" in res.stderr


@pytest.mark.parametrize("text, seconds", [("10s", 10), ("5m", 300), ("1h30m", 5400), ("500ms", 0.5),
                                           ("2d", 172800), ("1w", 604800)])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["-5", "10", 10, "10 s", "s", "", None, "1y"])
def test_bad_durations(bad):
    with pytest.raises(ValueError, match="expected a duration like 10s"):
        parse_duration(bad)


@pytest.mark.parametrize("text, want", [("127.0.0.1:3493", "127.0.0.1:3493"), ("[::1]:53", "[::1]:53"),
                                        ("ups.local:3493", "ups.local:3493")])
def test_addresses(text, want):
    assert parse_hostport(text) == want


@pytest.mark.parametrize("bad", ["127.0.0.1", "127.0.0.1:0", "host:port", "::1:53", ":80", "a b:80", 5])
def test_bad_addresses(bad):
    with pytest.raises(ValueError):
        parse_hostport(bad)


def test_secrets_come_from_env_or_file_and_never_show(tmp_path, monkeypatch):
    monkeypatch.setenv("HALLMON_TEST_TOKEN", "s3cr3t-value")
    secret = TypeAdapter(SecretEnv).validate_python("HALLMON_TEST_TOKEN")
    assert isinstance(secret, Secret) and secret.value == "s3cr3t-value"
    assert "s3cr3t" not in repr(secret) and "s3cr3t" not in str(secret)
    f = tmp_path / "token"
    f.write_text("from-file\n")
    assert TypeAdapter(SecretFile).validate_python(str(f)).value == "from-file"
    with pytest.raises(ValidationError, match="HALLMON_ABSENT is not set"):
        TypeAdapter(SecretEnv).validate_python("HALLMON_ABSENT")
    with pytest.raises(ValidationError, match="cannot read secret file"):
        TypeAdapter(SecretFile).validate_python(str(tmp_path / "nope"))
