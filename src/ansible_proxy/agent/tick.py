"""One tick of `ansible-proxy run` (docs/agent.md): keepalive, then each binary on its own.

`run_tick` returns the exit code; a failure of one binary never stops the others.
Heavy adapters (supervisor, psutil, locks) are imported only when there is work.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ansible_proxy.agent import plan
from ansible_proxy.agent.adapters import nodeinfo
from ansible_proxy.agent.adapters.store import State, Store
from ansible_proxy.agent.manifest import EntryRemoved, ManagedBinary, Manifest, load_manifest
from ansible_proxy.client.api import Api, Batch, UnknownBin
from ansible_proxy.client.config import AgentConfig
from ansible_proxy.client.logs import Log
from ansible_proxy.errors import (
    EXIT_CONFIG,
    EXIT_DEPLOY,
    EXIT_OK,
    EXIT_RETRY,
    AnsibleProxyError,
    ConfigError,
    RetryableError,
)

if TYPE_CHECKING:
    from ansible_proxy.agent.adapters.supervisor import Supervisor
    from ansible_proxy.agent.switch import SwitchContext

# Worst first: a config problem outranks a failed deploy, which outranks "retry".
_SEVERITY = {EXIT_CONFIG: 3, EXIT_DEPLOY: 2, EXIT_RETRY: 1, EXIT_OK: 0}
CRASH_POINTS = ("after-download", "after-replace", "after-restart", "before-manifest")


@dataclass
class Tick:
    """Everything one tick needs, built by cli.py and passed down."""

    cfg: AgentConfig
    api: Api
    log: Log
    clock: Callable[[], float] = time.time
    crash_at: str = ""  # test-only: ANSIBLE_PROXY_TEST_CRASH_AT
    show_progress: bool = False
    store: Store = field(init=False)
    state: State = field(init=False)
    _supervisor: Supervisor | None = field(default=None, init=False)
    batch: dict[str, str] | None = field(default=None, init=False)  # GET /bins, this tick
    failures: list[tuple[int, str]] = field(default_factory=list, init=False)  # (exit, line)
    manifest: Manifest | None = field(default=None, init=False)  # as loaded at the start
    _manifest_stamp: tuple[int, int, int] | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.store = Store(self.cfg.store_dir)
        self.state = State(self.cfg.store_dir / ".state.json")

    def crash(self, point: str) -> None:
        """Test-only crash hook: SIGKILL ourselves at a named point."""
        if point == self.crash_at:
            os.kill(os.getpid(), signal.SIGKILL)

    @property
    def supervisor(self) -> Supervisor:
        if self._supervisor is None:
            from ansible_proxy.agent.adapters.supervisor import Supervisor

            cfg = self.cfg
            self._supervisor = Supervisor(
                cfg.supervisor_url,
                cfg.supervisor_user,
                cfg.supervisor_password,
                cfg.supervisor_timeout,
            )
        return self._supervisor

    def switch_context(self) -> SwitchContext:
        from ansible_proxy.agent.switch import SwitchContext

        return SwitchContext(
            self.supervisor,
            self.store,
            self.cfg.bin_dir,
            self.cfg.watch_seconds,
            self.log,
            self.crash,
        )

    def load_manifest(self) -> Manifest:
        """The manifest at the start of the tick; its stamp tells later reads if it changed."""
        self.manifest = load_manifest(self.cfg.manifest_path)
        self._manifest_stamp = _stamp(self.cfg.manifest_path)
        return self.manifest

    def entry(self, binary_name: str) -> ManagedBinary:
        """The binary's entry as the manifest holds it now (another run may have changed it).

        Re-read only when the file changed since the tick began: a no-op tick parses once.
        """
        if self.manifest is not None and _stamp(self.cfg.manifest_path) == self._manifest_stamp:
            return self.manifest.get(binary_name)
        return load_manifest(self.cfg.manifest_path).get(binary_name)

    def update_manifest(self, binary_name: str, **changes: object) -> ManagedBinary:
        """Read-modify-write the manifest under its lock, so overlapping runs merge."""
        from ansible_proxy.client.locks import exclusive

        with exclusive(self.cfg.lock_dir / ".manifest.lock"):
            manifest = load_manifest(self.cfg.manifest_path)
            entry = manifest.update(binary_name, **changes)  # type: ignore[arg-type]
            manifest.save()
        return entry


def _stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()  # through a symlink: the file the operator edits
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


def describe(exc: BaseException) -> str:
    """One line for an error we did not plan for: the file and the reason for OS errors."""
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.filename}: {exc.strerror}" if exc.filename else exc.strerror
    return f"unexpected {type(exc).__name__}: {exc}"


def run_tick(tick: Tick) -> int:
    """The tick of docs/agent.md, steps 1-5; returns the exit code of the worst outcome.

    Each failed binary leaves one line in `tick.failures` for cli.py to print.
    """
    cfg, log = tick.cfg, tick.log
    manifest = tick.load_manifest()  # first: a bad manifest changes nothing
    for directory, key in ((cfg.lock_dir, "LOCK_DIR"), (cfg.store_dir, "STORE_DIR")):
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"{key} {directory}: cannot create: {exc.strerror}") from None
    if cfg.insecure:
        log("warning", "INSECURE_SKIP_VERIFY=1: TLS certificates are NOT verified")
    info = nodeinfo.collect(cfg.node_name)
    keepalive(tick, info)  # before any write: an unreachable API changes nothing on disk
    refresh_node_info(tick, manifest, info)
    if manifest.binaries:
        poll_all(tick)
    worst = EXIT_OK
    for entry in manifest.binaries:
        name = entry.binary_name
        try:
            process_binary(tick, name)
            continue
        except EntryRemoved as exc:  # the operator's edit: not a failure of ours
            log("warning", f"{exc} (removed during this tick): left as it is", name)
            continue
        except AnsibleProxyError as exc:
            code, message = exc.exit_code, str(exc)
        except Exception as exc:  # one binary's surprise must not stop the others
            code, message = EXIT_DEPLOY, describe(exc)
        log("warning" if code == EXIT_RETRY else "error", message, name)
        tick.failures.append((code, f"{name}: {message}"))
        if _SEVERITY[code] > _SEVERITY[worst]:
            worst = code
    try:
        tick.state.save()
    except OSError as exc:  # a cache: losing it costs a re-hash, never a wrong decision
        log("warning", f"state file not saved: {describe(exc)}")
    return worst


def refresh_node_info(tick: Tick, manifest: Manifest, info: dict[str, str]) -> None:
    """Write nodeInfo into the manifest only when it changed (a no-op tick writes nothing)."""
    if manifest.node_info() == info:
        return
    from ansible_proxy.client.locks import exclusive

    with exclusive(tick.cfg.lock_dir / ".manifest.lock"):
        fresh = load_manifest(tick.cfg.manifest_path)
        if fresh.set_node_info(info):
            fresh.save()
            tick.log("info", "nodeInfo updated in the manifest")


def keepalive(tick: Tick, info: dict[str, str]) -> None:
    """GET /keepalive; POST it when the node is unknown or its info changed."""
    known = tick.api.node_known()
    if known and tick.state.get("node", "info") == info:
        return
    tick.api.register(info)
    tick.state.set("node", "info", info)
    tick.log("info", "registered with the bin-manager" if not known else "node info updated")


def poll_all(tick: Tick) -> None:
    """GET /bins once, with the last answer's ETag; on any failure each bin is polled alone."""
    saved_bins, etag = tick.state.get("batch", "bins"), tick.state.get("batch", "etag")
    saved_withdrawn = tick.state.get("batch", "withdrawn")
    previous = None
    # A state file from before `withdrawn` was kept: ask afresh once, or a 304 would hide
    # a pin in force.
    if isinstance(saved_bins, dict) and isinstance(etag, str) and isinstance(saved_withdrawn, dict):
        previous = Batch(saved_bins, etag, saved_withdrawn)
    try:
        answer = tick.api.latest_all(previous)
    except AnsibleProxyError as exc:
        tick.log("debug", f"batch poll failed, polling each bin: {exc}")
        return
    if answer is None:
        tick.log("debug", "the bin-manager has no batch poll: polling each bin")
        return
    tick.batch = answer.bins
    tick.state.set("batch", "bins", answer.bins)
    tick.state.set("batch", "etag", answer.etag)
    tick.state.set("batch", "withdrawn", answer.withdrawn)


