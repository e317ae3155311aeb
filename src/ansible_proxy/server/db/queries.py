"""What the agent and admin routes do to the database: one function per operation.

Every function takes the session and the current time from its caller; none commits,
so a route's work is one transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Select, delete, func, or_, select, update
from sqlalchemy.orm import Session

from ansible_proxy.names import format_labels
from ansible_proxy.protocol import NodeInfo
from ansible_proxy.server.db.heard import hear, reading
from ansible_proxy.server.db.holds import record_holds
from ansible_proxy.server.db.models import (
    Bin,
    BinReportRow,
    Event,
    Latest,
    Node,
    NodeBin,
    Release,
    Rollout,
    Signature,
)
from ansible_proxy.server.problems import NotFound
from ansible_proxy.server.storage.artifacts import StoredArtifact


def find_bin(session: Session, name: str) -> Bin | None:
    """The bin named `name`; remembered for the session (a batch of writes asks often)."""
    known: dict[str, Bin] = session.info.setdefault("bins_by_name", {})
    found = known.get(name)
    if found is None:
        found = session.scalars(select(Bin).where(Bin.name == name)).first()
        if found is not None:
            known[name] = found
    return found


def require_bin(session: Session, name: str) -> Bin:
    found = find_bin(session, name)
    if found is None:
        raise NotFound(f"unknown bin {name!r}: nothing was ever published under that name")
    return found


def find_node(session: Session, name: str) -> Node | None:
    return session.scalars(select(Node).where(Node.name == name)).first()


def require_node(session: Session, name: str) -> Node:
    found = find_node(session, name)
    if found is None:
        raise NotFound(f"unknown node {name!r}: it must POST /api/v1/keepalive first")
    return found


def register_node(session: Session, info: NodeInfo, now: datetime) -> Node:
    """Create the node or update what it tells about itself; refresh last seen."""
    node = find_node(session, info.nodeName)
    if node is None:
        node = Node(name=info.nodeName, first_seen=now)
        session.add(node)
    node.cpu_arch = info.cpuArch
    node.os_release = info.osRelease
    node.agent_version = info.binProxyVersion
    node.labels = format_labels(info.labels) if info.labels else None
    node.last_seen = now
    hear(node)
    record_holds(session, info.nodeName, info.held, now)
    session.flush()
    return node


def touch_node(node: Node, now: datetime) -> None:
    node.last_seen = now
    hear(node)


def touch_node_named(session: Session, name: str, now: datetime) -> bool:
    """Refresh last seen in one statement; False when no node has that name."""
    result = session.execute(
        update(Node).where(Node.name == name).values(last_seen=now, heard=reading())
    )
    return bool(getattr(result, "rowcount", 0))


def latest_row(session: Session, bin_: Bin, arch: str) -> Latest | None:
    return session.get(Latest, (bin_.id, arch))


def release_by_id(session: Session, release_id: int | None) -> Release | None:
    return None if release_id is None else session.get(Release, release_id)


def find_release(session: Session, bin_: Bin, sha256: str, arch: str | None) -> Release | None:
    """The release of `bin_` with that content; for `arch` when given, else any arch."""
    query = select(Release).where(Release.bin_id == bin_.id, Release.sha256 == sha256)
    if arch is not None:
        query = query.where(Release.arch == arch)
    return session.scalars(query.order_by(Release.id)).first()


def require_release(session: Session, bin_: Bin, sha256: str, arch: str) -> Release:
    """The `arch` release of `bin_` with that content; NotFound naming what is missing."""
    found = find_release(session, bin_, sha256, arch)
    if found is None:
        raise NotFound(f"bin {bin_.name!r} has no {arch} release with sha256 {sha256}")
    return found


# A staged rollout (server/rollouts/) answers nodes while it is in one of these states and
# was not reverted: the nodes of its started waves its release, the others the previous.
# Reverted, it still answers the members a signed host could not move back to the previous
# release: each its own previous one (rollouts/reverts.py).
ROLLOUT_ANSWERING = ("rolling", "halted")


@dataclass(frozen=True)
class RolloutRef:
    """The staged rollout of a pointer's latest release: who is told it, who the previous.

    `started` (the members of the started waves) is filled in by hotpath/waves.py, which
    keeps it per (id, revision): a revision changes with every promotion, halt or resume.
    A reverted rollout's `back` (node → the release it ran before) is filled in likewise.
    """

    id: int
    revision: int
    release_sha: str
    previous_sha: str
    wave: int
    started: frozenset[str] = frozenset()
    reverted: bool = False
    back: Mapping[str, str] = field(default_factory=dict)

    def answers(self, latest: str | None) -> bool:
        """True when the rollout decides what nodes are told while `latest` is the latest:
        its release while rolling or halted; the previous release once reverted."""
        return latest == (self.previous_sha if self.reverted else self.release_sha)

    def sha_for(self, node_name: str | None) -> str:
        if self.reverted:
            return self.back.get(node_name or "", self.previous_sha)
        return self.release_sha if node_name in self.started else self.previous_sha

    def per_node(self) -> bool:
        """True when nodes are not all told the same: rolling or halted, or reverted with
        members told back their own previous release."""
        return not self.reverted or bool(self.back)


@dataclass(frozen=True)
class Pointer:
    """A bin's latest release for one arch, as one query reads it (None: no release)."""

    bin_id: int
    paused: bool
    sha256: str | None
    paused_release_id: int | None
    rollout: RolloutRef | None = None

    def sha_for(self, node_name: str | None) -> str | None:
        """What this node is told (unpaused): the latest, or its rollout's answer."""
        rollout = self.rollout
        if rollout is not None and rollout.answers(self.sha256):
            return rollout.sha_for(node_name)
        return self.sha256


