"""Every change to what nodes are told: publish, pin, pause, resume, delete a release.

Each function makes its change, commits it and only then drops the in-memory answers
(hotpath/pointers.py) in `_commit`, the one place that does both, so no caller can
forget the cache or clear it before the commit. `pin` and `set_paused` take the bin row
the route looked up, so that each route keeps the order of its own input checks.

Deleting a release is refused while anything still answers it or runs it; then the row
goes, then (when no other release has that content) the file. Order, for crash safety:
the row's deletion commits first and the file goes after, so a crash in between leaves
an orphan file — never served, since no row points at it — and never a release row
without its file.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from ansible_proxy.server.db import queries
from ansible_proxy.server.db.models import Bin, Release
from ansible_proxy.server.db.signatures import NewSignature
from ansible_proxy.server.hotpath.pointers import PointerCache
from ansible_proxy.server.problems import BadRequest, Conflict, NotFound
from ansible_proxy.server.rollouts import lifecycle, stored
from ansible_proxy.server.rollouts.context import Context
from ansible_proxy.server.rollouts.policy import IMMEDIATE
from ansible_proxy.server.services import signatures
from ansible_proxy.server.storage.artifacts import ArtifactStore, StoredArtifact

log = logging.getLogger(__name__)

NODE_NAMES_SHOWN = 5
# Without a server's rollout settings (unit tests, tools): every release goes to all at once.
IMMEDIATE_CONTEXT = Context(default_policy=IMMEDIATE, silent_seconds=180.0)


@dataclass(frozen=True)
class DeletedRelease:
    """What a delete did. `artifact`: removed, shared (another release has the content),
    missing (the file was already gone) or left (it could not be removed: logged)."""

    bin_name: str
    arch: str
    sha256: str
    size: int
    artifact: str


def _commit(session: Session, pointers: PointerCache) -> None:
    """Commit the change, then drop every cached answer it may have made wrong."""
    session.commit()
    pointers.clear()


def publish(
    session: Session,
    store: ArtifactStore,
    pointers: PointerCache,
    name: str,
    arch: str,
    artifact: StoredArtifact,
    now: datetime,
    ctx: Context = IMMEDIATE_CONTEXT,
    signed: NewSignature | None = None,
) -> Release:
    """Record a stored upload as the latest `arch` release of `name` (the bin is made if new),
    with its checked signature if any (services/signatures.py), and start its staged
    rollout when the bin's policy stages it (server/rollouts/)."""
    with store.adding():  # a concurrent delete of the same content waits for the commit
        if not store.has(artifact.sha256):
            raise Conflict("a delete of the same content removed the upload: publish again")
        known = queries.find_bin(session, name)
        previous = None
        if known is not None:
            lifecycle.refuse_bad(queries.find_release(session, known, artifact.sha256, arch), name)
            row = queries.latest_row(session, known, arch)
            latest = queries.release_by_id(session, row.release_id) if row else None
            previous = latest.sha256 if latest else None
        release = queries.publish(session, name, arch, artifact, now)
        if signed is not None:
            signatures.record(session, name, release, signed, now)
        bin_ = queries.require_bin(session, name)
        lifecycle.on_publish(session, ctx, bin_, arch, release, previous, now)
        _commit(session, pointers)
    return release


def pin(
    session: Session,
    pointers: PointerCache,
    bin_: Bin,
    arch: str,
    sha256: str,
    now: datetime,
    ctx: Context = IMMEDIATE_CONTEXT,
    signed: NewSignature | None = None,
) -> Release:
    """Make an earlier `arch` release of `bin_` the latest again (fleet-wide rollback): for
    every node at once, ending any staged rollout, re-enabling a release marked bad; with
    its checked pin statement if any."""
    release = queries.pin(session, bin_, arch, sha256, now)
    if signed is not None:
        signatures.record(session, bin_.name, release, signed, now)
    lifecycle.on_pin(session, ctx, bin_, arch, release, now)
    _commit(session, pointers)
    return release