def latest_for(tick: Tick, name: str) -> str:
    """The sha256 `name` should be at: from this tick's batch answer, else GET /bins/{bin}."""
    if tick.batch is None:
        return tick.api.latest(name)
    sha = tick.batch.get(name)
    if sha is None:
        raise UnknownBin(f"API GET /bins: not published: no {tick.api.arch} release of {name}")
    return sha


def process_binary(tick: Tick, name: str) -> None:
    """Recovery first, then the latest version for one binary.

    Decided from the manifest as it is now, not as it was when the tick began: an
    overlapping run may have upgraded this binary meanwhile.
    """
    entry = tick.entry(name)
    latest: str | None = None
    unknown: AnsibleProxyError | None = None
    try:
        latest = latest_for(tick, name)
    except AnsibleProxyError as exc:  # recovery needs no answer from the API
        unknown = exc
    if latest is not None:
        tick.state.set("latest", name, latest)
        # For the inspector and `status`: never roll back to these, leave a pinned one be.
        tick.state.set("withdrawn", name, list(tick.api.withdrawn.get(name, ())))
    if entry.hold:  # `ansible-proxy hold`: not even a crash recovery touches it
        tick.log("debug", f"held ({entry.hold}): left as it is", name, entry.version)
        return
    file_sha = tick.state.file_sha(tick.cfg.bin_dir / name)
    recovery = plan.recover(entry, file_sha, latest)
    if recovery.kind != plan.Recovery.NONE:
        from ansible_proxy.agent import upgrade

        recovered = upgrade.recover(tick, entry, recovery, latest)
        if recovered is None:
            return
        entry = recovered
        file_sha = tick.state.file_sha(tick.cfg.bin_dir / name)
    if unknown is not None or latest is None:
        raise unknown or RetryableError(f"no latest version known for {name}")
    action = plan.decide(entry, latest)
    if action == plan.Action.NOTHING:
        tick.log("debug", "up to date", name, latest)
        if tick.state.get("unreported", name) == latest:  # POST /bins failed last time
            tick.api.report_bin(name, latest)
            tick.state.set("unreported", name, None)
            tick.log("info", "reported the installed version", name, latest)
        return
    if action == plan.Action.SKIP_KNOWN_BAD:
        if tick.state.get("warned", name) != latest:
            tick.log(
                "warning", "latest is known bad (history err): not installing it", name, latest
            )
            tick.state.set("warned", name, latest)
        return
    from ansible_proxy.agent import upgrade

    upgrade.upgrade(tick, entry, latest, file_sha)
