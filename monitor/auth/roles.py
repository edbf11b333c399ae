"""Roles and the scopes they grant. A route asks for one scope (``caller(request,
scope)``); a role is a named set of scopes, each role adding to the one before:

    agency_viewer   incidents:read                      read, in its units
    duty_officer    + incidents:write                   acknowledge, report, resolve, harm flags
    duty_leader     + incidents:level                   set a level by hand
    engineer        + maintenance:write, drills:write   maintenance windows, drills
    admin           + accounts:admin, alerts:write      accounts, machine tokens, the audit log

A config token (``api.tokens``) with ``incidents:write`` keeps every right it had before
0.7, when that one scope covered levels, maintenance and drills: ``expand`` adds them.
"""
from __future__ import annotations

from typing import Literal, get_args

Role = Literal["agency_viewer", "duty_officer", "duty_leader", "engineer", "admin"]
Scope = Literal["alerts:write", "incidents:read", "incidents:write", "incidents:level", "maintenance:write",
                "drills:write", "accounts:admin"]

ROLES: tuple[Role, ...] = get_args(Role)
SCOPES: tuple[Scope, ...] = get_args(Scope)

_ADDS: dict[Role, frozenset[str]] = {
    "agency_viewer": frozenset({"incidents:read"}),
    "duty_officer": frozenset({"incidents:write"}),
    "duty_leader": frozenset({"incidents:level"}),
    "engineer": frozenset({"maintenance:write", "drills:write"}),
    "admin": frozenset({"accounts:admin", "alerts:write"}),
}

# what ``incidents:write`` meant before it was split (0.6)
_LEGACY_WRITE = frozenset({"incidents:level", "maintenance:write", "drills:write"})


def scopes_of(role: Role) -> frozenset[str]:
    """Every scope ``role`` grants: its own and those of the roles below it."""
    out: set[str] = set()
    for r in ROLES[: ROLES.index(role) + 1]:
        out |= _ADDS[r]
    return frozenset(out)


def expand(scopes: tuple[str, ...] | frozenset[str]) -> frozenset[str]:
    """A config token's scopes as routes check them: ``incidents:write`` still covers
    levels, maintenance and drills, as it did in 0.6."""
    out = frozenset(scopes)
    return out | _LEGACY_WRITE if "incidents:write" in out else out


def highest(roles: list[Role]) -> Role:
    return max(roles, key=ROLES.index)