def _pointer_query(arch: str) -> Select[*tuple[Any, ...]]:
    answering = (
        (Rollout.bin_id == Bin.id) & (Rollout.arch == arch) & Rollout.state.in_(ROLLOUT_ANSWERING)
    )
    return (
        select(
            Bin.name,
            Bin.id,
            Bin.paused,
            Release.sha256,
            Latest.paused_release_id,
            Rollout.id,
            Rollout.revision,
            Rollout.release_sha,
            Rollout.previous_sha,
            Rollout.wave,
            Rollout.reverted,
        )
        .select_from(Bin)
        .outerjoin(Latest, (Latest.bin_id == Bin.id) & (Latest.arch == arch))
        .outerjoin(Release, Release.id == Latest.release_id)
        .outerjoin(Rollout, answering)
        .order_by(Bin.id, Rollout.id)  # the newest rollout of a bin last (there is one)
    )


def _pointer(row: Any) -> Pointer:
    rollout = None
    if row[5] is not None:
        rollout = RolloutRef(row[5], row[6], row[7], row[8], row[9], reverted=bool(row[10]))
    return Pointer(
        bin_id=row[1], paused=row[2], sha256=row[3], paused_release_id=row[4], rollout=rollout
    )


def load_pointer(session: Session, name: str, arch: str) -> Pointer | None:
    """The bin's pointer for `arch` in one query; None when the bin is unknown."""
    rows = session.execute(_pointer_query(arch).where(Bin.name == name)).all()
    return _pointer(rows[-1]) if rows else None


def load_pointers(session: Session, arch: str) -> dict[str, Pointer]:
    """Every bin's pointer for `arch` in one query (sha256 None: no release for `arch`)."""
    return {row[0]: _pointer(row) for row in session.execute(_pointer_query(arch)).all()}


def paused_target(session: Session, pointer: Pointer, node: Node | None) -> str | None:
    """While paused: what the node last reported running when that is a published release
    of this bin for the pointer's arch, else the latest when paused.

    A report is only the node's word: it must never make the node be told content that
    is no release of this bin and arch (issue 14: a forged report downgraded a node).
    """
    frozen = release_by_id(session, pointer.paused_release_id)
    if frozen is None:
        return None
    if node is not None:
        reported = session.get(NodeBin, (node.id, pointer.bin_id))
        if reported is not None and reported.sha256 != frozen.sha256:
            release = session.scalar(
                select(Release.id).where(
                    Release.bin_id == pointer.bin_id,
                    Release.sha256 == reported.sha256,
                    Release.arch == frozen.arch,
                )
            )
            if release is not None:
                return reported.sha256
    return frozen.sha256


def release_of(session: Session, bin_id: int, sha256: str, arch: str | None) -> Release | None:
    """A release of the bin with that content, preferring `arch`."""
    rows = session.scalars(
        select(Release).where(Release.bin_id == bin_id, Release.sha256 == sha256)
    ).all()
    preferred = [release for release in rows if release.arch == arch]
    candidates = preferred or list(rows)
    return candidates[0] if candidates else None


def publish(
    session: Session, name: str, arch: str, artifact: StoredArtifact, now: datetime
) -> Release:
    """Record a stored artifact as a release and make it the latest for `arch`."""
    bin_ = find_bin(session, name)
    if bin_ is None:
        bin_ = Bin(name=name, paused=False, created_at=now)
        session.add(bin_)
        session.flush()
    release = find_release(session, bin_, artifact.sha256, arch)
    if release is None:
        release = Release(
            bin_id=bin_.id, arch=arch, sha256=artifact.sha256, size=artifact.size, published_at=now
        )
        session.add(release)
        session.flush()
    point_latest(session, bin_, arch, release, now)
    session.add(Event(at=now, kind="publish", bin_name=name, arch=arch, sha256=artifact.sha256))
    return release


