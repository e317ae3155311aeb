"""The publisher's own record of what it signed (issue 25): per bin-manager, bin and arch,
the highest sequence this machine signed, so that no answer of a server (or of a man in
the middle) makes it sign a lower one.

A small JSON file, `$XDG_STATE_HOME/ansible-proxy/signed.json` (else
`~/.local/state/ansible-proxy/signed.json`; `--state-file` names another), held under an
flock while a command signs, and written atomically before the signature leaves.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ansible_proxy.errors import ConfigError

FILE_NAME = "signed.json"


def default_path(env: Mapping[str, str]) -> Path:
    """Where the record is kept when --state-file does not say (XDG's state directory)."""
    state = env.get("XDG_STATE_HOME", "")
    if state and Path(state).is_absolute():  # a relative one is to be ignored (XDG)
        return Path(state) / "ansible-proxy" / FILE_NAME
    home = env.get("HOME", "")
    if not home:
        raise ConfigError(
            "neither XDG_STATE_HOME nor HOME is set: give --state-file PATH, where this "
            "machine records the sequences it signed"
        )
    return Path(home) / ".local" / "state" / "ansible-proxy" / FILE_NAME


class Record:
    """The record of one bin-manager, read under the lock `opened` holds."""

    def __init__(self, path: Path, server: str, body: dict[str, Any]) -> None:
        self.path = path
        self.server = server
        self._body = body

    def highest(self, bin_name: str, arch: str) -> int:
        """The highest sequence this machine signed for `bin_name` on `arch`; 0 when none."""
        found = self._body["servers"].get(self.server, {}).get(bin_name, {}).get(arch, 0)
        return found if isinstance(found, int) and not isinstance(found, bool) else 0

    def raise_to(self, bin_name: str, arch: str, sequence: int) -> None:
        """Record `sequence` (when higher) for `bin_name` on `arch`: an atomic write."""
        if sequence <= self.highest(bin_name, arch):
            return
        servers = self._body["servers"]
        servers.setdefault(self.server, {}).setdefault(bin_name, {})[arch] = sequence
        text = json.dumps(self._body, indent=2, sort_keys=True) + "\n"
        try:
            _write_atomic(self.path, text.encode())
        except OSError as exc:
            raise ConfigError(
                f"cannot record the signed sequence in {self.path}: {exc.strerror}; "
                "nothing was sent"
            ) from None


@contextlib.contextmanager
def opened(path: Path, server: str) -> Iterator[Record]:
    """The record of `server` in `path`, locked for the block (one signer at a time)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        lock = path.with_name(f".{path.name}.lock").open("a")
    except OSError as exc:
        raise ConfigError(f"cannot use the state file {path}: {exc.strerror}") from None
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield Record(path, server, _read(path))


def _write_atomic(path: Path, data: bytes) -> None:
    """A temp file beside `path`, fsynced, renamed over it: a crash leaves one or the other."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("wb") as handle:
            os.fchmod(handle.fileno(), 0o600)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    directory = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def _read(path: Path) -> dict[str, Any]:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {"v": 1, "servers": {}}
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(
            f"the state file {path} is unreadable ({exc}): fix it, or remove it to forget "
            "the sequences this machine signed"
        ) from None
    if not isinstance(raw, dict) or raw.get("v") != 1 or not _is_servers(raw.get("servers")):
        raise ConfigError(
            f"the state file {path} is not a record of signed sequences: fix it, or remove "
            "it to forget the sequences this machine signed"
        )
    return raw


def _is_servers(servers: object) -> bool:
    """{server: {bin: {arch: sequence}}}."""
    return isinstance(servers, dict) and all(
        isinstance(bins, dict) and all(isinstance(arches, dict) for arches in bins.values())
        for bins in servers.values()
    )
