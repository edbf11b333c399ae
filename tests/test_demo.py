"""`hallmon demo` runs the whole chain and narrates it."""
import subprocess
import sys

from tests.conftest import ROOT


def test_demo_narrates_fault_level_clocks_pages_ack_and_report():
    res = subprocess.run([sys.executable, "-m", "monitor.cli", "--log-format", "json", "demo", "--duration", "12"],
                         capture_output=True, text=True, cwd=ROOT, timeout=90)
    assert res.returncode == 0, res.stderr[-2000:]
    out = res.stdout
    for expected in ("供电故障", "now has faults ['power.low_battery', 'power.on_battery']", "POS支付故障",
                     "congestion/queue", "level 3 (三级)", "rule local [Shenzhen 2.2]", "level 2 (二级)",
                     "rule scope-several-units [Shenzhen 2.2]", "clock phone-report", "page to 演示值班长",
                     "ack: HTTP 200, status acknowledged", "phone report filed: HTTP 200", "时间：", "地点：演示一关 演示通关大厅"):
        assert expected in out, (expected, out[-3000:])
