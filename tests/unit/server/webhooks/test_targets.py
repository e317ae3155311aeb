"""BIN_MANAGER_WEBHOOK_URLS: entries split, secrets split off, bad entries named without them."""

from __future__ import annotations

import pytest

from ansible_proxy.errors import ConfigError
from ansible_proxy.server.webhooks.targets import (
    MAX_TARGETS,
    WebhookTarget,
    parse_targets,
    redact,
)


@pytest.mark.parametrize("text", [None, "", "  \n ,, \t"])
def test_nothing_configured_is_no_targets(text: str | None) -> None:
    assert parse_targets(text) == ()


def test_entries_are_split_on_commas_whitespace_and_newlines_in_order() -> None:
    text = (
        "https://a.example/hook,http://b.example:8080/x\n  https://c.example/  \thttp://d.example"
    )
    assert [t.url for t in parse_targets(text)] == [
        "https://a.example/hook",
        "http://b.example:8080/x",
        "https://c.example/",
        "http://d.example",
    ]


def test_the_secret_is_split_off_the_url() -> None:
    (signed, plain) = parse_targets(
        "https://hooks.example/in#secret=s3cr=t!, http://other.example/"
    )
    assert signed == WebhookTarget(url="https://hooks.example/in", secret="s3cr=t!")
    assert plain == WebhookTarget(url="http://other.example/", secret=None)


def test_the_repr_hides_the_secret() -> None:
    (target,) = parse_targets("https://hooks.example/in#secret=hunter2")
    assert "hunter2" not in repr(target)
    assert "hunter2" not in str(target)
    assert "https://hooks.example/in" in repr(target)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "https://ok.example ftp://x",
            "BIN_MANAGER_WEBHOOK_URLS: entry 2 (ftp://x) is not an http:// or https:// URL",
        ),
        (
            "hooks.example/in#secret=hunter2",
            "BIN_MANAGER_WEBHOOK_URLS: entry 1 (hooks.example/in) is not an http:// or "
            "https:// URL",
        ),
        ("http://#secret=hunter2", "BIN_MANAGER_WEBHOOK_URLS: entry 1 (http://) has no host"),
        (
            "https://h.example:99999/x#secret=hunter2",
            "BIN_MANAGER_WEBHOOK_URLS: entry 1 (https://h.example:99999/…) has an invalid port",
        ),
        (
            "https://me:hunter2@h.example/x",
            "BIN_MANAGER_WEBHOOK_URLS: entry 1 (https://h.example/…) holds a user or password: "
            "give a #secret=SECRET instead",
        ),
        (
            "https://h.example/x#token=hunter2",
            "BIN_MANAGER_WEBHOOK_URLS: entry 1 (https://h.example/…) has a fragment other than "
            "#secret=SECRET",
        ),
        (
            "https://h.example/x#secret=",
            "BIN_MANAGER_WEBHOOK_URLS: entry 1 (https://h.example/…) has a fragment other than "
            "#secret=SECRET",
        ),
        (
            "https://h.example/x#secret=hunter2 https://h.example/x#secret=other",
            "BIN_MANAGER_WEBHOOK_URLS: entry 2 (https://h.example/…) repeats entry 1",
        ),
        (
            "https://h.example/" + "a" * 2048,
            "BIN_MANAGER_WEBHOOK_URLS: entry 1 (https://h.example/…) is longer than 2048 "
            "characters",
        ),
    ],
)
def test_a_bad_entry_is_named_in_one_line_without_its_secret(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_targets(text)
    assert str(caught.value) == message
    assert "hunter2" not in str(caught.value)


def test_at_most_sixteen_entries() -> None:
    urls = [f"https://h{n}.example/" for n in range(MAX_TARGETS)]
    assert len(parse_targets(",".join(urls))) == MAX_TARGETS
    with pytest.raises(ConfigError, match=r"^BIN_MANAGER_WEBHOOK_URLS: 17 entries, at most 16$"):
        parse_targets(",".join([*urls, "https://one-more.example/"]))


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://hooks.slack.example/services/T0/B0/token", "https://hooks.slack.example/…"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("http://127.0.0.1:8080/", "http://127.0.0.1:8080"),
        ("https://h.example/?token=x", "https://h.example/…"),
    ],
)
def test_redact_keeps_scheme_and_host_only(url: str, shown: str) -> None:
    assert redact(url) == shown
