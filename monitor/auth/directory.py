"""Sign-in against the organisation's directory over LDAP (ldap3), always over TLS
(ldaps:// or StartTLS, the certificate checked against ``ca_file``).

One sign-in: bind as the service account (``bind_dn``), find the one entry that
``user_filter`` matches under ``user_base``, bind as that entry with the password given,
then find the groups under ``group_base`` that list the entry (``member`` or
``uniqueMember``) and map them to a role and units through ``auth.ldap.groups``.

ldap3 is synchronous: each sign-in runs in a thread, bounded by ``timeout`` for the
connection and each answer, and by four times that overall. The library's errors stop
here (docs/habits.md, habit 5): a directory that is down, slow, or whose certificate
does not verify is ``DirectoryUnavailable``; a wrong password or an unknown name is
``None`` (a failed sign-in); a user in no mapped group is ``NoRole``.
"""
from __future__ import annotations

import asyncio
import math
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

import structlog
from ldap3 import NONE, SUBTREE, Connection, Server, Tls
from ldap3.core.exceptions import LDAPException
from ldap3.utils.conv import escape_filter_chars

from monitor.auth.roles import Role, highest
from monitor.config.auth import LdapConfig
from monitor.core.errors import DirectoryUnavailable, NoRole

log = structlog.get_logger("hallmon.auth.ldap")


@dataclass(frozen=True, slots=True)
class DirectoryUser:
    dn: str
    name: str
    person_value: str | None
    role: Role
    units: tuple[str, ...] | None
    groups: tuple[str, ...]


def _norm(dn: str) -> str:
    return ",".join(part.strip() for part in dn.lower().split(","))


class Directory:
    def __init__(self, config: LdapConfig):
        self.cfg = config
        url = urlsplit(config.url)
        tls = Tls(ca_certs_file=config.ca_file, validate=ssl.CERT_REQUIRED,
                  version=ssl.PROTOCOL_TLS_CLIENT) if config.tls else None
        self.where = f"{url.scheme}://{url.hostname}:{url.port or (636 if url.scheme == 'ldaps' else 389)}"
        self.server = Server(url.hostname or "", port=url.port, use_ssl=url.scheme == "ldaps", tls=tls,
                             connect_timeout=config.timeout, get_info=NONE)

    def _connect(self, user: str | None, password: str | None) -> Connection:
        # ldap3 packs receive_timeout into SO_RCVTIMEO as whole seconds
        conn = Connection(self.server, user=user, password=password, receive_timeout=max(1, math.ceil(self.cfg.timeout)),
                          read_only=True, raise_exceptions=False)
        conn.open()
        if self.cfg.start_tls and not conn.start_tls():
            raise DirectoryUnavailable(f"the directory {self.where} refused StartTLS: {conn.result}")
        return conn

    def _sign_in(self, username: str, password: str) -> DirectoryUser | None:
        cfg = self.cfg
        secret = cfg.bind_secret.value if cfg.bind_secret else None
        service = self._connect(cfg.bind_dn, secret)
        try:
            if cfg.bind_dn is not None and not service.bind():
                raise DirectoryUnavailable(f"the directory {self.where} refused hallmon's service bind "
                                           f"({cfg.bind_dn}): {service.result.get('description')}")
            query = cfg.user_filter.replace("{username}", escape_filter_chars(username))
            service.search(cfg.user_base, query, SUBTREE, attributes=[cfg.name_attribute, cfg.person_attribute],
                           size_limit=2)
            found = [e for e in service.response or () if e.get("type") == "searchResEntry"]
            if len(found) != 1:
                if len(found) > 1:
                    log.warning("ldap_user_ambiguous", filter=query, base=cfg.user_base)
                return None
            dn = found[0]["dn"]
            attrs = found[0].get("attributes", {})
            user = self._connect(dn, password)
            try:
                if not user.bind():
                    return None
            finally:
                user.unbind()
            groups: list[str] = []
            if cfg.group_base:
                dn_value = escape_filter_chars(dn)
                service.search(cfg.group_base, f"(|(member={dn_value})(uniqueMember={dn_value}))", SUBTREE,
                               attributes=[])
                groups = [e["dn"] for e in service.response or () if e.get("type") == "searchResEntry"]
        finally:
            service.unbind()
        return self._grant(dn, _first(attrs.get(cfg.name_attribute)) or username,
                           _first(attrs.get(cfg.person_attribute)), groups)

    def _grant(self, dn: str, name: str, person: str | None, groups: list[str]) -> DirectoryUser:
        mine = {_norm(g) for g in groups}
        grants = [g for g in self.cfg.groups if _norm(g.dn) in mine]
        if not grants:
            raise NoRole(f"signed in as {name}, but none of the directory groups is mapped to a hallmon role "
                         f"(auth.ldap.groups); ask an administrator")
        role = highest([g.role for g in grants])
        top = [g for g in grants if g.role == role]
        units = None if any(g.units is None for g in top) else tuple(sorted({u for g in top for u in g.units or ()}))
        return DirectoryUser(dn, name, person, role, units, tuple(groups))

    async def sign_in(self, username: str, password: str) -> DirectoryUser | None:
        if not password:
            return None  # an empty password is an anonymous bind, which succeeds: never a sign-in
        try:
            return await asyncio.wait_for(asyncio.to_thread(self._sign_in, username, password),
                                          timeout=4 * self.cfg.timeout)
        except TimeoutError:
            raise DirectoryUnavailable(f"the directory {self.where} did not answer within "
                                       f"{4 * self.cfg.timeout:g}s") from None
        except LDAPException as err:
            raise DirectoryUnavailable(f"the directory {self.where} cannot be reached: "
                                       f"{type(err).__name__}: {err}") from None


def _first(value: object) -> str | None:
    if isinstance(value, list):
        return str(value[0]) if value else None
    return str(value) if value else None
