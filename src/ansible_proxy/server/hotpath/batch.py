"""GET /bins: the sha256 every bin's node should run, in one answer with an ETag.

With no bin paused the answer depends only on the arch: it is built once per arch and
kept (with the pointers) in the PointerCache for its TTL, so a poll costs no database
query; a staged rollout makes it depend on whether the node's wave has started, still
from memory (one answer per combination); a paused bin makes the answer per node (what
that node last reported), from the database.
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
from ansible_proxy.server.db.queries import Pointer, RolloutRef
from ansible_proxy.server.db.withdrawn import withdrawn_by_bin
from ansible_proxy.server.hotpath.pointers import PointerCache
from ansible_proxy.server.inputs import check_arch, check_node_name, choose_arch

Withdrawn = dict[str, tuple[str, ...]]
_MAX_ANSWERS = 4096


@dataclass(frozen=True)
class BatchAnswer:
    """One node's answer: bin → sha256, its ETag and the JSON body."""

    bins: dict[str, str]
    etag: str
    body: bytes


@dataclass(frozen=True)
class Snapshot:
    pointers: dict[str, Pointer]
    shared: BatchAnswer | None  # the answer of every node, when no bin is paused nor staged
    withdrawn: Withdrawn = field(default_factory=dict)  # bin → withdrawn, for the latest
    arch: str = ""
    # Bins whose staged rollout answers per node (none paused): the node's answer depends
    # only on what each of them tells it, so one answer per such combination.
    staged: tuple[tuple[str, RolloutRef], ...] = ()
    answers: dict[tuple[str, ...], BatchAnswer] = field(default_factory=dict)

    def for_node(self, node_name: str | None) -> BatchAnswer | None:
        """This node's answer from memory; None when a paused bin needs the database."""
        if self.shared is not None:
            return self.shared
        if not self.staged or any(pointer.paused for pointer in self.pointers.values()):
            return None
        key = tuple(ref.sha_for(node_name) for _, ref in self.staged)
        found = self.answers.get(key)
        if found is None:
            bins = {name: p.sha256 for name, p in self.pointers.items() if p.sha256 is not None}
            withdrawn = dict(self.withdrawn)
            for (name, _), told in zip(self.staged, key, strict=True):
                bins[name] = told
                # A member told back its own previous release is not told it is withdrawn.
                withdrawn[name] = tuple(sha for sha in withdrawn.get(name, ()) if sha != told)
            found = build_answer(self.arch, bins, withdrawn)
            if len(self.answers) < _MAX_ANSWERS:  # a few per staged bin in practice
                self.answers[key] = found
        return found


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
        return Snapshot(pointers, None, withdrawn, arch)
    staged = tuple(
        (name, p.rollout)
        for name, p in sorted(pointers.items())
        if p.rollout is not None and p.rollout.answers(p.sha256) and p.rollout.per_node()
    )
    if staged:
        return Snapshot(pointers, None, withdrawn, arch, staged=staged)
    bins = {name: p.sha256 for name, p in pointers.items() if p.sha256 is not None}
    return Snapshot(pointers, build_answer(arch, bins, withdrawn), withdrawn, arch)


def _for_node(session: Session, arch: str, snap: Snapshot, node_name: str | None) -> BatchAnswer:
    node = queries.find_node(session, node_name) if node_name else None
    bins: dict[str, str] = {}
    withdrawn: Withdrawn = {}
    for name, pointer in snap.pointers.items():
        sha = pointer.sha_for(node_name)
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
        answer = cached.for_node(node_name) if isinstance(cached, Snapshot) else None
        if answer is not None:
            return answer

    def work() -> BatchAnswer:
        generation = cache.generation  # before reading (hotpath/pointers.py, put)
        with sessions() as session:
            wanted = chosen
            if wanted is None:
                node = queries.find_node(session, node_name) if node_name else None
                wanted = choose_arch(None, node.cpu_arch if node else None)
            cached = cache.fresh_batch(wanted)
            snap = cached if isinstance(cached, Snapshot) else None
            if snap is None:
                loaded = cache.started.attach_all(session, queries.load_pointers(session, wanted))
                snap = _snapshot(session, wanted, loaded)
                cache.put_batch(wanted, snap, generation)
            return snap.for_node(node_name) or _for_node(session, wanted, snap, node_name)

    return await anyio.to_thread.run_sync(work)


def matches(etag: str, if_none_match: str | None) -> bool:
    """True when If-None-Match names `etag` (or is `*`); weak validators compare too."""
    if not if_none_match:
        return False
    tags = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
    return etag in tags or "*" in tags
