"""Tables of the bin-manager. Times are naive UTC; sha256 values are lower-case hex."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Bin(Base):
    """A named binary; `paused` freezes what GET /bins answers to each node."""

    __tablename__ = "bins"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime)


class Release(Base):
    """One published artifact of a bin for one cpu arch."""

    __tablename__ = "releases"
    __table_args__ = (UniqueConstraint("bin_id", "arch", "sha256"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    bin_id: Mapped[int] = mapped_column(ForeignKey("bins.id"), index=True)
    arch: Mapped[str] = mapped_column(String(16))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    size: Mapped[int] = mapped_column(BigInteger)
    published_at: Mapped[datetime] = mapped_column(DateTime)
    # Set when a staged rollout of it was reverted (server/rollouts/): withdrawn, so never
    # offered again, until an operator pins it or resumes its rollout.
    bad_since: Mapped[datetime | None] = mapped_column(DateTime, default=None)


class Latest(Base):
    """Which release is latest per bin and arch, and which was latest when paused."""

    __tablename__ = "latest"

    bin_id: Mapped[int] = mapped_column(ForeignKey("bins.id"), primary_key=True)
    arch: Mapped[str] = mapped_column(String(16), primary_key=True)
    release_id: Mapped[int] = mapped_column(ForeignKey("releases.id"))
    paused_release_id: Mapped[int | None] = mapped_column(ForeignKey("releases.id"))
    updated_at: Mapped[datetime] = mapped_column(DateTime)


class Node(Base):
    """A host known from POST /keepalive."""

    __tablename__ = "nodes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    cpu_arch: Mapped[str] = mapped_column(String(255))
    os_release: Mapped[str] = mapped_column(String(255))
    agent_version: Mapped[str] = mapped_column(String(255))
    first_seen: Mapped[datetime] = mapped_column(DateTime)
    last_seen: Mapped[datetime] = mapped_column(DateTime)
    # NODE_LABELS as "k=v,k=v" (sorted by key), from the keepalive; None: none sent.
    labels: Mapped[str | None] = mapped_column(String(1024), default=None)
    # The heard clock's reading at its last call (rollouts/heard.py): silence is measured
    # on it, never on last_seen (a clock step or a server outage is no node's silence).
    heard: Mapped[float | None] = mapped_column(Float, default=None)


class NodeBin(Base):
    """What a node last reported running for a bin (POST /bins/{bin})."""

    __tablename__ = "node_bins"

    node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id"), primary_key=True)
    bin_id: Mapped[int] = mapped_column(ForeignKey("bins.id"), primary_key=True, index=True)
    sha256: Mapped[str] = mapped_column(String(64))
    version: Mapped[str] = mapped_column(String(255))
    reported_at: Mapped[datetime] = mapped_column(DateTime)


class BinReportRow(Base):
    """History of every POST /bins/{bin}."""

    __tablename__ = "bin_reports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id"), index=True)
    bin_id: Mapped[int] = mapped_column(ForeignKey("bins.id"), index=True)
    sha256: Mapped[str] = mapped_column(String(64))
    version: Mapped[str] = mapped_column(String(255))
    reported_at: Mapped[datetime] = mapped_column(DateTime)


class ProgressRow(Base):
    """History of every POST /bins/{bin}/progress."""

    __tablename__ = "progress"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id"), index=True)
    bin_id: Mapped[int] = mapped_column(ForeignKey("bins.id"), index=True)
    target_hash: Mapped[str] = mapped_column(String(64))
    processing_time: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))
    reported_at: Mapped[datetime] = mapped_column(DateTime)
    # Why (who decided, what it saw), as the agent put it; None from agents that say nothing.
    reason: Mapped[str | None] = mapped_column(String(300), default=None)
    # A failed report's cause (release, host, refused; "release" when none was sent); None
    # for other statuses.
    cause: Mapped[str | None] = mapped_column(String(16), default=None)


class Event(Base):
    """Operator activity: publish, pin, pause, resume, delete, and every rollout step."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime, index=True)
    kind: Mapped[str] = mapped_column(String(32))  # 16 until migration 0005
    bin_name: Mapped[str] = mapped_column(String(128))
    arch: Mapped[str | None] = mapped_column(String(16))
    sha256: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[str | None] = mapped_column(String(300), default=None)  # why, for rollouts
    # Who made the change (audit/trail.py fills it): "alice", "token ci-web", "admin token";
    # None for the server's own steps (a rollout's wave promoted by its bake).
    actor: Mapped[str | None] = mapped_column(String(200), default=None)


