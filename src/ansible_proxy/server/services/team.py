"""People and API tokens: every change commits, then forgets the cached rows of this
process (auth/lookups.py; other processes see it within its ttl). Shown secrets (a one-time
password, a new token) are returned once and never logged: only names and fingerprints.
"""

from __future__ import annotations

import logging
import secrets
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from ansible_proxy.server.auth import passwords
from ansible_proxy.server.auth.actors import Actor
from ansible_proxy.server.auth.lookups import TeamCache
from ansible_proxy.server.auth.rights import Grant, Role, parse_bins, parse_role
from ansible_proxy.server.db import people
from ansible_proxy.server.db.credentials import fingerprint, token_hash
from ansible_proxy.server.db.team import ApiToken, User
from ansible_proxy.server.problems import BadRequest, Conflict

log = logging.getLogger(__name__)
TOKEN_PREFIX = "bmt_"  # noqa: S105 (a prefix, not a secret): tells a person (and a secret scanner) what the string is
MAX_EXPIRES_DAYS = 3650


def grant_of(role: str | None, bins: list[str] | str | None) -> Grant:
    """A grant from the API's values; 400 naming what is wrong."""
    if role is None:
        raise BadRequest("a role is needed: viewer, publisher, operator or admin")
    try:
        parsed = parse_role(role)
        text = ",".join(bins) if isinstance(bins, list) else bins
        return Grant(parsed, parse_bins(text, parsed))
    except ValueError as exc:
        raise BadRequest(str(exc)) from None


def add_user(
    session: Session,
    team: TeamCache,
    name: str,
    role: str | None,
    bins: list[str] | None,
    by: Actor,
    now: datetime,
) -> tuple[User, str]:
    """A new person and their one-time password. Without a role, the first person is made
    an admin (an installation's first `users add`); later ones need a role."""
    if role is None and people.count_users(session) == 0:
        role = Role.ADMIN.value
    grant = grant_of(role, bins)
    password = passwords.one_time_password()
    user = people.add_user(session, name, grant, passwords.hash_password(password), by.label, now)
    session.commit()
    team.forget()
    log.info("person %r added as %s by %s", name, grant.describe(), by.label)
    return user, password


def set_role(
    session: Session,
    team: TeamCache,
    name: str,
    role: str | None,
    bins: list[str] | None,
    by: Actor,
) -> User:
    user = people.require_user(session, name)
    grant = grant_of(role, bins)
    if grant.role is not Role.ADMIN:
        people.check_not_last_admin(session, user, f"making {name} a {grant.role}")
    user.role, user.bins = grant.role.value, grant.bins_text
    session.commit()
    team.forget()
    log.info("person %r is now %s (by %s)", name, grant.describe(), by.label)
    return user


def set_disabled(
    session: Session, team: TeamCache, name: str, disabled: bool, by: Actor, now: datetime
) -> User:
    """Disable (every session ends at once, login refused) or enable a person."""
    user = people.require_user(session, name)
    if disabled and user.disabled_at is None:
        people.check_not_last_admin(session, user, f"disabling {name}")
        user.disabled_at = now
        people.end_sessions(user)
    elif not disabled:
        user.disabled_at = None
    session.commit()
    team.forget()
    log.info("person %r %s by %s", name, "disabled" if disabled else "enabled", by.label)
    return user


def reset_password(session: Session, team: TeamCache, name: str, by: Actor) -> str:
    """A new one-time password; every session of the person ends."""
    user = people.require_user(session, name)
    password = passwords.one_time_password()
    user.password_hash = passwords.hash_password(password)
    user.must_change = True
    people.end_sessions(user)
    session.commit()
    team.forget()
    log.info("person %r: password reset by %s", name, by.label)
    return password


def create_token(
    session: Session,
    team: TeamCache,
    name: str,
    role: str | None,
    bins: list[str] | None,
    expires_days: int | None,
    by: Actor,
    now: datetime,
) -> tuple[ApiToken, str]:
    """A new API token, shown this once; `expires_days` None: it never expires."""
    grant = grant_of(role, bins)
    if expires_days is not None and not 1 <= expires_days <= MAX_EXPIRES_DAYS:
        raise BadRequest(f"expiresDays: from 1 to {MAX_EXPIRES_DAYS}")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    hashed = token_hash(secret)
    expires = now + timedelta(days=expires_days) if expires_days is not None else None
    token = people.add_token(session, name, hashed, grant, expires, by.label, now)
    session.commit()
    team.forget()
    log.info(
        "token %r (%s) created as %s by %s", name, fingerprint(hashed), grant.describe(), by.label
    )
    return token, secret


def revoke_token(
    session: Session, team: TeamCache, name: str, by: Actor, now: datetime
) -> ApiToken:
    token = people.require_token(session, name)
    if token.revoked_at is not None:
        raise Conflict(f"the token {name!r} is revoked already")
    token.revoked_at = now
    session.commit()
    team.forget()
    log.info("token %r (%s) revoked by %s", name, fingerprint(token.token_hash), by.label)
    return token
