"""bin-manifests (docs/agent.md, bin-manifests): the model, and atomic JSON/YAML load and save.

The raw document is kept as loaded (ruamel.yaml round-trip for YAML) and only the
fields the agent owns are rewritten, so the operator's comments, key order and any
extra keys survive every save. Files in the original design's JSON load unchanged.
A manifest that is a symlink (into a config-management checkout, say) is saved through
to the link's final target, which keeps its owner and mode; the link stays a link.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ansible_proxy.client.files import write_atomic
from ansible_proxy.errors import ConfigError
from ansible_proxy.names import is_bin_name, is_sha256  # pydantic-free: the tick stays cheap

RESULTS = ("", "ok", "err")
NODE_INFO_KEYS = ("cpuArch", "osRelease", "nodeName", "binProxyVersion")
# nodeInfo's optional NODE_LABELS mapping, as sent: absent when there are none (and in
# manifests of agents from before labels, which load unchanged).
LABELS_KEY = "labels"
# The entry of this name is the agent itself (agent/selfupdate.py), not a supervised binary.
SELF_NAME = "ansible-proxy"
# The inspector's per-entry settings (docs/inspector.md; inspector/kinds.py lists every
# check kind with the key that sets it): kept as written on every save.
QUERY_KEY = "prometheusQuery"  # this entry's query in place of PROMETHEUS_QUERY
HEALTH_URL_KEY = "healthUrl"  # an HTTP endpoint that answers 2xx while the service is healthy


class EntryRemoved(ConfigError):
    """A binary's entry was removed from the manifest while the agent was working on it."""


@dataclass(frozen=True)
class ManagedBinary:
    """One entry of `binaries`: what is installed, and every version ever handled."""

    service_name: str
    binary_name: str
    port: int | None = None
    version: str = ""
    previous_version: str = ""
    history: Mapping[str, str] = field(default_factory=dict)
    upgrade_path: Mapping[str, str] = field(default_factory=dict)
    hold: str = ""  # set by `ansible-proxy hold`: why upgrades and rollbacks are paused
    # A container image's repository (docs/containers.md): releases become images tagged
    # `<image>:current` instead of a file in BIN_DIR; "" for a binary.
    image: str = ""
    container: str = ""  # an image entry's container name when it is not serviceName
    prometheus_query: str = ""  # prometheusQuery: "" uses PROMETHEUS_QUERY
    health_url: str = ""  # healthUrl: "" means no HTTP check; `{host}` as for the port check

    @property
    def container_name(self) -> str:
        """The name the program runs the image's container by (`podman run --name`)."""
        return self.container or self.service_name


