"""Earlier releases, built from this repository's history, run as real processes on the
same Redis and config as the checkout (the upgrade test, issue 17).

``tests/previous-releases.txt`` names each release's commit. A release is the tree of its
commit (``git archive``: ``monitor``, ``probes``, ``simulators``) run by this venv's Python
with that tree first on ``PYTHONPATH``: every release's dependencies are a subset of this
checkout's (pyproject.toml only ever added some), so no second venv is needed."""
from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import ROOT, ServiceProcess
from tests.pagingkit import paging_yaml
from tests.plankit import Hall, six_units
from tests.routerkit import TOKENS, org_config

RELEASES_FILE = ROOT / "tests" / "previous-releases.txt"


@dataclass(frozen=True)
class Release:
    version: str
    commit: str

    def build(self, into: Path) -> Path:
        """The release's tree under ``into`` (once per directory)."""
        tree = into / self.version
        if not (tree / "monitor").exists():
            archive = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", self.commit,
                                      "monitor", "probes", "simulators"], capture_output=True, check=False)
            if archive.returncode != 0:
                raise RuntimeError(f"cannot build {self.version} from commit {self.commit}: "
                                   f"{archive.stderr.decode().strip()} (a shallow clone? fetch the history)")
            tree.mkdir(parents=True)
            with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
                tar.extractall(tree, filter="data")
        return tree


def releases() -> list[Release]:
    out = []
    for line in RELEASES_FILE.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            version, commit = line.split()
            out.append(Release(version, commit))
    return out


def config(tmp: Path, name: str, redis_url: str, receiver_base: str | None, wait: str = "20s") -> Path:
    """A config every release reads: the router tests' organisation (six units), paging to
    ``receiver_base`` with a ``wait`` before the duty leader (none without a receiver)."""
    paging = paging_yaml(receiver_base, wait=wait) if receiver_base else ""
    path = tmp / f"{name}.yml"
    path.write_text(six_units(org_config(redis_url, "shenzhen-customs", paging)), encoding="utf-8")
    return path


class Service(Hall):
    """A ``Hall`` (tests/plankit.py) on a given config, run by this checkout or, with
    ``tree``, by an earlier release."""

    def __init__(self, config: Path, tree: Path | None = None):  # not super().__init__: that writes a config of its own
        self.plan, self.config, self.tree = "shenzhen-customs", config, tree
        self.start()

    def start(self) -> None:
        if self.tree is None:
            return super().start()
        env = {**TOKENS, "PYTHONPATH": str(self.tree)}
        self.svc = ServiceProcess(self.config, env=env, command=[sys.executable, "-m", "monitor.cli"], cwd=self.tree)
        self.base = self.svc.wait_listening(timeout=60)
        self.env = {**os.environ, **env, "HALLMON_URL": self.base, "HALLMON_TOKEN": TOKENS["HALLMON_T_ADMIN"]}


LEAVE_INTAKE_ENTRY = """\
import asyncio, json, sys, time
import redis.asyncio as aioredis
from monitor.incidents.intake import Intake

async def main():
    client = aioredis.from_url(sys.argv[1])
    entry = await Intake(client, None, None).submit(sys.argv[2].encode(), "list", "ops", time.time(), wait=False)
    print(entry)
    await client.aclose()

asyncio.run(main())
"""


def leave_intake_entry(tree: Path, redis_url: str, alerts: list[dict]) -> str | None:
    """An alert request stored by the release's own intake and never placed (its process
    gone before its consumer read it); None for a release without an intake stream."""
    if not (tree / "monitor" / "incidents" / "intake.py").exists():
        return None
    import json

    out = subprocess.run([sys.executable, "-c", LEAVE_INTAKE_ENTRY, redis_url, json.dumps(alerts)], cwd=tree,
                         env={**os.environ, "PYTHONPATH": str(tree)}, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()
