"""The work of one binary under its lock: download, switch, record, report (docs/agent.md).

Also the crash recovery (docs/agent.md, Crash recovery), which takes the same locks and reuses the
same switch.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator

from ansible_proxy.agent import plan
from ansible_proxy.agent.manifest import ManagedBinary
from ansible_proxy.agent.switch import switch_binary
from ansible_proxy.agent.tick import Tick, describe
from ansible_proxy.client import download, locks
from ansible_proxy.errors import DeployError, RetryableError

PROGRESS_EVERY = 5.0


def _report(
    tick: Tick,
    entry: ManagedBinary,
    target: str,
    held: locks.HeldLock,
    status: str,
    reason: str = "",
) -> None:
    """Progress to the bin-manager; `reason` says who decided and why (the dashboard)."""
    seconds = plan.processing_time(tick.clock(), held.created)
    try:
        tick.api.report_progress(entry.binary_name, target, seconds, status, reason)
    except RetryableError as exc:  # progress is informative: never fail a deploy over it
        tick.log("warning", f"progress report failed: {exc}", entry.binary_name, target)


def upgrade(tick: Tick, entry: ManagedBinary, target: str, file_sha: str | None) -> None:
    """Install `target` for one binary, or leave it when another run holds the work."""
    name = entry.binary_name
    held = locks.acquire(tick.cfg.lock_dir, name, target, tick.cfg.lock_timeout, tick.clock)
    if held is None:
        tick.log("info", "another run is working on it (lock held): skipped", name, target)
        return
    try:
        # Decided again under the lock, from the manifest and the file as they are now:
        # another run may have finished, or moved the binary on, while we waited.
        entry = load_entry(tick, name)
        file_sha = tick.state.file_sha(tick.cfg.bin_dir / name)
        if entry.hold:
            tick.log("info", f"held meanwhile ({entry.hold}): left as it is", name, target)
            return
        if plan.recover(entry, file_sha, target).kind != plan.Recovery.NONE:
            tick.log("info", "changed by another run meanwhile: left to the next tick", name)
            return
        if plan.decide(entry, target) != plan.Action.UPGRADE:
            return
        tick.log("info", f"upgrading from {entry.version[:12] or '(none)'}", name, target)
        _report(tick, entry, target, held, "in_progress")
        with _failed_on_error(tick, entry, target, held):
            ensure_stored(tick, entry, target, held)
            tick.crash("after-download")
            old = entry.version
            binary = tick.cfg.bin_dir / name
            if file_sha is not None and (not old or file_sha == old):
                tick.store.keep(name, file_sha, binary)  # the installed version, backed up
                old = file_sha
            withdrawn = frozenset(tick.api.withdrawn.get(name, ()))
            apply(tick, entry, target, old, held, withdrawn)
    finally:
        held.release()


@contextlib.contextmanager
def _failed_on_error(
    tick: Tick, entry: ManagedBinary, target: str, held: locks.HeldLock
) -> Iterator[None]:
    """Every way out after `in_progress` but success reports `failed`: no event stays open."""
    try:
        yield
    except DeployFailed as exc:
        _report(tick, entry, target, held, "failed", exc.reason)
        raise
    except BaseException as exc:
        why = "stopped (SIGTERM)" if isinstance(exc, SystemExit) else describe(exc)
        _report(tick, entry, target, held, "failed", f"agent: {why}")
        raise


class DeployFailed(DeployError):
    """The new version was unhealthy in the watch window; `reason` is for the dashboard."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def apply(
    tick: Tick,
    entry: ManagedBinary,
    target: str,
    old: str,
    held: locks.HeldLock,
    withdrawn: frozenset[str] = frozenset(),
) -> None:
    """Record the attempt, switch, then record and report the result (failures raise).

    When `old` was withdrawn by the bin-manager (a pin moved the fleet back), this is a
    move back: `old` is never recorded as a rollback target nor rolled back to.
    """
    name = entry.binary_name
    back = plan.is_move_back(old, withdrawn)
    # Ask supervisor first: an unknown program or an unreachable supervisord changes nothing.
    tick.supervisor.info(entry.service_name)
    entry = tick.update_manifest(
        name, history={target: plan.PENDING}, upgrade_path={} if back else {target: old}
    )
    reason = switch_binary(tick.switch_context(), entry, target, None if back else old)
    tick.crash("before-manifest")
    earlier = entry.upgrade_path.get(target, "")  # what `target` itself replaced, once
    if reason and back:
        tick.update_manifest(
            name, version=target, previous_version=earlier, history={target: plan.ERR}
        )
        raise DeployFailed(
            f"{name}@{target[:12]}: {reason}; not rolled back: {old[:12]} was withdrawn by "
            "the bin-manager (pinned away from): left for a person",
            f"pin: the pinned release is unhealthy: {reason}",
        )
    if reason:
        tick.update_manifest(name, history={target: plan.ERR})
        raise DeployFailed(f"{name}@{target[:12]}: {reason}; rolled back", f"watch: {reason}")
    done = tick.update_manifest(
        name,
        version=target,
        previous_version=earlier if back else old,
        history={target: plan.OK},
    )
    if back:
        why = f"pin: moved back to {target[:12]} (withdrawn: {old[:12]})"
        tick.log("info", f"moved back: {old[:12]} was withdrawn by the bin-manager", name, target)
    else:
        why = ""
        tick.log("info", "upgraded and healthy", name, target)
    prune_store(tick, done)
    _report(tick, entry, target, held, "success", why)
    try:
        tick.api.report_bin(name, target)
    except RetryableError as exc:
        tick.log(
            "warning", f"could not report the new version (retried next tick): {exc}", name, target
        )
        tick.state.set("unreported", name, target)


