"""Who may write about a node (docs/security.md "Credentials"), decided per request.

A bearer token is hashed (sha256) and looked up: the token of one enrolled node, or of a
cluster proxy (which speaks for the nodes it enrolled). Answers are cached in memory so
that the fast path checks a node's token without the database: a valid credential and
an enrolled name for `max_age` (10 minutes, then checked against the database again, in
bulk, by the CredentialWatch: kept when the row still agrees), anything else (an
unknown token, a name not enrolled or revoked) for `ttl` (5 s). A change drops what it
touches: an approve or revoke in this process at once, one in another process
(--workers, replicas) when this process' CredentialWatch (auth/watch.py) sees the row
change, within about a second.
Wrong and missing credentials take from the client address' failed-auth budget
(server/throttle.py); an empty budget is answered 429 before any lookup.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Mapping
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

DEFAULT_TTL = 5.0  # answers that refuse: an unknown token, a name not enrolled or revoked
DEFAULT_MAX_AGE = 600.0  # a valid credential, an enrolled name: then checked again in bulk
_MAX_ENTRIES = 500_000  # per cache, ~200 bytes each; beyond it the cache starts over


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
        max_age: float = DEFAULT_MAX_AGE,
    ) -> None:
        self.sessions = sessions
        self.mode = mode
        self.insecure = insecure
        self.agent_token, self.admin_token = legacy
        self.throttle = throttle
        self.ttl = ttl
        self.max_age = max_age
        self.clock = clock
        self._principals: dict[str, tuple[Principal | None, float]] = {}
        self._names: dict[str, tuple[NameState, float]] = {}
        self._node_hashes: dict[str, str] = {}  # node name → its cached token hash
        # Each forget is numbered: a lookup that read the database before a change to its
        # name (or proxy) and ends after it must not keep its answer for max_age.
        self._generation = 0
        self._forgotten: dict[str, int] = {}  # name or "proxy:name" → its last forget's number
        self._forgotten_all = 0  # the number of the last forget of everything

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

    def remember(self, name: str, state: NameState, fresh: bool = True) -> None:
        """What the database says of `name` (tests prime the cache); `fresh`: read after
        the last change this process knows of."""
        lasting = fresh and state.binding is Binding.ENROLLED
        self._keep(self._names, name, state, lasting)  # type: ignore[arg-type]

    def remember_principal(
        self, hashed: str, principal: Principal | None, fresh: bool = True
    ) -> None:
        """Whose token hashes to `hashed`, as the database says."""
        if principal is not None and principal.kind == "node":
            if len(self._node_hashes) >= _MAX_ENTRIES:
                self._node_hashes.clear()
            self._node_hashes[principal.name] = hashed
        lasting = fresh and principal is not None
        self._keep(self._principals, hashed, principal, lasting)  # type: ignore[arg-type]

    def forget(self) -> None:
        """Everything (a change too large to drop name by name)."""
        self._generation += 1
        self._forgotten_all = self._generation
        self._forgotten.clear()
        self._principals.clear()
        self._names.clear()
        self._node_hashes.clear()

    def forget_name(self, name: str, hashed: str | None = None) -> None:
        """After `name`'s credential changed (enrolled with the token hashed so, approved,
        revoked): no stale answer about the name, its old token or `hashed`."""
        self._number(name)
        self._names.pop(name, None)
        old = self._node_hashes.pop(name, None)
        if old is not None:
            self._principals.pop(old, None)
        if hashed is not None:
            self._principals.pop(hashed, None)

    def disagrees(self, name: str, revoked: bool, hashed: str | None, proxy: str | None) -> bool:
        """Does anything cached about `name` differ from its row (revoked, token hash,
        owning proxy)? A row this process already knows (it made the change, or looked
        it up since) costs no cached answer; a revoked one always drops them."""
        if revoked:
            return True
        cached = self._names.get(name)
        if cached is not None:
            state = cached[0]
            bound = hashed is not None or proxy is not None
            if (state.binding is Binding.ENROLLED) != bound or state.proxy != proxy:
                return True
        if self._node_hashes.get(name, hashed) != hashed:
            return True
        if hashed is not None and hashed in self._principals:
            return self._principals[hashed][0] != Principal("node", name)
        return False

    # -- renewal in bulk (auth/watch.py) ------------------------------------------------
    def expiring(self, within: float) -> tuple[int, list[str]]:
        """(now's forget number, the enrolled names whose answers end within `within`
        seconds): what the watch reads again in bulk before they would miss one by one."""
        limit = self.clock() + within
        names = [
            name
            for name, (state, until) in self._names.items()
            if until <= limit and state.binding is Binding.ENROLLED
        ]
        return self._generation, names

    def renew(
        self, since: int, rows: Mapping[str, tuple[bool, str | None, str | None] | None]
    ) -> int:
        """Keep the cached answers of each name whose row (revoked, token hash, proxy)
        still agrees, for another max age; drop the others. `since`: expiring()'s number
        (a name changed after it is left to the change). How many were dropped."""
        dropped = 0
        for name, row in rows.items():
            if not self._unchanged(name, since):
                continue
            if row is None or self.disagrees(name, *row):
                self.forget_name(name)
                dropped += 1
                continue
            spread = random.uniform(0.9, 1.1)  # noqa: S311 (spreads renewals; not a secret)
            until = self.clock() + self.max_age * spread
            found = self._names.get(name)
            if found is not None:
                self._names[name] = (found[0], until)
            hashed = self._node_hashes.get(name)
            held = self._principals.get(hashed) if hashed is not None else None
            if hashed is not None and held is not None and held[0] is not None:
                self._principals[hashed] = (held[0], until)
        return dropped

    def renew_proxies(self, tokens: Mapping[str, str]) -> None:
        """Keep each cached proxy answer whose token is still that unrevoked proxy's."""
        until = self.clock() + self.max_age
        for hashed, (principal, _until) in list(self._principals.items()):
            if principal is None or principal.kind != "proxy":
                continue
            if tokens.get(principal.name) == hashed:
                self._principals[hashed] = (principal, until)

    def forget_changed(
        self, names: Iterable[tuple[str, str | None]], proxies: Iterable[str]
    ) -> None:
        """After another process changed these names' credentials (each with its token's
        hash now, if any) or revoked these proxies."""
        for name, hashed in names:
            self.forget_name(name, hashed)
        gone = set(proxies)
        for proxy in gone:
            self._number(f"proxy:{proxy}")
        if gone:
            stale = [
                hashed
                for hashed, (principal, _until) in self._principals.items()
                if principal is not None and principal.kind == "proxy" and principal.name in gone
            ]
            for hashed in stale:
                del self._principals[hashed]

    def _number(self, key: str) -> None:
        self._generation += 1
        if len(self._forgotten) >= _MAX_ENTRIES:  # start over: every older lookup is stale
            self._forgotten.clear()
            self._forgotten_all = self._generation
        self._forgotten[key] = self._generation

    def _unchanged(self, key: str, since: int) -> bool:
        """Nothing about `key` was forgotten after the forget numbered `since`."""
        return self._forgotten_all <= since and self._forgotten.get(key, 0) <= since

    def _keep(
        self, cache: dict[str, tuple[object, float]], key: str, value: object, lasting: bool
    ) -> None:
        if len(cache) >= _MAX_ENTRIES:
            cache.clear()
        cache[key] = (value, self.clock() + (self.max_age if lasting else self.ttl))

    async def principal(self, bearer: Bearer) -> Principal | None:
        """Whose token this is (None: no node's or proxy's). An unknown token from an
        address out of failed-auth budget is answered 429 before the database is asked."""
        if bearer.hashed is None:
            return None
        known, principal = self.cached_principal(bearer.hashed)
        if known:
            return principal
        self.throttle.failures.check(bearer.address)
        hashed, generation = bearer.hashed, self._generation

        def work() -> Principal | None:
            with self.sessions() as session:
                return db.principal_of(session, hashed)

        principal = await anyio.to_thread.run_sync(work)
        if principal is None:
            self.remember_principal(hashed, principal)  # kept for ttl only anyway
        else:
            key = principal.name if principal.kind == "node" else f"proxy:{principal.name}"
            self.remember_principal(hashed, principal, self._unchanged(key, generation))
        return principal

    async def state(self, name: str) -> NameState:
        cached = self.cached_state(name)
        if cached is not None:
            return cached
        generation = self._generation

        def work() -> NameState:
            with self.sessions() as session:
                return db.name_state(session, name)

        state = await anyio.to_thread.run_sync(work)
        self.remember(name, state, self._unchanged(name, generation))
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
        legacy = self.legacy_ok(bearer)
        problem = decide(self.mode, node_name, state, principal, legacy, bearer.hashed)
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
        self.forget_name(info.nodeName)

    def refuse(self, bearer: Bearer, problem: Unauthorized | Forbidden) -> None:
        self.throttle.failures.take(bearer.address)
        raise problem