class Manifest:
    """A loaded manifest: typed entries over the raw, order-preserving document."""

    def __init__(
        self, path: Path, doc: MutableMapping[str, Any], yaml: bool, text: str = ""
    ) -> None:
        self.path = path
        self.text = text
        self.doc = doc
        self.yaml = yaml
        self.binaries = [_entry(path, i, raw) for i, raw in enumerate(doc["binaries"])]
        names = [b.binary_name for b in self.binaries]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ConfigError(f"{path}: binaryName listed twice: {', '.join(dupes)}")

    def get(self, binary_name: str) -> ManagedBinary:
        for entry in self.binaries:
            if entry.binary_name == binary_name:
                return entry
        raise EntryRemoved(f"manifest {self.path}: {binary_name} is no longer listed")

    def node_info(self) -> dict[str, object]:
        """nodeInfo as the keepalive sends it: the four keys, and `labels` when any."""
        raw = self.doc.get("nodeInfo") or {}
        info: dict[str, object] = {k: str(raw.get(k) or "") for k in NODE_INFO_KEYS}
        labels = _labels(raw.get(LABELS_KEY))
        if labels:
            info[LABELS_KEY] = labels
        return info

    def set_node_info(self, info: Mapping[str, object]) -> bool:
        """Store `info` as nodeInfo; True when anything changed."""
        wanted: dict[str, object] = {k: info[k] for k in NODE_INFO_KEYS}
        labels = _labels(info.get(LABELS_KEY))
        if labels:
            wanted[LABELS_KEY] = labels
        if self.node_info() == wanted:
            return False
        raw = self.doc.get("nodeInfo")
        if not isinstance(raw, MutableMapping):
            raw = {}
            self.doc["nodeInfo"] = raw
        for key in NODE_INFO_KEYS:
            raw[key] = info[key]
        if labels:
            raw[LABELS_KEY] = labels
        elif LABELS_KEY in raw:  # NODE_LABELS emptied: the manifest must not keep old ones
            del raw[LABELS_KEY]
        return True

    def update(
        self,
        binary_name: str,
        *,
        version: str | None = None,
        previous_version: str | None = None,
        history: Mapping[str, str] | None = None,
        drop_history: tuple[str, ...] = (),
        upgrade_path: Mapping[str, str] | None = None,
        hold: str | None = None,
    ) -> ManagedBinary:
        """Change the fields the agent owns for one binary; returns the new entry.

        `hold=""` removes the hold; a non-empty text sets it.
        """
        index = self.binaries.index(self.get(binary_name))
        raw = self.doc["binaries"][index]
        if hold is not None:
            if hold:
                raw["hold"] = hold
            elif "hold" in raw:
                del raw["hold"]
        if version is not None:
            raw["version"] = version
        if previous_version is not None:
            raw["previousVersion"] = previous_version
        for key, values in (("history", history), ("upgradePath", upgrade_path)):
            if values:
                if not isinstance(raw.get(key), MutableMapping):
                    raw[key] = {}
                for sha, value in values.items():
                    raw[key][sha] = value
        for sha in drop_history:
            if isinstance(raw.get("history"), MutableMapping) and sha in raw["history"]:
                del raw["history"][sha]
        self.binaries[index] = _entry(self.path, index, raw)
        return self.binaries[index]

    def dumps(self) -> str:
        if not self.yaml:
            return json.dumps(self.doc, indent=2, ensure_ascii=False) + "\n"
        out = io.StringIO()
        yaml = _yaml()
        # ruamel does not keep indentation: reuse the operator's list style ("  - " or "- ").
        offset = _sequence_offset(self.text)
        yaml.indent(mapping=2, sequence=offset + 2, offset=offset)
        yaml.dump(self.doc, out)
        return out.getvalue()

    def save(self) -> None:
        """Write atomically beside the (symlink's) target; failure is a ConfigError."""
        try:
            write_atomic(self.path, self.dumps().encode("utf-8"))
        except OSError as exc:  # read-only directory, dangling link: for the operator
            reason = exc.strerror or str(exc)
            raise ConfigError(f"manifest {self.path}: cannot write: {reason}") from None


def _labels(value: object) -> dict[str, str]:
    """nodeInfo's labels as a plain dict sorted by key; {} for none (or not a mapping)."""
    if not isinstance(value, Mapping):
        return {}
    return {str(k): str(value[k]) for k in sorted(value, key=str)}


def is_yaml(path: Path) -> bool:
    return path.suffix.lower() in (".yaml", ".yml")


