"""The wire contract between agents and the bin-manager (docs/api.md, the wire contract).

Field names are those of the original design (nodeName, cpuArch, osRelease,
binProxyVersion, binName, sha256, targetHash, processingTime, status) and must not
change: shell agents written against the original design speak them too. Later fields
are optional and only ever added: `withdrawn` in the GET /bins answers (present only when
a pin left newer releases behind), `reason` and `cause` in a progress report.
Every JSON answer is wrapped in `Envelope`: `{"code": 0, "message": "success", "data": …}`,
or is `Done` (no `data`), or `ErrorBody` (`{code, message}`). Answer models derive from
`Answer`; the routes declare them, so /openapi.json describes every answer.
"""

from __future__ import annotations

import unicodedata
from enum import StrEnum
from typing import Annotated, Any, Final, Generic, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

from ansible_proxy.names import (
    ARCHES,
    BIN_NAME_PATTERN,
    MAX_NODE_NAME,
    NODE_NAME_PATTERN,
    SHA256_PATTERN,
    is_bin_name,
    is_node_name,
    is_sha256,
    label_refusal,
    node_name_refusal,
    normalize_arch,
)

__all__ = [
    "ARCHES",
    "BIN_NAME_PATTERN",
    "MAX_NODE_NAME",
    "NODE_NAME_PATTERN",
    "SHA256_PATTERN",
    "is_bin_name",
    "is_node_name",
    "is_sha256",
    "node_name_refusal",
    "normalize_arch",
]

API_PREFIX = "/api/v1"


def _node_name(value: Any) -> Any:
    # Before pydantic strips whitespace: "node\n" is refused, not quietly renamed "node".
    if isinstance(value, str) and not is_node_name(value):
        raise PydanticCustomError("node_name", "{why}", {"why": node_name_refusal(value)})
    return value


# Node names travel in query strings and land in the database, logs and dashboard URLs:
# names.NODE_NAME_PATTERN, in bodies and queries (the fast path checks it too).
NodeName = Annotated[
    str,
    BeforeValidator(_node_name),
    WithJsonSchema({"type": "string", "pattern": NODE_NAME_PATTERN}),
]
BinName = Annotated[str, StringConstraints(pattern=BIN_NAME_PATTERN)]
Sha256 = Annotated[str, StringConstraints(pattern=SHA256_PATTERN)]
ShortText = Annotated[str, StringConstraints(max_length=255)]

# A progress report's `reason`: one line for a person (the dashboard shows it as text).
MAX_REASON = 300
# Control characters (newlines, escapes, NUL), format characters (bidi overrides,
# zero-width), lone surrogates and line/paragraph separators: none belongs in one line.
_NOT_IN_A_LINE = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
# The newest releases listed as withdrawn in a GET /bins answer, per bin.
MAX_WITHDRAWN = 20

CODE_OK: Final = 0
MESSAGE_OK: Final = "success"

T = TypeVar("T")


class _Model(BaseModel):
    # Unknown fields are ignored rather than refused: newer agents may send more.
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)


def _open_to_more(schema: dict[str, Any]) -> None:
    # Answers only ever gain fields: a client ignores keys it does not know, so the schema
    # does not forbid them (the server's own check does: extra="forbid").
    schema.pop("additionalProperties", None)


class Answer(BaseModel):
    """An answer's shape, as the server sends it. Checked strictly (types as they are, no key
    the model does not name, nothing stripped), so that declaring it changes no byte. A key
    that is left out in some answers is a field with `exclude_if`."""

    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra=_open_to_more)


def _omitted_when_empty(value: object) -> bool:
    return not value


# A key absent from the answer when empty (the original design's answers have none of these).
OMITTED_WHEN_EMPTY: Any = {"exclude_if": _omitted_when_empty}


class Done(Answer):
    """A success with nothing to tell: `{"code": 0, "message": "success"}`."""

    code: Literal[0]
    message: Literal["success"]


class ErrorBody(Answer):
    """Every error answer: the HTTP status as `code` and a human message."""

    code: int
    message: str


class Envelope(Answer, Generic[T]):
    """A success with `data`: `{"code": 0, "message": "success", "data": …}`."""

    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    code: Literal[0] = CODE_OK
    message: Literal["success"] = MESSAGE_OK
    data: T


def _check_labels(labels: dict[str, str] | None) -> dict[str, str] | None:
    problem = label_refusal(labels) if labels else None
    if problem is not None:
        raise PydanticCustomError("labels", problem)
    return labels or None


# The bins a keepalive may say are held (`held`), each with its reason (one line).
MAX_HOLDS = 64


def _check_held(held: dict[str, str] | None) -> dict[str, str] | None:
    for name, reason in (held or {}).items():
        if not is_bin_name(name):
            raise PydanticCustomError("held", "held: {name} is not a bin name", {"name": name[:80]})
        if len(reason) > MAX_REASON or not is_one_line(reason):
            raise PydanticCustomError(
                "held", "held: the reason for {name} must be one line of at most 300 characters",
                {"name": name},
            )  # fmt: skip
    if held and len(held) > MAX_HOLDS:
        raise PydanticCustomError("held", f"held: at most {MAX_HOLDS} bins")
    return held or None


