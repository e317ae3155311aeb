"""/api/v1/admin/users, /tokens and /whoami: people and API tokens (docs/bin-manager.md
"People and tokens"). Thin: services/team.py makes the changes, auth/routes.py says who
may (admins: the rights `people` and `tokens`; whoami: anyone authenticated).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from ansible_proxy.protocol import API_PREFIX, Answer, Envelope, ok
from ansible_proxy.server.audit import trail
from ansible_proxy.server.auth.authorize import Authorized, Team, authorize
from ansible_proxy.server.auth.rights import ROLE_RIGHTS, Right
from ansible_proxy.server.db import people
from ansible_proxy.server.deps import ERROR_RESPONSES, DbSession, Now, error_answer
from ansible_proxy.server.services import team as service

router = APIRouter(
    prefix=f"{API_PREFIX}/admin",
    tags=["team"],
    dependencies=[Depends(authorize)],
    responses={**ERROR_RESPONSES, 409: error_answer("The name is taken, or the last admin")},
)
Bins = Field(
    default=None,
    max_length=32,
    description="limit the grant to these bins (names or fnmatch globs, `web*`); "
    "publisher and operator only; absent: every bin",
)


class NewUser(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=64)
    role: str | None = Field(
        default=None, max_length=16, description="absent: admin for the first person only"
    )
    bins: list[str] | None = Bins


class RoleChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: str = Field(max_length=16)
    bins: list[str] | None = Bins


class NewToken(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=64)
    role: str = Field(max_length=16)
    bins: list[str] | None = Bins
    expiresDays: int | None = Field(
        default=90, description=f"1 to {service.MAX_EXPIRES_DAYS}; null: it never expires"
    )


class Person(Answer):
    name: str
    role: str
    bins: list[str] | None
    disabled: bool
    disabledAt: str | None
    mustChangePassword: bool
    createdAt: str | None
    createdBy: str
    lastLoginAt: str | None


class NewPerson(Person):
    password: str = Field(description="the one-time password, shown this once")


class Password(Answer):
    name: str
    password: str = Field(description="the one-time password, shown this once")


class Token(Answer):
    name: str
    fingerprint: str
    role: str
    bins: list[str] | None
    state: str = Field(description="active, expired or revoked")
    expiresAt: str | None
    createdAt: str | None
    createdBy: str
    lastUsedAt: str | None
    revokedAt: str | None


class TokenShown(Token):
    token: str = Field(description="the token, shown this once")


class Me(Answer):
    kind: str = Field(description="user, token, admin-token or open (--insecure-no-auth)")
    name: str
    fingerprint: str | None
    role: str
    bins: list[str] | None
    rights: list[str]


def _grant_text(role: str | None, bins: list[str] | None) -> str:
    return (role or "admin (the first person)") + (f" for {','.join(bins)}" if bins else "")


@router.get("/whoami", response_model=Envelope[Me], summary="Who this credential is")
def whoami(actor: Authorized) -> dict[str, Any]:
    held = ROLE_RIGHTS[actor.grant.role]
    return ok(
        {
            "kind": actor.kind.value,
            "name": actor.name,
            "fingerprint": actor.fingerprint,
            "role": actor.grant.role.value,
            "bins": list(actor.grant.bins) if actor.grant.bins else None,
            "rights": [right.value for right in Right if right in held],
        }
    )


@router.get("/users", response_model=Envelope[list[Person]], summary="People")
def list_users(session: DbSession) -> dict[str, Any]:
    return ok(people.users(session))


@router.post(
    "/users",
    response_model=Envelope[NewPerson],
    summary="Add a person: their one-time password is shown this once",
)
def add_user(
    body: NewUser, session: DbSession, team: Team, actor: Authorized, now: Now
) -> dict[str, Any]:
    trail.note(target=body.name, detail=_grant_text(body.role, body.bins))
    user, password = service.add_user(session, team, body.name, body.role, body.bins, actor, now)
    return ok({**people.user_row(user), "password": password})


@router.post("/users/{name}/role", response_model=Envelope[Person], summary="Set a person's role")
def set_role(
    name: str, body: RoleChange, session: DbSession, team: Team, actor: Authorized
) -> dict[str, Any]:
    trail.note(detail=_grant_text(body.role, body.bins))
    user = service.set_role(session, team, name, body.role, body.bins, actor)
    return ok(people.user_row(user))


@router.post(
    "/users/{name}/disable",
    response_model=Envelope[Person],
    summary="Disable a person: their sessions end at once, their logins are refused",
)
def disable_user(
    name: str, session: DbSession, team: Team, actor: Authorized, now: Now
) -> dict[str, Any]:
    return ok(people.user_row(service.set_disabled(session, team, name, True, actor, now)))


@router.post("/users/{name}/enable", response_model=Envelope[Person], summary="Enable a person")
def enable_user(
    name: str, session: DbSession, team: Team, actor: Authorized, now: Now
) -> dict[str, Any]:
    return ok(people.user_row(service.set_disabled(session, team, name, False, actor, now)))


@router.post(
    "/users/{name}/password",
    response_model=Envelope[Password],
    summary="A new one-time password for a person (their sessions end)",
)
def reset_password(name: str, session: DbSession, team: Team, actor: Authorized) -> dict[str, Any]:
    return ok({"name": name, "password": service.reset_password(session, team, name, actor)})


@router.get("/tokens", response_model=Envelope[list[Token]], summary="API tokens")
def list_tokens(session: DbSession, now: Now) -> dict[str, Any]:
    return ok(people.tokens(session, now))


@router.post(
    "/tokens",
    response_model=Envelope[TokenShown],
    summary="Create an API token: shown this once (only its hash is kept)",
)
def create_token(
    body: NewToken, session: DbSession, team: Team, actor: Authorized, now: Now
) -> dict[str, Any]:
    trail.note(target=body.name, detail=_grant_text(body.role, body.bins))
    token, secret = service.create_token(
        session, team, body.name, body.role, body.bins, body.expiresDays, actor, now
    )
    return ok({**people.token_row(token, now), "token": secret})


@router.post("/tokens/{name}/revoke", response_model=Envelope[Token], summary="Revoke a token")
def revoke_token(
    name: str, session: DbSession, team: Team, actor: Authorized, now: Now
) -> dict[str, Any]:
    return ok(people.token_row(service.revoke_token(session, team, name, actor, now), now))
