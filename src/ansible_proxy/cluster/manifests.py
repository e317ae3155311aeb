"""The cluster manifests file (YAML, read round-trip so comments and order survive).

services:
  hello:                      # the name hosts list in their `services` var
    package: hello-pkg        # bin name of the tar.gz on the bin-manager
    health: {port: 18080}     # or {url: "http://{host}:18080/healthz"}, timeout: 10
    playbooks: {deploy: deploy.yml, rollback: rollback.yml}
    serial: 0                 # hosts per batch; 0 = all at once
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from ansible_proxy.errors import ConfigError
from ansible_proxy.names import is_bin_name


@dataclass(frozen=True)
class Health:
    """How to tell a deployed host is serving: a TCP port, or an HTTP URL ({host} filled)."""

    port: int | None = None
    url: str = ""
    timeout: float = 10.0


@dataclass(frozen=True)
class ServiceSpec:
    """One service of the cluster manifests."""

    name: str
    package: str
    health: Health
    deploy: str = "deploy.yml"
    rollback: str = ""
    serial: int = 0


def load_manifests(path: Path) -> tuple[ServiceSpec, ...]:
    """Every service of the manifests file, validated; ConfigError naming the problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"cluster manifests {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cluster manifests {path}: cannot read: {exc}") from None
    try:
        tree = YAML(typ="rt").load(text)
    except YAMLError as exc:
        raise ConfigError(f"cluster manifests {path}: not valid YAML: {exc}") from None
    services = tree.get("services") if isinstance(tree, dict) else None
    if not isinstance(services, dict) or not services:
        raise ConfigError(f"cluster manifests {path}: expected a `services:` mapping")
    return tuple(_service(str(name), body, path) for name, body in services.items())


def _service(name: str, body: Any, path: Path) -> ServiceSpec:
    where = f"cluster manifests {path}: service {name}"
    if not is_bin_name(name):
        raise ConfigError(f"{where}: bad service name")
    if not isinstance(body, dict):
        raise ConfigError(f"{where}: expected a mapping")
    package = str(body.get("package", name))
    if not is_bin_name(package):
        raise ConfigError(f"{where}: bad package name {package!r}")
    playbooks = body.get("playbooks") or {}
    if not isinstance(playbooks, dict):
        raise ConfigError(f"{where}: `playbooks` must be a mapping")
    deploy = _playbook(str(playbooks.get("deploy", "deploy.yml")), where)
    rollback = playbooks.get("rollback")
    serial = body.get("serial", 0)
    if not isinstance(serial, int) or isinstance(serial, bool) or serial < 0:
        raise ConfigError(f"{where}: `serial` must be a whole number >= 0")
    return ServiceSpec(
        name=name,
        package=package,
        health=_health(body.get("health"), where),
        deploy=deploy,
        rollback=_playbook(str(rollback), where) if rollback else "",
        serial=serial,
    )


def _playbook(value: str, where: str) -> str:
    parts = PurePosixPath(value).parts
    if not value.endswith((".yml", ".yaml")) or value.startswith("/") or ".." in parts:
        raise ConfigError(f"{where}: playbook {value!r} must be a .yml path inside the package")
    return value


def _health(body: Any, where: str) -> Health:
    if not isinstance(body, dict):
        raise ConfigError(f"{where}: `health` needs a `port` or a `url`")
    timeout = body.get("timeout", 10)
    if not isinstance(timeout, int | float) or timeout <= 0:
        raise ConfigError(f"{where}: health `timeout` must be a positive number")
    port, url = body.get("port"), body.get("url")
    if port is not None:
        if not isinstance(port, int) or not 0 < port < 65536:
            raise ConfigError(f"{where}: health `port` must be 1..65535")
        return Health(port=port, timeout=float(timeout))
    if isinstance(url, str) and url.startswith(("http://", "https://")):
        return Health(url=url, timeout=float(timeout))
    raise ConfigError(f"{where}: `health` needs a `port` or an http(s) `url`")
