"""A private NUT ``upsd`` with ``dummy-ups`` drivers (Debian nut-server), in a temp dir,
on a free loopback port. ``set(ups, {...})`` rewrites the driver's ``.dev`` file; the
driver re-reads it on change and upsd serves the new values."""
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
UPSD = "/lib/nut/upsd"
OL = {"ups.status": "OL", "battery.charge": "100", "battery.runtime": "1800", "ups.load": "23",
      "input.voltage": "230.0"}


class UpsdServer:
    def __init__(self, upses: list[str]):
        for binary in (DRIVER, UPSD):
            if not Path(binary).exists():
                raise RuntimeError(f"{binary} not found: run scripts/setup.sh test (nut-server)")
        self.upses = list(upses)
        self.dir = Path(tempfile.mkdtemp(prefix="hallmon-upsd-"))
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.procs: list[subprocess.Popen] = []
        self.env = {**os.environ, "NUT_CONFPATH": str(self.dir), "NUT_STATEPATH": str(self.dir),
                    "NUT_ALTPIDPATH": str(self.dir)}

    def dev(self, ups: str) -> Path:
        return self.dir / f"{ups}.dev"

    def set(self, ups: str, variables: dict[str, str]) -> None:
        path = self.dev(ups)
        tmp = path.with_suffix(".tmp")
        tmp.write_text("".join(f"{k}: {v}\n" for k, v in variables.items()))
        os.replace(tmp, path)
        st = path.stat()  # make sure the driver sees a newer mtime even within one second
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))

    def start(self) -> "UpsdServer":
        d = self.dir
        (d / "nut.conf").write_text("MODE=standalone\n")
        (d / "ups.conf").write_text("".join(
            f"[{u}]\n  driver = dummy-ups\n  port = {self.dev(u)}\n  pollinterval = 1\n  desc = \"test {u}\"\n"
            for u in self.upses))
        (d / "upsd.conf").write_text(f"LISTEN 127.0.0.1 {self.port}\nMAXAGE 5\n")
        (d / "upsd.users").write_text("")
        for name in ("upsd.conf", "upsd.users"):
            (d / name).chmod(0o600)
        d.chmod(0o700)
        for u in self.upses:
            self.set(u, OL)
            self._spawn([DRIVER, "-a", u, "-u", "root", "-F"])
        for u in self.upses:
            self._wait(lambda: (d / f"dummy-ups-{u}").exists(), f"dummy-ups {u}")
        self._spawn([UPSD, "-u", "root", "-F"])
        self._wait(self._answers, "upsd")
        return self

    def _spawn(self, args: list[str]) -> None:
        log = open(self.dir / f"{Path(args[0]).name}.log", "ab")
        self.procs.append(subprocess.Popen(args, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                           cwd=self.dir))
        log.close()

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(f"GET VAR {self.upses[0]} ups.status\n".encode())
                return s.recv(256).startswith(b"VAR ")
        except OSError:
            return False

    def _wait(self, ready, what: str) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if ready():
                return
            time.sleep(0.05)
        logs = "".join(p.read_text(errors="replace") for p in self.dir.glob("*.log"))
        self.stop()
        raise RuntimeError(f"{what} did not start:\n{logs}")

    def stop_upsd(self) -> None:
        """Stop upsd only (the drivers keep running): the probe must see it go."""
        proc = self.procs.pop()
        proc.terminate()
        proc.wait(5)

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self.procs.clear()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> "UpsdServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
