"""Accounts and sign-in against a real redis-server and a real slapd (StartTLS and LDAPS
with a test CA): local accounts made with `hallmon user`, directory users mapped by
group, sessions (idle, absolute, sign out, everywhere), the lockout, roles in their
units across every built-in plan, machine tokens, the audit log, and the config's
errors by file:line."""
from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
import redis

from monitor.config.model import load_config
from monitor.core.errors import ConfigError
from monitor.plans.model import builtin_ids
from monitor.service import keys
from simulators import slapd
from simulators.redisproc import free_port
from simulators.slapd import BIND_DN, BIND_SECRET, SUFFIX, Slapd, group, person
from tests.conftest import HALLMON, ROOT
from tests.routerkit import FakeTime, alert, auth, make_app

pytestmark = [pytest.mark.usefixtures("tokens"),
              pytest.mark.skipif(not slapd.available(), reason="slapd not installed: run scripts/setup.sh test")]

PASSWORDS = {"lead-ldap": "ldap-lead-pass-0001", "duty-ldap": "ldap-duty-pass-0001", "lonely": "ldap-lonely-0001"}
LDIF = (person("duty-ldap", "测试值班员丙", PASSWORDS["duty-ldap"]) + person("lead-ldap", "测试值班领导乙", PASSWORDS["lead-ldap"])
        + person("lonely", "测试无组人员", PASSWORDS["lonely"])
        + group("hall-duty", "duty-ldap", "lead-ldap") + group("hall-leaders", "lead-ldap") + group("canteen", "lonely"))


@pytest.fixture(scope="module")
def directory():
    with Slapd(LDIF) as d:
        yield d


def ldap_section(d: Slapd, url: str | None = None, start_tls: bool = True, ca_file: str | None = None,
                 timeout: str = "2s") -> str:
    return f"""\
  ldap:
    url: "{url or d.starttls_url}"
    start_tls: {"true" if start_tls else "false"}
    ca_file: "{ca_file or d.ca_file}"
    bind_dn: "{BIND_DN}"
    bind_secret_env: T_LDAP_BIND
    user_base: "ou=people,{SUFFIX}"
    group_base: "ou=groups,{SUFFIX}"
    timeout: {timeout}
    groups:
      - {{dn: "cn=hall-duty,ou=groups,{SUFFIX}", role: duty_officer, units: [u1]}}
      - {{dn: "cn=hall-leaders,ou=groups,{SUFFIX}", role: duty_leader, units: [u1, u2]}}
"""


def extra(ldap: str = "") -> str:
    return f"""\
paging:
  people:
    - {{id: duty-ldap, name: 测试值班员丙, channels: [hook]}}
    - {{id: duty-a, name: 测试值班长甲, channels: [hook]}}
  channels:
    - {{id: hook, type: webhook, url: "http://127.0.0.1:9/unused"}}
auth:
  password_min_length: 12
  session: {{idle: 30m, absolute: 8h}}
  lockout: {{slow_after: 2, lock_after: 4, address_slow_after: 6, address_lock_after: 8, window: 15m, lock_for: 10m}}
{ldap}"""


def add_user(cfg: Path, name: str, password: str, *flags: str) -> subprocess.CompletedProcess:
    """`hallmon user add` itself (a process: ~2 s of CPU to start; tests of other things use ``account``)."""
    return subprocess.run([*HALLMON, "user", "add", name, "-c", str(cfg), "--password-stdin", *flags],
                          input=password + "\n", capture_output=True, text=True, cwd=ROOT, timeout=60)


async def account(client, name: str, password: str, role: str, units: tuple[str, ...] | None = None,
                  person: str | None = None) -> None:
    """A local account written to the store as `hallmon user add` writes it."""
    from datetime import datetime, timezone

    from monitor.auth.passwords import hash_password
    from monitor.auth.records import Account

    now = datetime.now(timezone.utc)
    assert await client.server.app[keys.AUTH].store.add_account(
        Account(name, name, role, units, person, hash_password(password), False, now, now))


