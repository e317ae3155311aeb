"""Config: shell-syntax file parsed (never executed), layered defaults < file < env < flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from ansible_proxy.client.config import build_config, parse_config_text, read_config_file
from ansible_proxy.errors import ConfigError

API = "https://bm:8080/api/v1"


def parse(text: str, env: dict[str, str] | None = None) -> dict[str, str]:
    values, _ = parse_config_text(text, "cfg", env or {})
    return values


def test_original_design_config_file_parses() -> None:
    text = """
# bin-manager API 地址
export BIN_MANAGER_API="http://your-bin-manager-host:8080/api/v1"

export BIN_DIR="/usr/local/bin"
export DOWNLOAD_BASE_URL="http://your-bin-manager-host:8080/api/v1/download"
"""
    values = parse(text)
    assert values["BIN_MANAGER_API"] == "http://your-bin-manager-host:8080/api/v1"
    assert values["BIN_DIR"] == "/usr/local/bin"


def test_quotes_escapes_comments_and_expansion() -> None:
    text = (
        "BASE=http://h:1\n"
        'export BIN_MANAGER_API="$BASE/api/v1"   # trailing comment\n'
        "DOWNLOAD_BASE_URL=${BASE}/dl\n"
        "BIN_DIR='/opt/$BASE literal'\n"
        'LOG_FILE="/var/log/a \\"quoted\\".log"\n'
        "NODE_NAME=$HOSTNAME_FROM_ENV\n"
        "BIN_MANAGER_TOKEN=\n"
    )
    values = parse(text, {"HOSTNAME_FROM_ENV": "node-7"})
    assert values["BIN_MANAGER_API"] == "http://h:1/api/v1"
    assert values["DOWNLOAD_BASE_URL"] == "http://h:1/dl"
    assert values["BIN_DIR"] == "/opt/$BASE literal"
    assert values["LOG_FILE"] == '/var/log/a "quoted".log'
    assert values["NODE_NAME"] == "node-7"
    assert values["BIN_MANAGER_TOKEN"] == ""


@pytest.mark.parametrize(
    "line",
    [
        'BIN_DIR="$(rm -rf /)"',
        "BIN_DIR=`id`",
        'BIN_DIR="`id`"',
        "BIN_DIR=/x; rm -rf /",
        "BIN_DIR=/x | cat",
        "BIN_DIR=/x && true",
        "BIN_DIR=/x > /etc/passwd",
        "BIN_DIR=a b",
        'BIN_DIR="unterminated',
        "rm -rf /",
        "BIN_DIR=${X:-default}",
    ],
)
def test_anything_a_shell_would_run_is_refused_with_file_and_line(line: str) -> None:
    with pytest.raises(ConfigError, match=r"^cfg:2: "):
        parse(f"# ok\n{line}\n")


def test_unknown_keys_warn() -> None:
    values, warnings = parse_config_text("FOO=1\nBIN_DIR=/b\n", "cfg", {})
    assert values["BIN_DIR"] == "/b"
    assert warnings == ["cfg:1: unknown key FOO ignored"]


def test_layers_later_wins_and_defaults() -> None:
    cfg = build_config(
        {"BIN_MANAGER_API": API, "BIN_DIR": "/file", "LOCK_TIMEOUT": "30"},
        {"BIN_DIR": "/env", "WATCH_SECONDS": "3"},
        {"WATCH_SECONDS": "4"},
        "myhost",
    )
    assert cfg.bin_dir == Path("/env")
    assert cfg.watch_seconds == 4
    assert cfg.lock_timeout == 30
    assert cfg.download_base_url == f"{API}/download"
    assert cfg.node_name == "myhost"
    assert cfg.supervisor_url == "unix:///var/run/supervisor.sock"
    assert cfg.max_download_bytes == 2 * 1024**3
    assert not cfg.insecure


def test_token_is_not_in_repr() -> None:
    cfg = build_config({"BIN_MANAGER_API": API, "BIN_MANAGER_TOKEN": "sekrit"}, {}, {}, "h")
    assert "sekrit" not in repr(cfg)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({}, "BIN_MANAGER_API is not set"),
        ({"BIN_MANAGER_API": "ftp://x"}, "BIN_MANAGER_API must be an http"),
        ({"BIN_MANAGER_API": API, "LOCK_TIMEOUT": "soon"}, "LOCK_TIMEOUT must be an integer"),
        ({"BIN_MANAGER_API": API, "INSECURE_SKIP_VERIFY": "true"}, "INSECURE_SKIP_VERIFY"),
        ({"BIN_MANAGER_API": API, "SUPERVISOR_URL": "tcp://x"}, "SUPERVISOR_URL"),
        ({"BIN_MANAGER_API": API, "CA_BUNDLE": "/nonexistent/ca.pem"}, "CA_BUNDLE"),
    ],
)
def test_bad_values_name_the_key(values: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build_config(values, {}, {}, "h")


def test_missing_file_only_fine_at_the_default_path(tmp_path: Path) -> None:
    assert read_config_file(tmp_path / "none", explicit=False, env={}) == ({}, [])
    with pytest.raises(ConfigError, match="no such file"):
        read_config_file(tmp_path / "none", explicit=True, env={})


def test_node_labels_are_parsed_once_and_layered() -> None:
    cfg = build_config(
        {"BIN_MANAGER_API": API, "NODE_LABELS": "tier=stable"},
        {"NODE_LABELS": " zone=a , tier=canary ,"},
        {},
        "h",
    )
    assert cfg.node_labels == {"zone": "a", "tier": "canary"}
    assert build_config({"BIN_MANAGER_API": API}, {}, {}, "h").node_labels == {}
    assert build_config({"BIN_MANAGER_API": API, "NODE_LABELS": " "}, {}, {}, "h").node_labels == {}


@pytest.mark.parametrize(
    ("labels", "problem"),
    [
        ("tier", "label 'tier' has no '='"),
        ("tier=canary,tier=stable", "label 'tier' is given twice"),
        ("tier=", "invalid label tier=: at most 16 k=v pairs"),
        ("=canary", "invalid label =canary"),
        ("tier=can ary", "invalid label tier=can ary"),
        ("a/b=c", "invalid label a/b=c"),
        ("k=" + "v" * 64, "invalid label k=v"),
        (",".join(f"k{i}=v" for i in range(17)), "17 labels: at most 16"),
    ],
)
def test_a_bad_node_labels_is_one_line_naming_the_key(labels: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        build_config({"BIN_MANAGER_API": API}, {"NODE_LABELS": labels}, {}, "h")
    message = str(caught.value)
    assert message.startswith(f"NODE_LABELS: {problem}")
    assert "\n" not in message


def test_a_newline_in_node_labels_stays_on_one_line() -> None:
    with pytest.raises(ConfigError) as caught:
        build_config({"BIN_MANAGER_API": API}, {"NODE_LABELS": "tier=a\nb"}, {}, "h")
    assert str(caught.value).startswith("NODE_LABELS: invalid label tier=a\\nb: ")
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("values", "refused"),
    [
        ({"BIN_MANAGER_API": "http://198.51.100.7:8080/api/v1"}, "BIN_MANAGER_API"),
        ({"BIN_MANAGER_API": "http://bm.example/api/v1"}, "BIN_MANAGER_API"),
        ({"DOWNLOAD_BASE_URL": "http://198.51.100.1:8081/api/v1/download"}, "DOWNLOAD_BASE_URL"),
        ({"BIN_MANAGER_API": "http://127.0.0.1:8080/api/v1"}, ""),
        ({"BIN_MANAGER_API": "http://127.3.0.1:8080/api/v1"}, ""),
        ({"BIN_MANAGER_API": "http://localhost:8080/api/v1"}, ""),
        ({"BIN_MANAGER_API": "http://[::1]:8080/api/v1"}, ""),
        ({"BIN_MANAGER_API": "https://bm.example/api/v1"}, ""),
    ],
)
def test_plain_http_off_loopback_is_refused_without_signatures(
    values: dict[str, str], refused: str
) -> None:
    file_values = {"BIN_MANAGER_API": "https://bm.example/api/v1", **values}
    if refused:
        with pytest.raises(ConfigError, match=f"^{refused} http://.*ALLOW_INSECURE_HTTP=1"):
            build_config(file_values, {}, {}, "h")
        accepted = build_config(file_values, {"ALLOW_INSECURE_HTTP": "1"}, {}, "h")
        assert accepted.api == file_values["BIN_MANAGER_API"]
    else:
        build_config(file_values, {}, {}, "h")


def test_the_refusal_never_shows_credentials_in_the_url() -> None:
    with pytest.raises(ConfigError) as caught:
        build_config({"BIN_MANAGER_API": "http://user:hunter2@bm.example/api"}, {}, {}, "h")
    assert "hunter2" not in str(caught.value)


def test_trusted_keys_allow_plain_http_and_a_bad_file_is_one_line(tmp_path: Path) -> None:
    keys = tmp_path / "trusted_keys"
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOtXqOWuRHxCl9k0D60Km3QSS72pX01WyWSjwsurOvus"
    keys.write_text(f"alice {key} alice\n# threshold: 1\n")
    plain = {"BIN_MANAGER_API": "http://198.51.100.7:8080/api/v1", "TRUSTED_KEYS": str(keys)}
    cfg = build_config(plain, {}, {}, "h")
    assert cfg.trusted_keys is not None
    assert cfg.trusted_keys.principals == ("alice",)
    with pytest.raises(ConfigError, match=r"TRUSTED_KEYS .*missing: cannot read"):
        build_config({**plain, "TRUSTED_KEYS": str(tmp_path / "missing")}, {}, {}, "h")
    keys.write_text(f"# threshold: 2\nalice {key}\n")
    with pytest.raises(ConfigError, match="threshold 2 but 1 distinct signers"):
        build_config(plain, {}, {}, "h")
    with pytest.raises(ConfigError, match="ALLOW_INSECURE_HTTP must be 1 or empty"):
        build_config({"BIN_MANAGER_API": API, "ALLOW_INSECURE_HTTP": "yes"}, {}, {}, "h")
