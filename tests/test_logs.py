"""Log set-up (monitor/core/logs.py): every way hallmon logs redacts URL passwords."""
from __future__ import annotations

import structlog

from monitor.core.logs import configure_file


def test_the_demo_log_file_and_the_terminal_never_carry_a_url_password(tmp_path, capsys):
    path = tmp_path / "demo.log"
    before = structlog.get_config()
    try:
        configure_file(str(path))
        structlog.get_logger("t").warning("redis_unreachable", url="redis://:hunter2@127.0.0.1:6379/0")
        written = path.read_text(encoding="utf-8")
        shown = capsys.readouterr().err
        assert "hunter2" not in written and "hunter2" not in shown
        assert ":***@127.0.0.1" in written and ":***@127.0.0.1" in shown
    finally:
        structlog.configure(**before)  # the test session's own set-up (conftest) again
