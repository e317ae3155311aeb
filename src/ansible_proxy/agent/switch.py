"""Switch a service's binary to a stored version: replace, restart, watch, roll back.

One reusable function for the agent's upgrade, its crash recovery and the
inspector's rollback. The caller holds the lock and records the result.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ansible_proxy.agent.adapters.store import Store
from ansible_proxy.agent.adapters.supervisor import Supervisor, watch
from ansible_proxy.agent.manifest import ManagedBinary
from ansible_proxy.client.files import replace_with_copy
from ansible_proxy.client.logs import Log


@dataclass(frozen=True)
class SwitchContext:
    supervisor: Supervisor
    store: Store
    bin_dir: Path
    watch_seconds: float
    log: Log
    crash: Callable[[str], None] = lambda point: None


def switch_binary(
    ctx: SwitchContext, entry: ManagedBinary, target: str, previous: str | None
) -> str:
    """Put stored `target` in BIN_DIR, restart, watch; "" when healthy, else the reason.

    On failure, and when `previous` is not None, the stored `previous` binary is put
    back and restarted ("" = there was none: the service is stopped, the file removed).
    """
    binary = ctx.bin_dir / entry.binary_name
    replace_with_copy(ctx.store.path(entry.binary_name, target), binary, expected_sha=target)
    ctx.crash("after-replace")
    ctx.supervisor.restart(entry.service_name)
    ctx.crash("after-restart")
    reason = watch(ctx.supervisor, entry.service_name, ctx.watch_seconds, entry.port)
    if reason and previous is not None:
        roll_back(ctx, entry, previous, reason, target)
    return reason


def roll_back(ctx: SwitchContext, entry: ManagedBinary, previous: str, why: str, bad: str) -> None:
    """Put `previous` back (or remove the binary when there is none) and restart."""
    name = entry.binary_name
    ctx.log("warning", f"unhealthy: {why}; rolling back", name, bad)
    binary = ctx.bin_dir / name
    if not previous:
        ctx.supervisor.stop(entry.service_name)
        with contextlib.suppress(FileNotFoundError):
            binary.unlink()
        ctx.log("warning", "no previous version: service stopped, binary removed", name, bad)
        return
    if not ctx.store.has(name, previous):
        ctx.log(
            "error", "previous version missing from the store: cannot roll back", name, previous
        )
        return
    replace_with_copy(ctx.store.path(name, previous), binary, expected_sha=previous)
    ctx.supervisor.restart(entry.service_name)
    reason = watch(ctx.supervisor, entry.service_name, ctx.watch_seconds, entry.port)
    if reason:
        ctx.log("error", f"rolled back but still unhealthy: {reason}", name, previous)
    else:
        ctx.log("info", "rolled back, previous version running", name, previous)
