"""The pointer cache: fresh for a TTL, one refresher when stale, cleared by writes."""

from __future__ import annotations

from ansible_proxy.server.db.queries import Pointer
from ansible_proxy.server.hotpath.pointers import PointerCache, Target

POINTER = Pointer(bin_id=1, paused=False, sha256="a" * 64, paused_release_id=None)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_entries_are_fresh_for_the_ttl() -> None:
    clock = Clock()
    cache = PointerCache(ttl=1.0, clock=clock)
    assert cache.get("app", "x86_64") == (False, None)
    cache.put("app", "x86_64", POINTER)
    assert cache.get("app", "x86_64") == (True, POINTER)
    assert cache.get("app", "aarch64") == (False, None)
    cache.put("gone", "x86_64", None)  # an unknown bin is remembered too
    assert cache.get("gone", "x86_64") == (True, None)


def test_a_stale_entry_is_refreshed_by_one_caller_while_others_get_it() -> None:
    clock = Clock()
    cache = PointerCache(ttl=1.0, clock=clock)
    cache.put("app", "x86_64", POINTER)
    clock.now += 1.5
    assert cache.get("app", "x86_64") == (False, None)  # this caller refreshes
    assert cache.get("app", "x86_64") == (True, POINTER)  # the others: stale, briefly
    clock.now += 1.0
    assert cache.get("app", "x86_64") == (False, None)  # the refresh never came: ask again


def test_clear_and_is_latest() -> None:
    cache = PointerCache(ttl=10.0, clock=Clock())
    cache.put("app", "x86_64", POINTER)
    assert cache.is_latest("app", Target(bin_id=1, arch="x86_64", sha256="a" * 64))
    assert not cache.is_latest("app", Target(bin_id=1, arch="x86_64", sha256="b" * 64))
    cache.put("paused", "x86_64", Pointer(2, True, "a" * 64, None))
    assert not cache.is_latest("paused", Target(bin_id=2, arch="x86_64", sha256="a" * 64))
    cache.clear()
    assert cache.get("app", "x86_64") == (False, None)


def test_withdrawn_travels_with_its_pointer() -> None:
    clock = Clock()
    cache = PointerCache(ttl=1.0, clock=clock)
    withdrawn = ("c" * 64, "b" * 64)
    cache.put("app", "x86_64", POINTER, withdrawn)
    assert cache.lookup("app", "x86_64") == (True, POINTER, withdrawn)
    assert cache.peek("app", "x86_64") == (POINTER, withdrawn)
    cache.put("gone", "x86_64", None)
    assert cache.peek("gone", "x86_64") is None  # the route answers an unknown bin's 404
    clock.now += 1.0
    assert cache.peek("app", "x86_64") is None  # stale, and no request refreshes it: the route


def test_a_refresh_read_before_a_change_is_not_kept_after_the_change_cleared_the_cache() -> None:
    # The race a staged rollout's test met: a poll reads the old latest, a publish commits
    # and clears, then the poll puts the old answer back (stale for a whole TTL).
    cache = PointerCache(ttl=60.0, clock=Clock())
    before = cache.generation  # the poll starts reading
    cache.clear()  # the publish commits and clears
    cache.put("app", "x86_64", POINTER, (), before)
    cache.put_batch("x86_64", "old snapshot", before)
    assert cache.get("app", "x86_64") == (False, None)
    assert cache.get_batch("x86_64") is None
    cache.put("app", "x86_64", POINTER, (), cache.generation)  # a read after the change
    assert cache.get("app", "x86_64") == (True, POINTER)


def test_a_stale_entry_is_answered_from_memory_only_while_a_request_refreshes_it() -> None:
    # 64 pollers and a stale entry: one refreshes it, the others (the fast path's too)
    # get the stale one meanwhile, for at most another ttl; before, each of them took
    # the FastAPI route (and each batch poll its own database read) until the refresh.
    clock = Clock()
    cache = PointerCache(ttl=1.0, clock=clock)
    cache.put("app", "x86_64", POINTER)
    cache.put_batch("x86_64", "snapshot")
    clock.now += 1.0
    assert cache.peek("app", "x86_64") is None  # no one refreshes yet: the route must
    assert cache.peek_batch("x86_64") is None
    assert cache.get("app", "x86_64") == (False, None)  # this request refreshes it
    assert cache.get_batch("x86_64") is None  # and this one the batch
    assert cache.peek("app", "x86_64") == (POINTER, ())
    assert cache.peek_batch("x86_64") == "snapshot"
    assert cache.get_batch("x86_64") == "snapshot"
    assert cache.fresh_batch("x86_64") is None  # the refresher itself reads the database
    clock.now += 1.0  # a refresh that never came back: no longer than another ttl
    assert cache.peek("app", "x86_64") is None
    assert cache.peek_batch("x86_64") is None
