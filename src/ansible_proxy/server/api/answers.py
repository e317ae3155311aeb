"""The admin API's answers as pydantic models (the agent's are in protocol.py).

The routes declare them (`response_model=`), so /openapi.json describes every answer and
FastAPI checks each answer against its model before it goes out. The data still comes
from db/listings.py, db/credentials.py, rollouts/status.py as dicts: a model names their
keys in the same order, so that the bytes are the same as before it was declared.
Times are ISO 8601 UTC with a Z (`listings.iso`) unless a field says otherwise.
"""

from __future__ import annotations

from typing import Generic, Literal, TypeVar

from pydantic import Field
from pydantic.json_schema import SkipJsonSchema

from ansible_proxy.protocol import OMITTED_WHEN_EMPTY, Answer

T = TypeVar("T")


class Paged(Answer, Generic[T]):
    """A page of a listing: the envelope with `total` and `next` (the `after` of the next
    page, null on the last one); the next page's URL also in a Link header."""

    code: Literal[0]
    message: Literal["success"]
    data: list[T]
    total: int
    next: str | None


# Releases and nodes (api/admin.py)


class BinSummary(Answer):
    binName: str
    paused: bool
    latest: dict[str, str] = Field(description="arch → the sha256 nodes are told")
    releases: int
    nodes: int = Field(description="how many nodes reported running it")
    createdAt: str


class ReleaseRow(Answer):
    binName: str
    arch: str
    sha256: str
    size: int
    publishedAt: str
    latest: bool


class Superseded(Answer):
    """The rollout a publish ended (rollouts/superseding.py)."""

    release: str
    previous: str
    state: str
    reverted: bool
    wave: int
    told: int = Field(description="how many nodes had been told the release")
    nodes: list[str] = Field(description="the first of them")
    withdrawn: list[str] = Field(description="releases no node is told any more")
    text: str


class Published(Answer):
    binName: str
    arch: str
    sha256: str
    size: int
    latest: bool
    supersedes: Superseded | SkipJsonSchema[None] = Field(
        default=None,
        description="only when the publish ended another release's rollout",
        **OMITTED_WHEN_EMPTY,
    )


class Pinned(Answer):
    binName: str
    arch: str
    sha256: str
    latest: bool


class DeletedRelease(Answer):
    binName: str
    arch: str
    sha256: str
    size: int
    artifact: str = Field(description="removed, shared, missing or left (see the log)")


class PauseState(Answer):
    binName: str
    paused: bool


class BinNode(Answer):
    """A node's last report of one bin."""

    nodeName: str
    cpuArch: str
    sha256: str
    version: str
    reportedAt: str


class ProgressEntry(Answer):
    nodeName: str
    binName: str
    targetHash: str
    processingTime: int
    status: str = Field(description="in_progress, success or failed")
    reportedAt: str
    reason: str | None
    cause: str | None = Field(description="with failed: release, host or refused")


class NodeSummary(Answer):
    nodeName: str
    cpuArch: str
    osRelease: str
    binProxyVersion: str
    labels: str = Field(description="NODE_LABELS as k=v,k=v (empty: none)")
    firstSeen: str
    lastSeen: str


class NodeBinReport(Answer):
    binName: str
    sha256: str
    version: str
    reportedAt: str


class NodeDetail(NodeSummary):
    adminLabels: str = Field(description="the labels an admin set, k=v,k=v")
    bins: list[NodeBinReport] = Field(description="what it runs now, by bin")
    reports: list[NodeBinReport] = Field(description="what it reported, newest first")
    progress: list[ProgressEntry]


class EventRow(Answer):
    at: str
    kind: str
    binName: str
    arch: str | None
    sha256: str | None
    detail: str | None


# Node credentials, labels, proxies (api/credentials.py)


class PendingRequest(Answer):
    fingerprint: str = Field(description="the token's first 12 hex digits, or proxy:NAME")
    cpuArch: str | None
    osRelease: str | None
    agent: str | None
    address: str | None
    since: str | None = Field(description="ISO 8601 UTC, no Z")


class Credential(Answer):
    """A node name's credential (never the token, never its hash)."""

    nodeName: str
    status: str = Field(description="none, enrolled or revoked")
    fingerprint: str | None
    proxy: str | None = Field(description="the cluster proxy that owns the node")
    pending: PendingRequest | None


class CredentialShown(Credential):
    adminLabels: str = Field(description="the labels an admin set, k=v,k=v")


class Rejected(Answer):
    rejected: int


class AdminLabels(Answer):
    nodeName: str
    adminLabels: dict[str, str]


class DeletedNode(Answer):
    nodeName: str
    rollouts: int = Field(description="how many rollouts it left")
    credential: str = Field(description="what became of its credential")


class ProxyRow(Answer):
    name: str
    fingerprint: str
    createdAt: str = Field(description="ISO 8601 UTC, no Z")
    revokedAt: str | None = Field(description="ISO 8601 UTC, no Z")
    nodes: int


class NewProxyToken(Answer):
    name: str
    token: str = Field(description="shown this once")
    fingerprint: str


# Signed releases (api/signatures.py)


class SignedStatement(Answer):
    statement: str
    signatures: list[str]


class ReleaseSignature(Answer):
    binName: str
    arch: str
    sha256: str
    statement: str = Field(description="the statement with the highest sequence")
    signatures: list[str] = Field(description="every signature of that statement")
    statements: list[SignedStatement] = Field(description="every statement not expired")


class NextSequence(Answer):
    binName: str
    nextSequence: int


class Signer(Answer):
    fingerprint: str
    kind: str
    sequence: int
    createdAt: str


class Signing(Answer):
    binName: str
    arch: str
    sha256: str
    size: int
    nextSequence: int
    statement: str | None = Field(description="the newest statement, if any")
    signers: list[Signer]


class SignatureAdded(Answer):
    binName: str
    arch: str
    sha256: str
    sequence: int
    kind: str
    fingerprint: str
    signatures: int = Field(description="how many signatures the statement has now")