def decide(
    mode: NodeAuth,
    node_name: str,
    state: NameState,
    principal: Principal | None,
    legacy_ok: bool,
    bearer_hash: str | None = None,
) -> Unauthorized | Forbidden | None:
    """The write rule of docs/security.md: None when allowed, else the refusal.

    The legacy rule (migrate mode) comes before the node rule, so a node credential that is
    also the agent token shuts off no legacy node. Whoever is not entitled to know about the
    name (no credential, another's) gets the same refusal whether it is enrolled, revoked
    or free; only the revoked credential's holder is told "revoked".
    """
    own = principal is not None and (
        (principal.kind == "node" and principal.name == node_name)
        or (principal.kind == "proxy" and principal.name == state.proxy)
    )
    if state.binding is Binding.REVOKED:
        proxy = principal.name if principal is not None and principal.kind == "proxy" else None
        token = bearer_hash is not None and bearer_hash == state.revoked_hash
        if own or token or (proxy is not None and proxy == state.revoked_proxy):
            return Unauthorized(
                f"the credential of node {node_name!r} was revoked on the bin-manager: "
                "it may enrol again only with an admin's approval"
            )
    elif own:
        return None
    if mode is NodeAuth.MIGRATE and legacy_ok and state.binding is Binding.NONE:
        return None
    if principal is not None:
        return Forbidden(f"this credential ({principal.kind} {principal.name!r}) may not "
                         f"write about node {node_name!r}")  # fmt: skip
    return Unauthorized(
        f"no credential for node {node_name!r}: send its own node token (a new node "
        "enrols first: POST /api/v1/enrol, docs/security.md)"
    )