async def audit(client, account: str | None = None) -> list[dict]:
    """The audit log as an admin reads it (GET /api/v1/audit answers the same records)."""
    return [e.to_json() for e in await client.server.app[keys.AUTH].store.audit_log(account=account)]


@pytest.fixture
def ldap_env(monkeypatch):
    monkeypatch.setenv("T_LDAP_BIND", BIND_SECRET)


async def start(aiohttp_client, tmp_path, redis_url, ldap: str = "", plan: str = "shenzhen-customs"):
    app = make_app(tmp_path, redis_url, plan=plan, extra=extra(ldap))
    client = await aiohttp_client(app)
    clock = FakeTime()
    app[keys.AUTH].store.clock = clock
    return client, clock


async def sign_in(client, username: str, password: str):
    resp = await client.post("/api/v1/session", json={"username": username, "password": password})
    return resp.status, await resp.json(), resp.headers


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


SEQ = iter(range(1, 1_000_000))


async def open_incident(client, site="u1a", unit="u1") -> str:
    """A new incident each call (a system of its own)."""
    resp = await client.post("/api/v1/alerts", json=[alert("system.down", site, unit, system=f"sys-{next(SEQ)}")],
                             headers=auth())
    assert resp.status == 200, await resp.text()
    return (await resp.json())["incidents"][0]


# ── local accounts ───────────────────────────────────────────────────────────────

async def test_local_account_from_the_cli_signs_in_and_is_the_actor_recorded(aiohttp_client, tmp_path, redis_url):
    client, _ = await start(aiohttp_client, tmp_path, redis_url)
    cfg = tmp_path / "hall.yml"
    done = add_user(cfg, "duty-a", "local-pass-0001", "--role", "duty_officer", "--person", "duty-a")
    assert done.returncode == 0, done.stderr
    status, out, headers = await sign_in(client, "duty-a", "local-pass-0001")
    assert status == 201, out
    assert out["role"] == "duty_officer" and out["name"] == "测试值班长甲" and out["source"] == "local"
    assert headers["Cache-Control"] == "no-store"
    me = await (await client.get("/api/v1/whoami", headers=bearer(out["token"]))).json()
    assert me["name"] == "测试值班长甲" and me["person"] == "duty-a" and "incidents:write" in me["scopes"]
    incident = await open_incident(client)
    resp = await client.post(f"/api/v1/incidents/{incident}/ack", json={"by": "someone else"},
                             headers=bearer(out["token"]))
    assert resp.status == 200
    doc = await (await client.get(f"/api/v1/incidents/{incident}", headers=auth())).json()
    assert doc["timeline"][-1]["actor"] == "测试值班长甲" and doc["timeline"][-1]["action"] == "acknowledged"
    listed = subprocess.run([*HALLMON, "user", "list", "-c", str(cfg), "--json"], capture_output=True, text=True,
                            cwd=ROOT, timeout=60)
    [acct] = json.loads(listed.stdout)
    assert acct["name"] == "duty-a" and "password_hash" not in acct and acct["v"] == 1
    stored = json.loads(redis.Redis.from_url(redis_url).get("hallmon:auth:account:duty-a"))
    assert stored["password_hash"].startswith("$argon2id$") and stored["v"] == 1