class RolloutPolicy(Base):
    """How a bin's new releases reach the fleet (docs/bin-manager.md "Rollouts").

    `arch` "" is the bin's policy for every arch; a row for one arch overrides it.
    Counts are kept as the operator wrote them ("3", "10%"), resolved at each start.
    """

    __tablename__ = "rollout_policies"

    bin_id: Mapped[int] = mapped_column(ForeignKey("bins.id"), primary_key=True)
    arch: Mapped[str] = mapped_column(String(16), primary_key=True)
    immediate: Mapped[bool] = mapped_column(Boolean, default=False)
    canary: Mapped[str] = mapped_column(String(16))
    waves: Mapped[str] = mapped_column(String(128))
    bake_seconds: Mapped[int] = mapped_column(Integer)
    max_failures: Mapped[str] = mapped_column(String(16))
    # k=v: a label an admin set (NodeAdminLabels); reported:k=v: one of NODE_LABELS.
    canary_label: Mapped[str | None] = mapped_column(String(256), default=None)
    canary_nodes: Mapped[str | None] = mapped_column(Text, default=None)  # "a,b": by name
    updated_at: Mapped[datetime] = mapped_column(DateTime)
    # More offline (or refusing) members than this in a wave and it waits; None: no limit.
    max_offline: Mapped[str | None] = mapped_column(String(16), default=None)
    max_refused: Mapped[str | None] = mapped_column(String(16), default=None)
    # After the last wave the rollout is watched this long (`watching`); None or 0: not.
    watch_seconds: Mapped[int | None] = mapped_column(Integer, default=None)
    # When its waves may start (rollouts/windows.py), as written: "Mon-Fri 09:00-17:00 UTC".
    windows: Mapped[str | None] = mapped_column(Text, default=None)


class FleetFreeze(Base):
    """The fleet-wide freeze (`bin-manager freeze`): no wave of any rollout starts before
    `until` (UTC); one row, id 1, or none."""

    __tablename__ = "fleet_freeze"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    until: Mapped[datetime] = mapped_column(DateTime)
    reason: Mapped[str] = mapped_column(String(300))
    set_at: Mapped[datetime] = mapped_column(DateTime)


class Rollout(Base):
    """One release of a bin and arch walking the fleet wave by wave.

    Active while `state` is rolling or halted and not reverted: then each member node is
    told `release_sha` once its wave started, every other node `previous_sha`.
    `revision` grows with every change: a change is written only where the revision is
    still the one read, so two processes never both promote (or halt) the same wave.
    """

    __tablename__ = "rollouts"
    __table_args__ = (Index("ix_rollouts_bin_arch_state", "bin_id", "arch", "state"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    bin_id: Mapped[int] = mapped_column(ForeignKey("bins.id"))
    arch: Mapped[str] = mapped_column(String(16))
    release_sha: Mapped[str] = mapped_column(String(64))
    previous_sha: Mapped[str] = mapped_column(String(64))
    policy: Mapped[str] = mapped_column(Text)  # JSON: the policy in force at start
    state: Mapped[str] = mapped_column(String(16))  # rolling, halted, completed, superseded
    reverted: Mapped[bool] = mapped_column(Boolean, default=False)
    wave: Mapped[int] = mapped_column(Integer)  # the newest started wave (0: the canary)
    wave_count: Mapped[int] = mapped_column(Integer)
    wave_started_at: Mapped[datetime] = mapped_column(DateTime)
    # The heard clock when the wave started baking (None: set by the next check).
    wave_heard: Mapped[float | None] = mapped_column(Float, default=None)
    reason: Mapped[str | None] = mapped_column(String(300), default=None)
    revision: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)
    # When the current wave's stuck notice went out (`rollout-stuck`): once per wave.
    stuck_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)


class RolloutMember(Base):
    """A node of a rollout, its wave and what it showed of the release.

    The node's name, not its id: retention may forget a silent node's row, never this.
    """

    __tablename__ = "rollout_members"

    rollout_id: Mapped[int] = mapped_column(ForeignKey("rollouts.id"), primary_key=True)
    node_name: Mapped[str] = mapped_column(String(255), primary_key=True)
    wave: Mapped[int] = mapped_column(Integer)
    offline: Mapped[bool] = mapped_column(Boolean, default=False)  # silent when its wave began
    succeeded_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)
    baked_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)
    failed_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)
    reason: Mapped[str | None] = mapped_column(String(300), default=None)
    # The heard clock at the first check after its success: its bake counts from there.
    succeeded_heard: Mapped[float | None] = mapped_column(Float, default=None)
    # "host" (it could not try the release) or "refused" (it would not): not a failure of
    # the release; the member neither holds its wave up nor counts towards a halt.
    trouble: Mapped[str | None] = mapped_column(String(16), default=None)
    # What the node ran before it was told the release: a revert tells it this one back
    # when a signed host could not move further back (rollouts/reverts.py).
    before_sha: Mapped[str | None] = mapped_column(String(64), default=None)


class RolloutLeftOut(Base):
    """A node of the fleet a rollout left out at its start, and why (revoked, stale, held):
    shown with the rollout, never judged by it."""

    __tablename__ = "rollout_left_out"

    rollout_id: Mapped[int] = mapped_column(ForeignKey("rollouts.id"), primary_key=True)
    node_name: Mapped[str] = mapped_column(String(255), primary_key=True)
    reason: Mapped[str] = mapped_column(String(300))


class NodeHold(Base):
    """A bin a node holds (`ansible-proxy hold`), as its keepalive reports it: the node
    installs nothing of that bin, so a rollout skips it rather than wait for it."""

    __tablename__ = "node_holds"

    node_name: Mapped[str] = mapped_column(String(255), primary_key=True)
    bin_name: Mapped[str] = mapped_column(String(128), primary_key=True, index=True)
    reason: Mapped[str] = mapped_column(String(300))
    since: Mapped[datetime] = mapped_column(DateTime)


