"""Node credentials cached for minutes on a real SQLite database: every change to a
credential, in this process or committed by another one, drops what it touched (the
CredentialWatch's next look), and a lookup that raced a change is kept only briefly."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from ansible_proxy.protocol import NodeInfo
from ansible_proxy.server.auth.credentials import Bearer, Credentials, NodeAuth
from ansible_proxy.server.auth.watch import CredentialWatch
from ansible_proxy.server.db import credentials as db
from ansible_proxy.server.db.credentials import Binding, Principal
from ansible_proxy.server.db.engine import stored_now
from ansible_proxy.server.limits.throttle import Throttle

NODE_TOKEN = "n" * 43
NEW_TOKEN = "m" * 43
PROXY_TOKEN = "p" * 43


class Clock:
    now = 1000.0

    def __call__(self) -> float:
        return self.now


def _credentials(sessions: sessionmaker[Session], clock: Clock) -> Credentials:
    throttle = Throttle(30, 0.5, 30, 0.5)
    return Credentials(sessions, NodeAuth.REQUIRED, False, (None, None), throttle, clock=clock)


def _bearer(token: str) -> Bearer:
    return Bearer(token, db.token_hash(token), "192.0.2.1")


def _enrol(sessions: sessionmaker[Session], name: str, token: str) -> None:
    info = NodeInfo(nodeName=name, cpuArch="x86_64", osRelease="t", binProxyVersion="1")
    with sessions() as session:
        db.enrol(session, info, db.token_hash(token), None, True, "", stored_now())
        session.commit()


def _in_another_process(sessions: sessionmaker[Session], change: str, name: str) -> None:
    """What another worker or replica commits: this process' Credentials is not told."""
    with sessions() as session:
        now: datetime = stored_now()
        if change == "revoke":
            db.revoke(session, name, now)
        elif change == "revoke proxy":
            db.revoke_proxy(session, name, now)
        session.commit()


def _cached(nodes: Credentials, token: str) -> tuple[bool, Principal | None]:
    return nodes.cached_principal(db.token_hash(token))


def test_a_valid_credential_is_answered_from_memory_for_minutes_a_wrong_one_for_seconds(
    sessions: sessionmaker[Session],
) -> None:
    _enrol(sessions, "web-01", NODE_TOKEN)
    clock = Clock()
    nodes = _credentials(sessions, clock)

    async def scenario() -> None:
        assert await nodes.principal(_bearer(NODE_TOKEN)) == Principal("node", "web-01")
        assert await nodes.principal(_bearer("w" * 43)) is None
        assert (await nodes.state("web-01")).binding is Binding.ENROLLED
        assert (await nodes.state("web-02")).binding is Binding.NONE

    asyncio.run(scenario())
    clock.now += 300  # a node ticking every minute: its next five keepalives hit memory
    assert _cached(nodes, NODE_TOKEN) == (True, Principal("node", "web-01"))
    assert nodes.cached_state("web-01") is not None
    assert _cached(nodes, "w" * 43) == (False, None)  # unknown tokens: asked again
    assert nodes.cached_state("web-02") is None  # not enrolled: asked again (it may enrol)
    clock.now += 301  # the max age bounds anything no change dropped
    assert _cached(nodes, NODE_TOKEN) == (False, None)


