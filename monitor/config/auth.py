"""The ``auth:`` section: sessions, the sign-in lockout and the organisation's directory.

```yaml
auth:
  password_min_length: 12
  session: {idle: 30m, absolute: 12h}
  lockout: {slow_after: 3, lock_after: 10, address_slow_after: 15, address_lock_after: 30, window: 15m, lock_for: 15m}
  ldap:
    url: ldaps://ldap.example.invalid:636      # or ldap://…: with start_tls: true
    start_tls: false
    ca_file: /etc/hallmon/ldap-ca.pem
    bind_dn: cn=hallmon,ou=services,dc=example,dc=invalid
    bind_secret_env: HALLMON_LDAP_SECRET
    user_base: ou=people,dc=example,dc=invalid
    user_filter: "(uid={username})"
    group_base: ou=groups,dc=example,dc=invalid
    groups:
      - {dn: "cn=hall-duty,ou=groups,dc=example,dc=invalid", role: duty_officer, units: [futian]}
```
Everything has a default; a config without ``auth:`` signs in with API tokens only, as
before 0.7.
"""
from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from monitor.auth.roles import Role
from monitor.core.secret import Secret, SecretEnv, SecretFile
from monitor.core.target import Duration, Model


class SessionConfig(Model):
    idle: Duration = 30 * 60.0  # a session unused this long ends
    absolute: Duration = 12 * 3600.0  # and every session ends this long after sign-in

    @model_validator(mode="after")
    def _order(self) -> "SessionConfig":
        if self.idle > self.absolute:
            raise ValueError("idle: must not be longer than absolute")
        return self


class LockoutConfig(Model):
    """Failed sign-ins within ``window``: from ``slow_after`` on, each next attempt waits
    (1 s, 2 s, 4 s … at most 60 s); at ``lock_after`` the account is locked for
    ``lock_for``. An address likewise, at ``address_slow_after`` and
    ``address_lock_after`` (several people may share one address behind a proxy, so they
    are higher)."""

    slow_after: int = Field(default=3, ge=1, le=1000)
    lock_after: int = Field(default=10, ge=1, le=1000)
    address_slow_after: int = Field(default=15, ge=1, le=10_000)
    address_lock_after: int = Field(default=30, ge=1, le=10_000)
    window: Duration = 15 * 60.0
    lock_for: Duration = 15 * 60.0

    @model_validator(mode="after")
    def _order(self) -> "LockoutConfig":
        if self.slow_after > self.lock_after:
            raise ValueError("slow_after: must not be more than lock_after")
        if self.address_slow_after > self.address_lock_after:
            raise ValueError("address_slow_after: must not be more than address_lock_after")
        return self


class GroupGrant(Model):
    """A directory group and what its members may do in hallmon."""

    dn: str = Field(min_length=3)
    role: Role
    units: tuple[str, ...] | None = None  # absent: every unit

    @field_validator("units")
    @classmethod
    def _some_units(cls, v: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if v is not None and not v:
            raise ValueError("an empty list grants no unit; leave units out for every unit")
        return v


class LdapConfig(Model):
    url: str
    start_tls: bool = False
    ca_file: str | None = None  # the CA that signed the directory's certificate; default: the system's
    bind_dn: str | None = None  # absent: an anonymous search
    bind_secret_env: SecretEnv | None = None
    bind_secret_file: SecretFile | None = None
    user_base: str
    user_filter: str = "(uid={username})"
    name_attribute: str = "cn"  # shown and recorded as the actor when no person is linked
    person_attribute: str = "uid"  # its value, when it is a paging.people id, links the person
    group_base: str | None = None  # groups (groupOfNames / groupOfUniqueNames) searched for the user's DN
    groups: tuple[GroupGrant, ...] = Field(min_length=1)
    timeout: Duration = 5.0  # connect and each operation

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not v.startswith(("ldap://", "ldaps://")):
            raise ValueError("expected ldap://host:port or ldaps://host:port")
        return v

    @field_validator("user_filter")
    @classmethod
    def _filter(cls, v: str) -> str:
        if "{username}" not in v or not (v.startswith("(") and v.endswith(")")):
            raise ValueError("expected an LDAP filter in parentheses with {username}, like (uid={username})")
        return v

    @model_validator(mode="after")
    def _tls(self) -> "LdapConfig":
        if self.start_tls and self.url.startswith("ldaps://"):
            raise ValueError("start_tls: ldaps:// is TLS already; use one of them")
        if not self.tls:
            raise ValueError("url: passwords would cross the network in clear; use ldaps:// or start_tls: true")
        if self.bind_secret_env is not None and self.bind_secret_file is not None:
            raise ValueError("give at most one of bind_secret_env, bind_secret_file")
        if self.bind_dn is not None and self.bind_secret is None:
            raise ValueError("bind_dn: needs bind_secret_env or bind_secret_file")
        return self

    @property
    def tls(self) -> bool:
        return self.start_tls or self.url.startswith("ldaps://")

    @property
    def bind_secret(self) -> Secret | None:
        return self.bind_secret_env or self.bind_secret_file


class AuthConfig(Model):
    password_min_length: int = Field(default=12, ge=8, le=1024)
    session: SessionConfig = SessionConfig()
    lockout: LockoutConfig = LockoutConfig()
    ldap: LdapConfig | None = None
