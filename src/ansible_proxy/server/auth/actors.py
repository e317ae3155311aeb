"""Who is asking, once authenticated: a person, an API token, the admin token (the
break-glass credential), or anyone at all on a server run with --insecure-no-auth."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from ansible_proxy.server.auth.rights import Grant, Right, Role, refusal


class ActorKind(StrEnum):
    USER = "user"
    TOKEN = "token"  # noqa: S105 (a kind, not a secret)
    ADMIN_TOKEN = "admin-token"  # noqa: S105
    OPEN = "open"  # --insecure-no-auth: no credential at all


@dataclass(frozen=True)
class Actor:
    """An authenticated caller and what it may do. `fingerprint`: a token's (12 hex)."""

    kind: ActorKind
    name: str
    grant: Grant
    fingerprint: str | None = None

    @property
    def label(self) -> str:
        """How messages, the activity log and the audit trail name it."""
        if self.kind is ActorKind.TOKEN:
            return f"token {self.name} ({self.fingerprint})"
        if self.kind is ActorKind.USER:
            return self.name
        return self.name  # "admin-token", "anyone"

    def may(self, right: Right, bin_name: str | None = None) -> bool:
        return self.grant.allows(right, bin_name)

    def refusal(self, right: Right, bin_name: str | None = None) -> str | None:
        """None when allowed; else the 403 message naming the missing right."""
        who = "the person " + self.name if self.kind is ActorKind.USER else self.label
        return refusal(self.grant, right, bin_name, who)


ADMIN_TOKEN = Actor(ActorKind.ADMIN_TOKEN, "admin-token", Grant(Role.ADMIN))
ANYONE = Actor(ActorKind.OPEN, "anyone", Grant(Role.ADMIN))
