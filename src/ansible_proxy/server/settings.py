"""Server settings: built once from flags and `BIN_MANAGER_*` environment variables.

Refuses to build with an empty or well-known admin token unless auth is explicitly off.
"""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ansible_proxy.errors import ConfigError
from ansible_proxy.names import is_loopback_host
from ansible_proxy.server.rollouts.policy import Policy, PolicyError, parse_policy_text
from ansible_proxy.server.webhooks.targets import parse_targets

MIN_TOKEN_LENGTH = 16
MIN_TOKEN_BITS = 64
DEFAULT_DATA_DIR = Path("bin-manager-data")
DEFAULT_MAX_UPLOAD_BYTES = 2 * 1024**3
DEFAULT_FORGET_NODES_DAYS = 90.0
WELL_KNOWN_TOKENS = frozenset(
    {
        "admin",
        "administrator",
        "changeme",
        "change-me",
        "default",
        "letmein",
        "password",
        "passw0rd",
        "root",
        "secret",
        "test",
        "token",
        "123456",
        "12345678",
        "1234567890123456",
        "0000000000000000",
        "aaaaaaaaaaaaaaaa",
        "changemechangeme",
        "secretsecretsecret",
    }
)


def token_refusal(token: str | None, what: str) -> str | None:
    """Why `token` may not protect the server (one line), or None when it is acceptable."""
    if token is None or not token.strip():
        return f"{what} is empty"
    if token.strip().lower() in WELL_KNOWN_TOKENS:
        return f"{what} is a well-known default value"
    if len(token) < MIN_TOKEN_LENGTH:
        return f"{what} is shorter than {MIN_TOKEN_LENGTH} characters"
    bits = token_bits(token)
    if bits < MIN_TOKEN_BITS:
        return (
            f"{what} is too guessable: about {bits:.0f} bits of entropy, at least "
            f"{MIN_TOKEN_BITS} wanted (e.g. `openssl rand -hex 24`)"
        )
    return None


def token_bits(token: str) -> float:
    """A cautious estimate of a token's entropy in bits: log2(alphabet) per character,
    where the alphabet is the union of the character classes used, and a token made of a
    repeated unit counts the unit once; a character that repeats or continues a run from
    the one before (aa, ab, 21) adds nothing."""
    unit = next(
        token[:p]
        for p in range(1, len(token) + 1)
        if (token[:p] * len(token))[: len(token)] == token
    )
    alphabet = sum(
        size
        for size, has in (
            (26, any("a" <= c <= "z" for c in unit)),
            (26, any("A" <= c <= "Z" for c in unit)),
            (10, any(c.isascii() and c.isdigit() for c in unit)),
            (33, any(c.isascii() and not c.isalnum() for c in unit)),
            (100, any(not c.isascii() for c in unit)),
        )
        if has
    )
    counted = sum(1 for i, c in enumerate(unit) if i == 0 or abs(ord(c) - ord(unit[i - 1])) > 1)
    return counted * math.log2(max(alphabet, 2))


def insecure_refusal(settings: Settings, host: str) -> str | None:
    """Why --insecure-no-auth may not start on `host` with these settings (one line)."""
    if not settings.insecure_no_auth:
        return None
    tokens = [
        f"BIN_MANAGER_{name.upper()}"
        for name in ("admin_token", "agent_token", "metrics_token", "enrolment_token")
        if getattr(settings, name) is not None
    ]
    if tokens:
        return (
            f"--insecure-no-auth would ignore {', '.join(tokens)}: unset "
            f"{'it' if len(tokens) == 1 else 'them'} or drop --insecure-no-auth"
        )
    if not is_loopback_host(host):
        return (
            f"--insecure-no-auth opens the admin API to anyone who reaches {host}: "
            "listen on 127.0.0.1 or ::1 (--host), or set an admin token"
        )
    return None


