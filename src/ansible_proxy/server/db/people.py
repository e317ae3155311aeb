"""People and API tokens in the database: add, list, change; never a password or a token
in clear (auth/passwords.py hashes the first, credentials.token_hash the second)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from ansible_proxy.server.auth.rights import Grant, Role
from ansible_proxy.server.db.credentials import fingerprint
from ansible_proxy.server.db.team import ApiToken, User
from ansible_proxy.server.problems import BadRequest, Conflict, NotFound

USER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
TOKEN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat() + "Z" if moment is not None else None


def check_user_name(name: str) -> str:
    if USER_NAME.fullmatch(name) is None:
        raise BadRequest(
            f"invalid name {name!r}: 1-64 of A-Z a-z 0-9 . _ @ - (a letter or digit first)"
        )
    return name


def check_token_name(name: str) -> str:
    if TOKEN_NAME.fullmatch(name) is None:
        raise BadRequest(
            f"invalid token name {name!r}: 1-64 of A-Z a-z 0-9 . _ - (a letter or digit first)"
        )
    return name


# -- people --------------------------------------------------------------------------------
def find_user(session: Session, name: str) -> User | None:
    return session.get(User, name)


def require_user(session: Session, name: str) -> User:
    user = session.get(User, check_user_name(name))
    if user is None:
        raise NotFound(f"no person named {name!r}: see `bin-manager users list`")
    return user


def count_users(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(User)) or 0)


def add_user(
    session: Session, name: str, grant: Grant, password_hash: str, by: str, now: datetime
) -> User:
    """A new person whose password must be changed at first login; 409 for a name taken."""
    if session.get(User, check_user_name(name)) is not None:
        raise Conflict(f"a person named {name!r} exists: see `bin-manager users list`")
    user = User(
        name=name,
        role=grant.role.value,
        bins=grant.bins_text,
        password_hash=password_hash,
        must_change=True,
        session_epoch=0,
        created_at=now,
        created_by=by,
    )
    session.add(user)
    return user


def enabled_admins(session: Session) -> list[str]:
    rows = session.scalars(
        select(User.name).where(User.role == Role.ADMIN.value, User.disabled_at.is_(None))
    )
    return list(rows)


def check_not_last_admin(session: Session, user: User, what: str) -> None:
    """409 when `user` is the only enabled admin: `what` would leave no person to manage
    the others (the admin token still could: it is the break-glass credential)."""
    if user.role == Role.ADMIN.value and enabled_admins(session) == [user.name]:
        raise Conflict(
            f"{user.name} is the only enabled admin: {what} would leave no person who can "
            "manage people and tokens; make another person admin first"
        )


def end_sessions(user: User) -> None:
    """Every dashboard session of the person stops working (auth/lookups.py reads the epoch)."""
    user.session_epoch += 1


def user_row(user: User) -> dict[str, Any]:
    return {
        "name": user.name,
        "role": user.role,
        "bins": user.bins.split(",") if user.bins else None,
        "disabled": user.disabled_at is not None,
        "disabledAt": iso(user.disabled_at),
        "mustChangePassword": user.must_change,
        "createdAt": iso(user.created_at),
        "createdBy": user.created_by,
        "lastLoginAt": iso(user.last_login_at),
    }


def users(session: Session) -> list[dict[str, Any]]:
    return [user_row(user) for user in session.scalars(select(User).order_by(User.name))]


# -- tokens --------------------------------------------------------------------------------
def add_token(
    session: Session,
    name: str,
    hashed: str,
    grant: Grant,
    expires_at: datetime | None,
    by: str,
    now: datetime,
) -> ApiToken:
    if session.get(ApiToken, check_token_name(name)) is not None:
        raise Conflict(
            f"a token named {name!r} exists (a revoked token keeps its name: the audit "
            "trail names it); choose another name"
        )
    token = ApiToken(
        name=name,
        token_hash=hashed,
        role=grant.role.value,
        bins=grant.bins_text,
        expires_at=expires_at,
        created_at=now,
        created_by=by,
    )
    session.add(token)
    return token


def require_token(session: Session, name: str) -> ApiToken:
    token = session.get(ApiToken, check_token_name(name))
    if token is None:
        raise NotFound(f"no token named {name!r}: see `bin-manager tokens list`")
    return token


def token_by_hash(session: Session, hashed: str) -> ApiToken | None:
    found: ApiToken | None = session.scalar(select(ApiToken).where(ApiToken.token_hash == hashed))
    return found


def touch_token(session: Session, name: str, now: datetime) -> None:
    session.execute(update(ApiToken).where(ApiToken.name == name).values(last_used_at=now))


def token_row(token: ApiToken, now: datetime) -> dict[str, Any]:
    if token.revoked_at is not None:
        state = "revoked"
    elif token.expires_at is not None and token.expires_at <= now:
        state = "expired"
    else:
        state = "active"
    return {
        "name": token.name,
        "fingerprint": fingerprint(token.token_hash),
        "role": token.role,
        "bins": token.bins.split(",") if token.bins else None,
        "state": state,
        "expiresAt": iso(token.expires_at),
        "createdAt": iso(token.created_at),
        "createdBy": token.created_by,
        "lastUsedAt": iso(token.last_used_at),
        "revokedAt": iso(token.revoked_at),
    }


def tokens(session: Session, now: datetime) -> list[dict[str, Any]]:
    rows = session.scalars(select(ApiToken).order_by(ApiToken.name))
    return [token_row(token, now) for token in rows]
