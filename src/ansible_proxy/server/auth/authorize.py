"""`authorize`: the one check of every admin API route (its routers' dependency).

Who: the bearer token is the admin token (the break-glass credential: every right), or
an API token (auth/lookups.py: its role and bins, refused when revoked or expired), or
nothing at all on a server run with --insecure-no-auth. What: auth/routes.py's rule for
the matched route: its right, on the bin its path names. A wrong token is 401 and takes
from the address' failed-auth budget (429 once empty); a right missing is 403 naming it,
and recorded in the audit trail. A route that may change something starts its audit
entry here (audit/trail.py).
"""

from __future__ import annotations

from typing import Annotated

import anyio.to_thread
from fastapi import Depends, Request

from ansible_proxy.server.audit import trail
from ansible_proxy.server.auth import token_ok
from ansible_proxy.server.auth.actors import ADMIN_TOKEN, ANYONE, Actor
from ansible_proxy.server.auth.lookups import TeamCache
from ansible_proxy.server.auth.routes import Rule, rule_for
from ansible_proxy.server.db import audit
from ansible_proxy.server.db.engine import stored_now
from ansible_proxy.server.deps import AppSettings, Caller, Credentials, Throttles
from ansible_proxy.server.problems import Forbidden, Unauthorized

MISSING = "missing bearer token: send 'Authorization: Bearer <token>'"


async def _team(request: Request) -> TeamCache:
    team: TeamCache = request.app.state.team
    return team


Team = Annotated[TeamCache, Depends(_team)]


def route_rule(request: Request) -> Rule | None:
    """auth/routes.py's rule for the route the request matched."""
    route = request.scope.get("route")
    path = getattr(route, "path", None)
    return rule_for(request.method, path) if isinstance(path, str) else None


def bin_of(request: Request) -> str | None:
    name = request.path_params.get("bin_name")
    return name if isinstance(name, str) else None


def target_of(request: Request) -> str | None:
    """The node, person, token or proxy the path names."""
    for key in ("node_name", "name"):
        value = request.path_params.get(key)
        if isinstance(value, str):
            return value
    return None


async def identify(
    settings: AppSettings,
    caller: Caller,
    throttle: Throttles,
    team: Team,
    _documented: Credentials,  # the bearer scheme in OpenAPI (/docs); `caller` reads it
) -> Actor:
    """The actor behind the request's bearer token; 401 (429) when there is none."""
    if settings.insecure_no_auth or settings.admin_token is None:
        return ANYONE
    throttle.failures.check(caller.address)
    if caller.token is None or caller.hashed is None:
        throttle.failures.take(caller.address)
        raise Unauthorized(MISSING)
    if token_ok(caller.token, settings.admin_token):
        return ADMIN_TOKEN
    known, row = team.cached_token(caller.hashed)
    if not known:
        row = await anyio.to_thread.run_sync(team.token, caller.hashed)
    now = stored_now()
    actor, why = row.actor(now) if row is not None else (None, "wrong bearer token")
    if actor is None:
        throttle.failures.take(caller.address)
        raise Unauthorized(why)
    if team.touch_due(actor.name):
        await anyio.to_thread.run_sync(team.touch, actor.name, now)
    return actor


CurrentActor = Annotated[Actor, Depends(identify)]


async def authorize(request: Request, actor: CurrentActor, caller: Caller) -> Actor:
    """The route's right for `actor` (403 naming it), then its audit entry begun."""
    rule = route_rule(request)
    bin_name = bin_of(request)
    if rule is None:
        raise Forbidden(f"no right is defined for {request.method} {request.url.path}")
    action = rule.action_of(request.path_params)
    why = actor.refusal(rule.right, bin_name)
    if why is not None:
        entry = audit.entry(
            actor,
            action or f"read:{rule.right.value}",
            caller.address,
            stored_now(),
            outcome="refused",
            bin_name=bin_name,
            target=target_of(request),
            detail=f"lacks {rule.right.value}",
        )
        await anyio.to_thread.run_sync(trail.record, request.app.state.sessions, entry)
        raise Forbidden(why)
    if action is not None:
        arch = request.query_params.get("arch")
        trail.begin(
            trail.Change(
                actor,
                action,
                caller.address,
                bin_name=bin_name,
                target=target_of(request),
                arch=arch[:16] if arch else None,
                sha256=request.path_params.get("sha256"),
            )
        )
    return actor


Authorized = Annotated[Actor, Depends(authorize)]