class Settings(BaseSettings):
    """Everything `bin-manager serve` needs; frozen, passed to create_app()."""

    model_config = SettingsConfigDict(env_prefix="BIN_MANAGER_", frozen=True, extra="ignore")

    admin_token: SecretStr | None = None
    agent_token: SecretStr | None = None
    # Node credentials (docs/security.md): "required" or "migrate" (a fleet moving to them).
    node_auth: Literal["required", "migrate"] = "required"
    enrolment_token: SecretStr | None = None  # a host showing it enrols a free name at once
    max_pending_enrolments: int = Field(default=1000, ge=1)
    # A request waiting for approval is dropped after this long (the agent asks again).
    pending_enrolment_hours: float = Field(default=24.0, gt=0, le=24 * 365)
    # Per client address (server/throttle.py): a burst, then so many a second; burst 0 = off.
    enrol_burst: int = Field(default=30, ge=0)
    enrol_per_second: float = Field(default=0.5, gt=0)
    auth_failure_burst: int = Field(default=30, ge=0)
    auth_failure_per_second: float = Field(default=0.5, gt=0)
    # Bearer for GET /metrics besides the admin token (docs/security.md "Other defaults").
    metrics_token: SecretStr | None = None
    # The dashboard's cookie is Secure even when the request reached us over plain HTTP
    # (behind a TLS-terminating proxy); otherwise Secure only for https requests.
    secure_cookies: bool = False
    data_dir: Path = DEFAULT_DATA_DIR
    database_url: str | None = None
    max_upload_bytes: int = Field(default=DEFAULT_MAX_UPLOAD_BYTES, gt=0)
    # Limits before work (docs/security.md): refused before the app reads or parses more.
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)  # every body but an upload's
    max_url_bytes: int = Field(default=8 * 1024, ge=256)
    max_header_bytes: int = Field(default=32 * 1024, ge=1024)  # all header lines together
    header_timeout_seconds: float = Field(default=10.0, gt=0, le=3600)
    body_timeout_seconds: float = Field(default=30.0, gt=0, le=3600)  # longest pause
    keepalive_seconds: int = Field(default=5, ge=1, le=3600)
    max_connections: int = Field(default=2048, ge=8)
    insecure_no_auth: bool = False
    # The dashboard's pages show node names and versions: login required unless this is set.
    dashboard_public: bool = False
    # Fleet scale (docs/bin-manager.md "Retention", docs/scale-out.md).
    history_days: float = Field(default=30.0, gt=0)
    history_max_rows: int = Field(default=1_000_000, gt=0)
    forget_nodes_days: float = Field(default=DEFAULT_FORGET_NODES_DAYS, ge=0)  # 0 = never
    prune_interval_seconds: float = Field(default=60.0, ge=0)
    # How often the last-seen time of known nodes is written (docs/bin-manager.md "Heartbeats").
    heartbeat_flush_seconds: float = Field(default=1.0, gt=0, le=300)
    # Off: every request goes through the FastAPI routes (server/hotpath/fastpath.py says why not).
    fast_path: bool = True
    x_accel_redirect: str = ""  # e.g. /_artifacts/: nginx sends the file; empty = off
    # Staged rollouts (docs/bin-manager.md "Rollouts"; server/rollouts/policy.py): the
    # policy of a bin that has none of its own, "immediate" or `rollout set`'s options.
    default_rollout: str = "--canary 1 --waves 25%,100% --bake 300 --max-failures 1"
    rollout_interval_seconds: float = Field(default=2.0, gt=0, le=300)  # promotion checks
    # A member of a started wave silent this long (no call at all) counts as offline.
    rollout_silent_seconds: float = Field(default=180.0, gt=0, le=86400)
    # A node not heard this long is left out of a new rollout (rollouts/eligible.py).
    rollout_stale_seconds: float = Field(default=86400.0, gt=0, le=365 * 86400)
    # A wave waiting this long past its bake sends `rollout-stuck`, once (rollouts/stuck.py).
    rollout_stuck_seconds: float = Field(default=3600.0, gt=0, le=30 * 86400)
    # The calendar clock maintenance windows and freezes are judged by starts here (with its
    # zone) and runs on from the process's start: for tests and rehearsals. Unset: UTC now.
    clock_start: datetime | None = None
    # Notifications (server/webhooks/): URL[#secret=S] entries, comma or newline separated.
    webhook_urls: SecretStr | None = None
    # Node events folded per receiver (server/webhooks/folding.py): a repeat within this
    # many seconds waits and is counted in one summary; 0 sends every repeat.
    webhook_repeat_seconds: float = Field(default=300.0, ge=0, le=86400)
    # At most so many node events per node and per bin in each window of period seconds;
    # the rest wait and go out as one summary; 0: no limit.
    webhook_per_node: int = Field(default=5, ge=0)
    webhook_per_bin: int = Field(default=20, ge=0)
    webhook_period_seconds: float = Field(default=60.0, gt=0, le=86400)
    # Signed releases (issue 18; server/services/signatures.py): refuse a publish or a pin
    # that carries no signed statement; and, when set, accept only signatures made by a key
    # of this OpenSSH allowed_signers file (the hosts' TRUSTED_KEYS, or a part of it).
    require_signed: bool = False
    trusted_keys: Path | None = None

    @field_validator(
        "admin_token", "agent_token", "metrics_token", "enrolment_token", mode="before"
    )
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("clock_start")
    @classmethod
    def _zoned(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("BIN_MANAGER_CLOCK_START: give its zone (Z or +01:00)")
        return value

    @field_validator("default_rollout")
    @classmethod
    def _policy(cls, value: str) -> str:
        try:
            parse_policy_text(value)
        except PolicyError as exc:
            raise ValueError(f"BIN_MANAGER_DEFAULT_ROLLOUT: {exc}") from None
        return value

    @property
    def rollout_policy(self) -> Policy:
        """The policy of bins without one of their own (checked when the settings were built)."""
        return parse_policy_text(self.default_rollout)

    @property
    def resolved_database_url(self) -> str:
        """The configured URL, or the SQLite file inside the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite+pysqlite:///{(self.data_dir / 'bin-manager.sqlite3').resolve()}"

    @property
    def artifact_dir(self) -> Path:
        return self.data_dir / "artifacts"

    def check_secrets(self) -> None:
        """Raise ConfigError when the tokens would leave the server open by accident."""
        admin = self.admin_token.get_secret_value() if self.admin_token else None
        if not self.insecure_no_auth:
            reason = token_refusal(admin, "the admin token (BIN_MANAGER_ADMIN_TOKEN)")
            if reason:
                raise ConfigError(
                    f"refusing to start: {reason}; set a random token of at least "
                    f"{MIN_TOKEN_LENGTH} characters, or pass --insecure-no-auth for a demo"
                )
        if self.agent_token is not None:
            reason = token_refusal(
                self.agent_token.get_secret_value(), "the agent token (BIN_MANAGER_AGENT_TOKEN)"
            )
            if reason:
                raise ConfigError(f"refusing to start: {reason}")
        if self.metrics_token is not None:
            reason = token_refusal(
                self.metrics_token.get_secret_value(),
                "the metrics token (BIN_MANAGER_METRICS_TOKEN)",
            )
            if reason:
                raise ConfigError(f"refusing to start: {reason}")
        if self.enrolment_token is not None:
            reason = token_refusal(
                self.enrolment_token.get_secret_value(),
                "the enrolment token (BIN_MANAGER_ENROLMENT_TOKEN)",
            )
            if reason:
                raise ConfigError(f"refusing to start: {reason}")


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment, with non-None `overrides` (flags) winning."""
    given = {key: value for key, value in overrides.items() if value is not None}
    try:
        settings = Settings(**given)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "settings"
        message = str(first["msg"]).removeprefix("Value error, ")
        raise ConfigError(f"invalid setting {field}: {message}") from None
    settings.check_secrets()
    if settings.webhook_urls is not None:  # one ConfigError naming the bad entry (no secret)
        parse_targets(settings.webhook_urls.get_secret_value())
    return settings
