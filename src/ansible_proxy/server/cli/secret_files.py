"""`serve`'s secrets other than the tokens of admin_token.py, from files: kept off `ps`,
out of supervisor's and systemd's configs and out of shell history.

Each secret has four sources, the first one set wins and the others are not read: its
inline flag (`--database-url`; none for the env-only ones), its file flag
(`--database-url-file`), its variable (BIN_MANAGER_DATABASE_URL) and its file variable
(BIN_MANAGER_DATABASE_URL_FILE). Giving the inline flag and the file flag together is an
error. A file holds the value alone on one line (a trailing newline and surrounding
whitespace are stripped); an empty file, a second line, non-UTF-8 text or an unreadable
file is one error naming the file and the source, never the value.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

from ansible_proxy.errors import ConfigError


class Secret(NamedTuple):
    setting: str  # Settings' field, and BIN_MANAGER_<SETTING> its variable
    what: str  # for messages: "the database URL"
    inline: str | None  # the flag holding the value itself, if any
    check_url: bool = False  # the value must look like scheme://…


SECRETS = (
    Secret("database_url", "database URL", "--database-url", check_url=True),
    Secret("agent_token", "agent token", None),
    Secret("metrics_token", "metrics token", None),
    Secret("webhook_urls", "webhook URLs", None),
)


def file_flag(secret: Secret) -> str:
    return "--" + secret.setting.replace("_", "-") + "-file"


def env_name(secret: Secret) -> str:
    return f"BIN_MANAGER_{secret.setting.upper()}"


def secret_overrides(args: Any, env: Mapping[str, str]) -> dict[str, str]:
    """{setting: value} for each secret of SECRETS found in a file (or inline): the values
    that load_settings must take over what it would read from the environment itself."""
    found = {}
    for secret in SECRETS:
        value = _one(secret, args, env)
        if value is not None:
            found[secret.setting] = value
    return found


def _one(secret: Secret, args: Any, env: Mapping[str, str]) -> str | None:
    inline = getattr(args, secret.setting, None) if secret.inline else None
    path = getattr(args, f"{secret.setting}_file", None)
    if inline is not None and path is not None:
        raise ConfigError(f"{secret.inline} and {file_flag(secret)} go alone: give one")
    if inline is not None:
        return str(inline)
    if path is not None:
        return read_secret_file(Path(path), file_flag(secret), secret)
    if env.get(env_name(secret), "").strip():
        return None  # the variable itself: Settings reads it
    named = env.get(f"{env_name(secret)}_FILE", "").strip()
    if named:
        return read_secret_file(Path(named), f"{env_name(secret)}_FILE", secret)
    return None


def read_secret_file(path: Path, source: str, secret: Secret) -> str:
    """The one line of `path`, stripped; ConfigError naming the file, never its content."""
    what = f"the {secret.what} file {path} ({source})"
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{what} is not UTF-8 text") from None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError(f"cannot read {what}: {reason}") from None
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        raise ConfigError(f"{what} is empty")
    if len(lines) > 1 and not secret.setting.endswith("_urls"):
        raise ConfigError(f"{what} has {len(lines)} lines; it holds the {secret.what} alone")
    value = "\n".join(lines)
    if secret.check_url and "://" not in value:
        raise ConfigError(
            f"{what} does not hold a URL (e.g. postgresql+psycopg://user:password@host/db)"
        )
    return value
