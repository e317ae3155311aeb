"""Settings refuse tokens that would leave the server open by accident."""

from __future__ import annotations

from pathlib import Path

import pytest

from ansible_proxy.errors import ConfigError
from ansible_proxy.server.settings import Settings, load_settings, token_refusal

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
        ("abababababababababab", "fewer than 4 distinct"),
    ],
)
def test_weak_tokens_are_refused(token: str | None, reason: str) -> None:
    refusal = token_refusal(token, "the admin token")
    assert refusal is not None
    assert reason in refusal


def test_a_random_token_is_accepted() -> None:
    assert token_refusal(GOOD, "the admin token") is None


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