async def test_cli_refuses_bad_input_and_changes_nothing(aiohttp_client, tmp_path, redis_url):
    await start(aiohttp_client, tmp_path, redis_url)
    cfg = tmp_path / "hall.yml"
    short = add_user(cfg, "duty-a", "short", "--role", "duty_officer")
    assert short.returncode == 2 and "at least 12 characters" in short.stderr
    unit = add_user(cfg, "duty-a", "local-pass-0001", "--role", "duty_officer", "--units", "u1,nowhere")
    assert unit.returncode == 2 and "--units" in unit.stderr
    who = add_user(cfg, "duty-a", "local-pass-0001", "--role", "duty_officer", "--person", "nobody")
    assert who.returncode == 2 and "no person 'nobody'" in who.stderr
    assert redis.Redis.from_url(redis_url).keys("hallmon:auth:account*") == []
    assert add_user(cfg, "duty-a", "local-pass-0001", "--role", "duty_officer").returncode == 0
    again = add_user(cfg, "duty-a", "other-pass-0001", "--role", "admin")
    assert again.returncode == 2 and "exists already" in again.stderr
    passwd = subprocess.run([*HALLMON, "user", "passwd", "nobody", "-c", str(cfg), "--password-stdin"],
                            input="whatever-long-1\n", capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert passwd.returncode == 2 and "no account 'nobody'" in passwd.stderr


async def test_wrong_password_and_unknown_name_answer_alike_and_leave_no_secret(aiohttp_client, tmp_path, redis_url):
    client, _ = await start(aiohttp_client, tmp_path, redis_url)
    await account(client, "duty-a", "local-pass-0001", "duty_officer")
    s1, wrong, _ = await sign_in(client, "duty-a", "not-the-password-1")
    s2, unknown, _ = await sign_in(client, "nobody-here", "not-the-password-1")
    assert (s1, s2) == (401, 401)
    assert wrong == unknown == {"error": "bad_credentials", "detail": "wrong name or password"}
    s3, empty, _ = await sign_in(client, "duty-a", "")
    assert s3 == 400 and empty["error"] == "bad_request"
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    dump = " ".join(str(r.get(k) if r.type(k) == "string" else r.xrange(k) if r.type(k) == "stream" else "")
                    for k in r.keys("*"))
    assert "not-the-password-1" not in dump and "local-pass-0001" not in dump
    assert not r.keys("hallmon:auth:session:*")


# ── sessions ─────────────────────────────────────────────────────────────────────

async def test_idle_and_absolute_expiry_sign_out_and_everywhere(aiohttp_client, tmp_path, redis_url):
    client, clock = await start(aiohttp_client, tmp_path, redis_url)
    await account(client, "duty-a", "local-pass-0001", "duty_officer")

    async def new() -> str:
        status, out, _ = await sign_in(client, "duty-a", "local-pass-0001")
        assert status == 201, out
        return out["token"]

    async def whoami(token: str):
        resp = await client.get("/api/v1/whoami", headers=bearer(token))
        return resp.status, await resp.json()

    idle = await new()
    clock.advance(minutes=29)
    assert (await whoami(idle))[0] == 200  # used within the idle time: moved forward
    clock.advance(minutes=29)
    assert (await whoami(idle))[0] == 200
    clock.advance(minutes=31)
    status, out = await whoami(idle)
    assert status == 401 and out["error"] == "session_expired" and "idle" in out["detail"]
    assert (await whoami(idle))[1]["error"] == "unauthorized"  # gone, not expired again

    busy = await new()
    for _ in range(20):  # used every 29 minutes, never idle: the absolute end (8 h) still comes
        clock.advance(minutes=29)
        status, out = await whoami(busy)
        if status != 200:
            break
    assert status == 401 and "absolute" in out["detail"]

    one, two = await new(), await new()
    resp = await client.delete("/api/v1/session", headers=bearer(one))
    assert resp.status == 200
    assert (await whoami(one))[0] == 401 and (await whoami(two))[0] == 200
    three = await new()
    resp = await client.post("/api/v1/session/everywhere", headers=bearer(three))
    assert (await resp.json()) == {"signed_out": 2}
    assert (await whoami(two))[0] == 401 and (await whoami(three))[0] == 401
    events = [e["event"] for e in await audit(client)]
    assert {"signin", "signout", "signout_everywhere", "session_expired"} <= set(events)


async def test_a_token_is_not_a_session_to_sign_out(aiohttp_client, tmp_path, redis_url):
    client, _ = await start(aiohttp_client, tmp_path, redis_url)
    resp = await client.delete("/api/v1/session", headers=auth())
    assert resp.status == 400


# ── the lockout ──────────────────────────────────────────────────────────────────

async def test_failures_slow_down_then_lock_the_account(aiohttp_client, tmp_path, redis_url):
    client, clock = await start(aiohttp_client, tmp_path, redis_url)
    await account(client, "duty-a", "local-pass-0001", "duty_officer")
    assert (await sign_in(client, "duty-a", "wrong-password-01"))[0] == 401
    assert (await sign_in(client, "duty-a", "wrong-password-02"))[0] == 401  # the 2nd: slow_after
    status, out, headers = await sign_in(client, "duty-a", "local-pass-0001")  # at once: refused unchecked
    assert status == 429 and out["error"] == "slow_down" and headers["Retry-After"] == "1"
    assert "wait 1 s" in out["detail"]
    clock.advance(seconds=1)
    assert (await sign_in(client, "duty-a", "wrong-password-03"))[0] == 401
    clock.advance(seconds=2)
    status, out, headers = await sign_in(client, "duty-a", "wrong-password-04")  # the 4th: lock_after
    assert status == 429 and out["error"] == "locked" and headers["Retry-After"] == "600"
    assert "this account is locked" in out["detail"]
    status, out, _ = await sign_in(client, "duty-a", "local-pass-0001")  # the right password, still locked
    assert status == 429 and out["error"] == "locked"
    clock.advance(minutes=10, seconds=1)
    assert (await sign_in(client, "duty-a", "local-pass-0001"))[0] == 201
    entries = await audit(client, "duty-a")
    kinds = [e["event"] for e in entries]
    assert kinds.count("signin_failed") == 4 and "locked" in kinds and kinds.count("signin_refused") == 2
    assert all("wrong-password" not in json.dumps(e) for e in entries)


async def test_an_admin_unlocks_an_account(aiohttp_client, tmp_path, redis_url):
    client, clock = await start(aiohttp_client, tmp_path, redis_url)
    await account(client, "duty-a", "local-pass-0001", "duty_officer")
    for i in range(4):
        clock.advance(minutes=1)
        await sign_in(client, "duty-a", f"wrong-password-{i}")
    assert (await sign_in(client, "duty-a", "local-pass-0001"))[1]["error"] == "locked"
    assert (await client.post("/api/v1/accounts/duty-a/unlock", headers=auth())).status == 403  # not an admin
    await account(client, "admin-a", "admin-pass-0001", "admin")
    admin = bearer((await sign_in(client, "admin-a", "admin-pass-0001"))[1]["token"])
    resp = await client.post("/api/v1/accounts/duty-a/unlock", headers=admin)
    assert resp.status == 200
    assert (await sign_in(client, "duty-a", "local-pass-0001"))[0] == 201


async def test_one_address_trying_many_names_is_locked(aiohttp_client, tmp_path, redis_url):
    client, clock = await start(aiohttp_client, tmp_path, redis_url)
    for i in range(8):  # a different name each time: no account reaches its own limit
        clock.advance(minutes=1)
        status, out, _ = await sign_in(client, f"guess-{i}", "wrong-password-0")
    assert status == 429 and out["error"] == "locked" and "this address is locked" in out["detail"]
    await account(client, "duty-a", "local-pass-0001", "duty_officer")
    status, out, _ = await sign_in(client, "duty-a", "local-pass-0001")
    assert status == 429 and "address" in out["detail"]


# ── roles in their units, on every built-in plan ─────────────────────────────────

ROLE_CASES = {  # role → (ack, level, maintenance, audit log)
    "agency_viewer": (403, 403, 403, 403),
    "duty_officer": (200, 403, 403, 403),
    "duty_leader": (200, 200, 403, 403),
    "engineer": (200, 200, 201, 403),
    "admin": (200, 200, 201, 200),
}


@pytest.mark.parametrize("plan", builtin_ids())
async def test_each_role_may_do_what_it_grants_in_its_units(aiohttp_client, tmp_path, redis_url, plan):
    client, _ = await start(aiohttp_client, tmp_path, redis_url, plan=plan)
    tokens = {}
    for role in ROLE_CASES:
        await account(client, role, f"{role}-pass-0001", role, ("u1",))
        tokens[role] = (await sign_in(client, role, f"{role}-pass-0001"))[1]["token"]
    from datetime import datetime, timedelta, timezone

    start_at = datetime.now(timezone.utc) + timedelta(days=1)
    for role, (ack, lvl, mnt, aud) in ROLE_CASES.items():
        incident = await open_incident(client)
        h = bearer(tokens[role])
        got_ack = (await client.post(f"/api/v1/incidents/{incident}/ack", json={}, headers=h)).status
        got_level = (await client.post(f"/api/v1/incidents/{incident}/level", json={"level": 1, "reason": "测试"},
                                       headers=h)).status
        got_mnt = (await client.post("/api/v1/maintenance", headers=h, json={
            "sites": ["u1a"], "from": start_at.isoformat(), "to": (start_at + timedelta(hours=1)).isoformat(),
            "reason": "测试维护", "by": "x"})).status
        got_audit = (await client.get("/api/v1/audit", headers=h)).status
        assert (got_ack, got_level, got_mnt, got_audit) == (ack, lvl, mnt, aud), role
        other = await open_incident(client, "u2a", "u2")  # outside the account's unit
        resp = await client.post(f"/api/v1/incidents/{other}/ack", json={}, headers=h)
        assert resp.status == 403
        assert (await client.get(f"/api/v1/incidents/{other}", headers=h)).status == 403
    viewer = await open_incident(client)
    resp = await client.post(f"/api/v1/incidents/{viewer}/ack", json={}, headers=bearer(tokens["agency_viewer"]))
    assert (await resp.json())["detail"] == "role agency_viewer lacks scope incidents:write"
    doc = await (await client.get(f"/api/v1/incidents/{viewer}", headers=auth())).json()
    assert doc["status"] == "open"  # the refused change changed nothing


async def test_config_tokens_keep_every_right_they_had(aiohttp_client, tmp_path, redis_url):
    """Upgrade: an api.tokens entry with incidents:write still sets levels and maintenance."""
    client, _ = await start(aiohttp_client, tmp_path, redis_url)
    incident = await open_incident(client)
    resp = await client.post(f"/api/v1/incidents/{incident}/level", json={"level": 1, "reason": "测试", "by": "ops"},
                             headers=auth())
    assert resp.status == 200
    resp = await client.post(f"/api/v1/incidents/{incident}/ack", json={"by": "ops"}, headers=auth("HALLMON_T_READ"))
    assert resp.status == 403 and (await resp.json())["detail"] == "token 'viewer' lacks scope incidents:write"


# ── machine tokens ───────────────────────────────────────────────────────────────

async def test_machine_tokens_are_created_shown_once_stored_hashed_and_revoked(aiohttp_client, tmp_path, redis_url):
    client, _ = await start(aiohttp_client, tmp_path, redis_url)
    await account(client, "admin-a", "admin-pass-0001", "admin")
    await account(client, "duty-a", "local-pass-0001", "duty_officer")
    admin = bearer((await sign_in(client, "admin-a", "admin-pass-0001"))[1]["token"])
    duty = bearer((await sign_in(client, "duty-a", "local-pass-0001"))[1]["token"])
    bad = await client.post("/api/v1/tokens", json={"name": "am", "scopes": ["alerts:write", "root"]}, headers=admin)
    assert bad.status == 400
    assert (await client.post("/api/v1/tokens", json={"name": "am", "scopes": ["alerts:write"], "units": ["nowhere"]},
                              headers=admin)).status == 400
    assert (await client.post("/api/v1/tokens", json={"name": "am", "scopes": ["alerts:write"]},
                              headers=duty)).status == 403
    assert (await (await client.get("/api/v1/tokens", headers=admin)).json())["tokens"] == []
    resp = await client.post("/api/v1/tokens", json={"name": "alertmanager", "scopes": ["alerts:write"],
                                                     "units": ["u2"]}, headers=admin)
    assert resp.status == 201 and resp.headers["Cache-Control"] == "no-store"
    made = await resp.json()
    secret = made["secret"]
    [listed] = (await (await client.get("/api/v1/tokens", headers=admin)).json())["tokens"]
    assert listed["id"] == made["id"] and "secret" not in listed and "digest" not in listed
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    assert all(secret not in (r.get(k) or "") for k in r.keys("hallmon:auth:token:*"))
    ok = await client.post("/api/v1/alerts", json=[alert("system.down", "u2a", "u2")], headers=bearer(secret))
    assert ok.status == 200
    outside = await client.post("/api/v1/alerts", json=[alert("system.down", "u1a", "u1")], headers=bearer(secret))
    assert outside.status == 403
    assert (await client.get("/api/v1/incidents", headers=bearer(secret))).status == 403  # no incidents:read
    assert (await client.delete(f"/api/v1/tokens/{made['id']}", headers=admin)).status == 200
    gone = await client.post("/api/v1/alerts", json=[alert("system.down", "u2a", "u2")], headers=bearer(secret))
    assert gone.status == 401
    assert (await client.delete(f"/api/v1/tokens/{made['id']}", headers=admin)).status == 404
    events = [e["event"] for e in (await (await client.get("/api/v1/audit", headers=admin)).json())["entries"]]
    assert "token_created" in events and "token_revoked" in events


# ── the directory ────────────────────────────────────────────────────────────────

@pytest.mark.parametrize("tls", ["starttls", "ldaps"])
async def test_directory_users_sign_in_with_the_role_of_their_groups(aiohttp_client, tmp_path, redis_url, directory,
                                                                    ldap_env, tls):
    url = directory.starttls_url if tls == "starttls" else directory.ldaps_url
    client, _ = await start(aiohttp_client, tmp_path, redis_url, ldap_section(directory, url, tls == "starttls"))
    status, duty, _ = await sign_in(client, "duty-ldap", PASSWORDS["duty-ldap"])
    assert status == 201, duty
    assert (duty["role"], duty["units"], duty["source"], duty["name"]) == ("duty_officer", ["u1"], "ldap", "测试值班员丙")
    me = await (await client.get("/api/v1/whoami", headers=bearer(duty["token"]))).json()
    assert me["person"] == "duty-ldap"  # uid is a paging.people id: linked
    status, lead, _ = await sign_in(client, "lead-ldap", PASSWORDS["lead-ldap"])
    assert (lead["role"], lead["units"], lead["name"]) == ("duty_leader", ["u1", "u2"], "测试值班领导乙")
    status, out, _ = await sign_in(client, "duty-ldap", "wrong-password-01")
    assert status == 401 and out["error"] == "bad_credentials"
    status, out, _ = await sign_in(client, "nobody", "wrong-password-01")
    assert status == 401 and out["error"] == "bad_credentials"
    status, out, _ = await sign_in(client, "duty-ldap)(uid=*", "x")  # a filter injection finds no one
    assert status == 401


async def test_a_directory_user_in_no_mapped_group_gets_no_session(aiohttp_client, tmp_path, redis_url, directory,
                                                                  ldap_env):
    client, _ = await start(aiohttp_client, tmp_path, redis_url, ldap_section(directory))
    status, out, _ = await sign_in(client, "lonely", PASSWORDS["lonely"])
    assert status == 403 and out["error"] == "no_role" and "auth.ldap.groups" in out["detail"]
    assert not redis.Redis.from_url(redis_url).keys("hallmon:auth:session:*")
    [entry] = await audit(client, "lonely")
    assert entry["event"] == "signin_failed" and entry["detail"] == "no_role"


async def test_directory_down_slow_or_untrusted_is_a_clear_503_and_local_accounts_still_sign_in(
        aiohttp_client, tmp_path, redis_url, directory, ldap_env):
    import trustme

    other_ca = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other_ca))
    down = f"ldap://127.0.0.1:{free_port()}"
    for section, words in ((ldap_section(directory, down), "cannot be reached"),
                           (ldap_section(directory, ca_file=str(other_ca)), "cannot be reached")):
        client, _ = await start(aiohttp_client, tmp_path, redis_url, section)
        status, out, headers = await sign_in(client, "duty-ldap", PASSWORDS["duty-ldap"])
        assert status == 503 and out["error"] == "directory_unavailable" and words in out["detail"]
        assert "local accounts can still sign in" in out["detail"] and headers["Retry-After"] == "5"
        await client.close()
    client, _ = await start(aiohttp_client, tmp_path, redis_url, ldap_section(directory, timeout="1s"))
    await account(client, "admin-a", "admin-pass-0001", "admin")
    directory.pause()  # accepts connections, answers nothing
    try:
        started = time.monotonic()
        status, out, _ = await sign_in(client, "duty-ldap", PASSWORDS["duty-ldap"])
        took = time.monotonic() - started
        assert status == 503 and out["error"] == "directory_unavailable", out
        print(f"slow directory answered 503 after {took:.2f} s (timeout 1 s)")
        status, out, _ = await sign_in(client, "admin-a", "admin-pass-0001")
        assert status == 201 and out["source"] == "local"
    finally:
        directory.resume()
    assert (await sign_in(client, "duty-ldap", PASSWORDS["duty-ldap"]))[0] == 201  # back
    assert not redis.Redis.from_url(redis_url).keys("hallmon:auth:fail:*duty-ldap")  # outages count no failure


