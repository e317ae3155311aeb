"""An operator's maintenance on one host: hold and release a binary, forget a quarantine.

Each is one read-modify-write of the manifest under LOCK_DIR/.manifest.lock, the lock
every agent and inspector write takes, so they are safe while cron runs: a run that is
already working on the binary finishes its step, and every later decision sees the
change (decisions are re-made from the manifest under the binary's lock).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from ansible_proxy.agent.manifest import ManagedBinary, Manifest, load_manifest
from ansible_proxy.client import history
from ansible_proxy.client.config import AgentConfig
from ansible_proxy.client.locks import exclusive
from ansible_proxy.errors import ConfigError
from ansible_proxy.names import is_bin_name

DEFAULT_REASON = "held by an operator"


@contextmanager
def _locked(cfg: AgentConfig, name: str) -> Iterator[Manifest]:
    """The manifest, read under its lock; `name` must be one of its binaries."""
    if not is_bin_name(name):
        raise ConfigError(f"{name!r} is not a binary name [A-Za-z0-9._-]")
    cfg.lock_dir.mkdir(parents=True, exist_ok=True)
    with exclusive(cfg.lock_dir / ".manifest.lock"):
        manifest = load_manifest(cfg.manifest_path)
        if name not in {entry.binary_name for entry in manifest.binaries}:
            raise ConfigError(f"manifest {manifest.path}: no binary named {name!r}")
        yield manifest


def _change(cfg: AgentConfig, name: str, **changes: object) -> tuple[ManagedBinary, ManagedBinary]:
    """(before, after) of one entry, changed and saved under the manifest's lock."""
    with _locked(cfg, name) as manifest:
        before = manifest.get(name)
        after = manifest.update(name, **changes)  # type: ignore[arg-type]
        if after != before:
            manifest.save()
    return before, after


def hold(cfg: AgentConfig, name: str, reason: str) -> str:
    """Pause upgrades and rollbacks of one binary on this host; returns what was done."""
    text = " ".join(reason.split()) or DEFAULT_REASON
    before, _ = _change(cfg, name, hold=text)
    if before.hold:
        return f"{name}: already held ({before.hold}); reason now: {text}"
    return f"{name}: held ({text}): no upgrade or rollback until `ansible-proxy release {name}`"


def release(cfg: AgentConfig, name: str) -> str:
    before, _ = _change(cfg, name, hold="")
    if not before.hold:
        return f"{name}: was not held"
    return f"{name}: released: the next run upgrades it if a newer release is published"


def forget(cfg: AgentConfig, name: str, sha: str) -> str:
    """Lift the quarantine of one version (history "err"): the next run may install it."""
    with _locked(cfg, name) as manifest:
        entry = manifest.get(name)
        bad = [s for s, result in entry.history.items() if result == history.ERR]
        matches = [s for s in bad if s == sha or (len(sha) >= 8 and s.startswith(sha))]
        if len(matches) != 1:
            known = ", ".join(s[:12] for s in bad) or "none"
            raise ConfigError(f"{name}: no quarantined version {sha!r} (quarantined: {known})")
        manifest.update(name, drop_history=(matches[0],))
        manifest.save()
    return (
        f"{name}@{matches[0][:12]}: quarantine lifted: the next run installs it if it is the latest"
    )
