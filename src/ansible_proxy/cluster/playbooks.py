"""Playbook runs through ansible-runner: per-host results from its events and stats.

Owns the import of ansible_runner. Each run gets its own private data dir under
`runs/<service>/<ident>/` that is kept (artifacts, job events, stdout) for later
reading. Results never come from parsing stdout.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ansible_proxy.errors import DeployError

_FAILED_EVENTS = ("runner_on_failed", "runner_item_on_failed")


@dataclass(frozen=True)
class PlaybookResult:
    """What one ansible-playbook run did to each host it was limited to."""

    rc: int
    status: str
    ok: frozenset[str]
    failed: Mapping[str, str] = field(default_factory=dict)  # host -> first error
    unreachable: Mapping[str, str] = field(default_factory=dict)  # host -> why (SSH down)
    artifact_dir: Path = Path()


def run_playbook(
    playbook: Path,
    inventory: Path,
    hosts: Sequence[str],
    extravars: Mapping[str, Any],
    private_dir: Path,
    timeout: int = 3600,
) -> PlaybookResult:
    """Run `playbook` on `hosts` only; every host ends in `ok` or `failed`."""
    import ansible_runner  # start-up time: loaded by a run that deploys, not by every tick

    if not playbook.is_file():
        raise DeployError(f"playbook {playbook} is missing from the release")
    private_dir.mkdir(parents=True, exist_ok=True)
    # ansible-playbook lives beside this interpreter when installed in a virtualenv.
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}"
    try:
        runner = ansible_runner.run(
            private_data_dir=str(private_dir),
            project_dir=str(playbook.parent),
            playbook=str(playbook),
            inventory=str(inventory.resolve()),
            limit=",".join(hosts),
            extravars=dict(extravars),
            envvars={"PATH": path, "ANSIBLE_RETRY_FILES_ENABLED": "False"},
            suppress_env_files=True,
            quiet=True,
            timeout=timeout,
        )
    except Exception as exc:  # ansible-runner raises bare errors on setup problems
        raise DeployError(f"ansible-runner could not start {playbook.name}: {exc}") from None
    failed: dict[str, str] = {}
    unreachable: dict[str, str] = {}
    for event in runner.events:
        data = event.get("event_data", {})
        host = str(data.get("host", ""))
        if not host:
            continue
        if event.get("event") == "runner_on_unreachable":
            unreachable.setdefault(host, _message(data.get("res")))
        elif event.get("event") in _FAILED_EVENTS and not data.get("ignore_errors"):
            task = data.get("task", "?")
            failed.setdefault(host, f"task {task!r}: {_message(data.get('res'))}")
    stats = runner.stats or {}
    for host in stats.get("dark", {}) or {}:
        unreachable.setdefault(str(host), "unreachable")
    for host in stats.get("failures", {}) or {}:
        failed.setdefault(str(host), f"failed (rc {runner.rc})")
    processed = {str(h) for h in (stats.get("processed", {}) or {})}
    for host in hosts:
        if host not in processed and host not in unreachable:
            failed.setdefault(host, f"not run: playbook {runner.status} (rc {runner.rc})")
    for host in unreachable:
        failed.pop(host, None)  # cannot be rolled back either: retried next tick
    return PlaybookResult(
        rc=int(runner.rc if runner.rc is not None else -1),
        status=str(runner.status),
        ok=frozenset(h for h in hosts if h not in failed and h not in unreachable),
        failed={h: failed[h] for h in hosts if h in failed},
        unreachable={h: unreachable[h] for h in hosts if h in unreachable},
        artifact_dir=Path(runner.config.artifact_dir),
    )


def _message(res: Any) -> str:
    if isinstance(res, dict):
        for key in ("msg", "stderr", "reason"):
            if res.get(key):
                return str(res[key]).strip().splitlines()[0][:200]
    return "failed"
