"""The work of one binary under its lock: download, switch, record, report (docs/agent.md).

Also the crash recovery (docs/agent.md, Crash recovery), which takes the same locks and reuses the
same switch.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator

from ansible_proxy.agent import plan, trust
from ansible_proxy.agent.host import Host
from ansible_proxy.agent.manifest import ManagedBinary
from ansible_proxy.agent.selfupdate import SelfTestUnfinished, is_self, switch_self
from ansible_proxy.agent.switch import ImageNotStaged, stage_image, switch_binary
from ansible_proxy.client import download, history, locks
from ansible_proxy.client.causes import cause_of
from ansible_proxy.client.verified import remember
from ansible_proxy.errors import AnsibleProxyError, DeployError, HostFault, RetryableError, describe
from ansible_proxy.signatures import SignatureRefused, Statement

PROGRESS_EVERY = 5.0


def _report(
    host: Host,
    entry: ManagedBinary,
    target: str,
    held: locks.HeldLock,
    status: str,
    reason: str = "",
    cause: str = "",
) -> None:
    """Progress to the bin-manager; `reason` says who decided and why (the dashboard),
    `cause` whose failure a `failed` is (client/causes.py)."""
    seconds = plan.processing_time(host.clock(), held.created)
    try:
        host.api.report_progress(entry.binary_name, target, seconds, status, reason, cause)
    except RetryableError as exc:  # progress is informative: never fail a deploy over it
        host.log("warning", f"progress report failed: {exc}", entry.binary_name, target)


def upgrade(host: Host, entry: ManagedBinary, target: str, file_sha: str | None) -> None:
    """Install `target` for one binary, or leave it when another run holds the work."""
    name = entry.binary_name
    held = locks.acquire(host.cfg.lock_dir, name, target, host.cfg.lock_timeout, host.clock)
    if held is None:
        host.log("info", "another run is working on it (lock held): skipped", name, target)
        return
    try:
        # Decided again under the lock, from the manifest and the file as they are now:
        # another run may have finished, or moved the binary on, while we waited.
        entry = host.entry(name, fresh=True)
        file_sha = host.installed_sha(entry)
        if entry.hold:
            host.log("info", f"held meanwhile ({entry.hold}): left as it is", name, target)
            return
        if plan.recover(entry, file_sha, target).kind != plan.Recovery.NONE:
            host.log("info", "changed by another run meanwhile: left to the next tick", name)
            return
        if plan.decide(entry, target) != plan.Action.UPGRADE:
            return
        host.log("info", f"upgrading from {entry.version[:12] or '(none)'}", name, target)
        _report(host, entry, target, held, "in_progress")
        with _failed_on_error(host, entry, target, held):
            statement = _trusted(host, entry, target)  # before anything touches the disk
            ensure_stored(host, entry, target, held, statement.size if statement else None)
            if statement is not None:
                remember(host.cfg.store_dir / name, target, statement)
                host.log(
                    "info",
                    f"signature verified: {statement.kind} sequence {statement.sequence}",
                    name,
                    target,
                )
            if entry.image:  # an archive refused or not loading, a digest not there: no change
                try:
                    stage_image(host.switch_context(), entry, target)
                except ImageNotStaged as exc:  # `from`: the engine's error tells the cause
                    raise DeployFailed(str(exc), f"image: {exc.why}") from exc
            host.crash("after-download")
            old = entry.version
            binary = host.binary_path(name)
            if file_sha is not None and (not old or file_sha == old):
                if not entry.image:  # an image's release stays in the engine and the store
                    host.store.keep(name, file_sha, binary)  # the installed version, backed up
                old = file_sha
            withdrawn = frozenset(host.api.withdrawn.get(name, ()))
            apply(host, entry, target, old, held, withdrawn)
    finally:
        held.release()


@contextlib.contextmanager
def _failed_on_error(
    host: Host, entry: ManagedBinary, target: str, held: locks.HeldLock
) -> Iterator[None]:
    """Every way out after `in_progress` but success reports `failed`, with its cause: no
    event stays open."""
    try:
        yield
    except DeployFailed as exc:
        _report(host, entry, target, held, "failed", exc.reason, cause_of(exc))
        raise
    except BaseException as exc:
        if isinstance(exc, SystemExit):
            why = "stopped (SIGTERM)"
        else:
            why = str(exc) if isinstance(exc, AnsibleProxyError) else describe(exc)
        _report(host, entry, target, held, "failed", f"agent: {why}", cause_of(exc))
        raise


def _trusted(host: Host, entry: ManagedBinary, target: str) -> Statement | None:
    """trust.check, a refusal made a DeployFailed that names it (log line and report)."""
    try:
        return trust.check(host, entry, target)
    except SignatureRefused as exc:  # `from`: refused, or not checked (this host's fault)
        raise DeployFailed(
            f"{entry.binary_name}@{target[:12]}: refused: {exc} (TRUSTED_KEYS); nothing changed",
            f"signature: {exc}",
        ) from exc


class DeployFailed(DeployError):
    """The new version was unhealthy in the watch window, or refused before it was tried;
    `reason` is for the dashboard. Raised `from` the error that refused it, if any."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def apply(
    host: Host,
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
    if not is_self(name):  # the agent itself is no supervisor program
        host.supervisor.info(entry.service_name)
    entry = host.update_manifest(
        name, history={target: history.PENDING}, upgrade_path={} if back else {target: old}
    )
    try:
        reason = _switch(host, entry, target, None if back else old)
    except SelfTestUnfinished:  # not tried: nothing replaced, tried again next tick
        host.update_manifest(name, drop_history=(target,))
        raise
    host.crash("before-manifest")
    earlier = entry.upgrade_path.get(target, "")  # what `target` itself replaced, once
    if reason and back:
        host.update_manifest(
            name, version=target, previous_version=earlier, history={target: history.ERR}
        )
        raise DeployFailed(
            f"{name}@{target[:12]}: {reason}; not rolled back: {old[:12]} was withdrawn by "
            "the bin-manager (pinned away from): left for a person",
            f"pin: the pinned release is unhealthy: {reason}",
        )
    if reason:
        host.update_manifest(name, history={target: history.ERR})
        if is_self(name):
            raise DeployFailed(f"{name}@{target[:12]}: {reason}", f"self-test: {reason}")
        raise DeployFailed(f"{name}@{target[:12]}: {reason}; rolled back", f"watch: {reason}")
    done = host.update_manifest(
        name,
        version=target,
        previous_version=earlier if back else old,
        history={target: history.OK},
    )
    if back:
        why = f"pin: moved back to {target[:12]} (withdrawn: {old[:12]})"
        host.log("info", f"moved back: {old[:12]} was withdrawn by the bin-manager", name, target)
    else:
        why = ""
        host.log("info", "upgraded and healthy", name, target)
    prune_store(host, done)
    _report(host, entry, target, held, "success", why)
    try:
        host.api.report_bin(name, target)
    except RetryableError as exc:
        host.log(
            "warning", f"could not report the new version (retried next tick): {exc}", name, target
        )
        host.state.set("unreported", name, target)


