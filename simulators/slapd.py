"""A real OpenLDAP ``slapd`` (Debian's package) in a temporary directory, for the
directory sign-in tests: an mdb database loaded from LDIF with ``slapadd``, listening on
127.0.0.1 for StartTLS (``ldap://``) and for LDAPS on two free ports, its certificate
issued by a test CA (trustme) whose file the client is given as ``ca_file``.

The people and groups are fictitious (``example.invalid``)."""
from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from .redisproc import _die_with_parent, free_port

SLAPD = "/usr/sbin/slapd"
SLAPADD = "/usr/sbin/slapadd"
SUFFIX = "dc=example,dc=invalid"
BIND_DN = f"cn=hallmon,ou=services,{SUFFIX}"
BIND_SECRET = "service-secret-0123"


def available() -> bool:
    return Path(SLAPD).exists() and Path(SLAPADD).exists()


def person(uid: str, cn: str, password: str) -> str:
    return (f"dn: uid={uid},ou=people,{SUFFIX}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {cn}\nsn: {cn}\n"
            f"userPassword: {password}\n\n")


def group(cn: str, *uids: str) -> str:
    members = "".join(f"member: uid={u},ou=people,{SUFFIX}\n" for u in uids) or f"member: {BIND_DN}\n"
    return f"dn: cn={cn},ou=groups,{SUFFIX}\nobjectClass: groupOfNames\ncn: {cn}\n{members}\n"


BASE_LDIF = f"""\
dn: {SUFFIX}
objectClass: dcObject
objectClass: organization
dc: example
o: Example (fictitious)

dn: ou=people,{SUFFIX}
objectClass: organizationalUnit
ou: people

dn: ou=groups,{SUFFIX}
objectClass: organizationalUnit
ou: groups

dn: ou=services,{SUFFIX}
objectClass: organizationalUnit
ou: services

dn: {BIND_DN}
objectClass: organizationalRole
objectClass: simpleSecurityObject
cn: hallmon
userPassword: {BIND_SECRET}

"""


class Slapd:
    """``with Slapd(ldif) as d:`` — ``d.starttls_url``, ``d.ldaps_url``, ``d.ca_file``."""

    def __init__(self, ldif: str):
        import trustme  # a test extra

        self.dir = Path(tempfile.mkdtemp(prefix="hallmon-slapd-"))
        (self.dir / "db").mkdir()
        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1", "localhost")
        self.ca_file = str(self.dir / "ca.pem")
        ca.cert_pem.write_to_path(self.ca_file)
        cert.cert_chain_pems[0].write_to_path(str(self.dir / "cert.pem"))
        cert.private_key_pem.write_to_path(str(self.dir / "key.pem"))
        self.port, self.tls_port = free_port(), free_port()
        conf = self.dir / "slapd.conf"
        conf.write_text(f"""\
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
pidfile {self.dir}/slapd.pid
modulepath /usr/lib/ldap
moduleload back_mdb
TLSCACertificateFile {self.ca_file}
TLSCertificateFile {self.dir}/cert.pem
TLSCertificateKeyFile {self.dir}/key.pem
security simple_bind=128
access to attrs=userPassword by self read by anonymous auth by * none
access to * by dn.exact="{BIND_DN}" read by self read by * none
database mdb
suffix "{SUFFIX}"
rootdn "cn=admin,{SUFFIX}"
directory {self.dir}/db
maxsize 16777216
""")
        self.conf = conf
        (self.dir / "data.ldif").write_text(BASE_LDIF + ldif)
        subprocess.run([SLAPADD, "-f", str(conf), "-l", str(self.dir / "data.ldif")], check=True,
                       capture_output=True)
        self.proc: subprocess.Popen | None = None

    @property
    def starttls_url(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    @property
    def ldaps_url(self) -> str:
        return f"ldaps://127.0.0.1:{self.tls_port}"

    def start(self) -> "Slapd":
        urls = f"ldap://127.0.0.1:{self.port}/ ldaps://127.0.0.1:{self.tls_port}/"
        self.proc = subprocess.Popen([SLAPD, "-d", "0", "-h", urls, "-f", str(self.conf)],
                                     stdout=subprocess.DEVNULL, stderr=open(self.dir / "slapd.log", "w"),
                                     preexec_fn=_die_with_parent)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                socket.create_connection(("127.0.0.1", self.tls_port), timeout=0.5).close()
                return self
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.05)
        log = (self.dir / "slapd.log").read_text()
        self.stop()
        raise RuntimeError(f"slapd did not come up:\n{log}")

    def pause(self) -> None:
        """SIGSTOP: the port accepts connections (the kernel does) but nothing answers."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> "Slapd":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


__all__ = ["Slapd", "available", "person", "group", "BIND_DN", "BIND_SECRET", "SUFFIX"]
