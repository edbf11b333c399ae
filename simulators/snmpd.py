"""A real net-snmp ``snmpd`` on a free loopback UDP port, serving UPS-MIB values through
``pass_persist`` (``simulators.upsmib``), with a v2c community and a v3 user."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .redisproc import free_port

SNMPD = shutil.which("snmpd") or "/usr/sbin/snmpd"
V3_USER, V3_AUTH, V3_PRIV = "hallmon", "hallmon-auth-key", "hallmon-priv-key"


def available() -> bool:
    return Path(SNMPD).exists()


class Snmpd:
    def __init__(self, values: dict, community: str = "hall-ro"):
        self.dir = Path(tempfile.mkdtemp(prefix="hallmon-snmpd-"))
        self.values_file = self.dir / "ups.json"
        self.set(values)
        self.port = free_port()
        self.community = community
        script = Path(__file__).with_name("upsmib.py")
        (self.dir / "snmpd.conf").write_text(
            f"rocommunity {community} 127.0.0.1\n"
            f"createUser {V3_USER} SHA \"{V3_AUTH}\" AES \"{V3_PRIV}\"\n"
            f"rouser {V3_USER} priv\n"
            f"pass_persist .1.3.6.1.2.1.33 {sys.executable} {script} {self.values_file}\n")
        self.proc: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def set(self, values: dict) -> None:
        tmp = self.values_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(values))
        tmp.replace(self.values_file)

    def start(self) -> "Snmpd":
        env = {**os.environ, "SNMP_PERSISTENT_DIR": str(self.dir), "MIBS": ""}
        self.proc = subprocess.Popen([SNMPD, "-f", "-Lf", str(self.dir / "snmpd.log"), "-C", "-c",
                                      str(self.dir / "snmpd.conf"), "-p", str(self.dir / "snmpd.pid"),
                                      f"udp:127.0.0.1:{self.port}"], env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        if self.proc.poll() is not None:
            raise RuntimeError(f"snmpd exited: {(self.dir / 'snmpd.log').read_text()}")
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> "Snmpd":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
