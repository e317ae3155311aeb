"""AgentConfig: the agent's settings, built once from defaults, file, env and flags.

The config file uses shell syntax (`export KEY="value"`) but is parsed, never executed:
quotes, escapes and `$KEY`/`${KEY}` expansion are understood; anything else a shell
would run (command substitution, `;`, pipes, redirections) is refused.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from ansible_proxy.errors import ConfigError
from ansible_proxy.names import is_loopback_host, parse_labels
from ansible_proxy.signatures import TrustedKeys, load_trusted_keys

DEFAULT_CONFIG_PATH = Path("/etc/ansible-proxy/config")
GIB = 1024**3

# key -> (default, meaning); the order is the order of `--help` and of docs/agent.md.
KEYS: dict[str, tuple[str, str]] = {
    "BIN_MANAGER_API": ("", "base URL of the bin-manager API, e.g. http://host:8080/api/v1"),
    "BIN_DIR": ("/usr/local/bin", "where managed binaries live"),
    "BIN_MANIFESTS": ("/etc/ansible-proxy/bin-manifests.json", "manifest (.json/.yaml/.yml)"),
    "LOG_FILE": ("/var/log/ansible-proxy.log", "log file (also stderr on a terminal)"),
    "LOCK_DIR": ("/var/run/ansible-proxy", "lock files {bin}-{sha256}.lock"),
    "DOWNLOAD_BASE_URL": ("", "download base URL (default $BIN_MANAGER_API/download)"),
    "STORE_DIR": ("/var/lib/ansible-proxy/store", "every version, STORE_DIR/<bin>/<sha256>"),
    "LOCK_TIMEOUT": ("600", "seconds after which a lock is stale"),
    "STORE_KEEP": (
        "3",
        "versions kept in STORE_DIR per binary besides the installed one and its rollback target",
    ),
    "BIN_MANAGER_TOKEN": (
        "",
        "bearer token sent to the API (never logged); a cluster proxy's own token; an agent "
        "sends its node token instead once enrolled",
    ),
    "ENROLMENT_TOKEN": ("", "the bin-manager's enrolment token: enrol at once, no approval"),
    "ENROLMENT_TOKEN_FILE": ("", "file holding ENROLMENT_TOKEN (wins over the key)"),
    "NODE_TOKEN_FILE": (
        "",
        "this node's own token, made on first run, mode 0600 (default: beside STORE_DIR, "
        "/var/lib/ansible-proxy/node-token)",
    ),
    "CA_BUNDLE": ("", "CA file for a private bin-manager (or https:// supervisor) certificate"),
    "INSECURE_SKIP_VERIFY": ("", "exactly 1 turns TLS verification off (warned every tick)"),
    "SUPERVISOR_URL": (
        "unix:///var/run/supervisor.sock",
        "unix:///path.sock, http://IP:9001 or https://host:port (a TLS proxy; CA_BUNDLE)",
    ),
    "SUPERVISOR_USER": ("", "user for a remote supervisor"),
    "SUPERVISOR_PASSWORD": ("", "password for a remote supervisor"),
    "PROMETHEUS_URL": ("", "Prometheus base URL (inspector only)"),
    "PROMETHEUS_QUERY": (
        'ALERTS{alertstate="firing", service="{service}"}',
        "alert query (inspector only)",
    ),
    "NODE_NAME": ("", "node name reported to the API (default: hostname)"),
    "NODE_LABELS": (
        "",
        "labels k=v,k=v sent with the keepalive (a rollout's --canary-label picks nodes by them)",
    ),
    "WATCH_SECONDS": ("10", "seconds a restarted service must keep its pid"),
    "CHECK_FAILURES": ("2", "unhealthy inspector runs before a rollback"),
    "MAX_DOWNLOAD_BYTES": (str(2 * GIB), "largest download accepted, in bytes"),
    "HTTP_TIMEOUT": ("10", "seconds for one whole API request, connect to last byte"),
    "DOWNLOAD_STALL_TIMEOUT": (
        "60",
        "seconds in which a download must receive 64 KiB (or finish) before it is abandoned",
    ),
    "SUPERVISOR_TIMEOUT": ("10", "seconds for one supervisor XML-RPC call"),
    "CONTAINER_ENGINE": (
        "",
        "podman or docker, for manifest entries with an image (default: the one installed)",
    ),
    "LOAD_TIMEOUT": ("900", "seconds for one image load or pull by the container engine"),
    "PROMETHEUS_TIMEOUT": ("3", "seconds for one whole Prometheus query (inspector only)"),
    "TRUSTED_KEYS": (
        "",
        "OpenSSH allowed_signers file of the publishers' keys ('# threshold: K' optional): "
        "install only releases they signed (docs/security.md)",
    ),
    "ALLOW_INSECURE_HTTP": (
        "",
        "exactly 1 accepts a plain http:// API or download URL off loopback without "
        "TRUSTED_KEYS (anyone on the path could then install code here)",
    ),
}
CONFIG_FILE_KEY = "ANSIBLE_PROXY_CONFIG"


@dataclass(frozen=True)
class AgentConfig:
    """Every setting the agent uses, validated; passed down, never global."""

    api: str
    bin_dir: Path
    manifest_path: Path
    log_file: Path
    lock_dir: Path
    download_base_url: str
    store_dir: Path
    lock_timeout: int
    token: str
    ca_bundle: Path | None
    insecure: bool
    supervisor_url: str
    supervisor_user: str
    supervisor_password: str
    prometheus_url: str
    prometheus_query: str
    node_name: str
    watch_seconds: float
    check_failures: int
    max_download_bytes: int
    http_timeout: float
    store_keep: int = 3
    download_stall_timeout: float = 60.0
    supervisor_timeout: float = 10.0
    prometheus_timeout: float = 3.0
    enrolment_token: str = ""
    node_token_file: Path = Path("/var/lib/ansible-proxy/node-token")
    node_labels: Mapping[str, str] = field(default_factory=dict)  # NODE_LABELS, parsed
    container_engine: str = ""  # CONTAINER_ENGINE: podman, docker or "" (the one installed)
    load_timeout: float = 900.0  # LOAD_TIMEOUT
    trusted_keys: TrustedKeys | None = None  # TRUSTED_KEYS, read and checked

    def __repr__(self) -> str:  # keep secrets out of tracebacks and logs
        return f"AgentConfig(api={self.api!r}, node_name={self.node_name!r}, ...)"


def build_config(
    file_values: Mapping[str, str],
    env: Mapping[str, str],
    flags: Mapping[str, str],
    hostname: str,
) -> AgentConfig:
    """Merge defaults < file < env < flags and validate the result."""
    merged = {key: default for key, (default, _) in KEYS.items()}
    for layer in (file_values, env, flags):
        merged.update({k: v for k, v in layer.items() if k in KEYS})
    api = merged["BIN_MANAGER_API"].rstrip("/")
    if not api:
        raise ConfigError("BIN_MANAGER_API is not set (config file, environment or flag)")
    _check_url("BIN_MANAGER_API", api)
    download = merged["DOWNLOAD_BASE_URL"].rstrip("/") or f"{api}/download"
    _check_url("DOWNLOAD_BASE_URL", download)
    supervisor_url = merged["SUPERVISOR_URL"] or KEYS["SUPERVISOR_URL"][0]
    if not supervisor_url.startswith(("unix://", "http://", "https://")):
        raise ConfigError(
            f"SUPERVISOR_URL must start with unix://, http:// or https://: {supervisor_url}"
        )
    insecure = merged["INSECURE_SKIP_VERIFY"].strip()
    if insecure not in ("", "0", "1"):
        raise ConfigError(f"INSECURE_SKIP_VERIFY must be 1 or empty, not {insecure!r}")
    ca = merged["CA_BUNDLE"]
    if ca and not Path(ca).is_file():
        raise ConfigError(f"CA_BUNDLE {ca}: no such file")
    trusted = load_trusted_keys(Path(merged["TRUSTED_KEYS"])) if merged["TRUSTED_KEYS"] else None
    allow = merged["ALLOW_INSECURE_HTTP"].strip()
    if allow not in ("", "0", "1"):
        raise ConfigError(f"ALLOW_INSECURE_HTTP must be 1 or empty, not {allow[:40]!r}")
    if trusted is None and allow != "1":
        _refuse_plain_http("BIN_MANAGER_API", api)
        _refuse_plain_http("DOWNLOAD_BASE_URL", download)
    return AgentConfig(
        api=api,
        bin_dir=Path(merged["BIN_DIR"]),
        manifest_path=Path(merged["BIN_MANIFESTS"]),
        log_file=Path(merged["LOG_FILE"]),
        lock_dir=Path(merged["LOCK_DIR"]),
        download_base_url=download,
        store_dir=Path(merged["STORE_DIR"]),
        lock_timeout=_int(merged, "LOCK_TIMEOUT", minimum=1),
        token=merged["BIN_MANAGER_TOKEN"],
        ca_bundle=Path(ca) if ca else None,
        insecure=insecure == "1",
        supervisor_url=supervisor_url,
        supervisor_user=merged["SUPERVISOR_USER"],
        supervisor_password=merged["SUPERVISOR_PASSWORD"],
        prometheus_url=merged["PROMETHEUS_URL"],
        prometheus_query=merged["PROMETHEUS_QUERY"],
        node_name=merged["NODE_NAME"] or hostname,
        watch_seconds=_float(merged, "WATCH_SECONDS"),
        check_failures=_int(merged, "CHECK_FAILURES", minimum=1),
        max_download_bytes=_int(merged, "MAX_DOWNLOAD_BYTES", minimum=1),
        http_timeout=_positive(merged, "HTTP_TIMEOUT"),
        store_keep=_int(merged, "STORE_KEEP"),
        download_stall_timeout=_positive(merged, "DOWNLOAD_STALL_TIMEOUT"),
        supervisor_timeout=_positive(merged, "SUPERVISOR_TIMEOUT"),
        prometheus_timeout=_positive(merged, "PROMETHEUS_TIMEOUT"),
        enrolment_token=_enrolment_token(merged),
        node_token_file=Path(
            merged["NODE_TOKEN_FILE"] or Path(merged["STORE_DIR"]).parent / "node-token"
        ),
        node_labels=_labels(merged, "NODE_LABELS"),
        container_engine=_engine(merged["CONTAINER_ENGINE"]),
        load_timeout=_positive(merged, "LOAD_TIMEOUT"),
        trusted_keys=trusted,
    )


def _refuse_plain_http(key: str, url: str) -> None:
    """Plain HTTP off loopback without signatures: whoever is on the path chooses the sha256
    and the file, and so runs code as root here. Refused unless the operator accepts it."""
    parts = urlsplit(url)
    if parts.scheme != "http" or is_loopback_host(parts.hostname or ""):
        return
    raise ConfigError(
        f"{key} http://{parts.hostname}: plain HTTP off loopback is refused: anyone on "
        "the path could swap the sha256 and the file and run code as root on this host; use "
        "https://, or set TRUSTED_KEYS (signed releases), or ALLOW_INSECURE_HTTP=1 to accept "
        "the risk"
    )


def _engine(value: str) -> str:
    engine = value.strip()
    if engine not in ("", "podman", "docker"):
        raise ConfigError(f"CONTAINER_ENGINE must be podman or docker, not {engine[:40]!r}")
    return engine


def _enrolment_token(values: Mapping[str, str]) -> str:
    path = values["ENROLMENT_TOKEN_FILE"]
    if not path:
        return values["ENROLMENT_TOKEN"].strip()
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"ENROLMENT_TOKEN_FILE {path}: cannot read: {exc}") from None


def _labels(values: Mapping[str, str], key: str) -> dict[str, str]:
    """`k=v,k=v` (names.LABEL_RULE); a bad value is one line naming the key."""
    try:
        return parse_labels(values[key])
    except ValueError as exc:
        # an environment value may hold a newline or escape: keep the error one line
        shown = "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in str(exc))
        raise ConfigError(f"{key}: {shown}") from None


def _check_url(key: str, url: str) -> None:
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"{key} must be an http:// or https:// URL, not {url!r}")


def _int(values: Mapping[str, str], key: str, minimum: int = 0) -> int:
    try:
        number = int(values[key])
    except ValueError:
        raise ConfigError(f"{key} must be an integer, not {values[key]!r}") from None
    if number < minimum:
        raise ConfigError(f"{key} must be at least {minimum}, not {number}")
    return number


def _float(values: Mapping[str, str], key: str) -> float:
    try:
        number = float(values[key])
    except ValueError:
        raise ConfigError(f"{key} must be a number, not {values[key]!r}") from None
    if number < 0:
        raise ConfigError(f"{key} must not be negative")
    return number


def _positive(values: Mapping[str, str], key: str) -> float:
    """A deadline in seconds: 0 would mean "wait for ever", which no deadline may."""
    number = _float(values, key)
    if number == 0:
        raise ConfigError(f"{key} must be more than 0 seconds")
    return number


_ASSIGN = re.compile(r"^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$")
_VAR = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")
_SPECIAL = set(";&|<>()`")


def parse_config_text(
    text: str, source: str, env: Mapping[str, str], extra_keys: Collection[str] = ()
) -> tuple[dict[str, str], list[str]]:
    """`KEY=value` pairs of a shell-syntax config file, and warnings for unknown keys.

    `extra_keys`: keys the caller reads besides the agent's (the cluster proxy's own).
    """
    values: dict[str, str] = {}
    warnings: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{source}:{number}"
        match = _ASSIGN.match(line)
        if match is None:
            raise ConfigError(f'{where}: expected `export KEY="value"`, got {line[:60]!r}')
        key, rest = match.groups()
        values[key] = _parse_value(rest, where, {**env, **values})
        if key not in KEYS and key != CONFIG_FILE_KEY and key not in extra_keys:
            warnings.append(f"{where}: unknown key {key} ignored")
    return values, warnings


def _parse_value(rest: str, where: str, known: Mapping[str, str]) -> str:
    """One shell word: quotes, backslashes and $VAR; a trailing comment is allowed."""
    out: list[str] = []
    i, n = 0, len(rest)
    while i < n:
        ch = rest[i]
        if ch in " \t":
            tail = rest[i:].strip()
            if tail and not tail.startswith("#"):
                raise ConfigError(f"{where}: more than one value after '=' (quote it)")
            break
        if ch == "'":
            end = rest.find("'", i + 1)
            if end < 0:
                raise ConfigError(f"{where}: unterminated single quote")
            out.append(rest[i + 1 : end])
            i = end + 1
        elif ch == '"':
            i = _double_quoted(rest, i + 1, where, known, out)
        elif ch == "\\" and i + 1 < n:
            out.append(rest[i + 1])
            i += 2
        elif ch == "$":
            i = _expand(rest, i, where, known, out)
        elif ch in _SPECIAL:
            raise ConfigError(f"{where}: shell construct {ch!r} is not allowed (not executed)")
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _double_quoted(rest: str, i: int, where: str, known: Mapping[str, str], out: list[str]) -> int:
    while i < len(rest):
        ch = rest[i]
        if ch == '"':
            return i + 1
        if ch == "\\" and i + 1 < len(rest) and rest[i + 1] in '"\\$`':
            out.append(rest[i + 1])
            i += 2
        elif ch == "$":
            i = _expand(rest, i, where, known, out)
        elif ch == "`":
            raise ConfigError(f"{where}: command substitution is not allowed (not executed)")
        else:
            out.append(ch)
            i += 1
    raise ConfigError(f"{where}: unterminated double quote")


def _expand(rest: str, i: int, where: str, known: Mapping[str, str], out: list[str]) -> int:
    match = _VAR.match(rest, i)
    if match is None:
        if rest.startswith("$(", i):
            raise ConfigError(f"{where}: command substitution is not allowed (not executed)")
        if i + 1 < len(rest) and rest[i + 1] not in " \t\"'":
            raise ConfigError(f"{where}: unsupported shell expansion {rest[i : i + 3]!r}")
        out.append("$")
        return i + 1
    out.append(known.get(match.group(1) or match.group(2), ""))
    return match.end()


def read_config_file(
    path: Path, explicit: bool, env: Mapping[str, str], extra_keys: Collection[str] = ()
) -> tuple[dict[str, str], list[str]]:
    """Parse the config file; a missing file is fine only at the default path."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if explicit:
            raise ConfigError(f"config file {path}: no such file") from None
        return {}, []
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path}: cannot read: {exc}") from None
    return parse_config_text(text, str(path), env, extra_keys)