def prune_store(tick: Tick, entry: ManagedBinary) -> None:
    """STORE_KEEP: keep the installed version, its rollback target, any pending target
    and the STORE_KEEP newest others; never what a rollback or a recovery may need."""
    needed = {entry.version, plan.rollback_target(entry), plan.pending_target(entry)}
    removed = tick.store.prune(entry.binary_name, needed - {""}, tick.cfg.store_keep)
    if removed:
        short = ", ".join(sha[:12] for sha in removed)
        tick.log(
            "info", f"store: removed {len(removed)} old version(s): {short}", entry.binary_name
        )


def ensure_stored(tick: Tick, entry: ManagedBinary, target: str, held: locks.HeldLock) -> None:
    """Have a verified copy of `target` in the store, downloading it if needed."""
    name, store, cfg = entry.binary_name, tick.store, tick.cfg
    store.prepare(name)
    if store.has(name, target):
        return
    part = store.part_path(name, target)
    arch = tick.api.arch
    primary = f"{cfg.download_base_url}/{name}?sha256={target}&arch={arch}"
    fallback = f"{cfg.api}/releases/latest/{name}/download?arch={arch}"
    progress = _progress(tick, entry, target, held)
    try:
        for attempt in range(3):
            try:
                download.fetch(
                    tick.api.client,
                    primary,
                    part,
                    target,
                    cfg.max_download_bytes,
                    progress,
                    stall=cfg.download_stall_timeout,
                )
                break
            except download.Stalled:
                raise  # a slow link stays slow: the next tick resumes it
            except RetryableError as exc:
                if attempt == 2 or not part.exists():
                    raise
                tick.log("warning", f"{exc}; resuming", name, target)
    except download.NotFound:
        tick.log(
            "warning", "not found at DOWNLOAD_BASE_URL: trying the latest release", name, target
        )
        try:
            download.fetch(
                tick.api.client,
                fallback,
                part,
                target,
                cfg.max_download_bytes,
                progress,
                resume=False,
                stall=cfg.download_stall_timeout,
            )
        except download.NotFound:
            raise DeployError(f"{name}@{target[:12]}: not downloadable from either URL") from None
    store.adopt(name, target, part)
    tick.log("info", "downloaded and verified", name, target)


