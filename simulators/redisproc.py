"""A private redis-server on a free loopback port in a temporary directory."""
from __future__ import annotations

import ctypes
import ctypes.util
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    """In the child before exec: Linux sends it SIGTERM when its parent dies, even by
    SIGKILL, so a killed ``hallmon demo`` leaves no redis-server behind."""
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG


class RedisServer:
    def __init__(self, appendonly: bool = True, port: int | None = None, die_with_parent: bool = False):
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        if not Path(binary).exists():
            raise RuntimeError("redis-server not found: run scripts/setup.sh")
        self.dir = tempfile.mkdtemp(prefix="hallmon-redis-")
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._args = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.dir,
                      "--save", "", "--appendonly", "yes" if appendonly else "no",
                      "--appendfsync", "everysec", "--daemonize", "no", "--logfile", "redis.log"]
        self.proc: subprocess.Popen | None = None
        self.die_with_parent = die_with_parent

    def start(self) -> "RedisServer":
        self.proc = subprocess.Popen(self._args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     preexec_fn=_die_with_parent if self.die_with_parent else None)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> "RedisServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
