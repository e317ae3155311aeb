"""Switch a service's binary (or image) to a stored version: replace, restart, watch, roll back.

One reusable function for the agent's upgrade, its crash recovery and the
inspector's rollback. The caller holds the lock and records the result.

An image entry's restart also stops and removes its container (by name) when the
program's stop left it running, and its watch ends by checking that the container runs
the release's image: the port alone may be answered by an old container
(docs/containers.md, Stopping and checking the container).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ansible_proxy.agent.adapters.store import Store
from ansible_proxy.agent.adapters.supervisor import Supervisor, watch
from ansible_proxy.agent.manifest import ManagedBinary
from ansible_proxy.client.files import replace_with_copy, sha256_file
from ansible_proxy.client.logs import Log
from ansible_proxy.errors import ConfigError, DeployError, HostFault, RetryableError

if TYPE_CHECKING:
    from ansible_proxy.agent.adapters.engine import Engine

# After the watch, how long a container may take to be running (a slow `podman run`).
CONTAINER_START_SECONDS = 20.0
_POLL = 0.5


def _no_engine() -> Engine:
    raise ConfigError("no container engine given for an image entry")


@dataclass(frozen=True)
class SwitchContext:
    supervisor: Supervisor
    store: Store
    bin_dir: Path
    watch_seconds: float
    log: Log
    crash: Callable[[str], None] = lambda point: None
    engine: Callable[[], Engine] = _no_engine  # made on first use: image entries only


class ImageNotStaged(DeployError):
    """An image release that was refused, or did not load or pull: nothing changed."""

    def __init__(self, name: str, sha: str, why: str) -> None:
        super().__init__(f"{name}@{sha[:12]}: {why}")
        self.why = why


def stage_image(ctx: SwitchContext, entry: ManagedBinary, sha: str) -> str:
    """An image entry's stored release `sha` loaded (or pulled) into the engine under its
    release tag, `:current` untouched; its image ID. Done before an upgrade is recorded,
    so that a release refused, or that does not load or pull, changes nothing.

    The engine's release tag is trusted only when it is the image recorded beside the
    stored release when that was verified; else the stored file is verified and loaded
    again, the tag set by the image ID it holds, and that ID recorded.
    """
    engine, name = ctx.engine(), entry.binary_name
    recorded = ctx.store.image_id(name, sha)
    if engine.has_release(entry.image, sha, recorded):
        return recorded
    stored = ctx.store.path(name, sha)
    if sha256_file(stored) != sha:  # this host's store changed it: not the release's fault
        why = "the stored file does not match"
        raise ImageNotStaged(name, sha, why) from HostFault(why)
    try:
        image_id = engine.load(entry.image, stored, sha)
    except DeployError as exc:  # `from`: a full engine store is the host's, not the release's
        raise ImageNotStaged(name, sha, str(exc)) from exc
    ctx.store.record_image_id(name, sha, image_id)
    return image_id


def put_in_place(ctx: SwitchContext, entry: ManagedBinary, sha: str) -> None:
    """The stored release `sha` in place: copied over BIN_DIR's file, or for an image entry
    loaded (or found) in the engine and tagged `<image>:current` (adapters/engine.py)."""
    stored = ctx.store.path(entry.binary_name, sha)
    if not entry.image:
        replace_with_copy(stored, ctx.bin_dir / entry.binary_name, expected_sha=sha)
        return
    image_id = stage_image(ctx, entry, sha)
    ctx.engine().install(entry.image, image_id)  # a tag by ID: no load, no network


def switch_binary(
    ctx: SwitchContext, entry: ManagedBinary, target: str, previous: str | None
) -> str:
    """Put stored `target` in BIN_DIR, restart, watch (an image entry: and check which
    image its container runs); "" when healthy, else the reason.

    On failure, and when `previous` is not None, the stored `previous` binary is put
    back and restarted ("" = there was none: the service is stopped, the file removed).
    """
    put_in_place(ctx, entry, target)
    ctx.crash("after-replace")
    restart(ctx, entry)
    ctx.crash("after-restart")
    reason = watch(ctx.supervisor, entry.service_name, ctx.watch_seconds, entry.port)
    if not reason and entry.image:
        reason = image_refusal(ctx, entry, target)
    if reason and previous is not None:
        roll_back(ctx, entry, previous, reason, target)
    return reason


def restart(ctx: SwitchContext, entry: ManagedBinary) -> None:
    """Restart the program; an image entry's container is stopped and removed in between
    when the program's stop left it running (its PID 1 ignored the SIGTERM)."""
    if entry.image:
        stop_container(ctx, entry)
    ctx.supervisor.restart(entry.service_name)


def stop_container(ctx: SwitchContext, entry: ManagedBinary) -> None:
    """Stop the program, then its container by name if that is still there: stopping
    `podman run` does not stop a container whose PID 1 ignores SIGTERM."""
    ctx.supervisor.stop(entry.service_name)
    name = entry.container_name
    try:
        stopped = ctx.engine().remove_container(name)
    except RetryableError as exc:  # start anyway: the image check after the watch judges
        ctx.log("warning", f"container {name}: {exc}", entry.binary_name, entry.version)
        return
    if stopped:
        ctx.log(
            "warning",
            f"container {name} still ran after its program stopped (its PID 1 ignores "
            f"SIGTERM?): stopped and removed it",
            entry.binary_name,
            entry.version,
        )


def image_refusal(ctx: SwitchContext, entry: ManagedBinary, sha: str) -> str:
    """What the entry's container runs instead of release `sha`'s image; "" when it runs it.

    Waits up to CONTAINER_START_SECONDS for the container to be running at all.
    """
    engine, name = ctx.engine(), entry.container_name
    deadline = time.monotonic() + CONTAINER_START_SECONDS
    seen = engine.running(name, entry.image)
    while not seen.image_id and time.monotonic() < deadline:
        time.sleep(_POLL)
        seen = engine.running(name, entry.image)
    return seen.refusal(sha)


def roll_back(ctx: SwitchContext, entry: ManagedBinary, previous: str, why: str, bad: str) -> None:
    """Put `previous` back (or remove the binary when there is none) and restart."""
    name = entry.binary_name
    ctx.log("warning", f"unhealthy: {why}; rolling back", name, bad)
    binary = ctx.bin_dir / name
    if not previous:
        if entry.image:
            stop_container(ctx, entry)
            ctx.engine().remove_current(entry.image)
            what = f"{entry.image}:current untagged"
        else:
            ctx.supervisor.stop(entry.service_name)
            with contextlib.suppress(FileNotFoundError):
                binary.unlink()
            what = "binary removed"
        ctx.log("warning", f"no previous version: service stopped, {what}", name, bad)
        return
    in_engine = bool(entry.image) and ctx.engine().has_release(
        entry.image, previous, ctx.store.image_id(name, previous)
    )
    if not in_engine and not ctx.store.has(name, previous):
        ctx.log(
            "error", "previous version missing from the store: cannot roll back", name, previous
        )
        return
    put_in_place(ctx, entry, previous)
    restart(ctx, entry)
    reason = watch(ctx.supervisor, entry.service_name, ctx.watch_seconds, entry.port)
    if not reason and entry.image:
        reason = image_refusal(ctx, entry, previous)
    if reason:
        ctx.log("error", f"rolled back but still unhealthy: {reason}", name, previous)
    else:
        ctx.log("info", "rolled back, previous version running", name, previous)
