"""schemathesis against a running `hallmon run` and its own /api/v1/openapi.json: every
phase (examples, coverage, fuzzing, stateful: following the document's links from the
request that opened an incident to the actions on it) and every check (no 5xx, statuses,
content types and bodies as documented, schema-invalid input refused, schema-valid input
accepted except where tests/schemathesis.toml says why not). Nothing answers 5xx."""
from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import ROOT
from tests.pagingkit import paging_yaml
from tests.routerkit import TOKENS, org_config

SEED = 20261201


def test_schemathesis_finds_nothing_and_nothing_answers_5xx(tmp_path, redis_url, service):
    cfg = tmp_path / "h.yml"
    cfg.write_text(org_config(redis_url, extra=paging_yaml("http://127.0.0.1:9")), encoding="utf-8")
    svc = service(cfg, env=dict(TOKENS))
    schemathesis = Path(sys.executable).with_name("schemathesis")
    t0 = time.monotonic()
    run = subprocess.run(
        [str(schemathesis), "--config-file", str(ROOT / "tests" / "schemathesis.toml"), "--no-color", "run",
         f"{svc.base}/api/v1/openapi.json", "-H", f"Authorization: Bearer {TOKENS['HALLMON_T_ADMIN']}",
         "--max-examples", "15", "--seed", str(SEED), "--workers", "1"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path)
    took = time.monotonic() - t0
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-6000:]
    answers = [json.loads(line) for line in svc.log_path.read_text().splitlines() if '"request_failed"' in line]
    server_errors = [a for a in answers if a["status"] >= 500]
    assert server_errors == []
    cases = re.search(r"(\d+) generated", out)
    print(f"\nschemathesis: {cases.group(1) if cases else '?'} cases, {len(answers)} refused (4xx), 0 x 5xx, "
          f"{took:.0f}s")