class HeardClockRow(Base):
    """The one row of the heard clock (server/rollouts/heard.py): seconds the server was
    up, writing and able to hear its nodes, advanced by every process's rollout checker."""

    __tablename__ = "heard_clock"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    heard: Mapped[float] = mapped_column(Float)
    db_at: Mapped[float] = mapped_column(Float)  # the database's clock at the last advance
    grace_from: Mapped[float] = mapped_column(Float)  # heard time at the end of the last outage


class ReadinessCheck(Base):
    """The row each server machine writes at every readiness check (GET /readyz,
    server/readiness.py): a tiny upsert that proves the database takes writes."""

    __tablename__ = "readiness_checks"

    server: Mapped[str] = mapped_column(String(255), primary_key=True)  # the host's name
    checked_at: Mapped[datetime] = mapped_column(DateTime)
    checks: Mapped[int] = mapped_column(BigInteger, default=0)


class WebhookDelivery(Base):
    """One event for one receiver, kept until delivered (a persistent queue).

    `url` never holds the secret: it is read from the settings at each attempt. A row is
    claimed by setting `lease_until` where it is unset or past, so one process sends it.
    """

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    url: Mapped[str] = mapped_column(String(2048))
    event: Mapped[str] = mapped_column(String(32))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_until: Mapped[datetime | None] = mapped_column(DateTime, default=None)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime, default=None, index=True)
    last_error: Mapped[str | None] = mapped_column(String(300), default=None)


class NodeCredential(Base):
    """A node name's credential (docs/security.md): kept apart from `nodes`, so forgetting
    a silent node forgets neither its credential nor its revocation.

    Enrolled: not revoked and a node token hash or an owning proxy. `pending_*` is a
    request waiting for an admin's approval. Only sha256 hashes of tokens are stored.
    """

    __tablename__ = "node_credentials"

    node_name: Mapped[str] = mapped_column(String(255), primary_key=True)
    token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    proxy_name: Mapped[str | None] = mapped_column(String(64))
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    pending_hash: Mapped[str | None] = mapped_column(String(64))
    pending_proxy: Mapped[str | None] = mapped_column(String(64))
    pending_info: Mapped[str | None] = mapped_column(String(1024))  # JSON: arch, os, agent
    pending_address: Mapped[str | None] = mapped_column(String(64))
    pending_at: Mapped[datetime | None] = mapped_column(DateTime, index=True)
    changed_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    # The credential a revoke ended (its token's hash, or its proxy): its holder alone is
    # told "revoked"; anyone else gets the answer any name gets (docs/security.md).
    revoked_hash: Mapped[str | None] = mapped_column(String(64), default=None)
    revoked_proxy: Mapped[str | None] = mapped_column(String(64), default=None)


class NodeAdminLabels(Base):
    """Labels an admin set on a node name (`bin-manager nodes label`): unlike NODE_LABELS,
    which a node reports itself, no node can set them. Kept apart from `nodes`, so a label
    may be set before the node first calls and stays when a silent node is forgotten."""

    __tablename__ = "node_admin_labels"

    node_name: Mapped[str] = mapped_column(String(255), primary_key=True)
    labels: Mapped[str] = mapped_column(String(1024))  # "k=v,k=v", sorted by key
    updated_at: Mapped[datetime] = mapped_column(DateTime)


class ServerSecret(Base):
    """A secret the server made for itself and never serves (e.g. the key of the rollout
    order, server/db/secrets.py): the same on every replica, as the database is."""

    __tablename__ = "server_secrets"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime)


class Proxy(Base):
    """A cluster proxy's credential: it speaks for the nodes it enrolled, and no others."""

    __tablename__ = "proxies"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime)


class RevokedSession(Base):
    """A dashboard session ended by logout: its cookie stays signed but is refused until
    it would have expired anyway (then the row is pruned). Shared by every replica."""

    __tablename__ = "revoked_sessions"

    nonce_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime, index=True)


class Signature(Base):
    """One publisher's OpenSSH signature of a signed statement about a release (issue 18).

    `statement` is the canonical JSON the publisher signed, as text; several keys may sign
    the same statement (k-of-n), each key once (`statement_sha256` keeps the unique key
    short). `kind` and `sequence` are copied from the statement for queries. Deleted with
    its release.
    """

    __tablename__ = "signatures"
    __table_args__ = (UniqueConstraint("release_id", "statement_sha256", "key_fingerprint"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    release_id: Mapped[int] = mapped_column(
        ForeignKey("releases.id", ondelete="CASCADE"), index=True
    )
    bin_id: Mapped[int] = mapped_column(ForeignKey("bins.id"), index=True)  # the sequence rule
    statement: Mapped[str] = mapped_column(Text)
    statement_sha256: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))  # release or pin
    sequence: Mapped[int] = mapped_column(BigInteger)
    key_fingerprint: Mapped[str] = mapped_column(String(64))  # SHA256:… (50 characters)
    signature: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime)