def set_paused(
    session: Session, pointers: PointerCache, bin_: Bin, paused: bool, now: datetime
) -> None:
    """Pause (freeze what each node is told) or resume the rollout of `bin_`."""
    queries.set_paused(session, bin_, paused, now)
    _commit(session, pointers)


def delete_release(
    session: Session,
    store: ArtifactStore,
    pointers: PointerCache,
    name: str,
    sha256: str,
    arch: str | None,
    now: datetime,
) -> DeletedRelease:
    """Delete the release of `name` with that content (for `arch`, needed when several have it)."""
    bin_ = queries.require_bin(session, name)
    release = _the_release(session, bin_, sha256, arch)
    reasons = _refusals(bin_, release, queries.release_use(session, release, NODE_NAMES_SHOWN))
    pointer = queries.latest_row(session, bin_, release.arch)
    if pointer is not None and release.id > pointer.release_id:
        # A withdrawn release: agents are told its sha256 so that they never keep or roll
        # back to it; deleting it would take it off that list while the pin is in force.
        reasons.append(
            "it is withdrawn by the pin in force (agents are told never to roll back to it): "
            f"publish a new {bin_.name} release first, which ends the pin"
        )
    rollout = stored.answering(session, bin_.id, release.arch)
    if rollout is not None and sha256 in (rollout.release_sha, rollout.previous_sha):
        reasons.append(
            "the staged rollout in progress still answers it to nodes: "
            f"let it complete, or `bin-manager rollout abort {bin_.name}` first"
        )
    if reasons:
        raise Conflict(
            f"cannot delete release {sha256} of {name} ({release.arch}): " + "; ".join(reasons)
        )
    release_arch, size = release.arch, release.size  # the row is gone after the commit
    queries.delete_release(session, bin_, release, now)
    _commit(session, pointers)  # first the row: a crash after this leaves an orphan file
    try:
        with store.removing():
            if queries.content_in_use(session, sha256):
                artifact = "shared"
            else:
                artifact = "removed" if store.remove(sha256) else "missing"
    except (OSError, SQLAlchemyError) as exc:  # the delete is committed: report, never 500
        log.warning("deleted release %s of %s; its artifact stays: %s", sha256, name, exc)
        artifact = "left"
    log.info("deleted release %s of %s (%s); artifact %s", sha256, name, release_arch, artifact)
    return DeletedRelease(name, release_arch, sha256, size, artifact)


def _the_release(session: Session, bin_: Bin, sha256: str, arch: str | None) -> Release:
    found = queries.releases_with(session, bin_, sha256)
    if arch is not None:
        found = [release for release in found if release.arch == arch]
    if not found:
        which = f"{arch} release" if arch else "release"
        raise NotFound(f"bin {bin_.name!r} has no {which} with sha256 {sha256}")
    if len(found) > 1:
        arches = " and ".join(release.arch for release in found)
        raise BadRequest(
            f"bin {bin_.name!r} has a release with sha256 {sha256} for {arches}: "
            "say which arch (?arch=, --arch)"
        )
    return found[0]


def _refusals(bin_: Bin, release: Release, use: queries.ReleaseUse) -> list[str]:
    """Why the release may not go, one phrase per reason with what to do first."""
    reasons = []
    if use.latest:
        reasons.append(
            f"it is the latest {release.arch} release (published or pinned): "
            "pin another release first"
        )
    if use.paused:
        reasons.append(
            "the paused rollout still answers it to nodes that have not reported: "
            f"resume {bin_.name} first"
        )
    if use.node_count:
        names = ", ".join(use.node_names)
        if use.node_count > len(use.node_names):
            names += f" and {use.node_count - len(use.node_names)} more"
        nodes = "1 node" if use.node_count == 1 else f"{use.node_count} nodes"
        reasons.append(
            f"{nodes} last reported running it ({names}): wait until they report another release"
        )
    return reasons
