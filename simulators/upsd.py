"""A real upsd with NUT's dummy-ups driver in a temporary directory, for tests and
benchmarks. The UPS is driven by rewriting the driver's ``.dev`` file."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from .redisproc import free_port

DRIVER = "/lib/nut/dummy-ups"
UPSD = "/lib/nut/upsd"  # the binary; /sbin/upsd is Debian's wrapper that needs /etc/nut/nut.conf


def available() -> bool:
    return Path(DRIVER).exists() and Path(UPSD).exists()


class Upsd:
    def __init__(self, upses: dict[str, dict[str, str]]):
        self.dir = Path(tempfile.mkdtemp(prefix="hallmon-nut-"))
        (self.dir / "state").mkdir()
        self.port = free_port()
        self.upses = list(upses)
        self._stamps: dict[str, int] = {}
        conf = []
        for name, values in upses.items():
            conf.append(f"[{name}]\n  driver = dummy-ups\n  port = {name}.dev\n  pollinterval = 1\n"
                        f"  desc = \"hallmon test UPS\"\n")
            self.write(name, values)
        (self.dir / "ups.conf").write_text("".join(conf))
        (self.dir / "upsd.conf").write_text(f"LISTEN 127.0.0.1 {self.port}\n")
        (self.dir / "upsd.users").write_text("")
        os.chmod(self.dir / "upsd.users", 0o600)
        self.env = {**os.environ, "NUT_CONFPATH": str(self.dir), "NUT_STATEPATH": str(self.dir / "state"),
                    "NUT_ALTPIDPATH": str(self.dir / "state")}
        self.procs: list[subprocess.Popen] = []

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def write(self, ups: str, values: dict[str, str]) -> None:
        """Set the UPS's variables. The driver re-reads the file when its mtime changes, compared
        in whole seconds (``st_mtime``): two writes within one second would leave the second
        unread, so each write's mtime is a whole second past the one before."""
        lines = "".join(f"{k}: {v}\n" for k, v in values.items())
        path = self.dir / f"{ups}.dev"
        tmp = self.dir / f"{ups}.dev.tmp"
        tmp.write_text(lines)
        stamp = max(int(time.time()), self._stamps.get(ups, 0) + 1)
        os.utime(tmp, (stamp, stamp))
        self._stamps[ups] = stamp
        tmp.replace(path)

    def start(self) -> "Upsd":
        for ups in self.upses:
            self.procs.append(subprocess.Popen([DRIVER, "-a", ups, "-u", "root", "-F"], env=self.env, cwd=self.dir,
                                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        time.sleep(0.3)
        self.procs.append(subprocess.Popen([UPSD, "-u", "root", "-F"], env=self.env, cwd=self.dir,
                                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    s.sendall(f"GET VAR {self.upses[-1]} ups.status\n".encode())
                    answer = s.recv(256)
                    if answer.startswith(b"VAR") and b'"WAIT"' not in answer:
                        return self
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("upsd with dummy-ups did not come up")

    def stop_driver(self, index: int = 0) -> None:
        self.procs[index].kill()
        self.procs[index].wait()

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> "Upsd":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