def _progress(
    tick: Tick, entry: ManagedBinary, target: str, held: locks.HeldLock
) -> Callable[[int, int | None], None]:
    """Report in_progress every 5 s of a download; draw a bar on a terminal."""
    last = [time.monotonic()]
    bar = _Bar(entry.binary_name) if tick.show_progress else None

    def progress(done: int, total: int | None) -> None:
        if bar is not None:
            bar.update(done, total)
        now = time.monotonic()
        if now - last[0] >= PROGRESS_EVERY:
            last[0] = now
            _report(tick, entry, target, held, "in_progress")

    return progress


class _Bar:
    """A rich progress bar, imported only on a terminal."""

    def __init__(self, name: str) -> None:
        from rich.progress import Progress

        self.progress = Progress(transient=True)
        self.task = self.progress.add_task(f"download {name}", total=None)
        self.progress.start()

    def update(self, done: int, total: int | None) -> None:
        self.progress.update(self.task, completed=done, total=total)
        if total is not None and done >= total:
            self.progress.stop()


def recover(
    tick: Tick, entry: ManagedBinary, recovery: plan.RecoveryPlan, latest: str | None = None
) -> ManagedBinary | None:
    """Crash recovery (docs/agent.md); the entry afterwards, or None when another run has it."""
    name = entry.binary_name
    lock_sha = recovery.target or recovery.previous
    held = locks.acquire(tick.cfg.lock_dir, name, lock_sha, tick.cfg.lock_timeout, tick.clock)
    if held is None:
        tick.log("info", "another run holds this binary: recovery skipped", name, lock_sha)
        return None
    try:
        entry = load_entry(tick, name)
        if entry.hold:
            return None  # held meanwhile: `ansible-proxy release` hands it back
        if plan.recover(entry, tick.state.file_sha(tick.cfg.bin_dir / name), latest) != recovery:
            return entry  # another run converged it meanwhile
        binary = tick.cfg.bin_dir / name
        if recovery.kind == plan.Recovery.ADOPT:
            tick.log(
                "warning",
                f"BIN_DIR already holds the published version, the manifest says "
                f"{recovery.previous[:12]}: recorded it (no restart)",
                name,
                recovery.target,
            )
            return tick.update_manifest(
                name,
                version=recovery.target,
                previous_version=entry.upgrade_path.get(recovery.target, recovery.previous),
                history={recovery.target: plan.OK},
                upgrade_path=(
                    {} if recovery.target in entry.upgrade_path
                    else {recovery.target: recovery.previous}
                ),
            )  # fmt: skip
        if recovery.kind == plan.Recovery.FINISH:
            tick.log("info", "finishing an interrupted upgrade", name, recovery.target)
            tick.store.keep(name, recovery.target, binary)
            with _failed_on_error(tick, entry, recovery.target, held):
                apply(tick, entry, recovery.target, recovery.previous, held)
        elif recovery.kind == plan.Recovery.ABANDON:
            tick.log(
                "info",
                "forgetting an upgrade interrupted before the replace",
                name,
                recovery.target,
            )
        else:
            tick.log(
                "warning",
                "BIN_DIR does not hold the recorded version: restoring",
                name,
                recovery.previous,
            )
            ensure_stored(tick, entry, recovery.previous, held)
            reason = switch_binary(tick.switch_context(), entry, recovery.previous, None)
            if reason:
                raise DeployError(
                    f"{name}@{recovery.previous[:12]}: restored but unhealthy: {reason}"
                )
        if recovery.target and recovery.kind != plan.Recovery.FINISH:
            return tick.update_manifest(name, drop_history=(recovery.target,))
        return load_entry(tick, name)
    finally:
        held.release()


def load_entry(tick: Tick, name: str) -> ManagedBinary:
    from ansible_proxy.agent.manifest import load_manifest

    return load_manifest(tick.cfg.manifest_path).get(name)
