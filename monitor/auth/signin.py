"""Signing in and out: the lockout first, then a local account (argon2id) or else the
directory (LDAP), then a session; every outcome in the audit log.

A name that is a local account signs in locally only (a directory outage never locks
out the local admin); any other name goes to the directory when one is configured. The
answer to a wrong password and to an unknown name is the same ``BadCredentials``.
"""
from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Callable

import structlog

from monitor.auth import passwords
from monitor.auth.lockout import Hold, Lockout
from monitor.auth.records import Session
from monitor.auth.store import AuthStore
from monitor.config.model import Config
from monitor.core.errors import (
    AccountDisabled,
    BadCredentials,
    DirectoryUnavailable,
    Invalid,
    Locked,
    NoRole,
    SlowDown,
    TooManyAttempts,
)

if TYPE_CHECKING:
    from monitor.auth.directory import Directory

log = structlog.get_logger("hallmon.auth")


def refusal(hold: Hold) -> TooManyAttempts:
    whose = "this account" if hold.kind == "account" else "this address"
    if hold.reason == "locked":
        return Locked(f"too many failed sign-ins: {whose} is locked for {hold.seconds} s more "
                      f"(an administrator can unlock an account: hallmon user unlock)", hold.seconds)
    return SlowDown(f"too many failed sign-ins for {whose}: wait {hold.seconds} s before trying again", hold.seconds)


class SignIn:
    def __init__(self, store: AuthStore, config: Callable[[], Config]):
        self.store = store
        self.config = config
        self._directory: tuple[object, Directory] | None = None

    def directory(self) -> Directory | None:
        """The directory of the running config (rebuilt when a reload changes ``auth.ldap``)."""
        ldap = self.config().auth.ldap
        if ldap is None:
            return None
        if self._directory is None or self._directory[0] != ldap:
            from monitor.auth.directory import Directory  # ldap3 (and pyasn1) only where a directory is set

            self._directory = (ldap, Directory(ldap))
        return self._directory[1]

    async def sign_in(self, username: str, password: str, address: str) -> tuple[str, Session]:
        """A session token (shown once, to this caller) and its session, or a typed refusal."""
        if not username or len(username) > 200 or any(c in username for c in "\x00\r\n"):
            raise Invalid("username: 1 to 200 characters on one line")
        if len(password) > 1024:
            raise Invalid("password: at most 1024 characters")
        cfg = self.config()
        lockout = Lockout(self.store.r, cfg.auth.lockout, self.store.clock)
        hold = await lockout.hold(username, address)
        if hold is not None:
            await self.store.audit("signin_refused", username, address, username, f"{hold.reason} ({hold.kind})")
            raise refusal(hold)
        account = await self.store.account(username)
        directory = self.directory()
        if account is not None or directory is None:
            ok = await passwords.verify(account.password_hash if account else None, password)
            if ok and account is not None and account.disabled:
                await self.store.audit("signin_failed", username, address, username, "disabled")
                raise AccountDisabled(f"the account {username!r} is disabled; ask an administrator")
            if not ok or account is None:
                await self._failed(lockout, username, address, "bad_password" if account else "unknown_account")
            assert account is not None
            name, person, role, units, source = account.display, account.person, account.role, account.units, "local"
        else:
            try:
                user = await directory.sign_in(username, password)
            except DirectoryUnavailable as err:
                await self.store.audit("signin_failed", username, address, username, "directory_unavailable")
                log.warning("ldap_unavailable", error=str(err))
                raise DirectoryUnavailable(f"{err}; local accounts can still sign in") from None
            except NoRole:
                await self.store.audit("signin_failed", username, address, username, "no_role")
                raise
            if user is None:
                await self._failed(lockout, username, address, "bad_password_or_unknown (ldap)")
            assert user is not None
            people = {p.id: p.name for p in cfg.paging.people}
            person = user.person_value if user.person_value in people else None
            name = people[person] if person else user.name
            role, units, source = user.role, user.units, "ldap"
        await lockout.succeeded(username)
        now = self.store.clock.now()
        session = cfg.auth.session
        s = Session("", username, source, name, person, role, units, address, now,
                    now + timedelta(seconds=session.idle), now + timedelta(seconds=session.absolute))
        token = await self.store.open_session(s)
        await self.store.audit("signin", username, address, username, f"{source} as {role}")
        return token, s

    async def _failed(self, lockout: Lockout, username: str, address: str, why: str) -> None:
        caused = await lockout.failed(username, address)
        await self.store.audit("signin_failed", username, address, username, why)
        if caused is not None:
            await self.store.audit("locked", username if caused.kind == "account" else "", address, "hallmon",
                                   f"{caused.kind} locked for {caused.seconds} s")
            log.warning("signin_locked", kind=caused.kind, account=username if caused.kind == "account" else None,
                        address=address if caused.kind == "address" else None)
            raise refusal(caused)
        raise BadCredentials("wrong name or password")

    async def sign_out(self, s: Session, address: str) -> None:
        await self.store.end_session(s)
        await self.store.audit("signout", s.account, address, s.account)

    async def sign_out_everywhere(self, account: str, address: str, actor: str) -> int:
        n = await self.store.end_sessions(account)
        await self.store.audit("signout_everywhere", account, address, actor, f"{n} sessions ended")
        return n


__all__ = ["SignIn", "NoRole", "refusal"]