class NodeInfo(_Model):
    """What a node tells about itself in POST /keepalive (and keeps in its manifest)."""

    cpuArch: ShortText
    osRelease: ShortText
    nodeName: NodeName
    binProxyVersion: ShortText
    # NODE_LABELS (names.LABEL_RULE); left out by agents that have none, and by older ones.
    labels: Annotated[dict[str, str] | None, AfterValidator(_check_labels)] = None
    # The bins this node holds (`ansible-proxy hold BIN`): bin → reason; absent or empty:
    # none. A staged rollout skips a held node rather than wait for it (server/db/holds.py).
    held: Annotated[dict[str, str] | None, AfterValidator(_check_held)] = None


class NodeStatus(Answer):
    """GET /keepalive's `data` for a known node (an unknown one is answered 404)."""

    nodeName: str
    status: Literal["active"]


class LatestBin(Answer):
    """GET /bins/{bin}'s `data`: the sha256 this node should run.

    The project's bin-manager adds `withdrawn: [sha256, …]` only when non-empty: the
    releases of this bin and arch published after the latest one (an operator pinned back
    past them), newest first, at most MAX_WITHDRAWN; never the sha256 answered.
    """

    sha256: Sha256
    version: str = "latest"
    withdrawn: list[Sha256] = Field(
        default_factory=list,
        description="newer releases an operator pinned back past; absent when none",
        **OMITTED_WHEN_EMPTY,
    )


class LatestBins(Answer):
    """GET /bins's `data` (this project's batch poll): bin → sha256 for the node's arch;
    `withdrawn` (bin → [sha256, …]) only for the bins that have some."""

    arch: str
    bins: dict[str, Sha256]
    withdrawn: dict[str, list[Sha256]] = Field(
        default_factory=dict,
        description="per bin, newer releases an operator pinned back past; absent when none",
        **OMITTED_WHEN_EMPTY,
    )


class BinReport(_Model):
    """POST /bins/{bin}: what the node now runs."""

    nodeName: NodeName
    binName: BinName
    sha256: Sha256
    version: ShortText = "latest"


class ProgressStatus(StrEnum):
    IN_PROGRESS = "in_progress"
    SUCCESS = "success"
    FAILED = "failed"


class FailureCause(StrEnum):
    """Whose failure a `failed` report tells: only `release` counts against the release."""

    RELEASE = "release"  # it did not start, did not stay up, failed its checks on this host
    HOST = "host"  # this host could not try it: download, store, registry, its clock, …
    REFUSED = "refused"  # this host refused it: an untrusted signature, a known-bad release


def is_one_line(text: str) -> bool:
    """True when `text` has no control, format or separator character (see _NOT_IN_A_LINE)."""
    return not any(unicodedata.category(char) in _NOT_IN_A_LINE for char in text)


def _one_line(text: str) -> str:
    if not is_one_line(text):
        raise ValueError("must be one line of text: no control characters (newline, tab, …)")
    return text


Reason = Annotated[str, StringConstraints(max_length=MAX_REASON), AfterValidator(_one_line)]


class ProgressReport(_Model):
    """POST /bins/{bin}/progress: where a node is with one target version.

    `reason` (optional): why, for a person — who decided and what it saw, e.g.
    "inspector: alerts: firing HighErrorRate". Stripped; at most MAX_REASON characters and
    one line, else the report is refused (422) and nothing is stored. `cause` (optional,
    `failed` only; absent: "release"): whose failure it is (FailureCause).
    """

    nodeName: NodeName
    binName: BinName
    targetHash: Sha256
    processingTime: int = Field(ge=0)
    status: ProgressStatus
    reason: Reason | None = Field(
        default=None,
        description=f"why (who decided, what it saw): one line, at most {MAX_REASON} characters",
    )
    cause: FailureCause | None = Field(
        default=None,
        description="with `failed`: release (the default), host or refused; ignored otherwise",
    )


def ok(data: Any = None) -> dict[str, Any]:
    """The success envelope as a plain dict (for routes that build JSON by hand)."""
    body: dict[str, Any] = {"code": CODE_OK, "message": MESSAGE_OK}
    if data is not None:
        body["data"] = data
    return body


# A node token: what `secrets.token_urlsafe(32)` makes (43 characters), or longer.
NODE_TOKEN_PATTERN = r"^[A-Za-z0-9_-]{32,128}$"  # noqa: S105 (a pattern, not a secret)


class Enrolment(NodeInfo):
    """POST /enrol: a node asks for its name, with the token it made (docs/security.md).

    `nodeToken` is sent this once; the server keeps its sha256 only. A cluster proxy
    enrolling a node of its inventory sends none (its own token is the credential).
    """

    nodeToken: Annotated[str, StringConstraints(pattern=NODE_TOKEN_PATTERN)] | None = None


class Enrolled(Answer):
    """POST /enrol's `data` (201 enrolled, 200 already, 202 pending approval)."""

    nodeName: str
    status: Literal["enrolled", "pending"]
    fingerprint: str = Field(description="the token's first 12 hex digits, or proxy:NAME")
    legacyWrites: bool = Field(description="migrate mode: the name may still be written as before")
