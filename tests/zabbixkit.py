"""A real Zabbix 6.0 for the tests: a private PostgreSQL cluster, Debian's zabbix_server
and its PHP frontend's JSON-RPC API, all on free loopback ports in one temp dir.

* PostgreSQL: ``initdb`` (as the ``postgres`` user when run as root: initdb refuses
  root) with trust auth, listening on 127.0.0.1 only; the Zabbix schema, images and
  data from ``/usr/share/zabbix-server-pgsql`` are loaded once into a template database
  per test session, each Zabbix gets a copy (``CREATE DATABASE … TEMPLATE``: ~1 s
  instead of ~30 s).
* ``zabbix_server -f`` with its own config (ports, socket dir, a 1 s config cache
  refresh so that new items take values at once).
* the frontend under ``php -S``: Debian's frontend reads a fixed
  ``/etc/zabbix/zabbix.conf.php`` (``CConfigFile::CONFIG_FILE_PATH``), so an
  ``auto_prepend_file`` defines that class first from its own source with this test's
  path, and the autoloader never loads the original. Nothing under /etc is touched.
* ``send``: Debian 12 ships no ``zabbix-sender`` package, so values go over the
  trapper protocol directly: the header ``ZBXD\\x01``, the JSON length as 8 bytes
  little-endian, then ``{"request": "sender data", "data": [{host, key, value}]}``
  (Zabbix manual, "Header" and "Zabbix sender protocol"); the answer has the same frame.

Stdlib only, so it also runs outside the venv.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

PG_BIN = Path("/usr/lib/postgresql/15/bin")
SQL = Path("/usr/share/zabbix-server-pgsql")
FRONTEND = Path("/usr/share/zabbix")
SERVER = shutil.which("zabbix_server") or "/usr/sbin/zabbix_server"
PHP = shutil.which("php")


def available() -> str | None:
    """Why a real Zabbix cannot run here, or None."""
    for need in (PG_BIN / "initdb", SQL / "schema.sql.gz", FRONTEND / "api_jsonrpc.php", Path(SERVER)):
        if not need.exists():
            return f"{need} missing: scripts/setup.sh test installs postgresql, zabbix-server-pgsql, zabbix-frontend-php"
    if PHP is None:
        return "php missing: scripts/setup.sh test installs php-cli and php-pgsql"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_zabbix_port() -> int:
    """zabbix_server takes a ListenPort of 1024..32767 only (the ephemeral range starts above)."""
    import random

    for _ in range(200):
        port = random.randint(20000, 32767)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 20000..32767")


def _as_owner(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def _wait(check, what: str, timeout: float = 60.0, proc: subprocess.Popen | None = None, log: Path | None = None):
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited {proc.returncode}: {log.read_text()[-3000:] if log else ''}")
        try:
            out = check()
            if out:
                return out
        except Exception as err:  # noqa: BLE001 - anything means "not yet"
            last = err
        time.sleep(0.2)
    raise RuntimeError(f"{what} not ready after {timeout:g}s: {last}; {log.read_text()[-3000:] if log else ''}")


class Postgres:
    """A private cluster; ``template()`` builds the Zabbix template database once."""

    def __init__(self, copy_of: Path | None = None):
        # its own dir under /tmp: pytest's tmp_path sits in a 0700 root dir the postgres
        # user cannot enter
        self.root = root = Path(tempfile.mkdtemp(prefix="hallmon-pg-"))
        self.data = root / "pgdata"
        self.port = free_port()
        if os.geteuid() == 0:
            shutil.chown(root, "postgres")
        if copy_of is not None:  # a stopped cluster's data dir, copied as it is (owner and modes kept)
            subprocess.run(_as_owner(["cp", "-a", str(copy_of), str(self.data)]), check=True, capture_output=True)
        else:
            subprocess.run(_as_owner([str(PG_BIN / "initdb"), "-D", str(self.data), "--auth=trust", "-U",
                                      "postgres", "-E", "UTF8", "--locale=C.UTF-8"]), check=True, capture_output=True)
        subprocess.run(_as_owner([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-w", "-l", str(root / "pg.log"),
                                  "-o", f"-p {self.port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off "
                                        "-c synchronous_commit=off -c full_page_writes=off", "start"]),
                       check=True, capture_output=True)

    def psql(self, db: str, sql: str | None = None, stdin: bytes | None = None) -> str:
        cmd = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
               "-d", db]
        if sql is not None:
            cmd += ["-tAc", sql]
        out = subprocess.run(cmd, input=stdin, check=True, capture_output=True)
        return out.stdout.decode()

    def template(self) -> str:
        """The database ``zabbix_template`` with Zabbix's schema, images and data."""
        self.psql("postgres", "CREATE DATABASE zabbix_template")
        import gzip

        sql = b"".join(gzip.decompress((SQL / f"{part}.sql.gz").read_bytes()) for part in ("schema", "images", "data"))
        self.psql("zabbix_template", stdin=b"BEGIN;\n" + sql + b"\nCOMMIT;\n")
        return "zabbix_template"

    def copy(self, template: str, name: str) -> str:
        self.psql("postgres", f"CREATE DATABASE {name} TEMPLATE {template}")
        return name

    def stop(self) -> None:
        subprocess.run(_as_owner([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"]),
                       capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)


def with_template() -> tuple[Postgres, str]:
    """A cluster holding ``zabbix_template``. Loading Zabbix's 34 MB of SQL takes 40 s to
    several minutes on a shared machine, so the loaded cluster is kept (stopped) under
    /tmp, keyed by the SQL files and PostgreSQL's version, and later sessions start a
    copy of it (a second or two). A lock keeps concurrent sessions from building it twice."""
    import fcntl
    import hashlib

    stamp = "|".join(f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}"
                     for p in sorted(SQL.glob("*.sql.gz"))) + str(PG_BIN.resolve())
    cache = Path(tempfile.gettempdir()) / f"hallmon-zabbix-pg-{hashlib.sha256(stamp.encode()).hexdigest()[:12]}"
    with open(f"{cache}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (cache / "ready").exists():
            pg = Postgres()
            try:
                pg.template()
                subprocess.run(_as_owner([str(PG_BIN / "pg_ctl"), "-D", str(pg.data), "-m", "fast", "-w", "stop"]),
                               check=True, capture_output=True)
                shutil.rmtree(cache, ignore_errors=True)
                cache.mkdir()
                shutil.move(str(pg.data), str(cache / "pgdata"))
                (cache / "ready").touch()
            finally:
                pg.stop()
        return Postgres(copy_of=cache / "pgdata"), "zabbix_template"


_PREPEND = """<?php
// Debian's frontend reads its config from a fixed /etc path: define CConfigFile first,
// from its own source with this test's path, so the autoloader never loads the original.
$src = file_get_contents('{frontend}/include/classes/core/CConfigFile.php');
$src = str_replace("'/etc/zabbix/zabbix.conf.php'", var_export('{conf}', true), $src);
eval('?>' . $src);
"""

_CONF_PHP = """<?php
$DB['TYPE'] = 'POSTGRESQL';
$DB['SERVER'] = '127.0.0.1';
$DB['PORT'] = '{pg_port}';
$DB['DATABASE'] = '{db}';
$DB['USER'] = 'postgres';
$DB['PASSWORD'] = '';
$DB['SCHEMA'] = '';
$DB['ENCRYPTION'] = false;
$DB['KEY_FILE'] = '';
$DB['CERT_FILE'] = '';
$DB['CA_FILE'] = '';
$DB['VERIFY_HOST'] = false;
$DB['CIPHER_LIST'] = '';
$DB['VAULT_URL'] = '';
$DB['VAULT_DB_PATH'] = '';
$DB['VAULT_TOKEN'] = '';
$DB['DOUBLE_IEEE754'] = true;
$ZBX_SERVER = '127.0.0.1';
$ZBX_SERVER_PORT = '{server_port}';
$ZBX_SERVER_NAME = 'hallmon-test';
$IMAGE_FORMAT_DEFAULT = IMAGE_FORMAT_PNG;
"""

_SERVER_CONF = """\
ListenIP=127.0.0.1
ListenPort={port}
LogType=file
LogFile={root}/zabbix_server.log
LogFileSize=0
DebugLevel=3
PidFile={root}/zabbix_server.pid
SocketDir={root}
DBHost=127.0.0.1
DBPort={pg_port}
DBName={db}
DBUser=postgres
AllowRoot=1
CacheUpdateFrequency=1
StartPollers=1
StartPollersUnreachable=1
StartTrappers=2
StartPingers=0
StartDiscoverers=0
StartHTTPPollers=0
StartAlerters=2
StartEscalators=1
StartPreprocessors=1
StartDBSyncers=1
StartLLDProcessors=1
StartTimers=1
StartHistoryPollers=1
Timeout=10
"""


class Zabbix:
    """zabbix_server and its API on one database copy; ``api(method, params)`` calls
    the frontend's JSON-RPC as Admin."""

    def __init__(self, root: Path, pg: Postgres, db: str):
        self.root, self.pg, self.db = root, pg, db
        root.mkdir(parents=True, exist_ok=True)
        self.port, self.web_port = free_zabbix_port(), free_port()
        self.conf = root / "zabbix_server.conf"
        self.conf.write_text(_SERVER_CONF.format(port=self.port, root=root, pg_port=pg.port, db=db))
        (root / "zabbix.conf.php").write_text(_CONF_PHP.format(pg_port=pg.port, db=db, server_port=self.port))
        (root / "prepend.php").write_text(_PREPEND.replace("{frontend}", str(FRONTEND))
                                          .replace("{conf}", str(root / "zabbix.conf.php")))
        self.log = root / "zabbix_server.log"
        self.server: subprocess.Popen | None = None
        self.start_server()
        self.php_log = root / "php.log"
        self.php = subprocess.Popen([PHP, "-d", f"auto_prepend_file={root / 'prepend.php'}", "-S",
                                     f"127.0.0.1:{self.web_port}", "-t", str(FRONTEND)],
                                    stdout=self.php_log.open("w"), stderr=subprocess.STDOUT,
                                    env={**os.environ, "PHP_CLI_SERVER_WORKERS": "2"}, start_new_session=True)
        self.auth: str | None = None
        _wait(lambda: self.api("apiinfo.version", {}), "Zabbix frontend", 30, self.php, self.php_log)
        self.auth = self.api("user.login", {"username": "Admin", "password": "zabbix"})

    def start_server(self) -> None:
        self.server = subprocess.Popen([SERVER, "-f", "-c", str(self.conf)], stdout=subprocess.DEVNULL,
                                       stderr=subprocess.STDOUT, start_new_session=True)
        _wait(lambda: "server #" in self.log.read_text() and "started [trapper" in self.log.read_text(),
              "zabbix_server", 60, self.server, self.log)

    def stop_server(self) -> None:
        if self.server is not None and self.server.poll() is None:
            self.server.terminate()
            try:
                self.server.wait(20)
            except subprocess.TimeoutExpired:
                self.server.kill()
                self.server.wait()
        if self.server is not None:
            _kill_group(self.server.pid)  # a child the main process left behind (its HA manager)

    def api(self, method: str, params) -> dict | list | str:
        body = {"jsonrpc": "2.0", "method": method, "params": params, "id": 1}
        headers = {"Content-Type": "application/json-rpc"}
        if self.auth and method not in ("apiinfo.version", "user.login"):
            body["auth"] = self.auth
        req = urllib.request.Request(f"http://127.0.0.1:{self.web_port}/api_jsonrpc.php",
                                     data=json.dumps(body).encode(), headers=headers)
        with urllib.request.urlopen(req, timeout=30) as resp:
            out = json.loads(resp.read())
        if "error" in out:
            raise RuntimeError(f"{method}: {out['error']}")
        return out["result"]

    def send(self, host: str, key: str, value: str) -> dict:
        """One value over the trapper protocol (what zabbix_sender does)."""
        payload = json.dumps({"request": "sender data", "data": [{"host": host, "key": key, "value": value}]}).encode()
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as s:
            s.sendall(b"ZBXD\x01" + struct.pack("<Q", len(payload)) + payload)
            head = _recv(s, 13)
            if head[:5] != b"ZBXD\x01":
                raise RuntimeError(f"not a Zabbix answer: {head!r}")
            (length,) = struct.unpack("<Q", head[5:13])
            return json.loads(_recv(s, length))

    def send_until_processed(self, host: str, key: str, value: str, timeout: float = 30) -> None:
        """The config cache learns a new item within ~1 s: send until it takes the value."""
        _wait(lambda: "processed: 1" in self.send(host, key, value).get("info", ""), f"item {host}:{key}", timeout)

    def close(self) -> None:
        self.stop_server()
        self.php.terminate()
        self.php.wait()
        _kill_group(self.php.pid)  # php -S forks PHP_CLI_SERVER_WORKERS workers into its session


def _kill_group(pid: int) -> None:
    """SIGKILL what is left of the process group ``pid`` leads (started with its own session)."""
    import signal

    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _recv(s: socket.socket, n: int) -> bytes:
    out = b""
    while len(out) < n:
        chunk = s.recv(n - len(out))
        if not chunk:
            raise RuntimeError("connection closed mid-frame")
        out += chunk
    return out


