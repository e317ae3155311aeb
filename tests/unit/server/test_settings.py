"""Settings refuse tokens that would leave the server open by accident."""

from __future__ import annotations

from pathlib import Path

import pytest

from ansible_proxy.errors import ConfigError
from ansible_proxy.server.settings import (
    Settings,
    insecure_refusal,
    load_settings,
    token_bits,
    token_refusal,
)

GOOD = "k3Jd9-wQ2mZx7_pLr4Tv"


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        (None, "is empty"),
        ("", "is empty"),
        ("   ", "is empty"),
        ("admin", "well-known"),
        ("ChangeMe", "well-known"),
        ("secret", "well-known"),
        ("password", "well-known"),
        ("token", "well-known"),
        ("123456", "well-known"),
        ("1234567890123456", "well-known"),
        ("abcdefghijklmno", "shorter than 16"),
        ("abababababababababab", "too guessable"),
        ("abcdabcdabcdabcd", "too guessable"),  # accepted before entropy was measured
        ("2024202420242024", "too guessable"),
        ("0123456789876543210", "too guessable"),
        ("Aa1!Aa1!Aa1!Aa1!Aa1!", "too guessable"),
    ],
)
def test_weak_tokens_are_refused(token: str | None, reason: str) -> None:
    refusal = token_refusal(token, "the admin token")
    assert refusal is not None
    assert reason in refusal


def test_a_random_token_is_accepted() -> None:
    assert token_refusal(GOOD, "the admin token") is None
    assert token_refusal("9f86d081884c7d659a2feaa0c55ad015", "the admin token") is None


def test_entropy_is_estimated_per_character_class_and_pattern() -> None:
    assert token_bits("abcdabcdabcdabcd") < 8  # one counted character of 26
    assert 60 < token_bits("qmwnebrvtcyxuzia") < 80  # 16 lower-case letters, no runs
    assert token_bits(GOOD) > 100
    refusal = token_refusal("abcdabcdabcdabcd", "the admin token")
    assert refusal is not None
    assert "about 5 bits of entropy, at least 64 wanted" in refusal


@pytest.mark.parametrize(
    ("env", "host", "says"),
    [
        ({"BIN_MANAGER_ADMIN_TOKEN": GOOD}, "127.0.0.1", "ignore BIN_MANAGER_ADMIN_TOKEN"),
        ({"BIN_MANAGER_AGENT_TOKEN": GOOD}, "127.0.0.1", "ignore BIN_MANAGER_AGENT_TOKEN"),
        ({}, "0.0.0.0", "anyone who reaches 0.0.0.0"),
        ({}, "10.0.0.5", "anyone who reaches 10.0.0.5"),
        ({}, "bin-manager.example", "anyone who reaches bin-manager.example"),
    ],
)
def test_insecure_mode_is_refused_with_a_token_or_off_loopback(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], host: str, says: str
) -> None:
    for key in ("ADMIN", "AGENT", "METRICS"):
        monkeypatch.delenv(f"BIN_MANAGER_{key}_TOKEN", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    refusal = insecure_refusal(load_settings(insecure_no_auth=True), host)
    assert refusal is not None
    assert says in refusal


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.53", "::1", "[::1]", "localhost"])
def test_insecure_mode_on_loopback_without_tokens_is_allowed(
    monkeypatch: pytest.MonkeyPatch, host: str
) -> None:
    for key in ("ADMIN", "AGENT", "METRICS"):
        monkeypatch.delenv(f"BIN_MANAGER_{key}_TOKEN", raising=False)
    assert insecure_refusal(load_settings(insecure_no_auth=True), host) is None


def test_load_settings_refuses_a_weak_admin_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BIN_MANAGER_ADMIN_TOKEN", "admin")
    with pytest.raises(ConfigError, match="refusing to start") as caught:
        load_settings()
    assert "\n" not in str(caught.value)


def test_insecure_no_auth_allows_no_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BIN_MANAGER_ADMIN_TOKEN", raising=False)
    settings = load_settings(insecure_no_auth=True)
    assert settings.admin_token is None


def test_a_weak_agent_token_is_refused_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BIN_MANAGER_ADMIN_TOKEN", GOOD)
    monkeypatch.setenv("BIN_MANAGER_AGENT_TOKEN", "agent")
    with pytest.raises(ConfigError, match="agent token"):
        load_settings()


def test_a_weak_metrics_token_is_refused_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BIN_MANAGER_ADMIN_TOKEN", GOOD)
    monkeypatch.setenv("BIN_MANAGER_METRICS_TOKEN", "abcdabcdabcdabcd")
    with pytest.raises(ConfigError, match=r"metrics token .* too guessable"):
        load_settings()


def test_flags_win_over_the_environment_and_defaults_apply(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("BIN_MANAGER_ADMIN_TOKEN", GOOD)
    monkeypatch.setenv("BIN_MANAGER_DATA_DIR", "/from/env")
    monkeypatch.delenv("BIN_MANAGER_MAX_UPLOAD_BYTES", raising=False)
    monkeypatch.delenv("BIN_MANAGER_DATABASE_URL", raising=False)
    settings = load_settings(data_dir=tmp_path, database_url=None)
    assert settings.data_dir == tmp_path
    assert settings.max_upload_bytes == 2 * 1024**3
    assert settings.resolved_database_url.endswith(f"{tmp_path}/bin-manager.sqlite3")
    assert GOOD not in repr(settings)  # secrets never printed


def test_a_bad_setting_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BIN_MANAGER_ADMIN_TOKEN", GOOD)
    monkeypatch.setenv("BIN_MANAGER_MAX_UPLOAD_BYTES", "lots")
    with pytest.raises(ConfigError, match="max_upload_bytes"):
        load_settings()


def test_default_data_dir_is_relative() -> None:
    assert Settings(insecure_no_auth=True).data_dir == Path("bin-manager-data")


def test_a_bad_default_rollout_or_webhook_entry_is_one_line_naming_it() -> None:
    token = "Zq8-2kLmP0xYw7Rt4VbN6sJd"
    with pytest.raises(ConfigError) as caught:
        load_settings(
            admin_token=token, default_rollout="--canary 0 --waves 100% --bake 1 --max-failures 1"
        )
    assert str(caught.value) == (
        "invalid setting default_rollout: BIN_MANAGER_DEFAULT_ROLLOUT: "
        "--canary '0': must be at least 1"
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(admin_token=token, webhook_urls="https://ok.example/a#secret=s3cr3t, ftp://x")
    assert "entry 2 (ftp://x)" in str(caught.value)
    assert "s3cr3t" not in str(caught.value)
    assert load_settings(admin_token=token, default_rollout="--immediate").rollout_policy.immediate
