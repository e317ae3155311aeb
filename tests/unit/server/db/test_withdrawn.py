"""Withdrawn releases are derived from the latest pointer: newer releases of the bin and arch."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from ansible_proxy.protocol import MAX_WITHDRAWN
from ansible_proxy.server.db.models import Bin, Release
from ansible_proxy.server.db.withdrawn import withdrawn_by_bin, withdrawn_of

NOW = datetime(2026, 12, 1)


def _releases(session: Session, name: str, arch: str, count: int) -> tuple[int, list[str]]:
    bin_ = session.query(Bin).filter_by(name=name).one_or_none()
    if bin_ is None:
        bin_ = Bin(name=name, paused=False, created_at=NOW)
        session.add(bin_)
        session.flush()
    shas = []
    for index in range(count):
        sha = f"{name[0]}{arch[0]}{index:062d}"
        session.add(Release(bin_id=bin_.id, arch=arch, sha256=sha, size=1, published_at=NOW))
        session.flush()
        shas.append(sha)
    return bin_.id, shas


def test_newer_releases_of_the_same_bin_and_arch_newest_first(
    sessions: sessionmaker[Session],
) -> None:
    with sessions() as session:
        app, shas = _releases(session, "app", "x86_64", 4)
        _releases(session, "app", "aarch64", 3)
        tool, tools = _releases(session, "tool", "x86_64", 2)
        assert withdrawn_of(session, app, "x86_64", shas[1]) == (shas[3], shas[2])
        assert withdrawn_of(session, app, "x86_64", shas[3]) == ()  # the newest: none
        assert withdrawn_of(session, app, "x86_64", None) == ()
        assert withdrawn_of(session, app, "aarch64", shas[1]) == ()  # no such aarch64 release
        both = withdrawn_by_bin(session, "x86_64", {app: shas[0], tool: tools[1]})
        assert both == {app: (shas[3], shas[2], shas[1])}
        assert withdrawn_by_bin(session, "x86_64", {}) == {}


def test_the_list_is_bounded_to_the_newest(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        app, shas = _releases(session, "app", "x86_64", MAX_WITHDRAWN + 5)
        newest = tuple(reversed(shas))[:MAX_WITHDRAWN]
        assert withdrawn_of(session, app, "x86_64", shas[0]) == newest
        assert withdrawn_by_bin(session, "x86_64", {app: shas[0]}) == {app: newest}