def pin(session: Session, bin_: Bin, arch: str, sha256: str, now: datetime) -> Release:
    """Make an earlier release the latest again (fleet-wide rollback)."""
    release = find_release(session, bin_, sha256, arch)
    if release is None:
        raise NotFound(f"bin {bin_.name!r} has no {arch} release with sha256 {sha256}")
    point_latest(session, bin_, arch, release, now)
    session.add(Event(at=now, kind="pin", bin_name=bin_.name, arch=arch, sha256=sha256))
    return release


def point_latest(session: Session, bin_: Bin, arch: str, release: Release, now: datetime) -> None:
    """Make `release` the latest of `bin_` for `arch` (a publish, a pin, a revert)."""
    pointer = latest_row(session, bin_, arch)
    if pointer is None:
        session.add(Latest(bin_id=bin_.id, arch=arch, release_id=release.id, updated_at=now))
    else:
        pointer.release_id = release.id
        pointer.updated_at = now
    session.flush()


def set_paused(session: Session, bin_: Bin, paused: bool, now: datetime) -> None:
    """Pause (freeze each arch's latest as it is now) or resume a bin's rollout."""
    if bin_.paused != paused:
        pointers = session.scalars(select(Latest).where(Latest.bin_id == bin_.id))
        for pointer in pointers:
            pointer.paused_release_id = pointer.release_id if paused else None
        bin_.paused = paused
    kind = "pause" if paused else "resume"
    session.add(Event(at=now, kind=kind, bin_name=bin_.name, arch=None, sha256=None))
    session.flush()


def releases_with(session: Session, bin_: Bin, sha256: str) -> list[Release]:
    """Every release of `bin_` with that content (one per arch at most)."""
    query = select(Release).where(Release.bin_id == bin_.id, Release.sha256 == sha256)
    return list(session.scalars(query.order_by(Release.arch)))


@dataclass(frozen=True)
class ReleaseUse:
    """Who still needs a release: the pointers to it and the nodes that run its content."""

    latest: bool  # the latest of its bin and arch
    paused: bool  # what a paused rollout answers nodes that have not reported
    node_count: int  # nodes whose last report for the bin names its sha256
    node_names: tuple[str, ...]  # the first few of them, by name


def release_use(session: Session, release: Release, names: int) -> ReleaseUse:
    """What still points at `release` or runs its content; `names` node names at most."""
    pointers = session.execute(
        select(Latest.release_id, Latest.paused_release_id).where(
            or_(Latest.release_id == release.id, Latest.paused_release_id == release.id)
        )
    ).all()
    running = (NodeBin.bin_id == release.bin_id) & (NodeBin.sha256 == release.sha256)
    count = session.scalar(select(func.count()).select_from(NodeBin).where(running)) or 0
    shown = session.scalars(
        select(Node.name)
        .join(NodeBin, NodeBin.node_id == Node.id)
        .where(running)
        .order_by(Node.name)
        .limit(names)
    )
    return ReleaseUse(
        latest=any(row[0] == release.id for row in pointers),
        paused=any(row[1] == release.id for row in pointers),
        node_count=count,
        node_names=tuple(shown),
    )


def delete_release(session: Session, bin_: Bin, release: Release, now: datetime) -> None:
    """Remove the release row and its signatures (its file is the caller's, after the commit)."""
    session.execute(delete(Signature).where(Signature.release_id == release.id))
    session.delete(release)
    session.add(
        Event(at=now, kind="delete", bin_name=bin_.name, arch=release.arch, sha256=release.sha256)
    )
    session.flush()


def content_in_use(session: Session, sha256: str) -> bool:
    """True while any release, of any bin and arch, has that content."""
    found = session.scalar(select(Release.id).where(Release.sha256 == sha256).limit(1))
    return found is not None


def report_bin(
    session: Session, bin_: Bin, node: Node, sha256: str, version: str, now: datetime
) -> None:
    """Record what a node now runs (current state and history)."""
    current = session.get(NodeBin, (node.id, bin_.id))
    if current is None:
        session.add(
            NodeBin(
                node_id=node.id, bin_id=bin_.id, sha256=sha256, version=version, reported_at=now
            )
        )
    else:
        current.sha256 = sha256
        current.version = version
        current.reported_at = now
    session.add(
        BinReportRow(
            node_id=node.id, bin_id=bin_.id, sha256=sha256, version=version, reported_at=now
        )
    )
    touch_node(node, now)
