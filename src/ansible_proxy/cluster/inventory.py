"""The cluster's nodes, read from a standard Ansible inventory (INI or YAML file).

Owns the import of Ansible's inventory code: its own `ini`/`yaml` inventory plugins,
DataLoader and group-variable merge, so the proxy sees what `ansible-playbook` sees.
Any parse error or missing host var is one ConfigError naming the file and host.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from ansible_proxy.errors import ConfigError
from ansible_proxy.names import (
    is_bin_name,
    is_node_name,
    label_refusal,
    node_name_refusal,
    normalize_arch,
    parse_labels,
)


@dataclass(frozen=True)
class Node:
    """One inventory host as the proxy needs it."""

    name: str  # the inventory hostname, what `--limit` takes
    node_name: str  # reported to the bin-manager
    address: str
    cpu_arch: str
    os_release: str
    services: tuple[str, ...]
    labels: Mapping[str, str] = field(default_factory=dict)  # `node_labels`, for rollouts


def load_inventory(path: Path) -> tuple[Node, ...]:
    """Every host of the inventory file at `path`, validated."""
    if not path.is_file():
        raise ConfigError(f"inventory {path}: no such file")
    raw = _parse(path)
    if not raw:
        raise ConfigError(f"inventory {path}: no hosts")
    return tuple(node_from_vars(name, hostvars, path) for name, hostvars in sorted(raw.items()))


def _parse(path: Path) -> dict[str, dict[str, Any]]:
    # Start-up time: ansible-core (~0.5 s) only when an inventory is read.
    from ansible.errors import AnsibleError
    from ansible.inventory.data import InventoryData
    from ansible.inventory.helpers import get_group_vars
    from ansible.parsing.dataloader import DataLoader
    from ansible.plugins.loader import inventory_loader
    from ansible.utils.vars import combine_vars

    # The plugin is chosen by extension and called directly: InventoryManager would turn
    # a parse error into a warning and an empty inventory.
    plugin_name = "yaml" if path.suffix in (".yml", ".yaml") else "ini"
    plugin = inventory_loader.get(plugin_name)
    data = InventoryData()
    try:
        plugin.parse(data, DataLoader(), str(path), cache=False)
        data.reconcile_inventory()
    except AnsibleError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"inventory {path}: {first}") from None
    except Exception as exc:  # the plugins raise bare errors on odd input
        raise ConfigError(f"inventory {path}: cannot parse: {exc}") from None
    return {
        str(name): dict(combine_vars(get_group_vars(host.get_groups()), host.get_vars()))
        for name, host in data.hosts.items()
    }


def node_from_vars(name: str, hostvars: Mapping[str, Any], source: Path) -> Node:
    """A Node from one host's merged vars; ConfigError naming the host and the var."""
    where = f"inventory {source}: host {name}"
    services = hostvars.get("services")
    if isinstance(services, str):  # INI `[group:vars]` values may stay strings
        text = services.strip()
        try:
            # `[a, b]` in YAML flow style (INI host lines lose the inner quotes), or `a,b`
            services = YAML(typ="safe").load(text) if text.startswith("[") else text.split(",")
        except YAMLError:
            raise ConfigError(f"{where}: `services` is not a valid list: {text[:60]!r}") from None
        if isinstance(services, list):
            services = [s.strip() if isinstance(s, str) else s for s in services if s != ""]
    if not isinstance(services, list | tuple) or not all(isinstance(s, str) for s in services):
        raise ConfigError(f"{where}: `services` must be a list of service names")
    for service in services:
        if not is_bin_name(str(service)):
            raise ConfigError(f"{where}: bad service name {service!r}")
    arch_raw = str(hostvars.get("cpu_arch", ""))
    arch = normalize_arch(arch_raw)
    if arch is None:
        raise ConfigError(f"{where}: `cpu_arch` must be x86_64 or aarch64, not {arch_raw!r}")
    address = str(hostvars.get("ansible_host") or name)
    node_name = str(hostvars.get("node_name") or name)
    if not is_node_name(node_name):  # the bin-manager would refuse it: say so before the run
        raise ConfigError(f"{where}: {node_name_refusal(node_name)} (set `node_name`)")
    return Node(
        name=name,
        node_name=node_name,
        address=address,
        cpu_arch=arch,
        os_release=str(hostvars.get("os_release", "")),
        services=tuple(str(s) for s in services),
        labels=_labels(hostvars.get("node_labels"), where),
    )


def _labels(value: object, where: str) -> dict[str, str]:
    """`node_labels`: `k=v,k=v` (as NODE_LABELS) or a mapping; absent or empty: none."""
    if value is None:
        return {}
    if isinstance(value, str):
        try:
            return parse_labels(value)
        except ValueError as exc:
            raise ConfigError(f"{where}: `node_labels`: {exc}") from None
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: `node_labels` must be k=v,k=v or a mapping")
    labels: dict[str, str] = {}
    for key, item in value.items():
        # YAML turns `zone: 1` into a number; `true`, lists and nulls are no label values
        if isinstance(item, bool) or not isinstance(item, (str, int)):
            raise ConfigError(f"{where}: `node_labels` {key!r}: the value must be text")
        labels[str(key)] = str(item)
    problem = label_refusal(labels)
    if problem is not None:
        raise ConfigError(f"{where}: `node_labels`: {problem}")
    return labels
