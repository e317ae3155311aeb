"""Roles and rights (docs/security.md "Roles"): pure, no I/O.

A role is a set of rights, each role holding the rights of the one before it:

    viewer     read          every page and every GET of the admin API
    publisher  + publish     publish and sign releases                 (per bin)
    operator   + pin, pause, rollout, delete                           (per bin)
               + nodes       approve, reject, revoke, label and delete nodes
    admin      + people, tokens, proxies

A grant is a role, optionally limited to bins by name or fnmatch glob (`web`, `web-*`).
A limited grant has its bin rights on those bins only and none of the rights that are not
about one bin (nodes): approving a node changes what every bin reaches. Reading is never
limited. Only publishers and operators may be limited: a viewer reads everything anyway,
and an admin's rights (people, tokens, proxies) are not about bins.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from fnmatch import fnmatchcase


class Right(StrEnum):
    READ = "read"
    PUBLISH = "publish"
    PIN = "pin"
    PAUSE = "pause"
    ROLLOUT = "rollout"
    DELETE = "delete"
    NODES = "nodes"
    PROXIES = "proxies"
    PEOPLE = "people"
    TOKENS = "tokens"


class Role(StrEnum):
    VIEWER = "viewer"
    PUBLISHER = "publisher"
    OPERATOR = "operator"
    ADMIN = "admin"


# Rights that act on one bin (the route names it): a grant's bins limit these.
BIN_RIGHTS = frozenset({Right.PUBLISH, Right.PIN, Right.PAUSE, Right.ROLLOUT, Right.DELETE})
_ADDED: dict[Role, tuple[Right, ...]] = {
    Role.VIEWER: (Right.READ,),
    Role.PUBLISHER: (Right.PUBLISH,),
    Role.OPERATOR: (Right.PIN, Right.PAUSE, Right.ROLLOUT, Right.DELETE, Right.NODES),
    Role.ADMIN: (Right.PROXIES, Right.PEOPLE, Right.TOKENS),
}


def _cumulative() -> dict[Role, frozenset[Right]]:
    held: set[Right] = set()
    table = {}
    for role in Role:  # in order: each holds the rights of the one before it
        held.update(_ADDED[role])
        table[role] = frozenset(held)
    return table


ROLE_RIGHTS: dict[Role, frozenset[Right]] = _cumulative()
LIMITABLE = frozenset({Role.PUBLISHER, Role.OPERATOR})
_GLOB = re.compile(r"[A-Za-z0-9._*?\[\]-]{1,128}")
MAX_GLOBS = 32


def parse_role(text: str) -> Role:
    """The role named `text`; ValueError naming the four when it is none of them."""
    try:
        return Role(text.strip().lower())
    except ValueError:
        names = ", ".join(role.value for role in Role)
        raise ValueError(f"unknown role {text!r}: one of {names}") from None


def parse_bins(text: str | None, role: Role) -> tuple[str, ...] | None:
    """`web,api*` as a tuple of globs; None (every bin) for an empty or absent text.
    ValueError when a glob has other characters, or the role may not be limited."""
    if text is None or not text.strip():
        return None
    globs = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    for glob in globs:
        if _GLOB.fullmatch(glob) is None:
            raise ValueError(f"invalid bin or glob {glob!r}: use A-Z a-z 0-9 . _ - * ? [ ]")
    if len(globs) > MAX_GLOBS:
        raise ValueError(f"at most {MAX_GLOBS} bins or globs")
    if role not in LIMITABLE:
        raise ValueError(
            f"a {role} cannot be limited to bins: only publisher and operator grants can"
        )
    return globs


@dataclass(frozen=True)
class Grant:
    """A role, and the bins its bin rights are limited to (None: every bin)."""

    role: Role
    bins: tuple[str, ...] | None = None

    def allows(self, right: Right, bin_name: str | None = None) -> bool:
        """May this grant use `right` (on `bin_name`, for a bin right)?"""
        if right not in ROLE_RIGHTS[self.role]:
            return False
        if self.bins is None or right is Right.READ:
            return True
        if right not in BIN_RIGHTS or bin_name is None:
            return False  # a limited grant: nothing beyond its bins
        return any(fnmatchcase(bin_name, glob) for glob in self.bins)

    def describe(self) -> str:
        """`operator`, or `publisher for web, api*`."""
        return self.role.value + (f" for {', '.join(self.bins)}" if self.bins else "")

    @property
    def bins_text(self) -> str | None:
        """The bins as stored and shown: `web,api*`, or None for every bin."""
        return ",".join(self.bins) if self.bins else None


def refusal(grant: Grant, right: Right, bin_name: str | None, who: str) -> str | None:
    """None when `grant` allows `right`; else the 403 message, naming the missing right."""
    if grant.allows(right, bin_name):
        return None
    where = f" on bin {bin_name!r}" if right in BIN_RIGHTS and bin_name is not None else ""
    why = ""
    if right in ROLE_RIGHTS[grant.role] and grant.bins is not None:
        why = " (its grant is limited to bins" + (
            ")" if right in BIN_RIGHTS else ", and this right is not about one bin)"
        )
    return (
        f"forbidden: {who} ({grant.describe()}) lacks the right {right.value!r}{where}{why}; "
        f"the roles that have it: {', '.join(roles_with(right))} (docs/security.md, 'Roles')"
    )


def roles_with(right: Right) -> list[str]:
    return [role.value for role in Role if right in ROLE_RIGHTS[role]]
