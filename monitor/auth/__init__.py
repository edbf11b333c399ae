"""Accounts and sign-in: local accounts (argon2id) and the directory (LDAP), sessions,
the sign-in lockout, machine tokens created at run time, and the audit log. See
docs/accounts.md. Who a request is stays decided in one place, monitor/service/access.py."""
