"""Where the admin token comes from, for `serve` and for the admin commands.

`--admin-token-file` wins over BIN_MANAGER_ADMIN_TOKEN, which wins over
BIN_MANAGER_ADMIN_TOKEN_FILE: the first one set is used and the others are not read.
A token file holds the token alone (surrounding whitespace and newlines are stripped).
The enrolment token of `serve` comes the same way (`--enrolment-token-file`,
BIN_MANAGER_ENROLMENT_TOKEN, BIN_MANAGER_ENROLMENT_TOKEN_FILE). No message here ever shows
a token.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from ansible_proxy.errors import ConfigError

ENV_NAME = "BIN_MANAGER_ADMIN_TOKEN"
FILE_ENV_NAME = "BIN_MANAGER_ADMIN_TOKEN_FILE"
WHERE_TO_SET = f"set {ENV_NAME}, {FILE_ENV_NAME} or --admin-token-file"


def admin_token(flag_file: Path | None, env: Mapping[str, str]) -> str | None:
    """The admin token from the first of the three sources that is set; None when none is."""
    return _token("admin", flag_file, env)


def enrolment_token(flag_file: Path | None, env: Mapping[str, str]) -> str | None:
    """`serve`'s enrolment token, from its three sources in the same order."""
    return _token("enrolment", flag_file, env)


def _token(kind: str, flag_file: Path | None, env: Mapping[str, str]) -> str | None:
    env_name = f"BIN_MANAGER_{kind.upper()}_TOKEN"
    if flag_file is not None:
        return read_token_file(flag_file, f"--{kind}-token-file", kind)
    token = env.get(env_name, "").strip()
    if token:
        return token
    path = env.get(f"{env_name}_FILE", "").strip()
    if path:
        return read_token_file(Path(path), f"{env_name}_FILE", kind)
    return None


def read_token_file(path: Path, source: str, kind: str = "admin") -> str:
    """The stripped content of `path`; ConfigError naming the file when unreadable or empty."""
    what = f"the {kind} token file {path} ({source})"
    try:
        token = path.read_text(encoding="utf-8").strip()
    except UnicodeDecodeError:
        raise ConfigError(f"{what} is not UTF-8 text") from None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError(f"cannot read {what}: {reason}") from None
    if not token:
        raise ConfigError(f"{what} is empty")
    return token