def _switch(host: Host, entry: ManagedBinary, target: str, previous: str | None) -> str:
    """Put `target` in place and check it: "" when healthy, else why (switched back)."""
    if is_self(entry.binary_name):
        return switch_self(host, entry, target)
    return switch_binary(host.switch_context(), entry, target, previous)


def prune_store(host: Host, entry: ManagedBinary) -> None:
    """STORE_KEEP: keep the installed version, its rollback target, any pending target
    and the STORE_KEEP newest others; never what a rollback or a recovery may need."""
    needed = {entry.version, plan.rollback_target(entry), plan.pending_target(entry)}
    removed = host.store.prune(entry.binary_name, needed - {""}, host.cfg.store_keep)
    if removed:
        short = ", ".join(sha[:12] for sha in removed)
        host.log(
            "info", f"store: removed {len(removed)} old version(s): {short}", entry.binary_name
        )


def ensure_stored(
    host: Host, entry: ManagedBinary, target: str, held: locks.HeldLock, size: int | None = None
) -> None:
    """Have a verified copy of `target` in the store, downloading it if needed; `size` (a
    signed statement's) caps the download below MAX_DOWNLOAD_BYTES."""
    name, store, cfg = entry.binary_name, host.store, host.cfg
    store.prepare(name)
    if store.has(name, target):
        return
    part = store.part_path(name, target)
    urls = download.release_urls(cfg.download_base_url, cfg.api, name, target, host.api.arch)

    def tell(why: str) -> None:
        host.log("warning", why, name, target)

    try:
        download.fetch_release(
            host.api.client,
            urls,
            part,
            target,
            cfg.max_download_bytes,
            _progress(host, entry, target, held),
            cfg.download_stall_timeout,
            tell,
            size,
        )
    except download.NotFound:
        raise HostFault(f"{name}@{target[:12]}: not downloadable from either URL") from None
    store.adopt(name, target, part)
    host.log("info", "downloaded and verified", name, target)


