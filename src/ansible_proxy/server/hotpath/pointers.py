"""Where a node should be: GET /bins, the latest downloads and the sha256 pointer.

Every agent polls each bin every minute, and with its arch given (as agents send it) and
the bin not paused the answer depends only on (bin, arch): that pointer is cached for
`ttl` seconds and dropped at once by any publish, pin, pause or resume in this process;
the TTL bounds how long another server sharing the database may answer an older sha.
With each pointer the cache keeps the bin's withdrawn releases for that arch (the ones
published after the latest: db/withdrawn.py), read in the same refresh.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
from sqlalchemy.orm import Session, sessionmaker

from ansible_proxy.server.db import queries
from ansible_proxy.server.db.queries import Pointer
from ansible_proxy.server.db.withdrawn import withdrawn_of
from ansible_proxy.server.hotpath.waves import StartedWaves
from ansible_proxy.server.inputs import check_arch, check_node_name, choose_arch
from ansible_proxy.server.problems import NotFound

DEFAULT_TTL = 1.0
_MAX_ENTRIES = 10_000


@dataclass
class _Entry:
    fresh_until: float
    pointer: Pointer | None
    withdrawn: tuple[str, ...] = ()
    refreshing: bool = False


@dataclass
class _Batch:
    fresh_until: float
    value: object
    refreshing: bool = False


@dataclass(frozen=True)
class Target:
    """The release one node should run, and the withdrawn ones (never `sha256` itself)."""

    bin_id: int
    arch: str
    sha256: str
    withdrawn: tuple[str, ...] = ()


class PointerCache:
    """(bin, arch) → Pointer (or None for an unknown bin), each fresh for `ttl` seconds.

    When an entry goes stale one request refreshes it from the database while the others
    still get the stale entry (for at most another `ttl`), so that 64 pollers do not all
    hit the database in the same instant.
    """

    def __init__(self, ttl: float = DEFAULT_TTL, clock: Callable[[], float] = time.monotonic):
        self.ttl = ttl
        self.clock = clock
        self._entries: dict[tuple[str, str], _Entry] = {}
        self._batches: dict[str, _Batch] = {}
        # Bumped by clear(): a refresh that read the database before a change committed
        # must not put its answer back after the change cleared the cache (stale for a TTL).
        self.generation = 0
        self.started = StartedWaves()  # staged rollouts' started members (kept across clear())

    def get(self, name: str, arch: str) -> tuple[bool, Pointer | None]:
        """(hit, pointer): a miss is (False, None) and asks the caller to refresh."""
        hit, pointer, _ = self.lookup(name, arch)
        return hit, pointer

    def lookup(self, name: str, arch: str) -> tuple[bool, Pointer | None, tuple[str, ...]]:
        """(hit, pointer, withdrawn), read from one entry; a miss asks for a refresh."""
        entry = self._entries.get((name, arch))
        if entry is None:
            return False, None, ()
        if self._usable(entry):
            return True, entry.pointer, entry.withdrawn
        entry.refreshing = True
        return False, None, ()

    def peek(self, name: str, arch: str) -> tuple[Pointer, tuple[str, ...]] | None:
        """(pointer, withdrawn) as lookup() would answer it, else None; never starts a
        refresh (the fast path's: a stale entry no route is refreshing goes to the route)."""
        entry = self._entries.get((name, arch))
        if entry is None or entry.pointer is None or not self._usable(entry):
            return None
        return entry.pointer, entry.withdrawn

    def _usable(self, entry: _Entry | _Batch) -> bool:
        """Fresh, or stale for less than another ttl while a refresh is under way."""
        now = self.clock()
        return now < entry.fresh_until or (entry.refreshing and now < entry.fresh_until + self.ttl)

    def put(
        self,
        name: str,
        arch: str,
        pointer: Pointer | None,
        withdrawn: tuple[str, ...] = (),
        generation: int | None = None,
    ) -> None:
        """Cache a refreshed entry, unless the cache was cleared since `generation` (the
        value of `self.generation` before the refresh read the database)."""
        if generation is not None and generation != self.generation:
            return
        if len(self._entries) >= _MAX_ENTRIES:
            self._entries.clear()
        self._entries[(name, arch)] = _Entry(self.clock() + self.ttl, pointer, withdrawn)

    def is_latest(self, name: str, target: Target) -> bool:
        """True when the cache knows `target` is the (unpaused) latest of its bin and arch."""
        hit, pointer = self.get(name, target.arch)
        return (
            hit and pointer is not None and not pointer.paused and pointer.sha256 == target.sha256
        )

    def get_batch(self, arch: str) -> object | None:
        """What GET /bins built for `arch` (hotpath/batch.py), as lookup() answers a
        pointer: None asks the caller to refresh it (the others get the stale one)."""
        found = self._batches.get(arch)
        if found is None:
            return None
        if self._usable(found):
            return found.value
        found.refreshing = True
        return None

    def peek_batch(self, arch: str) -> object | None:
        """As get_batch(), but never starts a refresh (the fast path's)."""
        found = self._batches.get(arch)
        return found.value if found is not None and self._usable(found) else None

    def fresh_batch(self, arch: str) -> object | None:
        """Only a fresh one (the refresher's: another may have put it meanwhile)."""
        found = self._batches.get(arch)
        return found.value if found is not None and self.clock() < found.fresh_until else None

    def put_batch(self, arch: str, value: object, generation: int | None = None) -> None:
        if generation is not None and generation != self.generation:
            return  # read before a change that cleared the cache since: not kept
        self._batches[arch] = _Batch(self.clock() + self.ttl, value)

    def clear(self) -> None:
        self.generation += 1
        self._entries.clear()
        self._batches.clear()


def latest_data(sha256: str, withdrawn: tuple[str, ...]) -> dict[str, Any]:
    """The `data` of GET /bins/{bin}: `withdrawn` only when there are some (else as before)."""
    data: dict[str, Any] = {"sha256": sha256, "version": "latest"}
    if withdrawn:
        data["withdrawn"] = list(withdrawn)
    return data


def _answer(
    name: str, arch: str, pointer: Pointer | None, sha: str | None, withdrawn: tuple[str, ...]
) -> Target:
    if pointer is None:
        raise NotFound(f"unknown bin {name!r}: nothing was ever published under that name")
    if sha is None:
        raise NotFound(f"bin {name!r} has no release for {arch}")
    # While paused a node may be told to stay on a release a later pin withdrew: it is
    # told to run it, so it is not also told it is withdrawn.
    kept = tuple(other for other in withdrawn if other != sha)
    return Target(bin_id=pointer.bin_id, arch=arch, sha256=sha, withdrawn=kept)


async def resolve(
    sessions: sessionmaker[Session],
    cache: PointerCache,
    name: str,
    arch: str | None,
    node_name: str | None,
) -> Target:
    """The target of this node; from the cache unless the bin is paused (a staged rollout's
    answer per node is in the cached pointer: hotpath/waves.py)."""
    if node_name:
        check_node_name(node_name)
    if arch and arch.strip():
        chosen = check_arch(arch)
        hit, pointer, withdrawn = cache.lookup(name, chosen)
        if hit and (pointer is None or not pointer.paused):
            sha = pointer.sha_for(node_name) if pointer else None
            return _answer(name, chosen, pointer, sha, withdrawn)

    def work() -> Target:
        generation = cache.generation  # before reading: a change committed meanwhile wins
        with sessions() as session:
            node = queries.find_node(session, node_name) if node_name else None
            chosen = choose_arch(arch, node.cpu_arch if node else None)
            pointer = cache.started.attach(session, queries.load_pointer(session, name, chosen))
            withdrawn = (
                withdrawn_of(session, pointer.bin_id, chosen, pointer.sha256) if pointer else ()
            )
            cache.put(name, chosen, pointer, withdrawn, generation)
            sha = pointer.sha_for(node_name) if pointer else None
            if pointer is not None and pointer.paused:
                sha = queries.paused_target(session, pointer, node)
            return _answer(name, chosen, pointer, sha, withdrawn)

    return await anyio.to_thread.run_sync(work)
