"""Where the admin token comes from, for `serve` and for the admin commands.

`--admin-token-file` wins over BIN_MANAGER_ADMIN_TOKEN, which wins over
BIN_MANAGER_ADMIN_TOKEN_FILE: the first one set is used and the others are not read.
A token file holds the token alone (surrounding whitespace and newlines are stripped).
No message here ever shows a token.
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
    if flag_file is not None:
        return read_token_file(flag_file, "--admin-token-file")
    token = env.get(ENV_NAME, "").strip()
    if token:
        return token
    path = env.get(FILE_ENV_NAME, "").strip()
    if path:
        return read_token_file(Path(path), FILE_ENV_NAME)
    return None


def read_token_file(path: Path, source: str) -> str:
    """The stripped content of `path`; ConfigError naming the file when unreadable or empty."""
    try:
        token = path.read_text(encoding="utf-8").strip()
    except UnicodeDecodeError:
        raise ConfigError(f"the admin token file {path} ({source}) is not UTF-8 text") from None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError(f"cannot read the admin token file {path} ({source}): {reason}") from None
    if not token:
        raise ConfigError(f"the admin token file {path} ({source}) is empty")
    return token
