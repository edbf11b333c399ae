"""What the accounts store keeps, as frozen records. Every stored form carries
``"v": 1`` (the table in monitor/durable/versions.py); as for every stored form, a newer
``v`` is read as far as this release understands it.

Secrets are never kept: a password as its argon2id hash, a session or machine token as
the SHA-256 of its value (they are 256 random bits, so a fast hash is enough: there is
nothing to guess), and none of them is in any record's ``public_json``.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from monitor.auth.roles import ROLES, Role
from monitor.core.timesource import iso

VERSION = 1


class StoredFormUnknown(ValueError):
    """A record this release cannot use (a role it does not know)."""


def _version(doc: dict[str, Any]) -> None:
    """Every version so far is 1; a later one keeps these fields (versions.py's rule)."""


def _units(value: Any) -> tuple[str, ...] | None:
    return None if value is None else tuple(value)


@dataclass(frozen=True, slots=True)
class Account:
    """A local account (``hallmon user add``)."""

    name: str  # the sign-in name
    display: str  # recorded as the actor when no person is linked
    role: Role
    units: tuple[str, ...] | None  # None: every unit
    person: str | None  # a paging.people id
    password_hash: str
    disabled: bool
    created_at: datetime
    changed_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {"v": VERSION, "name": self.name, "display": self.display, "role": self.role,
                "units": list(self.units) if self.units is not None else None, "person": self.person,
                "password_hash": self.password_hash, "disabled": self.disabled,
                "created_at": iso(self.created_at), "changed_at": iso(self.changed_at)}

    def public_json(self) -> dict[str, Any]:
        doc = self.to_json()
        del doc["password_hash"]
        return doc

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> "Account":
        _version(doc)
        role = doc["role"]
        if role not in ROLES:
            raise StoredFormUnknown(f"role {role!r}")
        return cls(doc["name"], doc["display"], role, _units(doc.get("units")), doc.get("person"),
                   doc["password_hash"], bool(doc.get("disabled")), datetime.fromisoformat(doc["created_at"]),
                   datetime.fromisoformat(doc["changed_at"]))


@dataclass(frozen=True, slots=True)
class Session:
    """A signed-in person: what they may do is fixed at sign-in (a directory change
    applies from their next sign-in; disabling a local account ends its sessions)."""

    id: str  # the SHA-256 of the session token (hex): the key it is stored under
    account: str
    source: str  # "local" or "ldap"
    name: str  # the actor recorded
    person: str | None
    role: Role
    units: tuple[str, ...] | None
    address: str
    created_at: datetime
    idle_until: datetime
    absolute_until: datetime

    def to_json(self) -> dict[str, Any]:
        return {"v": VERSION, "id": self.id, "account": self.account, "source": self.source, "name": self.name,
                "person": self.person, "role": self.role,
                "units": list(self.units) if self.units is not None else None, "address": self.address,
                "created_at": iso(self.created_at), "idle_until": iso(self.idle_until),
                "absolute_until": iso(self.absolute_until)}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> "Session":
        _version(doc)
        return cls(doc["id"], doc["account"], doc["source"], doc["name"], doc.get("person"), doc["role"],
                   _units(doc.get("units")), doc.get("address", ""), datetime.fromisoformat(doc["created_at"]),
                   datetime.fromisoformat(doc["idle_until"]), datetime.fromisoformat(doc["absolute_until"]))


@dataclass(frozen=True, slots=True)
class MachineToken:
    """A token an admin created at run time (Alertmanager, a script)."""

    id: str  # shown in lists and the audit log; the secret is shown once, at creation
    name: str
    scopes: tuple[str, ...]
    units: tuple[str, ...] | None
    digest: str  # SHA-256 of the secret (hex)
    created_by: str
    created_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {"v": VERSION, "id": self.id, "name": self.name, "scopes": list(self.scopes),
                "units": list(self.units) if self.units is not None else None, "digest": self.digest,
                "created_by": self.created_by, "created_at": iso(self.created_at)}

    def public_json(self) -> dict[str, Any]:
        doc = self.to_json()
        del doc["digest"]
        return doc

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> "MachineToken":
        _version(doc)
        return cls(doc["id"], doc["name"], tuple(doc["scopes"]), _units(doc.get("units")), doc["digest"],
                   doc["created_by"], datetime.fromisoformat(doc["created_at"]))


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One line of the audit log: sign-ins, failures, locks, sign-outs, account and
    token changes. ``detail`` never holds a password or a token."""

    at: datetime
    event: str  # signin, signin_failed, locked, signout, signout_everywhere, session_expired, …
    account: str  # the account or token concerned ("" when none)
    address: str  # the client's address ("" from the CLI)
    actor: str  # who did it: the account itself, an admin, or "cli"
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"v": VERSION, "at": iso(self.at), "event": self.event, "account": self.account,
                "address": self.address, "actor": self.actor, "detail": self.detail}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> "AuditEntry":
        _version(doc)
        return cls(datetime.fromisoformat(doc["at"]), doc["event"], doc.get("account", ""), doc.get("address", ""),
                   doc.get("actor", ""), doc.get("detail", ""))
