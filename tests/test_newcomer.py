"""A newcomer's first hour: the version agrees everywhere, a short interval needs no
timeout, and the example config is a complete "your own hall"."""
from __future__ import annotations

import os
import re
import subprocess
import tomllib
import urllib.request

from monitor.config.model import load_config
from probes import PROBES
from tests.conftest import HALLMON, ROOT, write_config

EXAMPLE_SECRETS = {k: "x" for k in ("HALLMON_TOKEN_CHIEF", "HALLMON_TOKEN_LEADER", "HALLMON_TOKEN_PORT",
                                    "HALLMON_TOKEN_AM", "HALLMON_LINK_SECRET", "DINGTALK_TOKEN", "DINGTALK_SECRET")}
ORG = """\
organisation:
  name: t
  units:
    - id: u1
      name: 测试单位
      sites:
        - id: s1
          name: 测试现场
          targets:
{targets}"""


def pyproject_version() -> str:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def test_version_agrees_in_the_cli_the_metric_the_package_and_the_changelog(tmp_path, redis_url, service):
    version = pyproject_version()
    assert version == "0.7.0"
    out = subprocess.run([*HALLMON, "--version"], capture_output=True, text=True, cwd=ROOT)
    assert out.stdout.strip() == f"hallmon {version}"
    svc = service(write_config(tmp_path / "h.yml", ORG.format(targets="            []\n"), redis_url))
    metrics = urllib.request.urlopen(svc.base + "/metrics", timeout=5).read().decode()
    assert re.search(rf'^hallmon_build_info\{{[^}}]*version="{re.escape(version)}"[^}}]*\}} 1\.0$', metrics, re.M)
    assert f"- {version}" in (ROOT / "docs" / "CHANGELOG.md").read_text()


def test_a_defaulted_timeout_is_the_smaller_of_5s_and_the_interval(tmp_path):
    cfg = load_config(write_config(tmp_path / "h.yml", ORG.format(targets="""\
            - {name: fast, kind: net.tcp, address: "127.0.0.1:9", interval: 1s}
            - {name: slow, kind: net.tcp, address: "127.0.0.1:9", interval: 30s}
            - {name: quick, kind: net.tcp, address: "127.0.0.1:9", interval: 250ms}
            - {name: set, kind: net.tcp, address: "127.0.0.1:9", interval: 30s, timeout: 10s}
""")))
    assert {t.name: t.timeout for t in cfg.targets} == {"fast": 1.0, "slow": 5.0, "quick": 0.25, "set": 10.0}
    bad = write_config(tmp_path / "bad.yml", ORG.format(targets="""\
            - {name: fast, kind: net.tcp, address: "127.0.0.1:9", interval: 1s, timeout: 2s}
"""))
    res = subprocess.run([*HALLMON, "check-config", str(bad)], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 1 and "targets[0].timeout: timeout 2s is longer than interval 1s" in res.stderr


def test_the_example_is_a_complete_own_hall(tmp_path):
    os.environ.update(EXAMPLE_SECRETS)
    try:
        cfg = load_config(ROOT / "examples/hallmon.yml")
    finally:
        for key in EXAMPLE_SECRETS:
            os.environ.pop(key, None)
    assert {t.kind for t in cfg.targets} == set(PROBES), "one target of every kind"
    people = {p.id for p in cfg.paging.people}
    assert cfg.api.tokens and all(t.person in people for t in cfg.api.tokens if t.scopes != ("alerts:write",))
    assert any(t.units for t in cfg.api.tokens)
    dingtalk = [c for c in cfg.paging.channels if c.type == "dingtalk"]
    assert dingtalk and dingtalk[0].token_env and dingtalk[0].secret_env
