"""The batch answer: its ETag follows the content only, and If-None-Match matching."""

from __future__ import annotations

import json

from ansible_proxy.server.hotpath.batch import build_answer, matches

SHA_A, SHA_B = "a" * 64, "b" * 64


def test_the_etag_depends_on_the_bins_only() -> None:
    first = build_answer("x86_64", {"b": SHA_B, "a": SHA_A})
    same = build_answer("x86_64", {"a": SHA_A, "b": SHA_B})
    changed = build_answer("x86_64", {"a": SHA_A, "b": SHA_A})
    assert first.etag == same.etag
    assert first.etag != changed.etag
    assert first.etag.startswith('"')
    assert first.etag.endswith('"')
    body = json.loads(first.body)
    assert body == {"code": 0, "message": "success",
                    "data": {"arch": "x86_64", "bins": {"a": SHA_A, "b": SHA_B}}}  # fmt: skip


def test_if_none_match_lists_and_weak_tags_match() -> None:
    etag = build_answer("x86_64", {"a": SHA_A}).etag
    assert matches(etag, etag)
    assert matches(etag, f'"other", W/{etag}')
    assert matches(etag, "*")
    assert not matches(etag, None)
    assert not matches(etag, '"other"')


def test_withdrawn_appears_only_when_some_and_changes_the_etag() -> None:
    plain = build_answer("x86_64", {"a": SHA_A, "b": SHA_B})
    empty = build_answer("x86_64", {"a": SHA_A, "b": SHA_B}, {"a": (), "b": ()})
    assert (empty.etag, empty.body) == (plain.etag, plain.body)  # as before any pin
    pinned = build_answer("x86_64", {"a": SHA_A, "b": SHA_B}, {"b": ("c" * 64, "d" * 64)})
    assert json.loads(pinned.body)["data"] == {
        "arch": "x86_64",
        "bins": {"a": SHA_A, "b": SHA_B},
        "withdrawn": {"b": ["c" * 64, "d" * 64]},
    }
    assert pinned.etag != plain.etag  # a delete of a withdrawn release is a change too
    fewer = build_answer("x86_64", {"a": SHA_A, "b": SHA_B}, {"b": ("c" * 64,)})
    assert fewer.etag not in (plain.etag, pinned.etag)
