"""Who may write about a node (docs/security.md "Credentials"), decided per request.

A bearer token is hashed (sha256) and looked up: the token of one enrolled node, or of a
cluster proxy (which speaks for the nodes it enrolled). Answers are cached in memory for
`ttl` seconds so that the fast path can check a node's token without the database; an
approve or revoke in this process clears the cache at once, another process (--workers,
replicas) sees it within `ttl`. Wrong and missing credentials take from the client
address' failed-auth budget (server/throttle.py); an empty budget is answered 429 before
any lookup.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

import anyio.to_thread
from pydantic import SecretStr
from sqlalchemy.orm import Session, sessionmaker

from ansible_proxy.protocol import NodeInfo
from ansible_proxy.server.auth import token_ok
from ansible_proxy.server.db import credentials as db
from ansible_proxy.server.db.credentials import Binding, NameState, Principal
from ansible_proxy.server.db.engine import stored_now
from ansible_proxy.server.limits.throttle import Throttle
from ansible_proxy.server.problems import Forbidden, Unauthorized

DEFAULT_TTL = 5.0
_MAX_ENTRIES = 200_000


class NodeAuth(StrEnum):
    """BIN_MANAGER_NODE_AUTH."""

    REQUIRED = "required"  # every write about a node carries its (or its proxy's) credential
    MIGRATE = "migrate"  # enrolled nodes must; the others may still write as before


@dataclass(frozen=True)
class Bearer:
    """The request's bearer token (None: none given), its hash, and the client address."""

    token: str | None
    hashed: str | None
    address: str


def bearer_of(authorization: str | None, address: str) -> Bearer:
    if authorization:
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() == "bearer" and token:
            return Bearer(token, db.token_hash(token), address)
    return Bearer(None, None, address)


