"""GET /bins: the sha256 every bin's node should run, in one answer with an ETag.

With no bin paused the answer depends only on the arch: it is built once per arch and
kept (with the pointers) in the PointerCache for its TTL, so a poll costs no database
query; a paused bin makes the answer per node (what that node last reported).
When a pin left releases behind (db/withdrawn.py) the answer lists them under
`withdrawn`; without any, answer and ETag are those of the original batch poll.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

import anyio.to_thread
from sqlalchemy.orm import Session, sessionmaker

from ansible_proxy.protocol import CODE_OK, MESSAGE_OK
from ansible_proxy.server.db import queries
from ansible_proxy.server.db.queries import Pointer
from ansible_proxy.server.db.withdrawn import withdrawn_by_bin
from ansible_proxy.server.hotpath.pointers import PointerCache
from ansible_proxy.server.inputs import check_arch, check_node_name, choose_arch

Withdrawn = dict[str, tuple[str, ...]]


@dataclass(frozen=True)
class BatchAnswer:
    """One node's answer: bin → sha256, its ETag and the JSON body."""

    bins: dict[str, str]
    etag: str
    body: bytes


@dataclass(frozen=True)
class Snapshot:
    pointers: dict[str, Pointer]
    shared: BatchAnswer | None  # the answer of every node, when no bin is paused
    withdrawn: Withdrawn = field(default_factory=dict)  # bin → withdrawn, for the latest


def build_answer(
    arch: str, bins: dict[str, str], withdrawn: Withdrawn | None = None
) -> BatchAnswer:
    """The envelope `{"data": {"arch", "bins"[, "withdrawn"]}}` and an ETag that hashes both.

    `withdrawn` lists only bins with some; with none the answer and its ETag (a hash of
    `bins`) are exactly the original batch poll's.
    """
    ordered = dict(sorted(bins.items()))
    pulled = {name: list(shas) for name, shas in sorted((withdrawn or {}).items()) if shas}
    data: dict[str, object] = {"arch": arch, "bins": ordered}
    hashed: object = ordered
    if pulled:
        data["withdrawn"] = pulled
        hashed = {"bins": ordered, "withdrawn": pulled}  # never equal to a bins map
    digest = hashlib.sha256(json.dumps(hashed, separators=(",", ":")).encode()).hexdigest()
    body = {"code": CODE_OK, "message": MESSAGE_OK, "data": data}
    return BatchAnswer(ordered, f'"{digest[:40]}"', json.dumps(body).encode())


def _snapshot(session: Session, arch: str, pointers: dict[str, Pointer]) -> Snapshot:
    latest = {p.bin_id: p.sha256 for p in pointers.values() if p.sha256 is not None}
    by_id = withdrawn_by_bin(session, arch, latest)
    withdrawn = {name: by_id[p.bin_id] for name, p in pointers.items() if p.bin_id in by_id}
    if any(pointer.paused for pointer in pointers.values()):
        return Snapshot(pointers, None, withdrawn)
    bins = {name: p.sha256 for name, p in pointers.items() if p.sha256 is not None}
    return Snapshot(pointers, build_answer(arch, bins, withdrawn), withdrawn)


def _for_node(session: Session, arch: str, snap: Snapshot, node_name: str | None) -> BatchAnswer:
    node = queries.find_node(session, node_name) if node_name else None
    bins: dict[str, str] = {}
    withdrawn: Withdrawn = {}
    for name, pointer in snap.pointers.items():
        sha = pointer.sha256
        if pointer.paused and sha is not None:
            sha = queries.paused_target(session, pointer, node)
        if sha is not None:
            bins[name] = sha
            # A paused node told to stay on a withdrawn release is not told it is withdrawn.
            withdrawn[name] = tuple(other for other in snap.withdrawn.get(name, ()) if other != sha)
    return build_answer(arch, bins, withdrawn)


async def batch_for_node(
    sessions: sessionmaker[Session], cache: PointerCache, arch: str | None, node_name: str | None
) -> BatchAnswer:
    """What GET /bins answers this node: from the cache when it cannot depend on the node."""
    if node_name:
        check_node_name(node_name)
    chosen = check_arch(arch) if arch and arch.strip() else None
    if chosen is not None:
        cached = cache.get_batch(chosen)
        if isinstance(cached, Snapshot) and cached.shared is not None:
            return cached.shared

    def work() -> BatchAnswer:
        with sessions() as session:
            wanted = chosen
            if wanted is None:
                node = queries.find_node(session, node_name) if node_name else None
                wanted = choose_arch(None, node.cpu_arch if node else None)
            cached = cache.get_batch(wanted)
            snap = cached if isinstance(cached, Snapshot) else None
            if snap is None:
                snap = _snapshot(session, wanted, queries.load_pointers(session, wanted))
                cache.put_batch(wanted, snap)
            if snap.shared is not None:
                return snap.shared
            return _for_node(session, wanted, snap, node_name)

    return await anyio.to_thread.run_sync(work)


def matches(etag: str, if_none_match: str | None) -> bool:
    """True when If-None-Match names `etag` (or is `*`); weak validators compare too."""
    if not if_none_match:
        return False
    tags = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
    return etag in tags or "*" in tags
