"""The cluster state file: per service and host, a host manifest's semantics (docs/agent.md).

    {"services": {"<service>": {"history": {"<sha>": "err"},
                                "hosts": {"<host>": {"version", "previousVersion",
                                                     "history", "upgradePath"}}}}}

History values: "" in progress, "ok" deployed, "err" failed and rolled back (never
retried). Written atomically (temp file, fsync, rename); a bad file is a ConfigError.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ansible_proxy.client.files import write_atomic
from ansible_proxy.client.history import ERR, OK, PENDING
from ansible_proxy.errors import ConfigError


class ClusterState:
    """The whole state tree, edited through verbs, saved by `save`."""

    def __init__(self, data: dict[str, Any] | None = None) -> None:
        self.data: dict[str, Any] = data if data is not None else {"services": {}}

    def _service(self, service: str) -> dict[str, Any]:
        services: dict[str, Any] = self.data.setdefault("services", {})
        entry: dict[str, Any] = services.setdefault(service, {"history": {}, "hosts": {}})
        return entry

    def host(self, service: str, host: str) -> dict[str, Any]:
        """The host's entry for `service`, created empty when new."""
        hosts: dict[str, Any] = self._service(service).setdefault("hosts", {})
        entry: dict[str, Any] = hosts.setdefault(
            host, {"version": "", "previousVersion": "", "history": {}, "upgradePath": {}}
        )
        return entry

    def version(self, service: str, host: str) -> str:
        return str(self.host(service, host)["version"])

    def result(self, service: str, host: str, sha: str) -> str | None:
        value = self.host(service, host)["history"].get(sha)
        return None if value is None else str(value)

    def begin(self, service: str, host: str, sha: str) -> None:
        """Record that `sha` is being deployed on `host` (history "", upgrade path)."""
        entry = self.host(service, host)
        entry["history"][sha] = PENDING
        if entry["version"] and entry["version"] != sha:
            entry["upgradePath"][sha] = entry["version"]

    def succeed(self, service: str, host: str, sha: str) -> None:
        entry = self.host(service, host)
        entry["history"][sha] = OK
        if entry["version"] != sha:
            entry["previousVersion"] = entry["version"]
            entry["version"] = sha

    def fail(self, service: str, host: str, sha: str) -> None:
        """`sha` failed on `host` (rolled back or not): never retried there."""
        self.host(service, host)["history"][sha] = ERR
        self._service(service).setdefault("history", {})[sha] = ERR

    def rollback_target(self, service: str, host: str, sha: str) -> str:
        """The release `host` ran before `sha` ("" when there is none)."""
        return str(self.host(service, host)["upgradePath"].get(sha, ""))

    def records(self) -> list[dict[str, str]]:
        """Per service and host: the sha256 running, the last one tried and its result
        ("" while in progress), the rollback target; `status --json`."""
        out = []
        for service, entry in sorted(self.data.get("services", {}).items()):
            for host, h in sorted(entry.get("hosts", {}).items()):
                version = h.get("version", "")
                last = next(reversed(h.get("history", {}).items()), ("", ""))
                out.append(
                    {
                        "service": service,
                        "host": host,
                        "running": version,
                        "lastTried": last[0],
                        "lastResult": last[1] if last[0] else "",
                        "rollbackTo": h.get("upgradePath", {}).get(version, ""),
                    }
                )
        return out

    def rows(self) -> list[tuple[str, str, str, str, str]]:
        """(service, host, version, last result, rollback target) for the status table."""
        return [
            (
                r["service"],
                r["host"],
                r["running"][:12] or "-",
                f"{r['lastTried'][:12]} {r['lastResult'] or 'in progress'}"
                if r["lastTried"]
                else "-",
                r["rollbackTo"][:12] or "-",
            )
            for r in self.records()
        ]


def load(path: Path) -> ClusterState:
    """Read the state file; a missing file is an empty state."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ClusterState()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cluster state {path}: cannot read: {exc}") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"cluster state {path}: not valid JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("services", {}), dict):
        raise ConfigError(f"cluster state {path}: expected an object with 'services'")
    return ClusterState(data)


def save(path: Path, state: ClusterState) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, (json.dumps(state.data, indent=2, sort_keys=False) + "\n").encode(), 0o644)
