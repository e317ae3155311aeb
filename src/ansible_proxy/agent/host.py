"""One host's collaborators, built once per run by `runner.py` or the inspector.

`Host` holds what the tick, the upgrade and the inspector's rollback share: the config,
the API, the log, the clock, the store and its state file, supervisor (connected on
first use: a no-op tick never opens its socket) and the manifest, read again only when
another run changed it. It decides nothing; `tick.py`, `upgrade.py` and `inspector/`
do, and take a `Host` as their first argument.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ansible_proxy.agent.adapters.store import State, Store
from ansible_proxy.agent.manifest import SELF_NAME, ManagedBinary, Manifest, load_manifest
from ansible_proxy.client.api import Api
from ansible_proxy.client.config import AgentConfig
from ansible_proxy.client.logs import Log

if TYPE_CHECKING:
    from ansible_proxy.agent.adapters.engine import Engine
    from ansible_proxy.agent.adapters.supervisor import Supervisor
    from ansible_proxy.agent.switch import SwitchContext


@dataclass
class Host:
    """The config, API, log, clock, store, supervisor and manifest of one run."""

    cfg: AgentConfig
    api: Api
    log: Log
    clock: Callable[[], float] = time.time
    crash_at: str = ""  # test-only: ANSIBLE_PROXY_TEST_CRASH_AT
    show_progress: bool = False
    agent_path: Path | None = None  # the running one-file agent (selfupdate.agent_file())
    # Lines a person must see once even under cron (stderr), whatever the exit code.
    notices: list[str] = field(default_factory=list)
    store: Store = field(init=False)
    state: State = field(init=False)
    _supervisor: Supervisor | None = field(default=None, init=False)
    _engine: Engine | None = field(default=None, init=False)
    _manifest: Manifest | None = field(default=None, init=False)
    _manifest_stamp: tuple[int, int, int] | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.store = Store(self.cfg.store_dir)
        self.state = State(self.cfg.store_dir / ".state.json")

    def crash(self, point: str) -> None:
        """Test-only crash hook (ANSIBLE_PROXY_TEST_CRASH_AT): SIGKILL ourselves at `point`.

        The points, in upgrade order: after-download, after-replace, after-restart,
        before-manifest.
        """
        if point == self.crash_at:
            os.kill(os.getpid(), signal.SIGKILL)

    @property
    def supervisor(self) -> Supervisor:
        """supervisord's XML-RPC client, made on first use."""
        if self._supervisor is None:
            # Start-up time: supervisor's XML-RPC (~0.1 s) only when a binary needs it.
            from ansible_proxy.agent.adapters.supervisor import Supervisor

            cfg = self.cfg
            self._supervisor = Supervisor(
                cfg.supervisor_url,
                cfg.supervisor_user,
                cfg.supervisor_password,
                cfg.supervisor_timeout,
                cfg.ca_bundle,
            )
        return self._supervisor

    @property
    def engine(self) -> Engine:
        """The container engine's CLI (CONTAINER_ENGINE), chosen on first use."""
        if self._engine is None:
            # Start-up time: only hosts with image entries look for an engine.
            from ansible_proxy.agent.adapters.engine import Engine, choose_engine

            cfg = self.cfg
            self._engine = Engine(
                choose_engine(cfg.container_engine), load_timeout=cfg.load_timeout
            )
        return self._engine

    def installed_sha(self, entry: ManagedBinary) -> str | None:
        """The release in place now: BIN_DIR's file hashed, or an image entry's `:current`."""
        if entry.image:
            name = entry.binary_name
            return self.engine.current(
                entry.image, entry.version, lambda sha: self.store.image_id(name, sha)
            )
        return self.state.file_sha(self.binary_path(entry.binary_name))

    def binary_path(self, binary_name: str) -> Path:
        """Where a binary is installed: BIN_DIR/name, or for the agent itself its own file."""
        if binary_name == SELF_NAME and self.agent_path is not None:
            return self.agent_path
        return self.cfg.bin_dir / binary_name

    def switch_context(self) -> SwitchContext:
        from ansible_proxy.agent.switch import SwitchContext  # start-up time, as supervisor

        return SwitchContext(
            self.supervisor,
            self.store,
            self.cfg.bin_dir,
            self.cfg.watch_seconds,
            self.log,
            self.crash,
            lambda: self.engine,
        )

    def manifest(self, fresh: bool = False) -> Manifest:
        """The manifest as it is now; parsed again only when the file changed, or `fresh`.

        Decisions taken under a binary's lock ask `fresh`: two saves within one tick of
        the file-time clock could reuse an inode and a size, and so look unchanged.
        """
        stamp = _stamp(self.cfg.manifest_path)
        if fresh or self._manifest is None or stamp is None or stamp != self._manifest_stamp:
            self._manifest = load_manifest(self.cfg.manifest_path)
            self._manifest_stamp = stamp
        return self._manifest

    def entry(self, binary_name: str, fresh: bool = False) -> ManagedBinary:
        """The binary's entry as the manifest holds it now (another run may have changed it)."""
        return self.manifest(fresh).get(binary_name)

    def update_manifest(self, binary_name: str, **changes: object) -> ManagedBinary:
        """Read-modify-write the manifest under its lock, so overlapping runs merge."""
        from ansible_proxy.client.locks import exclusive  # start-up time: psutil, on a write

        with exclusive(self.cfg.lock_dir / ".manifest.lock"):
            manifest = load_manifest(self.cfg.manifest_path)
            entry = manifest.update(binary_name, **changes)  # type: ignore[arg-type]
            manifest.save()
        return entry

    def set_node_info(self, info: dict[str, object]) -> bool:
        """Write nodeInfo into the manifest when it changed; True when it was written."""
        if self.manifest().node_info() == info:
            return False  # a no-op tick writes nothing
        from ansible_proxy.client.locks import exclusive  # start-up time: psutil, on a write

        with exclusive(self.cfg.lock_dir / ".manifest.lock"):
            fresh = load_manifest(self.cfg.manifest_path)
            if not fresh.set_node_info(info):
                return False
            fresh.save()
        return True


def _stamp(path: Path) -> tuple[int, int, int] | None:
    """Inode, size and mtime: a save is a rename (a new inode), so any write changes it."""
    try:
        st = path.stat()  # through a symlink: the file the operator edits
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns
