"""Backups and restore (issue 17, item 6), with real processes: a live ``hallmon run`` on
a redis-server with AOF leaves an incident open (its report clock and its escalation wait
running, its first page sent) and one acknowledged; Redis's own files are copied as the
README says, the first Redis and hallmon are lost (SIGKILL), a fresh redis-server starts
on the copy and a fresh hallmon on it: every incident lists as it was, the clock falls
due and the escalation wait fires once, and the open one can be acknowledged. With only
an RDB snapshot, what came after the snapshot is gone (the README's "what is lost")."""
from __future__ import annotations

import json
import shutil
import signal
import urllib.error
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

import pytest
import redis

from simulators.redisproc import RedisServer
from tests.conftest import ServiceProcess
from tests.pagingkit import paging_yaml
from tests.plankit import Receiver, wait_for
from tests.routerkit import TOKENS, alert, clock_plan, org_config

# one report due 25 s after detection (so that it falls due after the restore), reminded 1 s before
PLAN = clock_plan("backup-test", due="25s")


def hall(tmp: Path, server: RedisServer, receiver: Receiver, name: str) -> ServiceProcess:
    plan = tmp / "backup-plan.yml"
    plan.write_text(PLAN, encoding="utf-8")
    cfg = tmp / f"{name}.yml"
    cfg.write_text(org_config(server.url, str(plan), paging_yaml(receiver.base, wait="15s")), encoding="utf-8")
    svc = ServiceProcess(cfg, env=TOKENS)
    svc.wait_listening(timeout=60)
    return svc


def call(svc: ServiceProcess, method: str, path: str, body: object = None) -> tuple[int, dict]:
    req = urllib.request.Request(svc.base + path, method=method,
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Content-Type": "application/json",
                                          "Authorization": f"Bearer {TOKENS['HALLMON_T_ADMIN']}"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


def copy_aof(r: redis.Redis, source: Path, dest: Path) -> None:
    """The copy the README prescribes: no AOF rewrite may run while the files are copied."""
    r.config_set("auto-aof-rewrite-percentage", "0")
    wait_for(lambda: r.info("persistence")["aof_rewrite_in_progress"] == 0)
    shutil.copytree(source / "appendonlydir", dest / "appendonlydir")
    r.config_set("auto-aof-rewrite-percentage", "100")


def snapshot(r: redis.Redis, source: Path, dest: Path) -> None:
    before = r.lastsave()
    r.bgsave()
    wait_for(lambda: r.lastsave() != before and r.info("persistence")["rdb_bgsave_in_progress"] == 0)
    shutil.copy(source / "dump.rdb", dest / "dump.rdb")


@pytest.mark.parametrize("copy", ["aof", "rdb"])
def test_redis_files_restored_into_a_fresh_redis_give_back_incidents_clocks_and_paging(tmp_path, copy):
    receiver = Receiver()
    first = RedisServer(appendonly=True).start()
    svc = again = fresh = None
    try:
        svc = hall(tmp_path, first, receiver, "before")
        t0 = datetime.now(timezone.utc).replace(microsecond=0)
        status, body = call(svc, "POST", "/api/v1/alerts", [alert("system.down", "u3a", "u3", starts=t0)])
        assert status == 200, body
        [open_id] = body["incidents"]
        status, body = call(svc, "POST", "/api/v1/alerts", [alert("power.on_battery", "u4a", "u4", starts=t0)])
        [acked_id] = body["incidents"]
        assert call(svc, "POST", f"/api/v1/incidents/{acked_id}/ack", {"by": "测试值班长甲"})[0] == 200
        wait_for(lambda: receiver.pages(open_id) and receiver.pages(acked_id))  # step 0 paged: paging state stored
        r = redis.Redis.from_url(first.url, decode_responses=True)
        backup = tmp_path / "backup"
        backup.mkdir()
        before = {i: call(svc, "GET", f"/api/v1/incidents/{i}")[1] for i in (open_id, acked_id)}
        if copy == "aof":
            r.execute_command("CONFIG", "SET", "appendfsync", "always")  # what was answered is on disk
            copy_aof(r, Path(first.dir), backup)
        else:
            snapshot(r, Path(first.dir), backup)
            # after the snapshot: an acknowledgement that only the AOF would have kept
            assert call(svc, "POST", f"/api/v1/incidents/{open_id}/ack", {"by": "测试值班长乙"})[0] == 200
        r.close()
        # the machine is lost: hallmon and Redis die where they stand
        svc.proc.send_signal(signal.SIGKILL)
        svc.stop()
        first.proc.kill()
        first.proc.wait()
        pages_before = len(receiver.pages(open_id))

        fresh = RedisServer(appendonly=copy == "aof")
        shutil.copytree(backup, fresh.dir, dirs_exist_ok=True)
        fresh.start()
        again = hall(tmp_path, fresh, receiver, "after")
        status, listed = call(again, "GET", "/api/v1/incidents")
        assert status == 200 and {d["id"]: d["status"] for d in listed["incidents"]} == \
            {open_id: "open", acked_id: "acknowledged"}  # (the RDB lost the later acknowledgement)
        for i in (open_id, acked_id):
            now = call(again, "GET", f"/api/v1/incidents/{i}")[1]
            assert now["timeline_intact"] and now["timeline"] == before[i]["timeline"]
            assert now["clocks"] == before[i]["clocks"]
        # the clock falls due under the restored service, and the escalation wait fires once
        wait_for(lambda: call(again, "GET", f"/api/v1/incidents/{open_id}")[1]["clocks"][0]["status"] == "overdue",
                 timeout=60)
        wait_for(lambda: [p for p in receiver.pages(open_id) if p["step"] == 2], timeout=60)
        assert [p["step"] for p in receiver.pages(open_id)].count(2) == 1
        assert not [p for p in receiver.pages(acked_id) if p["step"] == 2]  # acknowledged: no escalation
        assert len(receiver.pages(open_id)) > pages_before
        # and people act on it as before
        status, acked = call(again, "POST", f"/api/v1/incidents/{open_id}/ack", {"by": "测试值班长甲"})
        assert status == 200 and acked["status"] == "acknowledged"
    finally:
        for s in (svc, again):
            if s is not None:
                s.stop()
        for server in (first, fresh):
            if server is not None and server.proc is not None:
                server.stop()
        receiver.stop()

