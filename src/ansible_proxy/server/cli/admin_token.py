"""Where the admin token comes from, for `serve` and for the admin commands.

`--admin-token-file` wins over BIN_MANAGER_ADMIN_TOKEN, which wins over
BIN_MANAGER_ADMIN_TOKEN_FILE: the first one set is used and the others are not read.
A token file holds the token alone (surrounding whitespace and newlines are stripped).

The admin commands take an API token (`bin-manager tokens create`, docs/security.md) the
same way, and by clearer names: `--token-file` (the same flag), BIN_MANAGER_API_TOKEN and
BIN_MANAGER_API_TOKEN_FILE, each before its BIN_MANAGER_ADMIN_* twin (`api_token`).
`serve` reads only the ADMIN names: an API token is never the server's admin token.
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
API_ENV_NAME = "BIN_MANAGER_API_TOKEN"
API_WHERE_TO_SET = f"{API_ENV_NAME}, {API_ENV_NAME}_FILE or --token-file"


def admin_token(flag_file: Path | None, env: Mapping[str, str]) -> str | None:
    """The admin token from the first of the three sources that is set; None when none is."""
    return _token("admin", flag_file, env)


def api_token(flag_file: Path | None, env: Mapping[str, str]) -> str | None:
    """The admin commands' token (an API token or the admin token): --token-file (alias
    --admin-token-file), BIN_MANAGER_API_TOKEN, BIN_MANAGER_ADMIN_TOKEN,
    BIN_MANAGER_API_TOKEN_FILE, BIN_MANAGER_ADMIN_TOKEN_FILE: the first one set."""
    if flag_file is not None:
        return read_token_file(flag_file, "--admin-token-file or --token-file")
    for name in (API_ENV_NAME, ENV_NAME):
        token = env.get(name, "").strip()
        if token:
            return token
    for name, kind in ((f"{API_ENV_NAME}_FILE", "API"), (FILE_ENV_NAME, "admin")):
        path = env.get(name, "").strip()
        if path:
            return read_token_file(Path(path), name, kind)
    return None


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