class Credentials:
    """The app's view of node credentials: cached lookups and the write rule."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        mode: NodeAuth,
        insecure: bool,
        legacy: tuple[SecretStr | None, SecretStr | None],
        throttle: Throttle,
        ttl: float = DEFAULT_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sessions = sessions
        self.mode = mode
        self.insecure = insecure
        self.agent_token, self.admin_token = legacy
        self.throttle = throttle
        self.ttl = ttl
        self.clock = clock
        self._principals: dict[str, tuple[Principal | None, float]] = {}
        self._names: dict[str, tuple[NameState, float]] = {}

    # -- the cache -------------------------------------------------------------------
    def cached_principal(self, hashed: str) -> tuple[bool, Principal | None]:
        """(known, principal) from memory only; (False, None) asks for a lookup."""
        found = self._principals.get(hashed)
        if found is None or self.clock() >= found[1]:
            return False, None
        return True, found[0]

    def cached_state(self, name: str) -> NameState | None:
        found = self._names.get(name)
        if found is None or self.clock() >= found[1]:
            return None
        return found[0]

    def remember(self, name: str, state: NameState) -> None:
        """What the database says of `name`, for `ttl` seconds (tests prime the cache)."""
        self._keep(self._names, name, state)  # type: ignore[arg-type]

    def forget(self) -> None:
        """After an approve, revoke or proxy change in this process."""
        self._principals.clear()
        self._names.clear()

    def forget_name(self, name: str, hashed: str | None) -> None:
        """After `name` enrolled (with the token hashed so): no stale answer for either."""
        self._names.pop(name, None)
        if hashed is not None:
            self._principals.pop(hashed, None)

    def _keep(self, cache: dict[str, tuple[object, float]], key: str, value: object) -> None:
        if len(cache) >= _MAX_ENTRIES:
            cache.clear()
        cache[key] = (value, self.clock() + self.ttl)

    async def principal(self, bearer: Bearer) -> Principal | None:
        """Whose token this is (None: no node's or proxy's). An unknown token from an
        address out of failed-auth budget is answered 429 before the database is asked."""
        if bearer.hashed is None:
            return None
        known, principal = self.cached_principal(bearer.hashed)
        if known:
            return principal
        self.throttle.failures.check(bearer.address)
        hashed = bearer.hashed

        def work() -> Principal | None:
            with self.sessions() as session:
                return db.principal_of(session, hashed)

        principal = await anyio.to_thread.run_sync(work)
        self._keep(self._principals, hashed, principal)  # type: ignore[arg-type]
        return principal

    async def state(self, name: str) -> NameState:
        cached = self.cached_state(name)
        if cached is not None:
            return cached

        def work() -> NameState:
            with self.sessions() as session:
                return db.name_state(session, name)

        state = await anyio.to_thread.run_sync(work)
        self._keep(self._names, name, state)  # type: ignore[arg-type]
        return state

    # -- the rules -------------------------------------------------------------------
    def legacy_ok(self, bearer: Bearer) -> bool:
        """The rule before node credentials: the agent token (or admin's), when one is set."""
        if self.agent_token is None:
            return True
        return bearer.token is not None and token_ok(
            bearer.token, self.agent_token, self.admin_token
        )

    async def require_read(self, bearer: Bearer) -> None:
        """Per-tick GETs and downloads: open unless BIN_MANAGER_AGENT_TOKEN is set; then
        that token, the admin's, or any node's or proxy's credential."""
        if self.insecure or self.legacy_ok(bearer):
            return
        if await self.principal(bearer) is not None:
            return
        self.refuse(bearer, Unauthorized("missing or wrong bearer token"))

    async def require_write(self, bearer: Bearer, node_name: str) -> Principal | None:
        """May this request write about `node_name`? Raises 401/403 (and counts it)."""
        if self.insecure:
            return None
        principal = await self.principal(bearer)
        state = await self.state(node_name)
        problem = decide(self.mode, node_name, state, principal, self.legacy_ok(bearer))
        if problem is not None:
            self.refuse(bearer, problem)
        return principal

    async def enrol_for_proxy(self, principal: Principal, info: NodeInfo) -> None:
        """A proxy's POST /keepalive for a name bound to nothing enrols it as the proxy's."""

        def work() -> None:
            with self.sessions() as session:
                db.enrol(session, info, None, principal.name, True, "", stored_now())
                session.commit()

        await anyio.to_thread.run_sync(work)
        self._names.pop(info.nodeName, None)

    def refuse(self, bearer: Bearer, problem: Unauthorized | Forbidden) -> None:
        self.throttle.failures.take(bearer.address)
        raise problem


def decide(
    mode: NodeAuth,
    node_name: str,
    state: NameState,
    principal: Principal | None,
    legacy_ok: bool,
) -> Unauthorized | Forbidden | None:
    """The write rule of docs/security.md: None when allowed, else the refusal."""
    if state.binding is Binding.REVOKED:
        return Unauthorized(
            f"the credential of node {node_name!r} was revoked on the bin-manager: "
            "it may enrol again only with an admin's approval"
        )
    if principal is not None:
        if principal.kind == "node" and principal.name == node_name:
            return None
        if principal.kind == "proxy" and state.proxy == principal.name:
            return None
    if state.binding is Binding.ENROLLED:
        if principal is not None:
            return Forbidden(f"this credential ({principal.kind} {principal.name!r}) may not "
                             f"write about node {node_name!r}")  # fmt: skip
        return Unauthorized(f"node {node_name!r} is enrolled: send its node token")
    if principal is not None and principal.kind == "node":
        return Forbidden(f"the credential of node {principal.name!r} may not write about "
                         f"node {node_name!r}")  # fmt: skip
    if mode is NodeAuth.MIGRATE and legacy_ok:
        return None
    if mode is NodeAuth.MIGRATE:
        return Unauthorized("missing or wrong bearer token")
    return Unauthorized(
        f"node {node_name!r} is not enrolled: POST /api/v1/enrol first (docs/security.md)"
    )