# ── config errors by file:line ───────────────────────────────────────────────────

@pytest.mark.parametrize("section, line, words", [
    ("  ldap: {url: 'ldap://127.0.0.1:1', user_base: 'o=x', groups: [{dn: 'cn=a,o=x', role: duty_officer}]}\n",
     1, "passwords would cross the network in clear"),
    ("  ldap:\n    url: 'ldaps://127.0.0.1:1'\n    user_base: 'o=x'\n    groups:\n"
     "      - {dn: 'cn=a,o=x', role: chief}\n", 5, "auth.ldap.groups[0].role"),
    ("  ldap:\n    url: 'ldaps://127.0.0.1:1'\n    user_base: 'o=x'\n    groups:\n"
     "      - {dn: 'cn=a,o=x', role: admin, units: [u1, nowhere]}\n", 5, "no unit 'nowhere'"),
    ("  session: {idle: 2h, absolute: 1h}\n", 1, "idle: must not be longer than absolute"),
])
def test_auth_config_errors_name_file_and_line(tmp_path, redis_url, section, line, words):
    from tests.routerkit import org_config

    text = org_config(redis_url) + "auth:\n" + section
    path = tmp_path / "bad.yml"
    path.write_text(text)
    first = len(org_config(redis_url).splitlines()) + 1  # the line of "auth:"
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = str(err.value)
    assert f"bad.yml:{first + line}:" in message and words in message, message


def test_no_auth_section_is_what_0_6_did(tmp_path, redis_url):
    from tests.routerkit import org_config

    path = tmp_path / "old.yml"
    path.write_text(org_config(redis_url))
    cfg = load_config(path)
    assert cfg.auth.ldap is None and cfg.auth.session.idle == 1800


def test_environment_has_no_secret_in_process_arguments():
    """The CLI takes no password argument: only a prompt or standard input."""
    out = subprocess.run([*HALLMON, "user", "add", "--help"], capture_output=True, text=True, cwd=ROOT, timeout=60,
                         env={**os.environ})
    assert "--password-stdin" in out.stdout and "--password " not in out.stdout