def load_manifest(path: Path) -> Manifest:
    """Read and validate the manifest; any problem is a ConfigError naming the file."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"manifest {path}: cannot read: {exc}") from None
    return parse_manifest(path, text)


def parse_manifest(path: Path, text: str) -> Manifest:
    yaml = is_yaml(path)
    if not yaml and path.suffix.lower() != ".json":
        raise ConfigError(f"manifest {path}: name must end in .json, .yaml or .yml")
    try:
        doc = _yaml().load(text) if yaml else json.loads(text)
    except Exception as exc:  # every parser error is the operator's to fix
        raise ConfigError(
            f"manifest {path}: not valid {'YAML' if yaml else 'JSON'}: {exc}"
        ) from None
    if not isinstance(doc, MutableMapping) or not isinstance(doc.get("binaries"), list):
        raise ConfigError(f"manifest {path}: expected a mapping with a `binaries` list")
    return Manifest(path, doc, yaml, text)


def _entry(path: Path, index: int, raw: Any) -> ManagedBinary:
    where = f"manifest {path}: binaries[{index}]"
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: expected a mapping")
    name = raw.get("binaryName")
    if not isinstance(name, str) or not is_bin_name(name):
        raise ConfigError(f"{where}: binaryName {name!r} is not a valid name [A-Za-z0-9._-]")
    service = raw.get("serviceName") or name
    if not isinstance(service, str):
        raise ConfigError(f"{where}: serviceName must be a string")
    port = raw.get("port")
    if port in (None, ""):
        port = None
    elif isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise ConfigError(f"{where}: port {port!r} is not a TCP port")
    shas = {k: str(raw.get(k) or "") for k in ("version", "previousVersion")}
    for key, value in shas.items():
        if value and not is_sha256(value):
            raise ConfigError(f"{where}: {key} {value!r} is not a sha256")
    history = _sha_map(where, raw.get("history"), "history")
    for sha, result in history.items():
        if result not in RESULTS:
            raise ConfigError(f"{where}: history[{sha[:12]}] must be '', 'ok' or 'err'")
    upgrade_path = _sha_map(where, raw.get("upgradePath"), "upgradePath")
    hold = raw.get("hold")
    if hold in (None, "", False):
        hold = ""
    elif hold is True:
        hold = "held"
    elif not isinstance(hold, str):
        raise ConfigError(f"{where}: hold must be true, false or a text (the reason)")
    image, container = raw.get("image"), raw.get("container")
    if image in (None, ""):
        image = ""
        if container not in (None, ""):
            raise ConfigError(f"{where}: container is only for an entry with an image")
    else:
        # adapters/engine.py's rules, imported here: only image entries pay for them.
        from ansible_proxy.agent.adapters.engine import container_refusal, repository_refusal

        problem = repository_refusal(image)
        if problem is None and container not in (None, ""):
            problem = container_refusal(container)
        if problem is not None:
            raise ConfigError(f"{where}: {problem}")
    return ManagedBinary(
        service, name, port, shas["version"], shas["previousVersion"], history, upgrade_path,
        hold, str(image), str(container or ""),
        prometheus_query=_query(where, raw.get(QUERY_KEY)),
        health_url=_health_url(where, raw.get(HEALTH_URL_KEY)),
    )  # fmt: skip


def _query(where: str, raw: Any) -> str:
    """prometheusQuery: absent, or a PromQL text (`{service}` becomes the serviceName)."""
    if raw is None:
        return ""
    if not isinstance(raw, str) or not raw.strip():
        raise ConfigError(f"{where}: {QUERY_KEY} must be a non-empty string (a PromQL query)")
    return str(raw)


def _health_url(where: str, raw: Any) -> str:
    """healthUrl: absent, or an http:// or https:// URL with a host (`{host}` allowed)."""
    if raw is None:
        return ""
    if isinstance(raw, str) and not any(c.isspace() for c in raw):
        parts = urlsplit(raw.replace("{host}", "127.0.0.1"))
        try:
            port_ok = parts.port != 0
        except ValueError:  # not a number, or outside 0..65535
            port_ok = False
        if parts.scheme in ("http", "https") and parts.hostname and port_ok:
            return str(raw)  # a plain str, not ruamel's quoted-scalar type
    raise ConfigError(
        f"{where}: {HEALTH_URL_KEY} {raw!r} is not an http:// or https:// URL with a host"
    )


def _sha_map(where: str, raw: Any, key: str) -> dict[str, str]:
    if raw in (None, ""):
        return {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: {key} must be a mapping")
    result = {str(k): "" if v is None else str(v) for k, v in raw.items()}
    for sha in result:
        if not is_sha256(sha):
            raise ConfigError(f"{where}: {key} key {sha!r} is not a sha256")
    return result


def _sequence_offset(text: str) -> int:
    """How far the operator indents a block sequence's dash under its key (0 or 2)."""
    match = re.search(r"^([^\S\n]*)[\w.-]+:[^\S\n]*\n([^\S\n]*)- ", text, re.MULTILINE)
    if match is None:
        return 2
    return max(0, len(match.group(2)) - len(match.group(1)))


def _yaml() -> Any:
    from ruamel.yaml import YAML  # only YAML manifests pay for this import

    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096
    return yaml
