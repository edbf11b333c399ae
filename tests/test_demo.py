"""`hallmon demo` runs the whole chain and narrates it, says where it serves and logs,
and every way it ends stops everything it started."""
import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT


def test_demo_narrates_fault_level_clocks_pages_ack_and_report():
    res = subprocess.run([sys.executable, "-m", "monitor.cli", "--log-format", "json", "demo", "--duration", "12"],
                         capture_output=True, text=True, cwd=ROOT, timeout=90)
    assert res.returncode == 0, res.stderr[-2000:]
    out = res.stdout
    for expected in ("供电故障", "now has faults ['power.low_battery', 'power.on_battery']", "POS 支付故障",
                     "congestion/queue", "level 3 (三级)", "rule local [Shenzhen 2.2]", "level 2 (二级)",
                     "rule scope-several-units [Shenzhen 2.2]", "clock phone-report", "page to 演示值班长",
                     "ack: HTTP 200, status acknowledged", "phone report filed: HTTP 200", "时间：", "地点：演示一关 演示通关大厅",
                     "level 2 (Ⅱ级（重大）)", "rule time-span [Guizhou part 3]", "maintenance=True",
                     "paging resumes"):
        assert expected in out, (expected, out[-3000:])
    # one time-driven upgrade (Guizhou part 3): level Ⅲ when heard of, Ⅱ by the timer alone,
    # the hourly update missed once (one overdue page, not a second one seconds later)
    tax = out.split("the tax hall (Guizhou plan)")[1].split("a power cut at")[0]
    assert "level 3 (Ⅲ级（一般）); at " in tax and "it will have lasted 2 h" in tax
    assert tax.index("it will have lasted 2 h") < tax.index("level 2 (Ⅱ级（重大）)")
    after = out.split("the tax hall (Guizhou plan)")[1]  # pages print as they come: maybe in a later section
    assert after.count("overdue): 【报告超时】Ⅲ级事件边处置边报告") == 1, after
    assert "clock continuous-update#1" in tax and "clock continuous-update#2" not in tax
    # one maintenance window ending (Putian art. 3): held while it lasts, paged when it ends
    window, resumed = out.split("a power cut at")[1].split("paging resumes")
    assert "maintenance=True, pages held until" in window and "演示现场4" not in window.split("pages held until")[1]
    assert "📟 page to" in resumed and "演示现场4" in resumed


def _start_demo(tmp_path):
    import os

    out = open(tmp_path / "demo.out", "w")
    proc = subprocess.Popen([sys.executable, "-m", "monitor.cli", "demo"], stdout=out, stderr=subprocess.STDOUT,
                            cwd=ROOT, env={k: v for k, v in os.environ.items() if k != "HALLMON_DEMO_LISTEN"})
    return proc, tmp_path / "demo.out"


def _wait_text(path, text: str, proc, timeout: float) -> str:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = path.read_text()
        if text in body:
            return body
        assert proc.poll() is None, body[-3000:]
        time.sleep(0.1)
    raise AssertionError(f"{text!r} not printed in {timeout} s:\n{path.read_text()[-3000:]}")


def _alive(pid: int) -> bool:
    """Running (a zombie waiting to be reaped has stopped running)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def test_demo_prints_log_file_console_link_and_exports_and_only_warnings_reach_the_terminal(tmp_path):
    import re
    import signal

    proc, out = _start_demo(tmp_path)
    try:
        body = _wait_text(out, "export HALLMON_URL=", proc, 60)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
    first = body.splitlines()[0]
    log_file = re.search(r"logs \(JSON lines\) in (\S+);", first).group(1)
    m = re.search(r"console (http://127\.0\.0\.1:(\d+))/console/#token=(\w+)", body)
    assert m, body
    base, port, token = m.groups()
    assert port == "9108" or f"127.0.0.1:9108 is taken; serving on 127.0.0.1:{port}" in body
    assert f"export HALLMON_URL={base} HALLMON_TOKEN={token}" in body
    logged = [json.loads(line) for line in open(log_file, encoding="utf-8")]
    assert any(e["event"] == "listening" for e in logged) and "\x1b[" not in open(log_file).read()
    assert "listening" not in body  # info stays in the file
    assert all(line.startswith("hallmon warning") or line.startswith("hallmon error") or "{" not in line
               for line in body.splitlines() if line.startswith("hallmon ") and ":" in line.split()[1])


@pytest.mark.parametrize("how", ["SIGINT after the scenario", "SIGTERM during it", "SIGKILL"])
def test_every_way_the_demo_ends_stops_everything_it_started_within_5s(tmp_path, how):
    import signal
    import time

    proc, out = _start_demo(tmp_path)
    try:
        _wait_text(out, "export HALLMON_URL=", proc, 60)
        if how.startswith("SIGINT"):
            _wait_text(out, "scenario done; still serving", proc, 90)
        redis = [pid for pid in _children(proc.pid)
                 if "redis-server" in open(f"/proc/{pid}/cmdline").read()]
        assert len(redis) == 1
        sig = {"SIGINT": signal.SIGINT, "SIGTERM": signal.SIGTERM, "SIGKILL": signal.SIGKILL}[how.split()[0]]
        t0 = time.monotonic()
        proc.send_signal(sig)
        proc.wait(5)
        while _alive(redis[0]) and time.monotonic() - t0 < 5:
            time.sleep(0.05)
        assert not _alive(redis[0]), f"redis-server {redis[0]} still running after the demo ended ({how})"
        assert time.monotonic() - t0 < 5
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