def _progress(
    host: Host, entry: ManagedBinary, target: str, held: locks.HeldLock
) -> Callable[[int, int | None], None]:
    """Report in_progress every 5 s of a download; draw a bar on a terminal."""
    last = [time.monotonic()]
    bar = _Bar(entry.binary_name) if host.show_progress else None

    def progress(done: int, total: int | None) -> None:
        if bar is not None:
            bar.update(done, total)
        now = time.monotonic()
        if now - last[0] >= PROGRESS_EVERY:
            last[0] = now
            _report(host, entry, target, held, "in_progress")

    return progress


class _Bar:
    """One line on the terminal's stderr, redrawn as the download goes (no dependency)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.shown = -1

    def update(self, done: int, total: int | None) -> None:
        mib = done / 2**20
        if total:
            percent = done * 100 // total
            if percent == self.shown:
                return
            self.shown = percent
            text = f"download {self.name}: {percent:3d} % of {total / 2**20:.1f} MiB"
        else:
            text = f"download {self.name}: {mib:.1f} MiB"
        end = "\n" if total is not None and done >= total else ""
        print(f"\r{text}", end=end, file=sys.stderr, flush=True)


def recover(
    host: Host, entry: ManagedBinary, recovery: plan.RecoveryPlan, latest: str | None = None
) -> ManagedBinary | None:
    """Crash recovery (docs/agent.md); the entry afterwards, or None when another run has it."""
    name = entry.binary_name
    lock_sha = recovery.target or recovery.previous
    held = locks.acquire(host.cfg.lock_dir, name, lock_sha, host.cfg.lock_timeout, host.clock)
    if held is None:
        host.log("info", "another run holds this binary: recovery skipped", name, lock_sha)
        return None
    try:
        entry = host.entry(name, fresh=True)
        if entry.hold:
            return None  # held meanwhile: `ansible-proxy release` hands it back
        if plan.recover(entry, host.installed_sha(entry), latest) != recovery:
            return entry  # another run converged it meanwhile
        binary = host.binary_path(name)
        if recovery.kind == plan.Recovery.ADOPT:
            host.log(
                "warning",
                f"BIN_DIR already holds the published version, the manifest says "
                f"{recovery.previous[:12]}: recorded it (no restart)",
                name,
                recovery.target,
            )
            return host.update_manifest(
                name,
                version=recovery.target,
                previous_version=entry.upgrade_path.get(recovery.target, recovery.previous),
                history={recovery.target: history.OK},
                upgrade_path=(
                    {} if recovery.target in entry.upgrade_path
                    else {recovery.target: recovery.previous}
                ),
            )  # fmt: skip
        if recovery.kind == plan.Recovery.FINISH:
            host.log("info", "finishing an interrupted upgrade", name, recovery.target)
            if not entry.image:
                host.store.keep(name, recovery.target, binary)
            with _failed_on_error(host, entry, recovery.target, held):
                apply(host, entry, recovery.target, recovery.previous, held)
        elif recovery.kind == plan.Recovery.ABANDON:
            host.log(
                "info",
                "forgetting an upgrade interrupted before the replace",
                name,
                recovery.target,
            )
        else:
            host.log(
                "warning",
                "BIN_DIR does not hold the recorded version: restoring",
                name,
                recovery.previous,
            )
            ensure_stored(host, entry, recovery.previous, held)
            reason = _switch(host, entry, recovery.previous, None)
            if reason:
                raise DeployError(
                    f"{name}@{recovery.previous[:12]}: restored but unhealthy: {reason}"
                )
        if recovery.target and recovery.kind != plan.Recovery.FINISH:
            return host.update_manifest(name, drop_history=(recovery.target,))
        return host.entry(name, fresh=True)
    finally:
        held.release()
