"""Who a staged rollout has told its release: the members of its started waves, in memory.

A pointer read from the database names its answering rollout with the rollout's revision
(db/queries.RolloutRef); the names of the started waves' members are read once per
(rollout, revision) and kept, so a poll costs a set lookup, and a promotion (which
changes the revision) is seen by every process at its next pointer refresh (at most the
pointer cache's TTL later, as for a publish on another replica). A reverted rollout
answers the previous release, except to the members told back their own previous one
(rollouts/reverts.py), read once per revision too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from types import MappingProxyType

from sqlalchemy import select
from sqlalchemy.orm import Session

from ansible_proxy.server.db.models import RolloutMember
from ansible_proxy.server.db.queries import Pointer
from ansible_proxy.server.rollouts.reverts import back_targets

_MAX_ROLLOUTS = 1000


class StartedWaves:
    """rollout id → (revision, the names of its started waves' members, and for a reverted
    rollout the members told back their own previous release)."""

    def __init__(self) -> None:
        self._names: dict[int, tuple[int, frozenset[str], Mapping[str, str]]] = {}

    def attach(self, session: Session, pointer: Pointer | None) -> Pointer | None:
        """`pointer` with its rollout's started members filled in (unchanged without one)."""
        if pointer is None or pointer.rollout is None:
            return pointer
        ref = pointer.rollout
        found = self._names.get(ref.id)
        if found is None or found[0] != ref.revision:
            names: frozenset[str] = frozenset()
            back: Mapping[str, str] = {}
            if ref.reverted:  # every node is told the previous release, or its own
                back = MappingProxyType(back_targets(session, ref.id))
            else:
                names = frozenset(
                    session.scalars(
                        select(RolloutMember.node_name).where(
                            RolloutMember.rollout_id == ref.id, RolloutMember.wave <= ref.wave
                        )
                    )
                )
            if len(self._names) >= _MAX_ROLLOUTS:
                self._names.clear()
            found = (ref.revision, names, back)
            self._names[ref.id] = found
        return replace(pointer, rollout=replace(ref, started=found[1], back=found[2]))

    def attach_all(self, session: Session, pointers: dict[str, Pointer]) -> dict[str, Pointer]:
        attached = {}
        for name, pointer in pointers.items():
            filled = self.attach(session, pointer)
            assert filled is not None
            attached[name] = filled
        return attached