def test_changes_committed_by_another_process_are_dropped_at_the_watchs_next_look(
    sessions: sessionmaker[Session],
) -> None:
    _enrol(sessions, "web-01", NODE_TOKEN)
    _enrol(sessions, "web-02", "o" * 43)
    with sessions() as session:
        db.create_proxy(session, "edge", db.token_hash(PROXY_TOKEN), stored_now())
        session.commit()
    nodes = _credentials(sessions, Clock())
    watch = CredentialWatch(sessions, nodes)

    async def scenario() -> None:
        await watch.check()  # the enrolments above: seen once
        for token in (NODE_TOKEN, "o" * 43, PROXY_TOKEN):
            assert await nodes.principal(_bearer(token)) is not None
        await nodes.state("web-01")
        assert await watch.check() == 0  # nothing changed since: every answer stays
        assert _cached(nodes, "o" * 43)[0]

        _in_another_process(sessions, "revoke", "web-01")
        _in_another_process(sessions, "revoke proxy", "edge")
        assert _cached(nodes, NODE_TOKEN) == (True, Principal("node", "web-01"))  # not yet
        assert await watch.check(wide=False) == 2  # the look of every second
        assert _cached(nodes, NODE_TOKEN) == (False, None)
        assert nodes.cached_state("web-01") is None
        assert _cached(nodes, PROXY_TOKEN) == (False, None)
        assert await nodes.principal(_bearer(NODE_TOKEN)) is None  # refused from now on
        assert await nodes.principal(_bearer(PROXY_TOKEN)) is None
        assert (await nodes.state("web-01")).binding is Binding.REVOKED
        assert _cached(nodes, "o" * 43) == (True, Principal("node", "web-02"))  # untouched

        # Approved again with a new token elsewhere: its refusal is not kept either.
        assert await nodes.principal(_bearer(NEW_TOKEN)) is None
        info = NodeInfo(nodeName="web-01", cpuArch="x86_64", osRelease="t", binProxyVersion="1")
        with sessions() as session:
            db.enrol(session, info, db.token_hash(NEW_TOKEN), None, True, "", stored_now())
            db.approve(session, "web-01", None, stored_now())
            session.commit()
        assert await watch.check() == 1
        assert await nodes.principal(_bearer(NEW_TOKEN)) == Principal("node", "web-01")

    asyncio.run(scenario())


def test_a_lookup_that_raced_a_change_to_its_name_is_not_kept_for_minutes(
    sessions: sessionmaker[Session],
) -> None:
    _enrol(sessions, "web-01", NODE_TOKEN)
    clock = Clock()
    nodes = _credentials(sessions, clock)
    changed: list[str] = []

    def racing() -> Session:
        for name in changed:  # a revoke in this process while the lookup runs
            nodes.forget_name(name)
        return sessions()

    nodes.sessions = racing  # type: ignore[assignment]
    changed[:] = ["web-09"]  # another node's change: this answer is not concerned
    found = asyncio.run(nodes.principal(_bearer(NODE_TOKEN)))
    clock.now += 60
    assert _cached(nodes, NODE_TOKEN) == (True, found)
    nodes.forget_name("web-01")
    changed[:] = ["web-01"]  # its own name's change: what it read may be stale
    found = asyncio.run(nodes.principal(_bearer(NODE_TOKEN)))
    assert found == Principal("node", "web-01")  # what it read (before the revoke)
    assert _cached(nodes, NODE_TOKEN) == (True, found)
    clock.now += 6  # kept no longer than an unknown token's answer, not for minutes
    assert _cached(nodes, NODE_TOKEN) == (False, None)


def test_answers_about_to_end_are_checked_again_in_bulk_and_kept_while_the_row_agrees(
    sessions: sessionmaker[Session],
) -> None:
    _enrol(sessions, "web-01", NODE_TOKEN)
    _enrol(sessions, "web-02", "o" * 43)
    clock = Clock()
    nodes = _credentials(sessions, clock)
    watch = CredentialWatch(sessions, nodes)

    async def scenario() -> None:
        await watch.check()
        for token, name in ((NODE_TOKEN, "web-01"), ("o" * 43, "web-02")):
            await nodes.principal(_bearer(token))
            await nodes.state(name)
        # A revocation the margins missed: a replica's clock an hour behind.
        with sessions() as session:
            db.revoke(session, "web-02", stored_now() - timedelta(hours=1))
            session.commit()
        assert await watch.check() == 0  # not among the changes of the last minute
        clock.now += 570  # a minute before the max age: read again, 500 names a query
        assert await watch.check() == 1
        clock.now += 400  # past the first max age: the agreeing answers were kept
        assert _cached(nodes, NODE_TOKEN) == (True, Principal("node", "web-01"))
        assert nodes.cached_state("web-01") is not None
        assert _cached(nodes, "o" * 43) == (False, None)  # its row said revoked: dropped
        assert await nodes.principal(_bearer("o" * 43)) is None

    asyncio.run(scenario())
