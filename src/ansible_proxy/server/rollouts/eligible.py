"""Who takes part in a rollout, and who is only shown.

At a rollout's start its members are the nodes of the release's arch whose last report of
the bin names one of its releases, less the nodes that cannot take part: a revoked node
(it can no longer report), a stale one (not heard for `stale_seconds`), one that holds
the bin (`ansible-proxy hold`). Those are left out and recorded with why (RolloutLeftOut),
so that `rollout status` shows them. During the rollout a member whose node was forgotten
or revoked, or that holds the bin, is skipped: never judged, never waited for.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import ColumnElement, and_, select
from sqlalchemy.orm import Session

from ansible_proxy.names import normalize_arch, parse_labels
from ansible_proxy.server.db.holds import held_nodes
from ansible_proxy.server.db.labels import admin_labels_of
from ansible_proxy.server.db.models import (
    Bin,
    Node,
    NodeBin,
    NodeCredential,
    NodeHold,
    Release,
    Rollout,
    RolloutMember,
)
from ansible_proxy.server.rollouts import heard
from ansible_proxy.server.rollouts.options import REPORTED

REVOKED = "revoked: its credential was revoked"
FORGOTTEN = "forgotten: the node was deleted"


@dataclass(frozen=True)
class Candidate:
    """A node that may be a member: its labels (policy.plan_waves), its heard time (the
    heard clock's reading at its last call: rollouts/heard.py) and last seen, and the
    release of the bin it last reported running."""

    labels: dict[str, str]
    heard: float | None
    seen: datetime | None
    running: str


@dataclass(frozen=True)
class Fleet:
    """The members-to-be of a new rollout, and the nodes left out with why."""

    members: dict[str, Candidate] = field(default_factory=dict)
    left_out: dict[str, str] = field(default_factory=dict)


def fleet(session: Session, bin_: Bin, arch: str, stale_seconds: float) -> Fleet:
    """The nodes of `arch` whose last report of the bin (POST /bins) is one of its releases
    for `arch`, split into members and the left out (revoked, holding the bin, stale: not
    heard for `stale_seconds` of the heard clock, so a server that was away itself makes
    no node stale).

    A node that never showed it runs the bin is no member: anyone enrolled could report
    any bin. Labels: the admin's as `k`, the node's own NODE_LABELS as `reported:k`. When
    every node would be left out as stale, the stale ones stay members: a wave of offline
    nodes waits, where no rollout at all would tell every node the release at once.
    """
    rows = session.execute(
        select(Node.name, Node.cpu_arch, Node.labels, Node.heard, Node.last_seen, NodeBin.sha256)
        .join(NodeBin, NodeBin.node_id == Node.id)
        .join(
            Release,
            (Release.bin_id == NodeBin.bin_id)
            & (Release.sha256 == NodeBin.sha256)
            & (Release.arch == arch),
        )
        .where(NodeBin.bin_id == bin_.id)
    ).all()
    candidates: dict[str, Candidate] = {}
    for name, cpu_arch, labels, heard_at, seen, running in rows:
        if normalize_arch(cpu_arch or "") != arch:
            continue
        candidates[name] = Candidate(_reported(labels), heard_at, seen, running)
    for name, given in admin_labels_of(session, candidates).items():
        candidates[name].labels.update(given)
    left_out = _cannot_take_part(session, bin_.name, candidates)
    stale_before = heard.read(session).now - stale_seconds
    stale = {
        name: _stale(found.seen)
        for name, found in candidates.items()
        if name not in left_out and (found.heard is None or found.heard < stale_before)
    }
    if len(stale) < len(candidates) - len(left_out):
        left_out.update(stale)
    members = {name: found for name, found in candidates.items() if name not in left_out}
    return Fleet(members, left_out)


def _reported(labels: str | None) -> dict[str, str]:
    """A node's NODE_LABELS (`k=v,…`) as a policy matches them: `reported:k` → v."""
    try:
        parsed = parse_labels(labels) if labels else {}
    except ValueError:
        parsed = {}
    return {f"{REPORTED}{key}": value for key, value in parsed.items()}


def labels_of(session: Session, names: list[str]) -> dict[str, dict[str, str]]:
    """name → its labels as a policy matches them (as `fleet` gives them): the node's own
    as `reported:k`, an admin's as `k`."""
    found: dict[str, dict[str, str]] = {}
    for start in range(0, len(names), 500):  # bounded IN lists
        chunk = names[start : start + 500]
        rows = session.execute(select(Node.name, Node.labels).where(Node.name.in_(chunk)))
        found.update({name: _reported(labels) for name, labels in rows})
    for name, given in admin_labels_of(session, names).items():
        found.setdefault(name, {}).update(given)
    return found


def _stale(seen: datetime | None) -> str:
    return f"stale: not heard since {seen:%Y-%m-%d %H:%M:%S} UTC" if seen else "stale: never heard"


def _cannot_take_part(
    session: Session, bin_name: str, candidates: dict[str, Candidate]
) -> dict[str, str]:
    """name → why, for the candidates revoked or holding the bin."""
    names = list(candidates)
    why: dict[str, str] = {}
    for start in range(0, len(names), 500):  # bounded IN lists
        chunk = names[start : start + 500]
        revoked = session.scalars(
            select(NodeCredential.node_name).where(
                NodeCredential.node_name.in_(chunk), NodeCredential.revoked.is_(True)
            )
        )
        why.update(dict.fromkeys(revoked, REVOKED))
    for name, reason in held_nodes(session, bin_name).items():
        if name in candidates and name not in why:
            why[name] = f"held: {reason}"
    return why


def judged(rollout: Rollout) -> ColumnElement[bool]:
    """SQL: the member takes part now: its node is known, not revoked, and does not hold
    the rollout's bin. The others are skipped by their wave (shown, never judged)."""
    member = RolloutMember.node_name
    bin_name = select(Bin.name).where(Bin.id == rollout.bin_id).scalar_subquery()
    return and_(
        member.in_(select(Node.name)),
        member.not_in(select(NodeCredential.node_name).where(NodeCredential.revoked.is_(True))),
        member.not_in(select(NodeHold.node_name).where(NodeHold.bin_name == bin_name)),
    )


def skipped(session: Session, bin_name: str, names: list[str]) -> dict[str, tuple[str, str]]:
    """name → (state, why) for the members among `names` skipped now: `forgotten`,
    `revoked` or `held` (status.py shows them so)."""
    found: dict[str, tuple[str, str]] = {}
    for start in range(0, len(names), 500):
        chunk = names[start : start + 500]
        known = set(session.scalars(select(Node.name).where(Node.name.in_(chunk))))
        found.update({name: ("forgotten", FORGOTTEN) for name in chunk if name not in known})
        revoked = session.scalars(
            select(NodeCredential.node_name).where(
                NodeCredential.node_name.in_(chunk), NodeCredential.revoked.is_(True)
            )
        )
        found.update({name: ("revoked", REVOKED) for name in revoked if name not in found})
    wanted = set(names)
    for name, reason in held_nodes(session, bin_name).items():
        if name in wanted and name not in found:
            found[name] = ("held", f"held: {reason}")
    return found


def left_out_note(left_out: Mapping[str, str]) -> str:
    """`; left out: a (revoked: …), b (held: …) and 3 more`."""
    if not left_out:
        return ""
    names = sorted(left_out)
    shown = ", ".join(f"{name} ({left_out[name]})" for name in names[:3])
    more = f" and {len(names) - 3} more" if len(names) > 3 else ""
    return f"; left out: {shown}{more}"
